// The forecast message published at every tick on `<prefix>.forecasts.<partition>`: a 32-byte
// little-endian header followed by `count` 32-byte forecast records (layout: ForecastField in
// src/wire/layout.ts). A tick with more records than fit under the server's max payload is split
// into chunks sharing `tickTimeMs`; `chunkIndex`/`chunkCount` let a reader know it has them all.
import { FORECAST_RECORD_BYTES } from "../wire/layout.ts";

/** Magic of a forecast message: ASCII "FSFC" as little-endian u32. */
export const FORECAST_MAGIC = 0x43465346;
/** Forecast message format version. */
export const FORECAST_VERSION = 1;
/** Bytes of the forecast message header. */
export const FORECAST_HEADER_BYTES = 32;
/** Largest forecast message payload we send, bytes (under NATS's default 1 MiB max payload). */
export const DEFAULT_FORECAST_MAX_PAYLOAD_BYTES = 1024 * 1024 - 1024;

/** Byte offsets of the forecast header fields. */
export const ForecastHeaderField = {
  /** u32: {@link FORECAST_MAGIC}. */
  magic: 0,
  /** u16: {@link FORECAST_VERSION}. */
  version: 4,
  /** u16: bytes per record (32). */
  recordBytes: 6,
  /** u32: partition. */
  partition: 8,
  /** u32: records in this chunk. */
  count: 12,
  /** f64: tick time, ms since the epoch (the processor's clock). */
  tickTimeMs: 16,
  /** u16: index of this chunk within the tick. */
  chunkIndex: 24,
  /** u16: chunks of this tick. */
  chunkCount: 26,
  /** u32: users forecast in the whole tick (all chunks). */
  totalCount: 28,
} as const;

/** A forecast message that cannot be parsed. */
export class BadForecastMessageError extends Error {
  override name = "BadForecastMessageError";
  constructor(message: string) {
    super(message);
  }
}

/** A decoded forecast message (one chunk). */
export interface ForecastMessage {
  partition: number;
  tickTimeMs: number;
  chunkIndex: number;
  chunkCount: number;
  totalCount: number;
  count: number;
  /** count × 32 bytes of forecast records (a view into the message). */
  records: Uint8Array;
}

/** One forecast record, decoded (for tools and tests; the hot path reads the bytes). */
export interface ForecastMessageRecord {
  userHashLo: number;
  userHashHi: number;
  ratePerSec: number;
  upperPerSec: number;
  observedPerSec: number;
}

/**
 * Splits `count` records (in `records`) into forecast messages, each at most `maxPayloadBytes`.
 * Always yields at least one message (an empty tick still says "no active users").
 */
export function encodeForecastMessages(
  partition: number,
  tickTimeMs: number,
  records: Uint8Array,
  count: number,
  maxPayloadBytes = DEFAULT_FORECAST_MAX_PAYLOAD_BYTES,
): Uint8Array[] {
  const perChunk = Math.max(1, Math.floor((maxPayloadBytes - FORECAST_HEADER_BYTES) / FORECAST_RECORD_BYTES));
  const chunkCount = Math.max(1, Math.ceil(count / perChunk));
  if (chunkCount > 0xffff) throw new RangeError(`${count} forecasts need ${chunkCount} chunks (max 65535)`);
  const out: Uint8Array[] = [];
  for (let c = 0; c < chunkCount; c++) {
    const first = c * perChunk;
    const n = Math.min(perChunk, count - first);
    const msg = new Uint8Array(FORECAST_HEADER_BYTES + n * FORECAST_RECORD_BYTES);
    const dv = new DataView(msg.buffer);
    dv.setUint32(ForecastHeaderField.magic, FORECAST_MAGIC, true);
    dv.setUint16(ForecastHeaderField.version, FORECAST_VERSION, true);
    dv.setUint16(ForecastHeaderField.recordBytes, FORECAST_RECORD_BYTES, true);
    dv.setUint32(ForecastHeaderField.partition, partition, true);
    dv.setUint32(ForecastHeaderField.count, n, true);
    dv.setFloat64(ForecastHeaderField.tickTimeMs, tickTimeMs, true);
    dv.setUint16(ForecastHeaderField.chunkIndex, c, true);
    dv.setUint16(ForecastHeaderField.chunkCount, chunkCount, true);
    dv.setUint32(ForecastHeaderField.totalCount, count, true);
    msg.set(records.subarray(first * FORECAST_RECORD_BYTES, (first + n) * FORECAST_RECORD_BYTES), FORECAST_HEADER_BYTES);
    out.push(msg);
  }
  return out;
}

/** Parses one forecast message; throws {@link BadForecastMessageError}. */
export function decodeForecastMessage(bytes: Uint8Array): ForecastMessage {
  if (bytes.length < FORECAST_HEADER_BYTES) throw new BadForecastMessageError(`forecast message of ${bytes.length} bytes is shorter than its header`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (dv.getUint32(0, true) !== FORECAST_MAGIC) throw new BadForecastMessageError("bad forecast magic");
  const version = dv.getUint16(ForecastHeaderField.version, true);
  if (version !== FORECAST_VERSION) throw new BadForecastMessageError(`unsupported forecast version ${version}`);
  const recordBytes = dv.getUint16(ForecastHeaderField.recordBytes, true);
  if (recordBytes !== FORECAST_RECORD_BYTES) throw new BadForecastMessageError(`forecast record size ${recordBytes}, expected ${FORECAST_RECORD_BYTES}`);
  const count = dv.getUint32(ForecastHeaderField.count, true);
  if (FORECAST_HEADER_BYTES + count * recordBytes !== bytes.length) {
    throw new BadForecastMessageError(`forecast header says ${count} records, message has ${bytes.length - FORECAST_HEADER_BYTES} body bytes`);
  }
  return {
    partition: dv.getUint32(ForecastHeaderField.partition, true),
    tickTimeMs: dv.getFloat64(ForecastHeaderField.tickTimeMs, true),
    chunkIndex: dv.getUint16(ForecastHeaderField.chunkIndex, true),
    chunkCount: dv.getUint16(ForecastHeaderField.chunkCount, true),
    totalCount: dv.getUint32(ForecastHeaderField.totalCount, true),
    count,
    records: bytes.subarray(FORECAST_HEADER_BYTES),
  };
}

/** Reads the records of a forecast message into objects. */
export function forecastRecords(msg: ForecastMessage): ForecastMessageRecord[] {
  const dv = new DataView(msg.records.buffer, msg.records.byteOffset, msg.records.byteLength);
  const out: ForecastMessageRecord[] = [];
  for (let i = 0; i < msg.count; i++) {
    const o = i * FORECAST_RECORD_BYTES;
    out.push({
      userHashLo: dv.getUint32(o, true),
      userHashHi: dv.getUint32(o + 4, true),
      ratePerSec: dv.getFloat64(o + 8, true),
      upperPerSec: dv.getFloat64(o + 16, true),
      observedPerSec: dv.getFloat64(o + 24, true),
    });
  }
  return out;
}
