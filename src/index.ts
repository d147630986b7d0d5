// Public API of the foresight package (one export line per component).
export { EVENT_RECORD_BYTES, EventField, EventFlag, FORECAST_RECORD_BYTES, ForecastField } from "./wire/layout.ts";
export * from "./telemetry/index.ts";
export * from "./config/index.ts";
export * from "./engine/index.ts";
export * from "./forecast/index.ts";
export * from "./processor/index.ts";
export * from "./obs/index.ts";
export * from "./allocator/index.ts";
export * from "./throttle/index.ts";
// Envoy's RLS: its limiter port types are the throttle component's (structurally identical).
export { RlsServer, RlsCode, RlsUnit, type RlsServerOptions, type RlsShutdownResult, FixedWindowLimiter, type FixedWindowOptions, createRlsClient, shouldRateLimit, type RlsClient, type RlsRequest, type RlsResponse, DescriptorMapping, type DescriptorMappingOptions, type DescriptorRule, mappingFromConfig, fixedWindowFromConfig, RlsProtoLoadError, RlsListenError, RlsInvalidRequestError, LimiterConfigError, RedisLimiterError } from "./envoy/index.ts";
