// Per-user slot layout: the one place that says where each per-user field lives.
//
// A slot is `Slot.bytes` bytes in the slab (slot s at Regions.slab + s * Slot.bytes). The header
// offsets are constants; the variable-size parts (season profile of P points, ring of R buckets)
// get offsets computed by `slotLayout` at init. A model added later (assembly/lstm.ts,
// assembly/ensemble.ts) reserves its own bytes by extending `slotLayout` after the ring
// (see `Slot.ext`) and reads/writes them through its own offsets, never through the header.
// src/engine/regions.ts mirrors this file for the TypeScript reference.
import { NIL } from "./records";
import { Fc, fcExtBytes } from "./ensemble";

// --- header (104 bytes). The first 64-byte line holds what every event touches (hash, times,
// LRU links); slots are a multiple of 64 bytes at default params, so that line is one line.
export const S_HASH_LO: u32 = 0; // u32, 0 together with S_HASH_HI = free slot
export const S_HASH_HI: u32 = 4; // u32
export const S_LAST_TIME: u32 = 8; // f64, time of the latest in-order event (-1 = none yet)
export const S_FIRST_BUCKET: u32 = 16; // u32, lowest bucket with an event since the slot was taken
export const S_LAST_SEEN: u32 = 20; // u32, highest bucket with an event (LRU recency, expiry)
export const S_LRU_PREV: u32 = 24; // u32, LRU list: more recent neighbour (NIL at the head)
export const S_LRU_NEXT: u32 = 28; // u32, LRU list: less recent neighbour (NIL at the tail); free-list link
export const S_LEVEL: u32 = 32; // f64, HW level (req/s)
export const S_TREND: u32 = 40; // f64, HW trend (req/s per bucket)
export const S_ERR_VAR: u32 = 48; // f32, EW variance of one-step errors
export const S_SM_ERR: u32 = 52; // f32, Trigg-Leach smoothed error
export const S_SM_ABS: u32 = 56; // f32, Trigg-Leach smoothed absolute error
export const S_ALPHA: u32 = 60; // f32, current (adaptive) level smoothing
export const S_HW_N: u32 = 64; // u32, buckets fed to HW
export const S_C_COUNT: u32 = 68; // u32, last closed bucket: requests
export const S_C_ERRORS: u32 = 72; // u32, last closed bucket: errors
export const S_C_THROTTLED: u32 = 76; // u32, last closed bucket: throttled
export const S_C_IN_TOK: u32 = 80; // f64, last closed bucket: input tokens
export const S_C_OUT_TOK: u32 = 88; // f64, last closed bucket: output tokens
export const S_C_CV: u32 = 96; // f32, last closed bucket: inter-arrival CV
export const S_C_IP_ZEROS: u32 = 100; // u8, last closed bucket: zero bits of the IP bitmap (128 = none)
export const S_C_UA_ZEROS: u32 = 101; // u8, last closed bucket: zero bits of the UA bitmap (128 = none)
export const S_PROMOTE: u32 = 102; // u8, 1 = last-seen bucket advanced since the user was last put at the LRU front
// 103 reserved
export const S_TOD: u32 = 104; // 24 x f32, hourly time-of-day EW rate profile (req/s)
export const HEADER_AND_TOD_BYTES: u32 = 104 + 24 * 4;

// --- ring cell (one time bucket, 104 bytes)
export const CELL_BYTES: u32 = 104; // cellFor (engine.ts) clears it with 13 unrolled u64 stores
export const C_BUCKET: u32 = 0; // u32, absolute bucket number held (NIL = empty)
export const C_COUNT: u32 = 4; // u32 requests
export const C_IN_TOK: u32 = 8; // f64
export const C_OUT_TOK: u32 = 16; // f64
export const C_IP_BITS: u32 = 24; // 4 x u32 linear-counting bitmap of source-IP hashes
export const C_UA_BITS: u32 = 40; // 4 x u32 linear-counting bitmap of user-agent hashes
export const C_ROUTE: u32 = 56; // 8 x u16 saturating histogram of route hashes (bin = hash & 7)
export const C_GAP_SUM: u32 = 72; // f64 sum of in-order inter-arrival gaps (ms)
export const C_GAP_SQ: u32 = 80; // f64 sum of squared gaps
export const C_GAP_N: u32 = 88; // u32 number of gaps
export const C_ERRORS: u32 = 92; // u32
export const C_THROTTLED: u32 = 96; // u32
// 100..103 padding

/** Offsets of the variable parts, computed by slotLayout. */
export class Slot {
  /** f32 x P season profile. */
  static season: u32 = 0;
  /** R ring cells. */
  static ring: u32 = 0;
  /** First byte free for extension models (LSTM-lite, ensemble). */
  static ext: u32 = 0;
  /** Total slot size (multiple of 8). */
  static bytes: u32 = 0;
}

@inline function align8(n: u32): u32 {
  return (n + 7) & ~7;
}

/** Computes the slot layout for P season points and R ring buckets; returns the slot size. */
export function slotLayout(seasonPoints: u32, ring: u32): u32 {
  Slot.season = HEADER_AND_TOD_BYTES;
  Slot.ring = align8(Slot.season + seasonPoints * 4);
  Slot.ext = Slot.ring + ring * CELL_BYTES;
  Slot.bytes = align8(Slot.ext + (Fc.enabled ? fcExtBytes(seasonPoints) : 0));
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
  let cell = sp + Slot.ring;
  for (let i: u32 = 0; i < ring; i++) {
    store<u32>(cell, NIL, C_BUCKET);
    cell += CELL_BYTES;
  }
}
