// The per-user ensemble in WASM (the engine form of src/forecast/ensemble.ts): members naive,
// median of the last 3 buckets, the engine's Holt-Winters, LSTM-lite, LSTM-lite's daily log
// profile, seasonal naive and the 3-day slot median at profile resolution, combined at the configured horizon by their exponentially weighted absolute errors
// (weights 1 / err^4; the forecast is the mean of the weighted mean and the weighted median),
// with an upper bound from the combined forecast's own residual quantile (see upper.ts).
// Counts per bucket internally; the engine's API speaks req/s. Nothing here allocates.
import { Params } from "./params";
import { S_C_COUNT, S_C_CV, S_C_IN_TOK, S_C_OUT_TOK, S_C_THROTTLED, S_FC_COMB, S_HASH_LO, Slot } from "./slot";
import { hwForecastAt } from "./hw";
import { decU16, decU16Lanes, decU8, decU8Lanes, encU16, encU16Lanes, encU8, encU8Lanes } from "./codec";
import { log1pD } from "./fastmath";
import { Lstm, lastCount, lstmApplySamples, lstmBucketInputs, lstmClearSamples, lstmIsDense, lstmBytes, lstmForecastCount, lstmPack, lstmProfileForecasts, lstmRangeStart, lstmSampleRoom, lstmThreadInit, lstmUpdate, median3Count, profileForecastAt, profilePoint, seasonalLastAt, slotMedian3At } from "./lstm";
import { MAX_THREADS, Thread, SCRATCH_STRIDE } from "./threads";

export const EJ: u32 = 7; // members
export const EH_MAX: u32 = 6; // largest horizon the ensemble serves
// Pending forecasts by target bucket mod RING. RING >= horizon suffices: at close c the slot of
// target c is scored before the forecast for c + h is written into it, and the h - 1 targets
// pending in between (c + 1 .. c + h - 1) have other slots. Sized for the largest horizon, not
// the configured one, so the layout stays the same when a live engine changes its horizon.
const RING: u32 = EH_MAX;
/** Index of the LSTM member (left out for users in the sparse tier). */
const J_LSTM: u32 = 3;
/** Pending-forecast code (u8) of a member that made no forecast (the LSTM member of a sparse user); real forecasts are encoded below it. */
const NO_FORECAST: u32 = 0xff;
/** Per-bucket decay of the members' error averages. */
export const ERROR_DECAY: f64 = 0.9;
/** Step of the bound's quantile tracker, as a share of the error scale. */
export const QUANTILE_STEP: f64 = 0.05;
/** Per-bucket decay of the bound's error scale. */
export const SCALE_DECAY: f64 = 0.998;

// Ensemble offsets, after the LSTM-lite bytes (at align4(lstmBytes(P)), see eOffset).
const E_Q: u32 = 0; // f32 bound offset
const E_MAE: u32 = 4; // f32 bound error scale (NaN before the first score)
// The current combined forecast (f32) is in the slot header (S_FC_COMB, line 6), next to the
// last closed bucket's summary: 4 bytes the header had spare.
const E_ERR: u32 = 8; // EJ x u16 (encU16) EW absolute errors
const E_PCOMB: u32 = E_ERR + EJ * 2; // RING x u16 (encU16) combined forecasts
const E_PEND: u32 = E_PCOMB + RING * 2; // RING x EJ u8 (encU8) member forecasts by target slot
const E_BYTES: u32 = E_PEND + RING * EJ;

/** Offset of the ensemble's bytes in the extension: after LSTM-lite's, 4-aligned for the f32 fields. */
// @ts-ignore: decorator
@inline function eOffset(points: u32): u32 {
  return (lstmBytes(points) + 3) & ~3;
}

/** Settings (fcConfigure). */
export class Fc {
  static enabled: bool = false;
  static quantile: f64 = 0.95;
  static trainPerBucket: u32 = 0;
  /** First bucket and users tracked of the current tick (tick block; the training pick uses them). */
  static tickStart: u32 = 0;
  static tickTracked: u32 = 0;
  static trainSteps: f64 = 0;
  static trainLossSum: f64 = 0;
  /** Bucket closes of the last tick that ran the GRU (dense tier), and all of that tick's bucket closes. */
  static denseCloses: u32 = 0;
  static closes: u32 = 0;
  /** The same for this thread's current tick range (summed by tickEnd). */
  static rangeDenseCloses: u32 = 0;
  static rangeCloses: u32 = 0;
}

/** Extension bytes per slot for P season points (LSTM-lite + ensemble), a multiple of 8. */
export function fcExtBytes(points: u32): u32 {
  return (eOffset(points) + E_BYTES + 7) & ~7;
}

// Scratch: the members' forecasts (one copy per tick thread: fcThreadInit).
let VAL: usize = memory.data(<i32>MAX_THREADS * SCRATCH_STRIDE, 64);

/**
 * The bucket plan: what a close of bucket c needs that depends on c alone (its profile points, day
 * mod 3, ring slots, the target's season position), computed once per closed bucket (planFor)
 * instead of per user: it was about ten integer divisions per user and close. One copy per tick
 * thread (a catch-up tick's threads may be on different buckets at once).
 */
let BP: usize = memory.data(<i32>MAX_THREADS * SCRATCH_STRIDE, 64);
let planBucket: u32 = 0xffffffff;
const BP_POINT: u32 = 0; // u32 profile point of c
const BP_NEXT_POINT: u32 = 4; // u32 profile point of c + 1
const BP_DAY3: u32 = 8; // u32 day of c mod 3
const BP_T_POINT: u32 = 12; // u32 profile point of the target c + h
const BP_T_SEASONAL: u32 = 16; // u32 count-ring cell of the seasonal naive member for the target
const BP_TI0: u32 = 20; // u32 target's HW season point i0
const BP_TI1: u32 = 24; // u32 ... i1
const BP_SLOT: u32 = 28; // u32 c mod RING (pending forecasts scored now)
const BP_TSLOT: u32 = 32; // u32 target mod RING (pending forecasts written now)
const BP_PICK: u32 = 36; // u32 c * 0x9e3779b1 (the training pick's bucket term)
const BP_TF: u32 = 40; // f64 target's HW season weight f

/** Points this instance's scratch at thread t's copies. */
export function fcThreadInit(t: u32): void {
  VAL += <usize>(t * <u32>SCRATCH_STRIDE);
  BP += <usize>(t * <u32>SCRATCH_STRIDE);
  lstmThreadInit(t);
}

/** Fills the bucket plan for closed bucket c (and LSTM-lite's bucket inputs). */
function planFor(c: u32): void {
  planBucket = c;
  const D = Params.periodBuckets;
  const P = Params.seasonPoints;
  const h = Params.horizon;
  const slotOfDay = c % D;
  const day = c / D;
  store<u32>(BP, profilePoint(slotOfDay, D, P), BP_POINT);
  store<u32>(BP, profilePoint((slotOfDay + 1) % D, D, P), BP_NEXT_POINT);
  store<u32>(BP, day % 3, BP_DAY3);
  const target = c + h;
  const tPoint = profilePoint(target % D, D, P);
  store<u32>(BP, tPoint, BP_T_POINT);
  store<u32>(BP, tPoint * 3 + ((target / D) % 3 + 2) % 3, BP_T_SEASONAL);
  // The target's HW season position (as engine.ts positionOf computes it).
  const x = <f64>(target % D) * <f64>P / <f64>D;
  const fl = Math.floor(x);
  let i0 = <u32>fl;
  if (i0 >= P) i0 = P - 1;
  store<u32>(BP, i0, BP_TI0);
  store<u32>(BP, i0 + 1 == P ? 0 : i0 + 1, BP_TI1);
  store<f64>(BP, x - fl, BP_TF);
  store<u32>(BP, c % RING, BP_SLOT);
  store<u32>(BP, target % RING, BP_TSLOT);
  store<u32>(BP, c * 0x9e3779b1, BP_PICK);
  lstmBucketInputs(c, slotOfDay, day % 7, D);
}

/** Member forecasts (counts) at horizon h for the bucket plan's target into VAL (the LSTM member only for a dense user). */
function members(sp: usize, h: u32, dense: bool): void {
  const P = Params.seasonPoints;
  const tPoint = load<u32>(BP, BP_T_POINT);
  store<f64>(VAL, lastCount(sp));
  store<f64>(VAL, median3Count(sp), 8);
  store<f64>(VAL, hwForecastAt(sp, Params.phiSumH, load<u32>(BP, BP_TI0), load<u32>(BP, BP_TI1), load<f64>(BP, BP_TF)) * Params.widthSec, 16);
  if (ASC_FEATURE_SIMD) {
    v128.store(VAL, lstmProfileForecasts(sp, h, dense, tPoint), 24);
  } else {
    store<f64>(VAL, dense ? lstmForecastCount(sp, h) : 0.0, 24);
    store<f64>(VAL, profileForecastAt(sp, tPoint), 32);
  }
  store<f64>(VAL, seasonalLastAt(sp, load<u32>(BP, BP_T_SEASONAL), P), 40);
  store<f64>(VAL, slotMedian3At(sp, tPoint, P), 48);
}

/** Weight of member j: 1 / (err_j + 1e-6)^4. */
// @ts-ignore: decorator
@inline function memberWeight(e: usize, j: u32): f64 {
  const a = decU16(load<u16>(e + E_ERR + (j << 1))) + 1e-6;
  const a2 = a * a;
  return 1.0 / (a2 * a2);
}

/**
 * Mean of the error-weighted mean and the error-weighted median of VAL; member `skip` (EJ = none)
 * has no weight. Weights 1 / (err + 1e-6)^4 (the errors are 16-bit codes since layout v7, so the
 * f64x2 form that read f32 errors was dropped). The median: the members sorted by forecast with a 16-comparator
 * network (branch-free; ties may leave member order, which does not change the median's value),
 * then walked in ascending order until their weight reaches half the total (compared against
 * 0.5 ws, no division); the largest forecast if rounding keeps the walk below half.
 * src/engine/fc-mirror.ts combine does the same.
 */
function combine(e: usize, skip: u32): f64 {
  let w0 = memberWeight(e, 0), w1 = memberWeight(e, 1), w2 = memberWeight(e, 2), w3 = memberWeight(e, 3);
  let w4 = memberWeight(e, 4), w5 = memberWeight(e, 5), w6 = memberWeight(e, 6);
  if (skip == 0) w0 = 0.0;
  if (skip == 1) w1 = 0.0;
  if (skip == 2) w2 = 0.0;
  if (skip == 3) w3 = 0.0;
  if (skip == 4) w4 = 0.0;
  if (skip == 5) w5 = 0.0;
  if (skip == 6) w6 = 0.0;
  let v0 = load<f64>(VAL), v1 = load<f64>(VAL, 8), v2 = load<f64>(VAL, 16), v3 = load<f64>(VAL, 24);
  let v4 = load<f64>(VAL, 32), v5 = load<f64>(VAL, 40), v6 = load<f64>(VAL, 48);
  const ws = w0 + w1 + w2 + w3 + w4 + w5 + w6;
  const fm = w0 * v0 + w1 * v1 + w2 * v2 + w3 * v3 + w4 * v4 + w5 * v5 + w6 * v6;
  const mean0 = fm / ws;
  if (!(ws > 0.0) || !isFinite(mean0)) return v0;
  const mean = Math.max(0.0, mean0);
  let c: bool, t: f64;
  c = v6 < v0; t = v0; v0 = select<f64>(v6, t, c); v6 = select<f64>(t, v6, c); t = w0; w0 = select<f64>(w6, t, c); w6 = select<f64>(t, w6, c);
  c = v3 < v2; t = v2; v2 = select<f64>(v3, t, c); v3 = select<f64>(t, v3, c); t = w2; w2 = select<f64>(w3, t, c); w3 = select<f64>(t, w3, c);
  c = v5 < v4; t = v4; v4 = select<f64>(v5, t, c); v5 = select<f64>(t, v5, c); t = w4; w4 = select<f64>(w5, t, c); w5 = select<f64>(t, w5, c);
  c = v2 < v0; t = v0; v0 = select<f64>(v2, t, c); v2 = select<f64>(t, v2, c); t = w0; w0 = select<f64>(w2, t, c); w2 = select<f64>(t, w2, c);
  c = v4 < v1; t = v1; v1 = select<f64>(v4, t, c); v4 = select<f64>(t, v4, c); t = w1; w1 = select<f64>(w4, t, c); w4 = select<f64>(t, w4, c);
  c = v6 < v3; t = v3; v3 = select<f64>(v6, t, c); v6 = select<f64>(t, v6, c); t = w3; w3 = select<f64>(w6, t, c); w6 = select<f64>(t, w6, c);
  c = v1 < v0; t = v0; v0 = select<f64>(v1, t, c); v1 = select<f64>(t, v1, c); t = w0; w0 = select<f64>(w1, t, c); w1 = select<f64>(t, w1, c);
  c = v5 < v2; t = v2; v2 = select<f64>(v5, t, c); v5 = select<f64>(t, v5, c); t = w2; w2 = select<f64>(w5, t, c); w5 = select<f64>(t, w5, c);
  c = v4 < v3; t = v3; v3 = select<f64>(v4, t, c); v4 = select<f64>(t, v4, c); t = w3; w3 = select<f64>(w4, t, c); w4 = select<f64>(t, w4, c);
  c = v2 < v1; t = v1; v1 = select<f64>(v2, t, c); v2 = select<f64>(t, v2, c); t = w1; w1 = select<f64>(w2, t, c); w2 = select<f64>(t, w2, c);
  c = v6 < v4; t = v4; v4 = select<f64>(v6, t, c); v6 = select<f64>(t, v6, c); t = w4; w4 = select<f64>(w6, t, c); w6 = select<f64>(t, w6, c);
  c = v3 < v2; t = v2; v2 = select<f64>(v3, t, c); v3 = select<f64>(t, v3, c); t = w2; w2 = select<f64>(w3, t, c); w3 = select<f64>(t, w3, c);
  c = v5 < v4; t = v4; v4 = select<f64>(v5, t, c); v5 = select<f64>(t, v5, c); t = w4; w4 = select<f64>(w5, t, c); w5 = select<f64>(t, w5, c);
  c = v2 < v1; t = v1; v1 = select<f64>(v2, t, c); v2 = select<f64>(t, v2, c); t = w1; w1 = select<f64>(w2, t, c); w2 = select<f64>(t, w2, c);
  c = v4 < v3; t = v3; v3 = select<f64>(v4, t, c); v4 = select<f64>(t, v4, c); t = w3; w3 = select<f64>(w4, t, c); w4 = select<f64>(t, w4, c);
  c = v6 < v5; t = v5; v5 = select<f64>(v6, t, c); v6 = select<f64>(t, v6, c); t = w5; w5 = select<f64>(w6, t, c); w6 = select<f64>(t, w6, c);
  // The walk without branches (which member it stops at is data: a branch per step mispredicted
  // often): the prefix sums are the walk's, in its order, and never decrease (weights >= 0, finite
  // here), so the first k whose prefix sum reaches half is the number of prefix sums below it.
  const half = 0.5 * ws;
  const a0 = w0, a1 = a0 + w1, a2 = a1 + w2, a3 = a2 + w3, a4 = a3 + w4, a5 = a4 + w5;
  let med = v0;
  med = select<f64>(v1, med, a0 < half);
  med = select<f64>(v2, med, a1 < half);
  med = select<f64>(v3, med, a2 < half);
  med = select<f64>(v4, med, a3 < half);
  med = select<f64>(v5, med, a4 < half);
  med = select<f64>(v6, med, a5 < half);
  return 0.5 * (mean + med);
}

/**
 * Scores four members on lanes, as the scalar loop does each: `pend` their pending forecasts
 * (encU8 codes in i32x4 lanes), `err` their error averages (encU16 codes); p = decU8(code),
 * a = |count - p|, the new error a (first score) or 0.9 old + 0.1 a in f64, encoded; a lane
 * holding NO_FORECAST keeps its code. Returns the new codes (i32x4).
 */
// @ts-ignore: decorator
@inline function scoreQuad(pend: v128, err: v128, count: f64, first: bool): v128 {
  const cnt = f64x2.splat(count);
  let a0 = f64x2.abs(f64x2.sub(cnt, decU8Lanes(pend, false)));
  let a1 = f64x2.abs(f64x2.sub(cnt, decU8Lanes(pend, true)));
  if (!first) {
    const d = f64x2.splat(ERROR_DECAY), g = f64x2.splat(1.0 - ERROR_DECAY);
    a0 = f64x2.add(f64x2.mul(d, decU16Lanes(err, false)), f64x2.mul(g, a0));
    a1 = f64x2.add(f64x2.mul(d, decU16Lanes(err, true)), f64x2.mul(g, a1));
  }
  return v128.bitselect(err, encU16Lanes(a0, a1), i32x4.eq(pend, i32x4.splat(NO_FORECAST)));
}

/**
 * Step 1's member scoring on lanes (members 0..3 and 4..6 in two quads; the same codes as the
 * scalar loop): the seven pending codes at `pend`, the seven error codes of the ensemble at e.
 * The scalar loop branched on every code (NO_FORECAST, and in the codecs). Leaving the scoring and
 * the encoding out altogether saved 9 % and 6 % of a dense tick; their lane forms together save
 * 11 % (docs/engine.md).
 */
// @ts-ignore: decorator
@inline function scoreLanes(e: usize, pend: usize, count: f64, first: bool): void {
  // Seven code bytes without reading past them (the ring's last row ends the slot): bytes 0..3,
  // then 4..6 from a load at byte 3; the eighth lane is 0 and is not stored.
  const p8 = i64x2.splat(<u64>load<u32>(pend) | (<u64>(load<u32>(pend, 3) >>> 8) << 32));
  const p16 = i16x8.extend_low_i8x16_u(p8);
  // The seven error codes and the two bytes after them (read, kept).
  const e16 = v128.load(e + E_ERR);
  const n0 = scoreQuad(i32x4.extend_low_i16x8_u(p16), i32x4.extend_low_i16x8_u(e16), count, first);
  const n1 = scoreQuad(i32x4.extend_high_i16x8_u(p16), i32x4.extend_high_i16x8_u(e16), count, first);
  const codes = i16x8.narrow_i32x4_u(n0, n1);
  v128.store64_lane(e + E_ERR, codes, 0);
  v128.store32_lane(e + E_ERR + 8, codes, 2);
  v128.store16_lane(e + E_ERR + 12, codes, 6);
}

/**
 * Step 3's pending member forecasts on lanes: encU8 of VAL's seven values, at most
 * NO_FORECAST - 1, the LSTM member's NO_FORECAST for a sparse user, seven bytes at `row` (the
 * same bytes as the scalar loop).
 */
// @ts-ignore: decorator
@inline function pendLanes(row: usize, dense: bool): void {
  // VAL's eighth f64 is scratch (the stride is 128 bytes): its code is computed and not stored.
  const top = i32x4.splat(NO_FORECAST - 1);
  let c0 = i32x4.min_u(encU8Lanes(v128.load(VAL), v128.load(VAL, 16)), top);
  const c1 = i32x4.min_u(encU8Lanes(v128.load(VAL, 32), v128.load(VAL, 48)), top);
  if (!dense) c0 = i32x4.replace_lane(c0, 3, NO_FORECAST); // lane 3: J_LSTM
  const w = i16x8.narrow_i32x4_u(c0, c1);
  const b = i8x16.narrow_i16x8_u(w, w);
  v128.store32_lane(row, b, 0);
  v128.store16_lane(row + 4, b, 2);
  v128.store8_lane(row + 6, b, 6);
}

/**
 * Runs LSTM-lite and the ensemble on one closed bucket c of the user at sp (after HW has been
 * updated; the bucket plan is c's). y: the bucket's rate (req/s); features of the closed bucket as
 * the engine summarised them.
 */
function fcOnBucketClose(sp: usize, c: u32, y: f64, cv: f64, tokPerReq: f64, throttled: f64): void {
  const count = y * Params.widthSec;
  const e = sp + Slot.ext + eOffset(Params.seasonPoints);
  const h = Params.horizon;
  const nBefore = load<u32>(sp + Slot.ext);
  // 1. Score the forecasts made h buckets ago for this bucket.
  if (nBefore >= h) {
    const slot = load<u32>(BP, BP_SLOT);
    if (ASC_FEATURE_SIMD) {
      scoreLanes(e, e + E_PEND + slot * EJ, count, nBefore == h);
    } else {
      for (let j: u32 = 0; j < EJ; j++) {
        const code = <u32>load<u8>(e + E_PEND + slot * EJ + j);
        if (code == NO_FORECAST) continue;
        const pj = decU8(code);
        const ej = e + E_ERR + j * 2;
        const a = Math.abs(count - pj);
        store<u16>(ej, <u16>encU16(nBefore == h ? a : ERROR_DECAY * decU16(load<u16>(ej)) + (1.0 - ERROR_DECAY) * a));
      }
    }
    const fc = decU16(load<u16>(e + E_PCOMB + slot * 2));
    const err = Math.abs(count - fc);
    const mae0 = <f64>load<f32>(e + E_MAE);
    const mae = isNaN(mae0) ? err : SCALE_DECAY * mae0 + (1.0 - SCALE_DECAY) * err;
    store<f32>(e + E_MAE, <f32>mae);
    const scale = Math.max(mae, 1e-3 * (1.0 + fc));
    let q = <f64>load<f32>(e + E_Q);
    q += QUANTILE_STEP * scale * (count > fc + q ? Fc.quantile : -(1.0 - Fc.quantile));
    store<f32>(e + E_Q, <f32>(q < 0.0 ? 0.0 : q));
  } else if (nBefore == 0) {
    store<f32>(e + E_MAE, <f32>NaN);
    for (let j: u32 = 0; j < EJ; j++) store<u16>(e + E_ERR + j * 2, <u16>encU16(1.0));
  }
  // 2. LSTM-lite learns the bucket; a bounded sample of users per closed bucket records a training
  // sample, applied at the tick's end (fcTickEnd).
  let train = false;
  const k = c - Fc.tickStart;
  if (Fc.trainPerBucket > 0 && lstmSampleRoom(Thread.id, k)) {
    // A user is picked with probability about trainPerBucket / users, by a hash of (user, bucket).
    let x = load<u32>(sp, S_HASH_LO) ^ load<u32>(BP, BP_PICK);
    x ^= x >> 16;
    x *= 0x85ebca6b;
    x ^= x >> 13;
    const users = Fc.tickTracked > 0 ? Fc.tickTracked : 1;
    if (<u64>(x % users) < <u64>Fc.trainPerBucket) train = true;
  }
  lstmUpdate(sp, count, load<u32>(BP, BP_POINT), load<u32>(BP, BP_NEXT_POINT), load<u32>(BP, BP_DAY3), Params.seasonPoints, cv, tokPerReq, throttled, train, Thread.id, k);
  // 3. Forecast the target c + h, combine, remember under the target's ring slot.
  const dense = lstmIsDense(sp);
  Fc.rangeCloses++;
  if (dense) Fc.rangeDenseCloses++;
  members(sp, h, dense);
  const comb = combine(e, dense ? EJ : J_LSTM);
  const ts = load<u32>(BP, BP_TSLOT);
  if (ASC_FEATURE_SIMD) {
    pendLanes(e + E_PEND + ts * EJ, dense);
  } else {
    for (let j: u32 = 0; j < EJ; j++) {
      const code = j == J_LSTM && !dense ? NO_FORECAST : min(encU8(load<f64>(VAL + (<usize>j << 3))), NO_FORECAST - 1);
      store<u8>(e + E_PEND + ts * EJ + j, <u8>code);
    }
  }
  store<u16>(e + E_PCOMB + ts * 2, <u16>encU16(comb));
  store<f32>(sp, <f32>comb, S_FC_COMB);
}

/** Start of a tick that closes buckets (main instance): the GRU's packed weights follow the current ones; no samples yet. */
export function fcTickStart(): void {
  lstmPack();
  lstmClearSamples();
}

/** Writes the live settings every tick thread needs at block (3 x f64). */
export function fcTickShare(block: usize): void {
  store<f64>(block, Lstm.minLevel, 0);
  store<f64>(block, Fc.quantile, 8);
}

/** Start of a tick range on any thread: the live settings and the tick's start from the block, counters cleared. */
export function fcRangeStart(block: usize, tickStart: u32, tracked: u32): void {
  Lstm.minLevel = load<f64>(block, 0);
  Fc.quantile = load<f64>(block, 8);
  Fc.tickStart = tickStart;
  Fc.tickTracked = tracked;
  Fc.rangeDenseCloses = 0;
  Fc.rangeCloses = 0;
  planBucket = 0xffffffff;
  lstmRangeStart();
}

/**
 * End of a tick that closed `buckets` buckets (main instance): the close counters are the sums of
 * every thread's (closes, dense) pairs; the recorded training samples are applied in slot order.
 */
export function fcTickEnd(threads: u32, buckets: u32, closes: u32, denseCloses: u32): void {
  Fc.closes = closes;
  Fc.denseCloses = denseCloses;
  if (Fc.trainPerBucket == 0) return;
  const steps = lstmApplySamples(threads, buckets);
  Fc.trainSteps += <f64>steps;
  Fc.trainLossSum += Lstm.lastLossSum;
}

/** Ensemble forecast at the configured horizon, req/s. */
export function fcRate(sp: usize): f64 {
  return <f64>load<f32>(sp, S_FC_COMB) / Params.widthSec;
}

/** Upper bound at the configured horizon and quantile, req/s. */
export function fcUpper(sp: usize): f64 {
  const e = sp + Slot.ext + eOffset(Params.seasonPoints);
  return (<f64>load<f32>(sp, S_FC_COMB) + <f64>load<f32>(e + E_Q)) / Params.widthSec;
}

/**
 * The engine's hook (assembly/models.ts, after hwUpdate): the bucket plan for c (once per bucket),
 * the closed bucket's features from the slot header, then fcOnBucketClose.
 */
export function fcOnClose(sp: usize, c: u32, y: f64): void {
  if (c != planBucket) planFor(c);
  const n = <f64>load<u32>(sp, S_C_COUNT);
  const tokPerReq = n > 0.0 ? (load<f64>(sp, S_C_IN_TOK) + load<f64>(sp, S_C_OUT_TOK)) / n : 0.0;
  const throttled = n > 0.0 ? <f64>load<u32>(sp, S_C_THROTTLED) / n : 0.0;
  fcOnBucketClose(sp, c, y, <f64>load<f32>(sp, S_C_CV), tokPerReq, throttled);
}

/**
 * Configures LSTM-lite and the ensemble; call before init (the slot layout depends on `enabled`).
 * Returns 0, or -1 if the horizon is beyond what the ensemble serves (checked at init time by
 * the facade as well).
 */
export function fcConfigure(enabled: bool, quantile: f64, trainPerBucket: u32, learningRate: f64, gradClip: f64, minCountPerBucket: f64): i32 {
  Fc.enabled = enabled;
  Lstm.minLevel = log1pD(Math.max(0.0, minCountPerBucket));
  Fc.quantile = quantile;
  Fc.trainPerBucket = trainPerBucket;
  Lstm.learningRate = learningRate;
  Lstm.gradClip = gradClip;
  return 0;
}
