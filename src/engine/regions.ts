/**
 * Engine memory layout constants shared by the facade and the TypeScript reference. They mirror
 * assembly/records.ts and assembly/slot.ts; the differential tests compare the WASM and reference
 * state regions byte for byte, so a drift between the two shows up at once.
 */

/** Bytes per aggregate ("counts") record of the cold replay path. */
export const COUNTS_RECORD_BYTES = 40;

/** Byte offsets of an aggregate record's fields. */
export const CountsField = {
  /** u32: low word of the user hash. */
  userHashLo: 0,
  /** u32: high word of the user hash. */
  userHashHi: 4,
  /** f64: a time inside the window, ms since the Unix epoch. */
  timeMs: 8,
  /** f64: number of requests in the window (a non-negative integer). */
  requests: 16,
  /** f64: sum of input tokens. */
  inputTokens: 24,
  /** f64: sum of output tokens. */
  outputTokens: 32,
} as const;

/** Params block (24 f64) at the start of the state region; index of each f64. */
export const ParamIndex = {
  version: 0, capacity: 1, indexEntries: 2, slotBytes: 3, bucketWidthMs: 4, allowedLatenessMs: 5,
  ringBuckets: 6, seasonPoints: 7, periodBuckets: 8, horizonBuckets: 9, z: 10, alpha: 11, beta: 12,
  gamma: 13, phi: 14, alphaMax: 15, trackingThreshold: 16, trackingSmoothing: 17, alphaDecay: 18,
  varianceSmoothing: 19, todAlpha: 20, expireAfterBuckets: 21, maxCatchUpBuckets: 22,
} as const;
export const PARAMS_BYTES = 192;
export const LAYOUT_VERSION = 3;

/** Globals block (32 f64) after the params block; index of each f64. */
export const GlobalIndex = {
  initialized: 0, closedBucket: 1, used: 2, freeHead: 3, lruHead: 4, lruTail: 5, usersTracked: 6,
  eventsApplied: 7, invalid: 8, late: 9, early: 10, evictions: 11, expirations: 12,
  bucketsClosed: 13, ticks: 14, countsApplied: 15, skippedBuckets: 16,
} as const;
export const GLOBALS_BYTES = 256;

/** Empty marker (LRU/free lists, empty ring cell). */
export const NIL = 0xffffffff;
/** Buckets at or above this are invalid. */
export const MAX_BUCKET = 4294967040;
/** Bytes per scratch entry (season position of a bucket closed in a tick). */
export const SCRATCH_BYTES = 24;

/** Per-user slot header offsets (see assembly/slot.ts for meaning). */
export const SlotField = {
  hashLo: 0, hashHi: 4, lastTime: 8, firstBucket: 16, lastSeen: 20, lruPrev: 24, lruNext: 28, level: 32,
  trend: 40, errVar: 48, smErr: 52, smAbs: 56, alpha: 60, hwN: 64, cCount: 68, cErrors: 72, cThrottled: 76,
  cInTok: 80, cOutTok: 88, cCv: 96, cIpZeros: 100, cUaZeros: 101, promote: 102, tod: 104,
} as const;
export const HEADER_AND_TOD_BYTES = 104 + 24 * 4;

/** Ring cell offsets (one time bucket). */
export const CellField = {
  bucket: 0, count: 4, inTok: 8, outTok: 16, ipBits: 24, uaBits: 40, route: 56, gapSum: 72,
  gapSq: 80, gapN: 88, errors: 92, throttled: 96,
} as const;
export const CELL_BYTES = 104;

const align8 = (n: number) => (n + 7) & ~7;

/** Slot layout for P season points and R ring buckets (assembly/slot.ts slotLayout). */
export function slotLayout(seasonPoints: number, ring: number, extBytes = 0): { season: number; ring: number; ext: number; bytes: number } {
  const season = HEADER_AND_TOD_BYTES;
  const ringOff = align8(season + seasonPoints * 4);
  const ext = ringOff + ring * CELL_BYTES;
  return { season, ring: ringOff, ext, bytes: align8(ext + extBytes) };
}

/** Ring size R = min(8, ceil(lateness / width) + 2). */
export function ringBuckets(bucketWidthMs: number, allowedLatenessMs: number): number {
  return Math.min(8, Math.ceil(allowedLatenessMs / bucketWidthMs) + 2);
}

/** Index entries: the least power of two >= 2 x capacity (at least 16). */
export function indexEntriesFor(capacity: number): number {
  let n = 16;
  while (n < capacity * 2) n *= 2;
  return n;
}
