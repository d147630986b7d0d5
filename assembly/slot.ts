// Per-user slot layout: the one place that says where each per-user field lives.
//
// A slot is `Slot.bytes` bytes in the slab (slot s at Regions.slab + s * Slot.bytes). The header
// offsets are constants; the variable-size parts (season profile of P points, ring of R buckets)
// get offsets computed by `slotLayout` at init. A model added later (assembly/lstm.ts,
// assembly/ensemble.ts) has its bytes reserved after the ring (see `Slot.ext`; init passes their
// count, so this file imports no model) and reads/writes them through its own offsets, never
// through the header.
// src/engine/regions.ts mirrors this file for the TypeScript reference.
import { NIL } from "./records";

// --- header. Slots are a multiple of 64 bytes and the slab is 64-byte aligned, so line k of a
// slot is bytes [64k, 64k + 64). Every event touches line 0 (key check, last time, last seen,
// promote flag) and its ring cell; ring cells 0..2 sit at fixed offsets chosen so that each spans
// exactly two lines, cell 0 sharing line 0 with the hot header: a cold event touches 2 or 3 slot
// lines (was 4-5 with the header's promote flag in line 1 and 104-byte cells packed from byte
// 392). The cold fields (HW state, last closed bucket summary, LRU links) fill the 28-byte gaps
// between the cells and the bytes after cell 2.
export const S_HASH_LO: u32 = 0; // u32, 0 together with S_HASH_HI = free slot
export const S_HASH_HI: u32 = 4; // u32
export const S_LAST_TIME: u32 = 8; // f64, time of the latest in-order event (-1 = none yet)
export const S_FIRST_BUCKET: u32 = 16; // u32, lowest bucket with an event since the slot was taken
export const S_LAST_SEEN: u32 = 20; // u32, highest bucket with an event (LRU recency, expiry)
export const S_PROMOTE: u32 = 24; // u8, 1 = last-seen bucket advanced since the user was last put at the LRU front
export const S_C_IP_ZEROS: u32 = 25; // u8, last closed bucket: zero bits of the IP bitmap (128 = none)
export const S_C_UA_ZEROS: u32 = 26; // u8, last closed bucket: zero bits of the UA bitmap (128 = none)
// 27 reserved; ring cell 0 at 28..127
export const S_LEVEL: u32 = 128; // f64, HW level (req/s)
export const S_TREND: u32 = 136; // f64, HW trend (req/s per bucket)
export const S_ERR_VAR: u32 = 144; // f32, EW variance of one-step errors
export const S_SM_ERR: u32 = 148; // f32, Trigg-Leach smoothed error
export const S_SM_ABS: u32 = 152; // f32, Trigg-Leach smoothed absolute error
// ring cell 1 at 156..255
export const S_ALPHA: u32 = 256; // f32, current (adaptive) level smoothing
export const S_LRU_PREV: u32 = 260; // u32, LRU list: more recent neighbour (NIL at the head)
export const S_LRU_NEXT: u32 = 264; // u32, LRU list: less recent neighbour (NIL at the tail); free-list link
export const S_HW_N: u32 = 268; // u32, buckets fed to HW
export const S_C_COUNT: u32 = 272; // u32, last closed bucket: requests
export const S_C_ERRORS: u32 = 276; // u32, last closed bucket: errors
export const S_C_THROTTLED: u32 = 280; // u32, last closed bucket: throttled
// ring cell 2 at 284..383 (reserved when R = 2)
export const S_C_IN_TOK: u32 = 384; // f64, last closed bucket: input tokens
export const S_C_OUT_TOK: u32 = 392; // f64, last closed bucket: output tokens
export const S_C_CV: u32 = 400; // f32, last closed bucket: inter-arrival CV
export const S_FC_COMB: u32 = 404; // f32, ensemble only: current combined forecast (count per bucket, assembly/ensemble.ts)
// Cumulative per-user totals of the buckets closed so far (the open buckets' cells are added by
// the getter, engine.ts userTotal). Folded in at bucket close, next to the summary stores in the
// same line, so ingest's hot path does not touch them: every event already touches line 0 (full)
// and its cell, and any other place would cost a third or fourth line per event.
export const S_T_REQ: u32 = 408; // f64, requests applied (events + aggregate requests) in closed buckets
export const S_T_IN_TOK: u32 = 416; // f64, input tokens in closed buckets
export const S_T_OUT_TOK: u32 = 424; // f64, output tokens in closed buckets
export const S_TOD: u32 = 432; // 24 x u16 (encU16), hourly time-of-day EW rate profile (req/s)
export const HEADER_AND_TOD_BYTES: u32 = 432 + 24 * 2;
/** Offsets of ring cells 0..2 (fixed); cells 3.. follow the season profile. */
export const CELL0: u32 = 28;
export const CELL1: u32 = 156;
export const CELL2: u32 = 284;

// --- ring cell (one time bucket, 100 bytes). A cell starts 4 bytes past an 8-byte boundary, so
// the f64 fields at 4..35 are aligned; at the fixed offsets bytes 0..35 are in one line, 36..99 in
// the next.
export const CELL_BYTES: u32 = 100; // cellFor (engine.ts) clears it with one u32 and 12 u64 stores
export const C_BUCKET: u32 = 0; // u32, absolute bucket number held (NIL = empty)
export const C_IN_TOK: u32 = 4; // f64
export const C_OUT_TOK: u32 = 12; // f64
export const C_GAP_SUM: u32 = 20; // f64 sum of in-order inter-arrival gaps (ms)
export const C_GAP_SQ: u32 = 28; // f64 sum of squared gaps
export const C_COUNT: u32 = 36; // u32 requests
export const C_IP_BITS: u32 = 40; // 4 x u32 linear-counting bitmap of source-IP hashes
export const C_UA_BITS: u32 = 56; // 4 x u32 linear-counting bitmap of user-agent hashes
export const C_ROUTE: u32 = 72; // 8 x u16 saturating histogram of route hashes (bin = hash & 7)
export const C_GAP_N: u32 = 88; // u32 number of gaps
export const C_ERRORS: u32 = 92; // u32
export const C_THROTTLED: u32 = 96; // u32
/** Most ring cells (see records/params: R <= 8). */
export const MAX_RING: u32 = 8;

/** Offsets of the variable parts, computed by slotLayout. */
export class Slot {
  /** P x u16 (encI16) season profile. */
  static season: u32 = 0;
  /** Offset of ring cell 3 (cells 0..2 are at CELL0..CELL2); 0 when R <= 3. */
  static ring: u32 = 0;
  /** First byte free for extension models (LSTM-lite, ensemble). */
  static ext: u32 = 0;
  /** Total slot size (multiple of 64). */
  static bytes: u32 = 0;
}

@inline function align8(n: u32): u32 {
  return (n + 7) & ~7;
}
@inline function align64(n: u32): u32 {
  return (n + 63) & ~63;
}

/** Offset in the slot of ring cell k (k < R), set by slotLayout; read with cellOffset. */
const CELL_OFFSETS = memory.data(<i32>MAX_RING * 4);

/** Offset in the slot of ring cell k. */
// @ts-ignore: decorator
@inline export function cellOffset(k: u32): usize {
  return <usize>load<u32>(CELL_OFFSETS + (<usize>k << 2));
}

/** Computes the slot layout for P season points, R ring buckets and `extBytes` model bytes; returns the slot size. */
export function slotLayout(seasonPoints: u32, ring: u32, extBytes: u32): u32 {
  Slot.season = HEADER_AND_TOD_BYTES;
  const seasonEnd = align8(Slot.season + seasonPoints * 2);
  // Cells 3.. (only when lateness needs R > 3): 104-byte stride keeps them 4 past an 8-byte boundary.
  Slot.ring = ring > 3 ? seasonEnd + 4 : 0;
  Slot.ext = ring > 3 ? align8(Slot.ring + (ring - 3) * 104) : seasonEnd;
  for (let k: u32 = 0; k < MAX_RING; k++) {
    const off = k == 0 ? CELL0 : k == 1 ? CELL1 : k == 2 ? CELL2 : Slot.ring + (k - 3) * 104;
    store<u32>(CELL_OFFSETS + (<usize>k << 2), off);
  }
  // Whole cache lines: with the 64-byte aligned slab every slot's line 0 is one line.
  Slot.bytes = align64(Slot.ext + extBytes);
  return Slot.bytes;
}

/** Resets slot memory for a new user first seen in bucket b. */
export function slotReset(sp: usize, lo: u32, hi: u32, b: u32, ring: u32, alpha: f64): void {
  memory.fill(sp, 0, Slot.bytes);
  store<u32>(sp, lo, S_HASH_LO);
  store<u32>(sp, hi, S_HASH_HI);
  store<f64>(sp, -1.0, S_LAST_TIME);
  store<u32>(sp, b, S_FIRST_BUCKET);
  store<u32>(sp, b, S_LAST_SEEN);
  store<f32>(sp, <f32>alpha, S_ALPHA);
  // No bucket closed yet: the summary's bitmaps are empty (128 zero bits), not saturated.
  store<u8>(sp, 128, S_C_IP_ZEROS);
  store<u8>(sp, 128, S_C_UA_ZEROS);
  for (let i: u32 = 0; i < ring; i++) store<u32>(sp + cellOffset(i), NIL, C_BUCKET);
}
