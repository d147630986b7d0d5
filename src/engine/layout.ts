// The record layouts moved to src/wire/layout.ts (a leaf module telemetry and the engine share);
// kept as a re-export so engine code importing "./layout.ts" keeps working.
export { EVENT_RECORD_BYTES, EventField, EventFlag, FORECAST_RECORD_BYTES, ForecastField } from "../wire/layout.ts";
