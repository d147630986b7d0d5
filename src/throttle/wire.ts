// The throttle wire format: one binary message layout for grant snapshots, grant deltas, pool
// state and gateway demand reports. A 40-byte little-endian header (magic "FSGR", a version
// byte, a kind byte, record size, count, tick time, lease TTL, chunking) followed by `count`
// fixed-size records. Every way a message can be bad has a reason code: the gateway
// dead-letters and counts the message and keeps its last good state.
import type { GrantTable } from "./grants.ts";

/** Magic: the ASCII bytes "FSGR", u32 little-endian. */
export const GRANT_MAGIC = 0x52475346;
/** The version this code writes and reads. */
export const GRANT_VERSION = 1;
/** Bytes of the header. */
export const GRANT_HEADER_BYTES = 40;
/** Bytes per grant record. */
export const GRANT_RECORD_BYTES = 40;
/** Bytes per pool record. */
export const POOL_RECORD_BYTES = 16;
/** Bytes per demand record. */
export const DEMAND_RECORD_BYTES = 12;
/** Largest message we publish, bytes (under NATS's default 1 MiB max payload). */
export const DEFAULT_MAX_MESSAGE_BYTES = 1024 * 1024 - 4096;

/** What a message carries. */
export const MessageKind = {
  /** The full grant state of a partition (possibly in chunks). */
  snapshot: 1,
  /** Grants that changed (or were removed) in a partition since the last tick; renews its lease. */
  delta: 2,
  /** Per-pool allocation, load and pressure. */
  pools: 3,
  /** One gateway's per-user demand over its last report interval. */
  demand: 4,
} as const;
export type MessageKind = (typeof MessageKind)[keyof typeof MessageKind];

const RECORD_BYTES: Record<number, number> = {
  [MessageKind.snapshot]: GRANT_RECORD_BYTES,
  [MessageKind.delta]: GRANT_RECORD_BYTES,
  [MessageKind.pools]: POOL_RECORD_BYTES,
  [MessageKind.demand]: DEMAND_RECORD_BYTES,
};

/** Header field offsets. */
export const GrantHeaderField = {
  /** u32 {@link GRANT_MAGIC}. */ magic: 0,
  /** u8 {@link GRANT_VERSION}. */ version: 4,
  /** u8 {@link MessageKind}. */ kind: 5,
  /** u16 bytes per record. */ recordBytes: 6,
  /** u32 partition (grants), 0 (pools), gateway id hash (demand). */ partition: 8,
  /** u32 records in this message. */ count: 12,
  /** f64 tick time, ms since the epoch (grants valid until tickTimeMs + ttlMs). */ tickTimeMs: 16,
  /** u32 lease TTL (grants, pools) or report interval (demand), ms. */ ttlMs: 24,
  /** u16 chunk index within the tick. */ chunkIndex: 28,
  /** u16 chunks in the tick. */ chunkCount: 30,
  /** u32 partitions the sender uses (grants, demand); pools: 0. */ partitions: 32,
  /** u32 reserved, 0. */ reserved: 36,
} as const;

/** Grant record field offsets. */
export const GrantRecordField = {
  userHashLo: 0, userHashHi: 4,
  /** f32 U, requests/s. */ upperReqPerSec: 8,
  /** f32 A, requests/s. */ allocReqPerSec: 12,
  /** f32 G, requests/s. */ grantReqPerSec: 16,
  /** f32 P, requests/s. */ planReqPerSec: 20,
  /** f32 tokens/s (Infinity = unlimited). */ upperTokPerSec: 24, grantTokPerSec: 28, planTokPerSec: 32,
  /** u16 pool index. */ pool: 36,
  /** u8 plan index (the service's plan order). */ plan: 38,
  /** u8 flags: bit 0 = removed (back to the default plan). */ flags: 39,
} as const;
/** Grant flag: the user has no grant any more. */
export const GRANT_FLAG_REMOVED = 1;

/** Short machine codes of the ways a throttle message can be bad. */
export type BadGrantReason = "too_short" | "bad_magic" | "bad_version" | "bad_kind" | "bad_record_size" | "length_mismatch" | "bad_value";

/** A throttle message that does not decode; `reason` is the dead-letter header and metric label. */
export class BadGrantMessageError extends Error {
  override name = "BadGrantMessageError";
  constructor(readonly reason: BadGrantReason, message: string) {
    super(message);
  }
}

/** A decoded message header plus a view of its records. */
export interface ThrottleMessage {
  kind: MessageKind;
  partition: number;
  count: number;
  tickTimeMs: number;
  ttlMs: number;
  chunkIndex: number;
  chunkCount: number;
  partitions: number;
  /** The record bytes (a view into the message). */
  records: DataView;
}

/** Writes a header into the first 40 bytes of `dv`. */
function writeHeader(dv: DataView, kind: MessageKind, partition: number, count: number, tickTimeMs: number, ttlMs: number, chunkIndex: number, chunkCount: number, partitions: number): void {
  dv.setUint32(GrantHeaderField.magic, GRANT_MAGIC, true);
  dv.setUint8(GrantHeaderField.version, GRANT_VERSION);
  dv.setUint8(GrantHeaderField.kind, kind);
  dv.setUint16(GrantHeaderField.recordBytes, RECORD_BYTES[kind], true);
  dv.setUint32(GrantHeaderField.partition, partition >>> 0, true);
  dv.setUint32(GrantHeaderField.count, count, true);
  dv.setFloat64(GrantHeaderField.tickTimeMs, tickTimeMs, true);
  dv.setUint32(GrantHeaderField.ttlMs, ttlMs, true);
  dv.setUint16(GrantHeaderField.chunkIndex, chunkIndex, true);
  dv.setUint16(GrantHeaderField.chunkCount, chunkCount, true);
  dv.setUint32(GrantHeaderField.partitions, partitions, true);
  dv.setUint32(GrantHeaderField.reserved, 0, true);
}

/** Decodes and validates a message; throws {@link BadGrantMessageError}. */
export function decodeThrottleMessage(bytes: Uint8Array): ThrottleMessage {
  if (bytes.length < GRANT_HEADER_BYTES) throw new BadGrantMessageError("too_short", `message of ${bytes.length} bytes is shorter than the ${GRANT_HEADER_BYTES}-byte header`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = dv.getUint32(0, true);
  if (magic !== GRANT_MAGIC) throw new BadGrantMessageError("bad_magic", `bad magic 0x${magic.toString(16)} (expected "FSGR")`);
  const version = dv.getUint8(GrantHeaderField.version);
  if (version !== GRANT_VERSION) throw new BadGrantMessageError("bad_version", `unsupported throttle message version ${version} (reads ${GRANT_VERSION})`);
  const kind = dv.getUint8(GrantHeaderField.kind);
  const rb = RECORD_BYTES[kind];
  if (rb === undefined) throw new BadGrantMessageError("bad_kind", `unknown message kind ${kind}`);
  const recordBytes = dv.getUint16(GrantHeaderField.recordBytes, true);
  if (recordBytes !== rb) throw new BadGrantMessageError("bad_record_size", `record size ${recordBytes}, kind ${kind} has ${rb}`);
  const count = dv.getUint32(GrantHeaderField.count, true);
  if (GRANT_HEADER_BYTES + count * rb !== bytes.length) {
    throw new BadGrantMessageError("length_mismatch", `header says ${count} records of ${rb} bytes, ${bytes.length - GRANT_HEADER_BYTES} body bytes follow`);
  }
  const tickTimeMs = dv.getFloat64(GrantHeaderField.tickTimeMs, true);
  if (!Number.isFinite(tickTimeMs)) throw new BadGrantMessageError("bad_value", `tickTimeMs is ${tickTimeMs}`);
  const records = new DataView(bytes.buffer, bytes.byteOffset + GRANT_HEADER_BYTES, count * rb);
  // Rates must be >= 0 (tokens may be +Infinity = unlimited): NaN or negatives would break buckets.
  if (kind === MessageKind.snapshot || kind === MessageKind.delta) {
    for (let i = 0; i < count; i++) {
      const o = i * rb;
      for (let f = 8; f < 36; f += 4) {
        const v = records.getFloat32(o + f, true);
        if (!(v >= 0)) throw new BadGrantMessageError("bad_value", `record ${i}: rate at byte ${f} is ${v}`);
      }
    }
  } else if (kind === MessageKind.pools) {
    for (let i = 0; i < count; i++) {
      for (let f = 0; f < 12; f += 4) {
        const v = records.getFloat32(i * rb + f, true);
        if (!(v >= 0)) throw new BadGrantMessageError("bad_value", `pool record ${i}: value at byte ${f} is ${v}`);
      }
    }
  } else {
    for (let i = 0; i < count; i++) {
      const v = records.getFloat32(i * rb + 8, true);
      if (!(v >= 0 && v < Infinity)) throw new BadGrantMessageError("bad_value", `demand record ${i}: ${v}`);
    }
  }
  return {
    kind: kind as MessageKind,
    partition: dv.getUint32(GrantHeaderField.partition, true),
    count,
    tickTimeMs,
    ttlMs: dv.getUint32(GrantHeaderField.ttlMs, true),
    chunkIndex: dv.getUint16(GrantHeaderField.chunkIndex, true),
    chunkCount: dv.getUint16(GrantHeaderField.chunkCount, true),
    partitions: dv.getUint32(GrantHeaderField.partitions, true),
    records,
  };
}

/** Writes grant `i` of `t` as a record at byte `o` of `dv`. */
export function writeGrantRecord(dv: DataView, o: number, t: GrantTable, i: number, flags = 0): void {
  dv.setUint32(o, t.userHashLo[i], true);
  dv.setUint32(o + 4, t.userHashHi[i], true);
  dv.setFloat32(o + 8, t.upperReqPerSec[i], true);
  dv.setFloat32(o + 12, t.allocReqPerSec[i], true);
  dv.setFloat32(o + 16, t.grantReqPerSec[i], true);
  dv.setFloat32(o + 20, t.planReqPerSec[i], true);
  dv.setFloat32(o + 24, t.upperTokPerSec[i], true);
  dv.setFloat32(o + 28, t.grantTokPerSec[i], true);
  dv.setFloat32(o + 32, t.planTokPerSec[i], true);
  dv.setUint16(o + 36, t.poolIndex[i], true);
  dv.setUint8(o + 38, t.planIndex[i]);
  dv.setUint8(o + 39, flags);
}

/**
 * Packs pre-written grant records (`records`, `count` × 40 bytes) into messages of at most
 * `maxBytes`; always at least one (an empty delta still renews the partition's lease).
 */
export function encodeGrantMessages(
  kind: typeof MessageKind.snapshot | typeof MessageKind.delta,
  partition: number,
  partitions: number,
  tickTimeMs: number,
  ttlMs: number,
  records: Uint8Array,
  count: number,
  maxBytes = DEFAULT_MAX_MESSAGE_BYTES,
): Uint8Array[] {
  const per = Math.max(1, Math.floor((maxBytes - GRANT_HEADER_BYTES) / GRANT_RECORD_BYTES));
  const chunks = Math.max(1, Math.ceil(count / per));
  if (chunks > 0xffff) throw new RangeError(`${count} grants need ${chunks} chunks (max 65535)`);
  const out: Uint8Array[] = [];
  for (let c = 0; c < chunks; c++) {
    const first = c * per;
    const n = Math.min(per, count - first);
    const msg = new Uint8Array(GRANT_HEADER_BYTES + n * GRANT_RECORD_BYTES);
    writeHeader(new DataView(msg.buffer), kind, partition, n, tickTimeMs, ttlMs, c, chunks, partitions);
    msg.set(records.subarray(first * GRANT_RECORD_BYTES, (first + n) * GRANT_RECORD_BYTES), GRANT_HEADER_BYTES);
    out.push(msg);
  }
  return out;
}

/** One pool's state as published. */
export interface PoolState {
  pool: number;
  allocatedReqPerSec: number;
  loadReqPerSec: number;
  pressure: number;
}

/** Encodes the pool state message. */
export function encodePoolsMessage(pools: readonly PoolState[], tickTimeMs: number, ttlMs: number): Uint8Array {
  const msg = new Uint8Array(GRANT_HEADER_BYTES + pools.length * POOL_RECORD_BYTES);
  const dv = new DataView(msg.buffer);
  writeHeader(dv, MessageKind.pools, 0, pools.length, tickTimeMs, ttlMs, 0, 1, 0);
  pools.forEach((p, i) => {
    const o = GRANT_HEADER_BYTES + i * POOL_RECORD_BYTES;
    dv.setFloat32(o, p.allocatedReqPerSec, true);
    dv.setFloat32(o + 4, p.loadReqPerSec, true);
    // Infinity pressure (load on a pool with no allocation) is kept: f32 holds it.
    dv.setFloat32(o + 8, p.pressure, true);
    dv.setUint16(o + 12, p.pool, true);
  });
  return msg;
}

/** Reads the records of a pools message. */
export function poolStates(m: ThrottleMessage): PoolState[] {
  const out: PoolState[] = [];
  for (let i = 0; i < m.count; i++) {
    const o = i * POOL_RECORD_BYTES;
    out.push({
      allocatedReqPerSec: m.records.getFloat32(o, true),
      loadReqPerSec: m.records.getFloat32(o + 4, true),
      pressure: m.records.getFloat32(o + 8, true),
      pool: m.records.getUint16(o + 12, true),
    });
  }
  return out;
}

/** Encodes a demand report: `count` (lo, hi, requests/s) triples from the arrays. */
export function encodeDemandMessage(gatewayId: number, partitions: number, tickTimeMs: number, intervalMs: number, lo: Uint32Array, hi: Uint32Array, ratePerSec: Float64Array, count: number): Uint8Array {
  const msg = new Uint8Array(GRANT_HEADER_BYTES + count * DEMAND_RECORD_BYTES);
  const dv = new DataView(msg.buffer);
  writeHeader(dv, MessageKind.demand, gatewayId, count, tickTimeMs, intervalMs, 0, 1, partitions);
  for (let i = 0; i < count; i++) {
    const o = GRANT_HEADER_BYTES + i * DEMAND_RECORD_BYTES;
    dv.setUint32(o, lo[i], true);
    dv.setUint32(o + 4, hi[i], true);
    dv.setFloat32(o + 8, ratePerSec[i], true);
  }
  return msg;
}

/** Subjects and stream name of the throttle component for a subject prefix. */
export interface ThrottleNames {
  /** Stream of grants and pool state (last message per subject kept). */
  grantsStream: string;
  /** Every subject of the grants stream. */
  grantsWildcard: string;
  snapshotSubject(partition: number, chunk: number): string;
  /** One subject per delta (`id` unique per publisher and tick), so the stream keeps every delta until max age. */
  deltaSubject(partition: number, id: string): string;
  poolsSubject: string;
  /** Gateways' demand reports, core NATS: `<prefix>.throttle.demand.<gateway>`. */
  demandSubject(gatewayId: string): string;
  demandWildcard: string;
  /** Exceedance events: `<prefix>.<exceedanceSubject>.<partition>`. */
  exceedanceSubject(partition: number): string;
  /** Where gateways dead-letter grant messages that do not decode. */
  deadLetterSubject: string;
}

/** Names for a prefix (same rules as processorNames). */
export function throttleNames(prefix = "foresight", exceedanceToken = "exceedances"): ThrottleNames {
  const upper = prefix.replace(/[.-]/g, "_").toUpperCase();
  return {
    grantsStream: `${upper}_GRANTS`,
    grantsWildcard: `${prefix}.grants.>`,
    snapshotSubject: (p, c) => `${prefix}.grants.${p}.s.${c}`,
    deltaSubject: (p, id) => `${prefix}.grants.${p}.d.${id}`,
    poolsSubject: `${prefix}.grants.pools`,
    demandSubject: (g) => `${prefix}.throttle.demand.${g}`,
    demandWildcard: `${prefix}.throttle.demand.*`,
    exceedanceSubject: (p) => `${prefix}.${exceedanceToken}.${p}`,
    deadLetterSubject: `${prefix}.deadletter.grants`,
  };
}
