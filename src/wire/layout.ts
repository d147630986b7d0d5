/**
 * Byte layouts shared by the wire format (src/telemetry), the processor's forecast messages, the
 * engine's ingress buffer (WASM linear memory) and its TypeScript reference. A leaf module: it
 * imports nothing, so telemetry and the engine both depend on it and not on each other. A
 * telemetry frame's records are copied into the ingress buffer unchanged, so this one layout is
 * both the wire record and the engine's input record. Little-endian.
 */

/** Bytes per event record (wire and ingress). */
export const EVENT_RECORD_BYTES = 48;

/** Byte offsets of the fields of an event record. */
export const EventField = {
  /** u32: low word of the 64-bit user hash (see src/telemetry/hash.ts). */
  userHashLo: 0,
  /** u32: high word of the 64-bit user hash. */
  userHashHi: 4,
  /** f64: event time, ms since the Unix epoch (the gateway's clock when the request arrived). */
  timeMs: 8,
  /** i32: prompt (input) tokens; negative is invalid. */
  inputTokens: 16,
  /** i32: generated (output) tokens; negative is invalid. */
  outputTokens: 20,
  /** u32: MurmurHash3 of the route / model / parameter key (0 = none). */
  routeHash: 24,
  /** u32: MurmurHash3 of the source IP (0 = none). */
  ipHash: 28,
  /** u32: MurmurHash3 of the user agent (0 = none). */
  uaHash: 32,
  /** i32: request latency in ms; negative is invalid. */
  latencyMs: 36,
  /** i32: response size in bytes; negative is invalid. */
  bytes: 40,
  /** u16: HTTP status code (0 = unknown). */
  status: 44,
  /** u16: bit flags, see {@link EventFlag}. */
  flags: 46,
} as const;

/** Bits of the `flags` field. */
export const EventFlag = {
  /** The gateway refused this request (a throttle event; it feeds back into the model). */
  throttled: 1,
  /** The request failed for a reason the gateway knows (also counted when status >= 500). */
  error: 2,
} as const;

/** Bytes per forecast output record written by the engine at every tick. */
export const FORECAST_RECORD_BYTES = 32;

/** Byte offsets of the fields of a forecast output record. */
export const ForecastField = {
  /** u32: low word of the user hash. */
  userHashLo: 0,
  /** u32: high word of the user hash. */
  userHashHi: 4,
  /** f64: forecast request rate at the configured horizon, requests per second. */
  ratePerSec: 8,
  /** f64: upper bound of the forecast at the configured quantile, requests per second. */
  upperPerSec: 16,
  /** f64: observed rate in the bucket that just closed, requests per second. */
  observedPerSec: 24,
} as const;
