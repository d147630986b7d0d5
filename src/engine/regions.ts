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
export const LAYOUT_VERSION = 7;

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

/**
 * Per-user slot header offsets (see assembly/slot.ts for meaning and why they are where they are:
 * the hot header shares line 0 with ring cell 0; cells 0..2 each span exactly two lines).
 */
export const SlotField = {
  hashLo: 0, hashHi: 4, lastTime: 8, firstBucket: 16, lastSeen: 20, promote: 24, cIpZeros: 25, cUaZeros: 26,
  level: 128, trend: 136, errVar: 144, smErr: 148, smAbs: 152,
  alpha: 256, lruPrev: 260, lruNext: 264, hwN: 268, cCount: 272, cErrors: 276, cThrottled: 280,
  cInTok: 384, cOutTok: 392, cCv: 400,
  /** f32, ensemble only: the current combined forecast (assembly/ensemble.ts). */
  fcComb: 404,
  /** f64 cumulative totals of the closed buckets (requests, input, output tokens); open cells are added by the getter. */
  totRequests: 408, totInTok: 416, totOutTok: 424,
  /** 24 x u16 (encU16) hourly time-of-day profile; the season profile (P x u16, encI16) follows. */
  tod: 432,
} as const;
export const HEADER_AND_TOD_BYTES = 432 + 24 * 2;
/** Fixed offsets of ring cells 0..2; cells 3.. follow the season profile at a 104-byte stride. */
export const CELL_FIXED_OFFSETS = [28, 156, 284] as const;

/** Ring cell offsets (one time bucket; a cell starts 4 bytes past an 8-byte boundary). */
export const CellField = {
  bucket: 0, inTok: 4, outTok: 12, gapSum: 20, gapSq: 28, count: 36, ipBits: 40, uaBits: 56, route: 72,
  gapN: 88, errors: 92, throttled: 96,
} as const;
export const CELL_BYTES = 100;

const align8 = (n: number) => (n + 7) & ~7;
const align64 = (n: number) => (n + 63) & ~63;

/** Slot layout for P season points and R ring buckets (assembly/slot.ts slotLayout). */
export function slotLayout(seasonPoints: number, ring: number, extBytes = 0): { season: number; ring: number; ext: number; bytes: number; cells: number[] } {
  const season = HEADER_AND_TOD_BYTES;
  const seasonEnd = align8(season + seasonPoints * 2);
  const ringOff = ring > 3 ? seasonEnd + 4 : 0;
  const ext = ring > 3 ? align8(ringOff + (ring - 3) * 104) : seasonEnd;
  const cells: number[] = [];
  for (let k = 0; k < ring; k++) cells.push(k < 3 ? CELL_FIXED_OFFSETS[k] : ringOff + (k - 3) * 104);
  return { season, ring: ringOff, ext, bytes: align64(ext + extBytes), cells };
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
