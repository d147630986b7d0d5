// The per-user ensemble in WASM (the engine form of src/forecast/ensemble.ts): members naive,
// median of the last 3 buckets, the engine's Holt-Winters, LSTM-lite, LSTM-lite's daily log
// profile, seasonal naive and the 3-day slot median at profile resolution, combined at the configured horizon by their exponentially weighted absolute errors
// (weights 1 / err^4; the forecast is the mean of the weighted mean and the weighted median),
// with an upper bound from the combined forecast's own residual quantile (see upper.ts).
// Counts per bucket internally; the engine's API speaks req/s. Nothing here allocates.
import { G, Params } from "./params";
import { S_C_COUNT, S_C_CV, S_C_IN_TOK, S_C_OUT_TOK, S_C_THROTTLED, S_HASH_LO, Slot } from "./slot";
import { hwForecastAt } from "./hw";
import { decU16, encU16 } from "./codec";
import { log1pD } from "./fastmath";
import { Lstm, lastCount, lstmBucketInputs, lstmIsDense, lstmBytes, lstmForecastCount, lstmPack, lstmProfileForecasts, lstmUpdate, median3Count, profileForecastCount, seasonalLastCount, slotMedian3Count } from "./lstm";

export const EJ: u32 = 7; // members
export const EH_MAX: u32 = 6; // largest horizon the ensemble serves
const RING: u32 = EH_MAX + 1; // pending forecasts by target bucket mod RING
/** Index of the LSTM member (left out for users in the sparse tier). */
const J_LSTM: u32 = 3;
/** Pending-forecast code of a member that made no forecast (the LSTM member of a sparse user); real forecasts are encoded below it. */
const NO_FORECAST: u32 = 0xffff;
/** decU16's exponent offset (assembly/codec.ts U16_BIAS). */
const U16_BIAS: u32 = 999 << 10;
/** Per-bucket decay of the members' error averages. */
export const ERROR_DECAY: f64 = 0.9;
/** Step of the bound's quantile tracker, as a share of the error scale. */
export const QUANTILE_STEP: f64 = 0.05;
/** Per-bucket decay of the bound's error scale. */
export const SCALE_DECAY: f64 = 0.998;

// Ensemble offsets, after the LSTM-lite bytes (E0 = lstmBytes(P)).
const E_PEND: u32 = 0; // RING x EJ u16 (encU16) member forecasts by target slot
const E_PCOMB: u32 = E_PEND + RING * EJ * 2; // RING x u16 (encU16) combined forecasts
const E_ERR: u32 = (E_PCOMB + RING * 2 + 3) & ~3; // EJ x f32 EW absolute errors
const E_Q: u32 = E_ERR + EJ * 4; // f32 bound offset
const E_MAE: u32 = E_Q + 4; // f32 bound error scale (NaN before the first score)
const E_COMB: u32 = E_MAE + 4; // f32 current combined forecast
const E_BYTES: u32 = E_COMB + 4;

/** Settings (fcConfigure). */
export class Fc {
  static enabled: bool = false;
  static quantile: f64 = 0.95;
  static trainPerBucket: u32 = 0;
  static lastBucket: u32 = 0xffffffff;
  static trainedThisBucket: u32 = 0;
  static trainSteps: f64 = 0;
  static trainLossSum: f64 = 0;
  /** Bucket closes of the last tick that ran the GRU (dense tier), and all of that tick's bucket closes. */
  static denseCloses: u32 = 0;
  static closes: u32 = 0;
}

/** Extension bytes per slot for P season points (LSTM-lite + ensemble), a multiple of 8. */
export function fcExtBytes(points: u32): u32 {
  return (lstmBytes(points) + E_BYTES + 7) & ~7;
}

// Scratch: the members' forecasts (one f64 more, so two quads of lanes read inside it).
const VAL: usize = memory.data(<i32>(EJ + 1) * 8, 16);

/** Member forecasts (counts) at horizon h for target bucket `target` into VAL (the LSTM member only for a dense user). */
function members(sp: usize, target: u32, h: u32, i0: u32, i1: u32, f: f64, dense: bool): void {
  const D = Params.periodBuckets;
  const P = Params.seasonPoints;
  store<f64>(VAL, lastCount(sp));
  store<f64>(VAL, median3Count(sp), 8);
  store<f64>(VAL, hwForecastAt(sp, Params.phiSumH, i0, i1, f) * Params.widthSec, 16);
  if (ASC_FEATURE_SIMD) {
    v128.store(VAL, lstmProfileForecasts(sp, h, dense, target % D, D, P), 24);
  } else {
    store<f64>(VAL, dense ? lstmForecastCount(sp, h) : 0.0, 24);
    store<f64>(VAL, profileForecastCount(sp, target % D, D, P), 32);
  }
  store<f64>(VAL, seasonalLastCount(sp, target % D, (target / D) % 3, D, P), 40);
  store<f64>(VAL, slotMedian3Count(sp, target % D, D, P), 48);
}

/** Weight of member j: 1 / (err_j + 1e-6)^4. */
// @ts-ignore: decorator
@inline function memberWeight(e: usize, j: u32): f64 {
  const a = <f64>load<f32>(e + E_ERR + (j << 2)) + 1e-6;
  const a2 = a * a;
  return 1.0 / (a2 * a2);
}

/**
 * Mean of the error-weighted mean and the error-weighted median of VAL; member `skip` (EJ = none)
 * has no weight. Weights 1 / (err + 1e-6)^4 on f64x2 lanes (the same operations per lane as the
 * scalar form, so the same bits). The median: the members sorted by forecast with a 16-comparator
 * network (branch-free; ties may leave member order, which does not change the median's value),
 * then walked in ascending order until their weight reaches half the total (compared against
 * 0.5 ws, no division); the largest forecast if rounding keeps the walk below half.
 * src/engine/fc-mirror.ts combine does the same.
 */
function combine(e: usize, skip: u32): f64 {
  let w0 = 0.0, w1 = 0.0, w2 = 0.0, w3 = 0.0, w4 = 0.0, w5 = 0.0, w6 = 0.0;
  if (ASC_FEATURE_SIMD) {
    const one = f64x2.splat(1e-6);
    const ea = v128.load(e + E_ERR);
    const eb = v128.load(e + E_ERR + 16); // lanes 0..2: errors 4..6 (lane 3 is the next field, unused)
    let a = f64x2.add(f64x2.promote_low_f32x4(ea), one);
    a = f64x2.mul(a, a);
    const w01 = f64x2.div(f64x2.splat(1.0), f64x2.mul(a, a));
    a = f64x2.add(f64x2.promote_low_f32x4(i32x4.shuffle(ea, ea, 2, 3, 2, 3)), one);
    a = f64x2.mul(a, a);
    const w23 = f64x2.div(f64x2.splat(1.0), f64x2.mul(a, a));
    a = f64x2.add(f64x2.promote_low_f32x4(eb), one);
    a = f64x2.mul(a, a);
    const w45 = f64x2.div(f64x2.splat(1.0), f64x2.mul(a, a));
    a = f64x2.add(f64x2.promote_low_f32x4(i32x4.shuffle(eb, eb, 2, 3, 2, 3)), one);
    a = f64x2.mul(a, a);
    const w67 = f64x2.div(f64x2.splat(1.0), f64x2.mul(a, a));
    w0 = f64x2.extract_lane(w01, 0);
    w1 = f64x2.extract_lane(w01, 1);
    w2 = f64x2.extract_lane(w23, 0);
    w3 = f64x2.extract_lane(w23, 1);
    w4 = f64x2.extract_lane(w45, 0);
    w5 = f64x2.extract_lane(w45, 1);
    w6 = f64x2.extract_lane(w67, 0);
  } else {
    w0 = memberWeight(e, 0);
    w1 = memberWeight(e, 1);
    w2 = memberWeight(e, 2);
    w3 = memberWeight(e, 3);
    w4 = memberWeight(e, 4);
    w5 = memberWeight(e, 5);
    w6 = memberWeight(e, 6);
  }
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
  const half = 0.5 * ws;
  let acc = w0;
  let med = v0;
  if (acc < half) {
    acc += w1;
    med = v1;
    if (acc < half) {
      acc += w2;
      med = v2;
      if (acc < half) {
        acc += w3;
        med = v3;
        if (acc < half) {
          acc += w4;
          med = v4;
          if (acc < half) {
            acc += w5;
            med = acc < half ? v6 : v5;
          }
        }
      }
    }
  }
  return 0.5 * (mean + med);
}

/**
 * Scores four members: `code` their pending forecasts (encU16 codes in i32x4 lanes), `old` their
 * error averages (f32x4). Per lane as the scalar loop: p = decU16(code), a = |count - p|, new error
 * a (first score) or 0.9 old + 0.1 a in f64, rounded to f32; a lane with NO_FORECAST keeps `old`.
 */
// @ts-ignore: decorator
@inline function scoreQuad(code: v128, old: v128, count: f64, first: bool): v128 {
  // decU16: the f64's high word (code + bias) << 10, low word 0; code 0 is 0.0.
  const hw = v128.andnot(i32x4.shl(i32x4.add(code, i32x4.splat(U16_BIAS)), 10), i32x4.eq(code, i32x4.splat(0)));
  const z = i32x4.splat(0);
  const cnt = f64x2.splat(count);
  let a0 = f64x2.abs(f64x2.sub(cnt, i32x4.shuffle(z, hw, 0, 4, 1, 5)));
  let a1 = f64x2.abs(f64x2.sub(cnt, i32x4.shuffle(z, hw, 0, 6, 1, 7)));
  if (!first) {
    const d = f64x2.splat(ERROR_DECAY), g = f64x2.splat(1.0 - ERROR_DECAY);
    a0 = f64x2.add(f64x2.mul(d, f64x2.promote_low_f32x4(old)), f64x2.mul(g, a0));
    a1 = f64x2.add(f64x2.mul(d, f64x2.promote_low_f32x4(i32x4.shuffle(old, old, 2, 3, 2, 3))), f64x2.mul(g, a1));
  }
  const n = i32x4.shuffle(f32x4.demote_f64x2_zero(a0), f32x4.demote_f64x2_zero(a1), 0, 1, 4, 5);
  return v128.bitselect(old, n, i32x4.eq(code, i32x4.splat(NO_FORECAST)));
}

/**
 * encU16 of the four f64 in `a` (values 0, 1) and `b` (2, 3), capped at NO_FORECAST - 1, as i32x4:
 * from the high word, ((hi + 512) >> 10) - bias, clamped to [0, NO_FORECAST - 1]; values not > 0
 * (and NaN) give 0. The same integer steps as encU16.
 */
// @ts-ignore: decorator
@inline function encodeQuad(a: v128, b: v128): v128 {
  const hi = i32x4.shuffle(a, b, 1, 3, 5, 7);
  const pos = i32x4.shuffle(f64x2.gt(a, f64x2.splat(0.0)), f64x2.gt(b, f64x2.splat(0.0)), 0, 2, 4, 6);
  const c = i32x4.sub(i32x4.shr_u(i32x4.add(hi, i32x4.splat(512)), 10), i32x4.splat(U16_BIAS));
  return v128.and(i32x4.min_s(i32x4.max_s(c, i32x4.splat(0)), i32x4.splat(NO_FORECAST - 1)), pos);
}

/**
 * Runs LSTM-lite and the ensemble on one closed bucket c of the user at sp (after HW has been
 * updated). y: the bucket's rate (req/s); (ti0, ti1, tf): the season position of the forecast
 * target c + horizon; features of the closed bucket as the engine summarised them.
 */
export function fcOnBucketClose(sp: usize, c: u32, y: f64, ti0: u32, ti1: u32, tf: f64, cv: f64, tokPerReq: f64, throttled: f64): void {
  const count = y * Params.widthSec;
  const D = Params.periodBuckets;
  const e = sp + Slot.ext + lstmBytes(Params.seasonPoints);
  const h = Params.horizon;
  const nBefore = load<u32>(sp + Slot.ext);
  // 1. Score the forecasts made h buckets ago for this bucket.
  if (nBefore >= h) {
    const slot = c % RING;
    if (ASC_FEATURE_SIMD) {
      // Members 0..3 and 4..6 in two quads (the code after member 6 and the f32 after error 6, the
      // bound offset, are read and left as they are); per lane the scalar form's operations.
      const codes = v128.load(e + E_PEND + slot * EJ * 2);
      const err = e + E_ERR;
      const n0 = scoreQuad(i32x4.extend_low_i16x8_u(codes), v128.load(err), count, nBefore == h);
      const n1 = scoreQuad(i32x4.extend_high_i16x8_u(codes), v128.load(err, 16), count, nBefore == h);
      v128.store(err, n0);
      v128.store64_lane(err + 16, n1, 0);
      store<f32>(err + 24, f32x4.extract_lane(n1, 2));
    } else {
      for (let j: u32 = 0; j < EJ; j++) {
        const code = <u32>load<u16>(e + E_PEND + (slot * EJ + j) * 2);
        if (code == NO_FORECAST) continue;
        const pj = decU16(code);
        const ej = e + E_ERR + j * 4;
        const a = Math.abs(count - pj);
        store<f32>(ej, <f32>(nBefore == h ? a : ERROR_DECAY * <f64>load<f32>(ej) + (1.0 - ERROR_DECAY) * a));
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
    for (let j: u32 = 0; j < EJ; j++) store<f32>(e + E_ERR + j * 4, 1.0);
  }
  // 2. LSTM-lite learns the bucket (and trains on a bounded sample of users per closed bucket).
  let train = false;
  if (Fc.trainPerBucket > 0) {
    if (c != Fc.lastBucket) {
      Fc.lastBucket = c;
      Fc.trainedThisBucket = 0;
    }
    if (Fc.trainedThisBucket < Fc.trainPerBucket) {
      // A user is picked with probability about trainPerBucket / users, by a hash of (user, bucket).
      let x = load<u32>(sp, S_HASH_LO) ^ (c * 0x9e3779b1);
      x ^= x >> 16;
      x *= 0x85ebca6b;
      x ^= x >> 13;
      const users = G.tracked > 0 ? G.tracked : 1;
      if (<u64>(x % users) < <u64>Fc.trainPerBucket) train = true;
    }
  }
  lstmBucketInputs(c, c % D, (c / D) % 7, D);
  const loss = lstmUpdate(sp, count, c % D, (c / D) % 7, (c / D) % 3, D, Params.seasonPoints, cv, tokPerReq, throttled, train);
  if (loss >= 0.0) {
    Fc.trainedThisBucket++;
    Fc.trainSteps += 1.0;
    Fc.trainLossSum += loss;
  }
  // 3. Forecast the target c + h, combine, remember under the target's ring slot.
  const target = c + h;
  const dense = lstmIsDense(sp);
  Fc.closes++;
  if (dense) Fc.denseCloses++;
  members(sp, target, h, ti0, ti1, tf, dense);
  const comb = combine(e, dense ? EJ : J_LSTM);
  const ts = target % RING;
  const pend = e + E_PEND + ts * EJ * 2;
  if (ASC_FEATURE_SIMD) {
    // encU16 of VAL[0..7) on lanes (VAL[7] is scratch past the members, its code is not stored),
    // capped at NO_FORECAST - 1; the LSTM member of a sparse user gets NO_FORECAST.
    let codes = i16x8.narrow_i32x4_u(encodeQuad(v128.load(VAL), v128.load(VAL, 16)), encodeQuad(v128.load(VAL, 32), v128.load(VAL, 48)));
    if (!dense) codes = i16x8.replace_lane(codes, 3, <i16>NO_FORECAST); // lane J_LSTM
    v128.store64_lane(pend, codes, 0);
    v128.store32_lane(pend + 8, codes, 2);
    v128.store16_lane(pend + 12, codes, 6);
  } else {
    for (let j: u32 = 0; j < EJ; j++) {
      const code = j == J_LSTM && !dense ? NO_FORECAST : min(encU16(load<f64>(VAL + (<usize>j << 3))), NO_FORECAST - 1);
      store<u16>(pend + j * 2, <u16>code);
    }
  }
  store<u16>(e + E_PCOMB + ts * 2, <u16>encU16(comb));
  store<f32>(e + E_COMB, <f32>comb);
}

/** Start of a tick that closes buckets: the GRU's packed weights follow the current ones. */
export function fcTickStart(): void {
  Fc.denseCloses = 0;
  Fc.closes = 0;
  lstmPack();
}

/** Ensemble forecast at the configured horizon, req/s. */
export function fcRate(sp: usize): f64 {
  const e = sp + Slot.ext + lstmBytes(Params.seasonPoints);
  return <f64>load<f32>(e + E_COMB) / Params.widthSec;
}

/** Upper bound at the configured horizon and quantile, req/s. */
export function fcUpper(sp: usize): f64 {
  const e = sp + Slot.ext + lstmBytes(Params.seasonPoints);
  return (<f64>load<f32>(e + E_COMB) + <f64>load<f32>(e + E_Q)) / Params.widthSec;
}

/**
 * The engine's hook (assembly/models.ts, after hwUpdate): reads the closed bucket's features from
 * the slot header, computes the target bucket's season position (as engine.ts positionOf does)
 * and runs fcOnBucketClose.
 */
export function fcOnClose(sp: usize, c: u32, y: f64): void {
  const D = Params.periodBuckets;
  const P = Params.seasonPoints;
  const phase = (c + Params.horizon) % D;
  const x = <f64>phase * <f64>P / <f64>D;
  const fl = Math.floor(x);
  let i0 = <u32>fl;
  if (i0 >= P) i0 = P - 1;
  const i1 = i0 + 1 == P ? 0 : i0 + 1;
  const n = <f64>load<u32>(sp, S_C_COUNT);
  const tokPerReq = n > 0.0 ? (load<f64>(sp, S_C_IN_TOK) + load<f64>(sp, S_C_OUT_TOK)) / n : 0.0;
  const throttled = n > 0.0 ? <f64>load<u32>(sp, S_C_THROTTLED) / n : 0.0;
  fcOnBucketClose(sp, c, y, i0, i1, x - fl, <f64>load<f32>(sp, S_C_CV), tokPerReq, throttled);
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
