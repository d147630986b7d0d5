// LSTM-lite in WASM: the GRU forecaster of src/forecast/lstm.ts (same parameter layout, same
// loop order, f64 arithmetic, per-user state stored as f32). Weights are shared by all users and
// live in one static block with the optimiser state (weights, Adam m1, m2, step count), which the
// facade copies into and out of snapshots. Per-user state lives in the slot's extension area
// (offsets below, after Slot.ext). Nothing here allocates.
import { Slot } from "./slot";
import { expm1D, expm1D2, log1pD, sigmoidF, sigmoidF4, tanhF, tanhF4 } from "./fastmath";
import { decI16, decLog, decU16, decU8, encI16, encLog, encU16, encU8 } from "./codec";
import { MAX_THREADS, SCRATCH_STRIDE } from "./threads";

// Shapes (must equal src/forecast/lstm.ts).
export const LH: i32 = 8; // hidden units
export const LX: i32 = 9; // inputs
export const LO: i32 = 6; // horizons 1..6
const GATE: i32 = LH * LX + LH * LH + LH;
const OFF_Z: i32 = 0;
const OFF_R: i32 = GATE;
const OFF_N: i32 = 2 * GATE;
const OFF_BU: i32 = 3 * GATE;
const OFF_WO: i32 = OFF_BU + LH;
const OFF_BO: i32 = OFF_WO + LO * LH;
const OFF_SKIP: i32 = OFF_BO + LO;
export const LSTM_PARAMS: i32 = OFF_SKIP + 2 * LO;
/** Per-bucket EW factor of the level (mean log1p count). */
export const LEVEL_ALPHA: f64 = 0.05;
/** Per-day EW factor of the daily log profile. */
export const PROFILE_GAMMA: f64 = 0.3;

// Static training block: params | m1 | m2 (f64 each) | step count (f64).
export const TRAIN_BLOCK_BYTES: i32 = (3 * LSTM_PARAMS + 1) * 8;
export const TRAIN_BLOCK: usize = memory.data(TRAIN_BLOCK_BYTES, 16);
const PARAMS: usize = TRAIN_BLOCK;
const M1: usize = TRAIN_BLOCK + <usize>LSTM_PARAMS * 8;
const M2: usize = TRAIN_BLOCK + <usize>LSTM_PARAMS * 16;
const STEPN: usize = TRAIN_BLOCK + <usize>LSTM_PARAMS * 24;
// Scratch (never part of the state): the training step's gradient (the training runs on the
// main instance only, at the tick's end).
const GRAD: usize = memory.data((3 + LH) * 8, 16);

// Per-user extension offsets (bytes after Slot.ext).
export const F_N: u32 = 0; // u32 buckets fed
export const F_LEVEL: u32 = 4; // f32 level
export const F_H: u32 = 8; // 8 x f32 hidden
export const F_PREV_X: u32 = 40; // 2 x f32 inputs 0 and 1 of the last step (online training)
export const F_OUT: u32 = 48; // 6 x u16 (encI16) outputs (log1p count - level) per horizon
export const F_LAST3: u32 = 60; // 3 x u16 (encU16) last three counts (ring by n % 3)
export const F_PROFILE: u32 = 66; // P x u16 daily log profile (encLog), then 3P x u8 counts per point and day mod 3 (encU8)
/** Bytes of LSTM-lite state per user for P profile points (log profile + 3-day count ring per point). */
export function lstmBytes(points: u32): u32 {
  return F_PROFILE + points * 5;
}
/** Address of the 3-day count ring (3P x u8, by point then day mod 3) of the extension at e. */
// @ts-ignore: decorator
@inline function countRing(e: usize, points: u32): usize {
  return e + F_PROFILE + (<usize>points << 1);
}

/** log1pD(n) for whole n < LOG1P_TABLE_N (filled at instantiation). */
const LOG1P_TABLE_N: i32 = 256;
const LOG1P_TABLE: usize = memory.data(LOG1P_TABLE_N * 8, 16);
for (let i = 0; i < LOG1P_TABLE_N; i++) store<f64>(LOG1P_TABLE + (<usize>i << 3), log1pD(<f64>i));

/** Learning settings of the online rule and the tier threshold (set by fcConfigure). */
export class Lstm {
  static learningRate: f64 = 0.001;
  static gradClip: f64 = 1.0;
  /**
   * log1p of the least mean count per bucket for which the GRU runs (0 = every user). A user whose
   * level (EW mean of log1p count) is below it is in the sparse tier: its buckets still feed the
   * level, the daily profile and the count rings, but not the GRU, and the ensemble leaves the
   * LSTM member out.
   */
  static minLevel: f64 = 0.0;
  /** Samples a thread keeps per closed bucket (lstmSampleRoomFor). */
  static room: u32 = 0;
  /** The samples region (set by init). */
  static samples: usize = 0;
  /** Sum of the absolute errors of the last lstmApplySamples. */
  static lastLossSum: f64 = 0.0;
}

/** True when the user's last closed bucket ran the GRU (dense tier): level at or above Lstm.minLevel. */
// @ts-ignore: decorator
@inline export function lstmIsDense(sp: usize): bool {
  const e = sp + Slot.ext;
  return load<u32>(e, F_N) != 0 && <f64>load<f32>(e, F_LEVEL) >= Lstm.minLevel;
}

// @ts-ignore: decorator
@inline function P(i: i32): f64 {
  return load<f64>(PARAMS + (<usize>i << 3));
}
/**
 * Inputs 2..5 (sin/cos of time of day and day of week) depend only on the bucket, not on the
 * user: computed once per closed bucket (lstmBucketInputs) instead of four trig calls per user.
 */
let TRIG: usize = memory.data(<i32>MAX_THREADS * SCRATCH_STRIDE, 64);
let trigBucket: u32 = 0xffffffff;

/** Start of a tick range: TRIG and CB are recomputed at the range's first bucket (they are per thread, and CB follows the packed weights, which may have changed). */
export function lstmRangeStart(): void {
  trigBucket = 0xffffffff;
}

/**
 * The gates' bucket-only part, per closed bucket: for the z, r and n gates (LH f32 each, in that
 * order), c_i = bias_i + W[i][2] x2 + W[i][3] x3 + W[i][4] x4 + W[i][5] x5, each operation rounded
 * to f32, from the packed weights (lstmPack runs first in every tick that closes buckets). One
 * copy per tick thread (a catch-up tick's threads may be on different buckets at once).
 */
let CB: usize = memory.data(<i32>MAX_THREADS * SCRATCH_STRIDE, 64);

/** Sets TRIG and CB for the closed bucket c (no-op when they are already set for c). */
export function lstmBucketInputs(c: u32, slotOfDay: u32, dayOfWeek: u32, period: u32): void {
  if (c == trigBucket) return;
  trigBucket = c;
  const tod = (2.0 * Math.PI * <f64>slotOfDay) / <f64>period;
  const dow = (2.0 * Math.PI * (<f64>dayOfWeek + <f64>slotOfDay / <f64>period)) / 7.0;
  store<f64>(TRIG, Math.sin(tod), 0);
  store<f64>(TRIG, Math.cos(tod), 8);
  store<f64>(TRIG, Math.sin(dow), 16);
  store<f64>(TRIG, Math.cos(dow), 24);
  for (let g = 0; g < 3; g++) {
    const w = PACK + <usize>(g * PK_GATE) * 4;
    for (let i = 0; i < LH; i++) {
      let a = load<f32>(w + <usize>(LX * LH + LH * LH + i) * 4);
      for (let k = 2; k < 6; k++) a = a + load<f32>(w + <usize>(k * LH + i) * 4) * <f32>load<f64>(TRIG + (<usize>(k - 2) << 3));
      store<f32>(CB + <usize>(g * LH + i) * 4, a);
    }
  }
}

/**
 * Fills XF with the normalised input as f32 (see lstmInput in src/forecast/lstm.ts; inputs 2..5,
 * the bucket's, are in CB).
 */
function fillInput(ly: f64, sNext: f64, level: f64, cv: f64, tokPerReq: f64, throttled: f64): void {
  store<f32>(XF, <f32>(ly - level), 0);
  store<f32>(XF, <f32>(sNext - level), 4);
  store<f32>(XF, <f32>(Math.min(cv, 10.0) / 10.0), 24);
  store<f32>(XF, <f32>(log1pD(Math.max(0.0, tokPerReq)) / 10.0), 28);
  store<f32>(XF, <f32>throttled, 32);
}

// The gates' weights as f32, transposed (input-major, unit-minor) so four units' sums are one
// f32x4: per gate g (z, r, n): W^T (LX x LH), U^T (LH x LH), bias (LH); then bu (LH). The gate
// weights change only when weights are loaded or restored (online training moves the output head
// only), so lstmPack runs at the start of each tick that closes buckets.
const PK_GATE: i32 = LX * LH + LH * LH + LH;
const PACK: usize = memory.data((3 * PK_GATE + LH) * 4, 16);
/**
 * The step's input as f32 (inputs 2..5 unused: their part is in CB) and the new hidden state; one
 * copy per tick thread.
 */
let XF: usize = memory.data(<i32>MAX_THREADS * SCRATCH_STRIDE, 64);
let HF: usize = memory.data(<i32>MAX_THREADS * SCRATCH_STRIDE, 64);

/** Points this instance's scratch at thread t's copies (once, before its first tick range). */
export function lstmThreadInit(t: u32): void {
  TRIG += <usize>(t * <u32>SCRATCH_STRIDE);
  CB += <usize>(t * <u32>SCRATCH_STRIDE);
  XF += <usize>(t * <u32>SCRATCH_STRIDE);
  HF += <usize>(t * <u32>SCRATCH_STRIDE);
}

/** Copies the gate weights from PARAMS into PACK (f32, transposed); forgets the bucket inputs. */
export function lstmPack(): void {
  trigBucket = 0xffffffff;
  for (let g = 0; g < 3; g++) {
    const src = g * GATE;
    const dst = PACK + <usize>(g * PK_GATE) * 4;
    for (let i = 0; i < LH; i++) {
      for (let k = 0; k < LX; k++) store<f32>(dst + <usize>(k * LH + i) * 4, <f32>P(src + i * LX + k));
      for (let k = 0; k < LH; k++) store<f32>(dst + <usize>(LX * LH + k * LH + i) * 4, <f32>P(src + LH * LX + i * LH + k));
      store<f32>(dst + <usize>(LX * LH + LH * LH + i) * 4, <f32>P(src + LH * LX + LH * LH + i));
    }
  }
  for (let i = 0; i < LH; i++) store<f32>(PACK + <usize>(3 * PK_GATE + i) * 4, <f32>P(OFF_BU + i));
  for (let o = 0; o < LO; o++) packHead(o);
}

// The output layer as f32, input-major: rows bias, skip of input 0, skip of input 1, Wo[.][k]
// (k = 0..LH-1), each row 8 f32 (heads 0..5, then two zero pads), so two f32x4 hold all heads.
// Packed with the gates (lstmPack), at the start of every tick that closes buckets (the online
// rule moves head 0 at the tick's end, so a tick's outputs all use the head of its start).
const PO_ROW: usize = 32;
const PO: usize = memory.data((3 + LH) * 32, 16);

/** Copies head o's weights (bias, two skips, Wo row o) from PARAMS into PO as f32. */
function packHead(o: i32): void {
  const d = PO + (<usize>o << 2);
  store<f32>(d, <f32>P(OFF_BO + o));
  store<f32>(d + PO_ROW, <f32>P(OFF_SKIP + o));
  store<f32>(d + 2 * PO_ROW, <f32>P(OFF_SKIP + LO + o));
  for (let k = 0; k < LH; k++) store<f32>(d + <usize>(3 + k) * PO_ROW, <f32>P(OFF_WO + o * LH + k));
}

/**
 * One GRU step from hidden h (f32 at hp) and input XF (with CB) into HF (f32), in single
 * precision. Per unit i, every operation rounded to f32, in this order: a = c_i (CB: bias and the
 * bucket's inputs 2..5), then a += W[i][k] x[k] for k = 0, 1, 6, 7, 8, then a += U[i][k] h[k]
 * (k ascending), for the z and r gates; the candidate's a_n (CB and the input part) and u_n (bu_i
 * + recurrent part); z = sigmoid(a_z), r = sigmoid(a_r), n = tanh(a_n + r u_n),
 * h'_i = (1 - z) n + z h_i. The SIMD form runs units 0..3 and 4..7 in two f32x4 per gate, each
 * input splatted once for both; the same operations in the same order per lane.
 * src/engine/fc-mirror.ts reproduces it with Math.fround.
 */
function gruStep(hp: usize): void {
  const WZ = PACK, WR = PACK + <usize>PK_GATE * 4, WN = PACK + <usize>(2 * PK_GATE) * 4;
  const BU = PACK + <usize>(3 * PK_GATE) * 4;
  const UO: usize = <usize>(LX * LH) * 4; // U^T after W^T
  if (ASC_FEATURE_SIMD) {
    let az0 = v128.load(CB), az1 = v128.load(CB, 16);
    let ar0 = v128.load(CB, 32), ar1 = v128.load(CB, 48);
    let an0 = v128.load(CB, 64), an1 = v128.load(CB, 80);
    let un0 = v128.load(BU), un1 = v128.load(BU, 16);
    for (let j = 0; j < 5; j++) {
      const k = j < 2 ? j : j + 4; // inputs 0, 1, 6, 7, 8
      const xk = f32x4.splat(load<f32>(XF + (<usize>k << 2)));
      const row = <usize>(k * LH) << 2;
      az0 = f32x4.add(az0, f32x4.mul(v128.load(WZ + row), xk));
      az1 = f32x4.add(az1, f32x4.mul(v128.load(WZ + row, 16), xk));
      ar0 = f32x4.add(ar0, f32x4.mul(v128.load(WR + row), xk));
      ar1 = f32x4.add(ar1, f32x4.mul(v128.load(WR + row, 16), xk));
      an0 = f32x4.add(an0, f32x4.mul(v128.load(WN + row), xk));
      an1 = f32x4.add(an1, f32x4.mul(v128.load(WN + row, 16), xk));
    }
    for (let k = 0; k < LH; k++) {
      const hk = f32x4.splat(load<f32>(hp + (<usize>k << 2)));
      const row = UO + (<usize>(k * LH) << 2);
      az0 = f32x4.add(az0, f32x4.mul(v128.load(WZ + row), hk));
      az1 = f32x4.add(az1, f32x4.mul(v128.load(WZ + row, 16), hk));
      ar0 = f32x4.add(ar0, f32x4.mul(v128.load(WR + row), hk));
      ar1 = f32x4.add(ar1, f32x4.mul(v128.load(WR + row, 16), hk));
      un0 = f32x4.add(un0, f32x4.mul(v128.load(WN + row), hk));
      un1 = f32x4.add(un1, f32x4.mul(v128.load(WN + row, 16), hk));
    }
    const one = f32x4.splat(1.0);
    let z = sigmoidF4(az0);
    let r = sigmoidF4(ar0);
    let n = tanhF4(f32x4.add(an0, f32x4.mul(r, un0)));
    v128.store(HF, f32x4.add(f32x4.mul(f32x4.sub(one, z), n), f32x4.mul(z, v128.load(hp))));
    z = sigmoidF4(az1);
    r = sigmoidF4(ar1);
    n = tanhF4(f32x4.add(an1, f32x4.mul(r, un1)));
    v128.store(HF, f32x4.add(f32x4.mul(f32x4.sub(one, z), n), f32x4.mul(z, v128.load(hp, 16))), 16);
  } else {
    for (let i = 0; i < LH; i++) {
      const o = <usize>i << 2;
      let az = load<f32>(CB + o);
      let ar = load<f32>(CB + o, 32);
      let an = load<f32>(CB + o, 64);
      let un = load<f32>(BU + o);
      for (let j = 0; j < 5; j++) {
        const k = j < 2 ? j : j + 4;
        const xk = load<f32>(XF + (<usize>k << 2));
        const row = (<usize>(k * LH) << 2) + o;
        az = az + load<f32>(WZ + row) * xk;
        ar = ar + load<f32>(WR + row) * xk;
        an = an + load<f32>(WN + row) * xk;
      }
      for (let k = 0; k < LH; k++) {
        const hk = load<f32>(hp + (<usize>k << 2));
        const row = UO + (<usize>(k * LH) << 2) + o;
        az = az + load<f32>(WZ + row) * hk;
        ar = ar + load<f32>(WR + row) * hk;
        un = un + load<f32>(WN + row) * hk;
      }
      const z = sigmoidF(az);
      const r = sigmoidF(ar);
      const n = tanhF(an + r * un);
      store<f32>(HF + o, (<f32>1.0 - z) * n + z * load<f32>(hp + o));
    }
  }
}

/**
 * encI16 of four f32 lanes (as f64, which holds them exactly), from their bits: the f64's high word
 * rounded at 10 mantissa bits is the f32's bits rounded at 13 ((b + 2^12) >> 13, the exponent
 * rebased by 1023 - 127), so the codes are those of encI16(<f64>x) lane by lane; NaN encodes as 0
 * as there. Lanes hold the codes as i32.
 */
// @ts-ignore: decorator
@inline function encI16F4(v: v128): v128 {
  const mag = v128.and(v, i32x4.splat(0x7fffffff));
  // ((a + 2^12) >> 13) - ((1008 - 896) << 10): the magnitude code; below 1 -> 0, above 32767 -> 32767.
  let m = i32x4.sub(i32x4.shr_u(i32x4.add(mag, i32x4.splat(4096)), 13), i32x4.splat(112 << 10));
  m = i32x4.min_s(i32x4.max_s(m, i32x4.splat(0)), i32x4.splat(32767));
  // NaN (magnitude above +Infinity's bits) -> 0.
  m = v128.andnot(m, i32x4.gt_s(mag, i32x4.splat(0x7f800000)));
  // Negative lanes with a non-zero code get the sign bit.
  const neg = v128.and(i32x4.lt_s(v, i32x4.splat(0)), i32x4.ne(m, i32x4.splat(0)));
  return v128.or(m, v128.and(neg, i32x4.splat(0x8000)));
}

/**
 * The six outputs (log1p count - level at h = 1..6) from the new hidden state HF and inputs 0, 1
 * (XF), in single precision, encoded (encI16 of each as f64) into the six u16 at `out` (the slot's
 * F_OUT). Per head o, every operation rounded to f32: v = bo_o, v += skip0_o x0, v += skip1_o x1,
 * then v += Wo[o][k] h[k] (k ascending); the SIMD form runs heads 0..3 and 4, 5 (two pad lanes)
 * in two f32x4 and encodes them with encI16F4. src/engine/fc-mirror.ts follows.
 */
function gruOutputs(out: usize): void {
  if (ASC_FEATURE_SIMD) {
    let o0 = v128.load(PO), o1 = v128.load(PO, 16);
    const x0 = f32x4.splat(load<f32>(XF));
    o0 = f32x4.add(o0, f32x4.mul(v128.load(PO + PO_ROW), x0));
    o1 = f32x4.add(o1, f32x4.mul(v128.load(PO + PO_ROW, 16), x0));
    const x1 = f32x4.splat(load<f32>(XF, 4));
    o0 = f32x4.add(o0, f32x4.mul(v128.load(PO + 2 * PO_ROW), x1));
    o1 = f32x4.add(o1, f32x4.mul(v128.load(PO + 2 * PO_ROW, 16), x1));
    for (let k = 0; k < LH; k++) {
      const hk = f32x4.splat(load<f32>(HF + (<usize>k << 2)));
      const row = PO + <usize>(3 + k) * PO_ROW;
      o0 = f32x4.add(o0, f32x4.mul(v128.load(row), hk));
      o1 = f32x4.add(o1, f32x4.mul(v128.load(row, 16), hk));
    }
    // Codes of heads 0..5 as u16 (the two pad lanes dropped): 8 + 4 bytes.
    const codes = i16x8.narrow_i32x4_u(encI16F4(o0), encI16F4(o1));
    store<u64>(out, i64x2.extract_lane(codes, 0));
    store<u32>(out + 8, i32x4.extract_lane(codes, 2));
  } else {
    for (let o = 0; o < LO; o++) {
      const c = PO + (<usize>o << 2);
      let v = load<f32>(c);
      v = v + load<f32>(c + PO_ROW) * load<f32>(XF);
      v = v + load<f32>(c + 2 * PO_ROW) * load<f32>(XF, 4);
      for (let k = 0; k < LH; k++) v = v + load<f32>(c + <usize>(3 + k) * PO_ROW) * load<f32>(HF + (<usize>k << 2));
      store<u16>(out + (<usize>o << 1), <u16>encI16(<f64>v));
    }
  }
}

// Training samples of a tick: a user picked for training records the previous step's input
// (PREV_X), the hidden state that step produced (F_H) and the target; tickEnd applies them in slot
// order (lstmApplySamples), so every user of a tick is forecast with the weights of the tick's start,
// whichever thread runs it. Per thread and closed bucket of the tick, at most trainPerBucket
// samples, for the first TRAIN_TICK_BUCKETS buckets of a tick (a long catch-up trains on those).
// A thread takes its chunks of slots in ascending order, so each thread's samples of a bucket are in
// slot order, and the first trainPerBucket of all threads' samples merged by slot (SM_KEY) are the
// first trainPerBucket in slot order: a thread only drops samples behind trainPerBucket of its own.
export const TRAIN_TICK_BUCKETS: u32 = 8;
const SM_X: u32 = 0; // 2 x f32
const SM_H: u32 = 8; // LH x f32
const SM_TARGET: u32 = 40; // f64
const SM_KEY: u32 = 48; // u32 the user's slot address (orders samples by slot)
const SAMPLE_BYTES: u32 = 56;
// One cache line per thread (8 u32 counts): threads never write each other's line.
const SAMPLE_COUNTS: usize = memory.data(<i32>(MAX_THREADS * 64), 64);

/** Most training steps per closed bucket (a thread never picks more users than this). */
export const MAX_TRAIN_PER_BUCKET: u32 = 65536;

/** Samples a thread keeps per closed bucket: trainPerBucket, at most the capacity and MAX_TRAIN_PER_BUCKET. */
export function lstmSampleRoomFor(trainPerBucket: u32, capacity: u32): u32 {
  return min(trainPerBucket, min(capacity, MAX_TRAIN_PER_BUCKET));
}

/** Bytes of the samples region. */
export function lstmSamplesBytes(room: u32): u64 {
  return <u64>MAX_THREADS * <u64>TRAIN_TICK_BUCKETS * <u64>room * <u64>SAMPLE_BYTES;
}

// @ts-ignore: decorator
@inline function samplePtr(t: u32, k: u32, i: u32): usize {
  return Lstm.samples + <usize>(((<u64>(t * TRAIN_TICK_BUCKETS + k) * <u64>Lstm.room + <u64>i) * SAMPLE_BYTES));
}
// @ts-ignore: decorator
@inline function countPtr(t: u32, k: u32): usize {
  return SAMPLE_COUNTS + <usize>(t * 64 + (k << 2));
}

/** True when thread t still has room for a sample of the tick's k-th closed bucket. */
export function lstmSampleRoom(t: u32, k: u32): bool {
  return k < TRAIN_TICK_BUCKETS && load<u32>(countPtr(t, k)) < Lstm.room;
}

/** Forgets every thread's samples (start of a tick). */
export function lstmClearSamples(): void {
  memory.fill(SAMPLE_COUNTS, 0, <usize>(MAX_THREADS * 64));
}

function recordSample(e: usize, target: f64, t: u32, k: u32): void {
  const c = load<u32>(countPtr(t, k));
  const p = samplePtr(t, k, c);
  store<u64>(p + SM_X, load<u64>(e + F_PREV_X));
  memory.copy(p + SM_H, e + F_H, <usize>(LH * 4));
  store<f64>(p, target, SM_TARGET);
  store<u32>(p, <u32>e, SM_KEY);
  store<u32>(countPtr(t, k), c + 1);
}

/** Next sample of each thread in the merge of lstmApplySamples (u32 per thread). */
const MERGE_NEXT: usize = memory.data(<i32>(MAX_THREADS * 4), 16);

/**
 * Applies the samples of the tick's first `buckets` closed buckets (main instance, at tickEnd):
 * bucket by bucket, the threads' samples merged in slot order, at most trainPerBucket per bucket.
 * Returns the number of steps; their absolute errors' sum is left in Lstm.lastLossSum.
 */
export function lstmApplySamples(threads: u32, buckets: u32): u32 {
  let steps: u32 = 0;
  let lossSum = 0.0;
  const nb = buckets < TRAIN_TICK_BUCKETS ? buckets : TRAIN_TICK_BUCKETS;
  for (let k: u32 = 0; k < nb; k++) {
    for (let t: u32 = 0; t < threads; t++) store<u32>(MERGE_NEXT + (<usize>t << 2), 0);
    let applied: u32 = 0;
    while (applied < Lstm.room) {
      // The thread whose next sample has the lowest slot.
      let best: u32 = MAX_THREADS;
      let bestKey: u32 = 0xffffffff;
      for (let t: u32 = 0; t < threads; t++) {
        const i = load<u32>(MERGE_NEXT + (<usize>t << 2));
        if (i >= load<u32>(countPtr(t, k))) continue;
        const key = load<u32>(samplePtr(t, k, i), SM_KEY);
        if (best == MAX_THREADS || key < bestKey) {
          best = t;
          bestKey = key;
        }
      }
      if (best == MAX_THREADS) break;
      const i = load<u32>(MERGE_NEXT + (<usize>best << 2));
      lossSum += trainStep(samplePtr(best, k, i));
      store<u32>(MERGE_NEXT + (<usize>best << 2), i + 1);
      applied++;
    }
    steps += applied;
  }
  Lstm.lastLossSum = lossSum;
  return steps;
}

/**
 * Online rule: Adam on the absolute error of the horizon-1 head, updating only that head's output
 * weights (Wo row 0, bo[0], its two skip weights) from a sample (the stored hidden state and input
 * of the user's previous step, and the target); gradient-norm clipped. The recurrent weights and the other heads are trained
 * offline (`foresight train`): changing the shared recurrent weights for one head was measured to
 * hurt the others (median MASE at h = 3 went from 0.84 to 1.13 on the ServeGen replay).
 * Returns |error|.
 */
function trainStep(sample: usize): f64 {
  // Previous step's output 0 from its input (PREV_X) and the hidden state it produced (F_H).
  const target = load<f64>(sample, SM_TARGET);
  let y = P(OFF_BO) + P(OFF_SKIP) * <f64>load<f32>(sample + SM_X) + P(OFF_SKIP + LO) * <f64>load<f32>(sample + SM_X + 4);
  for (let k = 0; k < LH; k++) y += P(OFF_WO + k) * <f64>load<f32>(sample + SM_H + (<usize>k << 2));
  const d = y - target;
  const gy = (d > 0.0 ? 1.0 : d < 0.0 ? -1.0 : 0.0) / <f64>LO;
  // Gradient of the head's parameters, in the order of HEAD_INDEX.
  store<f64>(GRAD, gy);
  store<f64>(GRAD, gy * <f64>load<f32>(sample + SM_X), 8);
  store<f64>(GRAD, gy * <f64>load<f32>(sample + SM_X + 4), 16);
  for (let k = 0; k < LH; k++) store<f64>(GRAD + (<usize>(3 + k) << 3), gy * <f64>load<f32>(sample + SM_H + (<usize>k << 2)));
  let norm = 0.0;
  for (let i = 0; i < HEAD_PARAMS; i++) {
    const g = load<f64>(GRAD + (<usize>i << 3));
    norm += g * g;
  }
  norm = Math.sqrt(norm);
  const scale = norm > Lstm.gradClip ? Lstm.gradClip / norm : 1.0;
  const stepN = load<f64>(STEPN) + 1.0;
  store<f64>(STEPN, stepN);
  const b1 = 0.9;
  const b2 = 0.999;
  const c1 = 1.0 - Math.pow(b1, stepN);
  const c2 = 1.0 - Math.pow(b2, stepN);
  const lr = Lstm.learningRate;
  for (let i = 0; i < HEAD_PARAMS; i++) {
    const o = <usize>headIndex(i) << 3;
    const gi = load<f64>(GRAD + (<usize>i << 3)) * scale;
    const m1 = b1 * load<f64>(M1 + o) + (1.0 - b1) * gi;
    const m2 = b2 * load<f64>(M2 + o) + (1.0 - b2) * gi * gi;
    store<f64>(M1 + o, m1);
    store<f64>(M2 + o, m2);
    store<f64>(PARAMS + o, load<f64>(PARAMS + o) - (lr * (m1 / c1)) / (Math.sqrt(m2 / c2) + 1e-8));
  }
  // No re-pack of head 0: training runs at the tick's end, after every output of the tick, and the
  // next tick's lstmPack takes the new weights.
  return Math.abs(d);
}

/** Parameters the online rule updates: bo[0], skip[0], skip[LO], Wo[0][0..LH). */
const HEAD_PARAMS: i32 = 3 + LH;
// @ts-ignore: decorator
@inline function headIndex(i: i32): i32 {
  return i == 0 ? OFF_BO : i == 1 ? OFF_SKIP : i == 2 ? OFF_SKIP + LO : OFF_WO + (i - 3);
}

/** Profile point (of `points` per day) of bucket-of-day slotOfDay in a day of `period` buckets. */
// @ts-ignore: decorator
@inline export function profilePoint(slotOfDay: u32, period: u32, points: u32): u32 {
  return <u32>((<u64>slotOfDay * <u64>points) / <u64>period);
}

/**
 * Feeds one closed bucket of one user: count (requests), the bucket's profile point and the next
 * bucket's (profilePoint), its day mod 3, engine features (lstmBucketInputs must have been called
 * for the bucket).
 * Dense users (level >= Lstm.minLevel) also run the GRU step and its outputs; when `train` is
 * set and the previous step ran the GRU, a training sample of that step is recorded first (thread
 * t, the tick's k-th closed bucket). Returns true when a sample was recorded.
 */
export function lstmUpdate(sp: usize, count: f64, point: u32, nextPoint: u32, day3: u32, points: u32, cv: f64, tokPerReq: f64, throttled: f64, train: bool, t: u32, k: u32): bool {
  const e = sp + Slot.ext;
  const n = load<u32>(e, F_N);
  const cnt = Math.max(0.0, count);
  // Whole counts below 256 (most closes of most users) read log1pD's value from a table.
  const ly = cnt < <f64>LOG1P_TABLE_N && <f64><i32>cnt == cnt ? load<f64>(LOG1P_TABLE + (<usize><i32>cnt << 3)) : log1pD(cnt);
  const prevLevel = <f64>load<f32>(e, F_LEVEL);
  const level = <f64>(<f32>(n == 0 ? ly : prevLevel + LEVEL_ALPHA * (ly - prevLevel)));
  const dense = level >= Lstm.minLevel;
  // The online rule learns from the previous step's input and hidden state: only when that step
  // ran the GRU (a sparse step marks F_PREV_X as NaN).
  let sampled = false;
  if (train && dense && n >= 1 && !isNaN(load<f32>(e + F_PREV_X))) {
    recordSample(e, ly - prevLevel, t, k);
    sampled = true;
  }
  store<f32>(e, <f32>level, F_LEVEL);
  // Daily log profile: a new user's profile starts flat at its first value.
  const prof = e + F_PROFILE;
  if (n == 0) {
    const cl = <u16>encLog(ly);
    for (let i: u32 = 0; i < points; i++) store<u16>(prof + (<usize>i << 1), cl);
    memory.fill(countRing(e, points), <u8>encU8(count), 3 * points);
  }
  const pi = prof + (<usize>point << 1);
  const pv = decLog(load<u16>(pi));
  store<u16>(pi, <u16>encLog(pv + PROFILE_GAMMA * (ly - pv)));
  // Counts per point of the day for the last 3 days (seasonal naive and slot median members).
  store<u8>(countRing(e, points) + <usize>(point * 3 + day3), <u8>encU8(count));
  if (dense) {
    const sNext = decLog(load<u16>(prof + (<usize>nextPoint << 1)));
    fillInput(ly, sNext, level, cv, tokPerReq, throttled);
    gruStep(e + F_H);
    store<u64>(e + F_H, load<u64>(HF));
    store<u64>(e + F_H + 8, load<u64>(HF, 8));
    store<u64>(e + F_H + 16, load<u64>(HF, 16));
    store<u64>(e + F_H + 24, load<u64>(HF, 24));
    store<f32>(e + F_PREV_X, load<f32>(XF));
    store<f32>(e + F_PREV_X + 4, load<f32>(XF, 4));
    gruOutputs(e + F_OUT);
  } else {
    // Sparse tier: the hidden state and outputs keep their last dense values (the GRU resumes
    // from them if the user becomes dense again); no training step may follow this one.
    store<f32>(e + F_PREV_X, <f32>NaN);
  }
  store<u16>(e + F_LAST3 + (<usize>(n % 3) << 1), <u16>encU16(count));
  store<u32>(e, n + 1, F_N);
  return sampled;
}

/** LSTM-lite forecast of the count h buckets ahead (clipped at 0); 0 before the first bucket. */
export function lstmForecastCount(sp: usize, h: u32): f64 {
  const e = sp + Slot.ext;
  if (load<u32>(e, F_N) == 0) return 0.0;
  const o = h < 1 ? 0 : (h > <u32>LO ? LO - 1 : <i32>h - 1);
  const v = expm1D(<f64>load<f32>(e, F_LEVEL) + decI16(load<u16>(e + F_OUT + (<usize>o << 1))));
  return v > 0.0 ? v : 0.0;
}

/**
 * lstmForecastCount(sp, h) (0 when `dense` is false: the sparse tier) in lane 0 and the
 * daily-profile forecast at profile point `point` (profileForecastCount) in lane 1, both expm1 on
 * one f64x2.
 */
export function lstmProfileForecasts(sp: usize, h: u32, dense: bool, point: u32): v128 {
  const e = sp + Slot.ext;
  if (load<u32>(e, F_N) == 0) return f64x2.splat(0.0);
  const o = h < 1 ? 0 : (h > <u32>LO ? LO - 1 : <i32>h - 1);
  const a = <f64>load<f32>(e, F_LEVEL) + decI16(load<u16>(e + F_OUT + (<usize>o << 1)));
  const b = decLog(load<u16>(e + F_PROFILE + (<usize>point << 1)));
  // v > 0 ? v : 0 per lane (pmax(0, v) = 0 < v ? v : 0, so NaN -> 0 as in the scalar forms).
  const v = f64x2.pmax(f64x2.splat(0.0), expm1D2(f64x2.replace_lane(f64x2.splat(a), 1, b)));
  return dense ? v : f64x2.replace_lane(v, 0, 0.0);
}

/** Daily-profile forecast of the count at bucket-of-day `slotOfDay` (expm1 of the log profile). */
export function profileForecastCount(sp: usize, slotOfDay: u32, period: u32, points: u32): f64 {
  return profileForecastAt(sp, profilePoint(slotOfDay, period, points));
}
/** The same at profile point `point`. */
export function profileForecastAt(sp: usize, point: u32): f64 {
  const e = sp + Slot.ext;
  if (load<u32>(e, F_N) == 0) return 0.0;
  const v = expm1D(decLog(load<u16>(e + F_PROFILE + (<usize>point << 1))));
  return v > 0.0 ? v : 0.0;
}

/**
 * Seasonal naive at profile resolution: the count last stored at the point of `slotOfDay` on the
 * day before the target's day (target day mod 3 = `day3`).
 */
export function seasonalLastCount(sp: usize, slotOfDay: u32, day3: u32, period: u32, points: u32): f64 {
  return seasonalLastAt(sp, profilePoint(slotOfDay, period, points) * 3 + (day3 + 2) % 3, points);
}
/** The same from its cell of the count ring: cell = point * 3 + (target day mod 3 + 2) mod 3. */
export function seasonalLastAt(sp: usize, cell: u32, points: u32): f64 {
  const e = sp + Slot.ext;
  if (load<u32>(e, F_N) == 0) return 0.0;
  return decU8(load<u8>(countRing(e, points) + <usize>cell));
}

/** Median of the counts stored at the point of `slotOfDay` for the last three days. */
export function slotMedian3Count(sp: usize, slotOfDay: u32, period: u32, points: u32): f64 {
  return slotMedian3At(sp, profilePoint(slotOfDay, period, points), points);
}
/** The same at profile point `point`. */
export function slotMedian3At(sp: usize, point: u32, points: u32): f64 {
  const e = sp + Slot.ext;
  if (load<u32>(e, F_N) == 0) return 0.0;
  const q = countRing(e, points) + <usize>(point * 3);
  const a = decU8(load<u8>(q));
  const b = decU8(load<u8>(q, 1));
  const c = decU8(load<u8>(q, 2));
  return Math.max(Math.min(a, b), Math.min(Math.max(a, b), c));
}

/** Last count and the median of the last three counts (fewer at the start). */
export function lastCount(sp: usize): f64 {
  const e = sp + Slot.ext;
  const n = load<u32>(e, F_N);
  return n == 0 ? 0.0 : decU16(load<u16>(e + F_LAST3 + (<usize>((n - 1) % 3) << 1)));
}
export function median3Count(sp: usize): f64 {
  const e = sp + Slot.ext;
  const n = load<u32>(e, F_N);
  if (n == 0) return 0.0;
  if (n == 1) return decU16(load<u16>(e, F_LAST3));
  const a = decU16(load<u16>(e, F_LAST3));
  const b = decU16(load<u16>(e, F_LAST3 + 2));
  if (n == 2) return 0.5 * (a + b);
  const c = decU16(load<u16>(e, F_LAST3 + 4));
  return Math.max(Math.min(a, b), Math.min(Math.max(a, b), c));
}

/** Address of the shared weights (f64 x LSTM_PARAMS) and of the whole training block. */
export function lstmWeightsPtr(): usize {
  return PARAMS;
}
