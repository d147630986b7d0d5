// One request's telemetry as a caller gives it (TelemetryEvent) and as the wire carries it (the
// 48-byte record of src/wire/layout.ts). Validation and the record writer live here so the
// publisher, the JSON decoder and the synthetic generator produce byte-identical records.
import { EVENT_RECORD_BYTES, EventField, EventFlag } from "../wire/layout.ts";

/** Largest value of the i32 record fields (tokens, latency, bytes). */
export const I32_MAX = 0x7fffffff;
/** Largest value of the u16 status field. */
export const U16_MAX = 0xffff;

/** One request's telemetry, the input of `TelemetryPublisher.record()`. */
export interface TelemetryEvent {
  /** The plain user key (API key id, account id, ...). Required, non-empty; hashed with `userHash`. */
  user: string;
  /** Event time, ms since the Unix epoch. Default: `Date.now()` when recorded. */
  timeMs?: number;
  /** Prompt (input) tokens, >= 0; fractions are truncated. Default 0. */
  inputTokens?: number;
  /** Generated (output) tokens, >= 0. Default 0. */
  outputTokens?: number;
  /** Route / model / parameter key; hashed with `hash32`. Default none (hash 0). */
  route?: string;
  /** Source IP as text; hashed with `hash32`. Default none (hash 0). */
  sourceIp?: string;
  /** User-Agent header; hashed with `hash32`. Default none (hash 0). */
  userAgent?: string;
  /** HTTP status code, 0..65535. Default 0 (unknown). */
  status?: number;
  /** Request latency, ms, >= 0; fractions are truncated. Default 0. */
  latencyMs?: number;
  /** Response size, bytes, >= 0. Default 0. */
  bytes?: number;
  /** The gateway refused this request (a throttle event). Default false. */
  throttled?: boolean;
  /** The request failed for a reason the gateway knows. Default false. */
  error?: boolean;
  /** Customer segment, stored once per user in the user directory. Optional. */
  segment?: string;
  /** Plan / tier, stored once per user in the user directory. Optional. */
  plan?: string;
}

/** The numeric content of one wire record (what the 48 bytes hold). */
export interface EventRecord {
  userHashLo: number;
  userHashHi: number;
  timeMs: number;
  inputTokens: number;
  outputTokens: number;
  routeHash: number;
  ipHash: number;
  uaHash: number;
  latencyMs: number;
  bytes: number;
  status: number;
  flags: number;
}

/** A TelemetryEvent field is missing or out of range; `field` names it. Nothing was recorded. */
export class InvalidEventError extends Error {
  override name = "InvalidEventError";
  constructor(
    /** The offending field, e.g. "inputTokens". */
    readonly field: string,
    message: string,
  ) {
    super(`invalid telemetry event: ${field}: ${message}`);
  }
}

/** Checks an optional non-negative integer field (fractions truncated); returns 0 when absent. */
export function checkCount(field: string, value: unknown, max: number): number {
  if (value === undefined || value === null) return 0;
  if (typeof value !== "number" || !(value >= 0 && value <= max)) {
    throw new InvalidEventError(field, `expected a number in 0..${max}, got ${JSON.stringify(value)}`);
  }
  return Math.trunc(value);
}

/** Checks an event time (finite number of ms); returns `defaultMs` when absent. */
export function checkTimeMs(value: unknown, defaultMs: number): number {
  if (value === undefined || value === null) return defaultMs;
  if (typeof value !== "number" || !Number.isFinite(value)) {
    throw new InvalidEventError("timeMs", `expected finite ms since the epoch, got ${JSON.stringify(value)}`);
  }
  return value;
}

/** Checks the user key: a non-empty string. */
export function checkUser(value: unknown): string {
  if (typeof value !== "string" || value.length === 0) {
    throw new InvalidEventError("user", `expected a non-empty string, got ${JSON.stringify(value)}`);
  }
  return value;
}

/** The flags word of an event. */
export function eventFlags(e: { throttled?: boolean; error?: boolean }): number {
  return (e.throttled ? EventFlag.throttled : 0) | (e.error ? EventFlag.error : 0);
}

/**
 * Validates an event's numeric fields and writes its record at `offset` of `view`. Validates
 * everything before writing anything, so a bad event leaves the target untouched.
 * The hashes are passed in because callers cache them.
 */
export function writeEventRecord(
  view: DataView,
  offset: number,
  e: TelemetryEvent,
  userHashLo: number,
  userHashHi: number,
  routeHash: number,
  ipHash: number,
  uaHash: number,
  defaultTimeMs: number,
): void {
  const timeMs = checkTimeMs(e.timeMs, defaultTimeMs);
  const inputTokens = checkCount("inputTokens", e.inputTokens, I32_MAX);
  const outputTokens = checkCount("outputTokens", e.outputTokens, I32_MAX);
  const latencyMs = checkCount("latencyMs", e.latencyMs, I32_MAX);
  const bytes = checkCount("bytes", e.bytes, I32_MAX);
  const status = checkCount("status", e.status, U16_MAX);
  view.setUint32(offset + EventField.userHashLo, userHashLo, true);
  view.setUint32(offset + EventField.userHashHi, userHashHi, true);
  view.setFloat64(offset + EventField.timeMs, timeMs, true);
  view.setInt32(offset + EventField.inputTokens, inputTokens, true);
  view.setInt32(offset + EventField.outputTokens, outputTokens, true);
  view.setUint32(offset + EventField.routeHash, routeHash, true);
  view.setUint32(offset + EventField.ipHash, ipHash, true);
  view.setUint32(offset + EventField.uaHash, uaHash, true);
  view.setInt32(offset + EventField.latencyMs, latencyMs, true);
  view.setInt32(offset + EventField.bytes, bytes, true);
  view.setUint16(offset + EventField.status, status, true);
  view.setUint16(offset + EventField.flags, eventFlags(e), true);
}

/** Writes an already-numeric record (no validation beyond the field widths). */
export function writeRecord(view: DataView, offset: number, r: EventRecord): void {
  view.setUint32(offset + EventField.userHashLo, r.userHashLo, true);
  view.setUint32(offset + EventField.userHashHi, r.userHashHi, true);
  view.setFloat64(offset + EventField.timeMs, r.timeMs, true);
  view.setInt32(offset + EventField.inputTokens, r.inputTokens, true);
  view.setInt32(offset + EventField.outputTokens, r.outputTokens, true);
  view.setUint32(offset + EventField.routeHash, r.routeHash, true);
  view.setUint32(offset + EventField.ipHash, r.ipHash, true);
  view.setUint32(offset + EventField.uaHash, r.uaHash, true);
  view.setInt32(offset + EventField.latencyMs, r.latencyMs, true);
  view.setInt32(offset + EventField.bytes, r.bytes, true);
  view.setUint16(offset + EventField.status, r.status, true);
  view.setUint16(offset + EventField.flags, r.flags, true);
}

/** Reads record `index` of a records view (as returned by `decodeFrame`). For tests and tools. */
export function readRecord(records: Uint8Array, index: number): EventRecord {
  const view = new DataView(records.buffer, records.byteOffset, records.byteLength);
  const o = index * EVENT_RECORD_BYTES;
  if (index < 0 || o + EVENT_RECORD_BYTES > records.byteLength) {
    throw new RangeError(`record index ${index} out of range (${records.byteLength / EVENT_RECORD_BYTES} records)`);
  }
  return {
    userHashLo: view.getUint32(o + EventField.userHashLo, true),
    userHashHi: view.getUint32(o + EventField.userHashHi, true),
    timeMs: view.getFloat64(o + EventField.timeMs, true),
    inputTokens: view.getInt32(o + EventField.inputTokens, true),
    outputTokens: view.getInt32(o + EventField.outputTokens, true),
    routeHash: view.getUint32(o + EventField.routeHash, true),
    ipHash: view.getUint32(o + EventField.ipHash, true),
    uaHash: view.getUint32(o + EventField.uaHash, true),
    latencyMs: view.getInt32(o + EventField.latencyMs, true),
    bytes: view.getInt32(o + EventField.bytes, true),
    status: view.getUint16(o + EventField.status, true),
    flags: view.getUint16(o + EventField.flags, true),
  };
}
