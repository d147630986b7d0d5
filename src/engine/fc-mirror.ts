/**
 * TypeScript mirror of assembly/lstm.ts and assembly/ensemble.ts for the engine's reference core
 * (src/engine/reference.ts): the same per-user slot-extension layout and arithmetic, operating on
 * the reference's ArrayBuffer, so the differential tests compare WASM and reference bucket by
 * bucket. Keep the two in step; the harness-level models (lstm.ts, ensemble.ts) hold the design.
 */
import { SlotField as S } from "./regions.ts";
import { engineExpm1, engineLog1p, engineSigmoidF, engineTanhF } from "./fastmath.ts";
import { decI16, decLog, decU16, decU8, encI16, encLog, encU16, encU8 } from "./codec.ts";
import { GruOffset, LSTM_HIDDEN, LSTM_INPUTS, LSTM_LEVEL_ALPHA, LSTM_MAX_HORIZON, LSTM_PARAM_COUNT, LSTM_PROFILE_GAMMA } from "./gru.ts";

const LH = LSTM_HIDDEN;
const LX = LSTM_INPUTS;
const LO = LSTM_MAX_HORIZON;
// Per-user extension offsets (bytes after the slot's ext offset), as assembly/lstm.ts.
// Outputs 6 x u16 (encI16), last three counts 3 x u16 (encU16), log profile P x u16 (encLog), 3-day count ring 3P x u8 (encU8).
const F_N = 0, F_LEVEL = 4, F_H = 8, F_PREV_X = 40, F_OUT = 48, F_LAST3 = 60, F_PROFILE = 66;
/** Inputs of the GRU step after the bucket-only ones (2..5), in the order the engine adds them. */
const USER_INPUTS = [0, 1, 6, 7, 8] as const;
/**
 * One GRU step as the engine computes it (assembly/lstm.ts gruStep), in single precision (every
 * operation rounded with Math.fround, weights and inputs rounded to f32 first), with the engine's
 * expf (fastmath.ts) in the gates. Per unit: a = bias, then + W x for the bucket's inputs 2..5
 * (the engine computes that part once per bucket, lstmBucketInputs), then inputs 0, 1, 6, 7, 8,
 * then U h (k ascending).
 */
function engineGruStep(p: Float64Array, h: ArrayLike<number>, x: Float64Array, out: Float64Array): void {
  const { z: OZ, r: OR, n: ON, bu: OBU } = GruOffset;
  const fr = Math.fround;
  for (let i = 0; i < LH; i++) {
    let az = fr(p[OZ + LH * LX + LH * LH + i]);
    let ar = fr(p[OR + LH * LX + LH * LH + i]);
    let an = fr(p[ON + LH * LX + LH * LH + i]);
    let un = fr(p[OBU + i]);
    for (let k = 2; k < 6; k++) {
      const xk = fr(x[k]);
      az = fr(az + fr(fr(p[OZ + i * LX + k]) * xk));
      ar = fr(ar + fr(fr(p[OR + i * LX + k]) * xk));
      an = fr(an + fr(fr(p[ON + i * LX + k]) * xk));
    }
    for (const k of USER_INPUTS) {
      const xk = fr(x[k]);
      az = fr(az + fr(fr(p[OZ + i * LX + k]) * xk));
      ar = fr(ar + fr(fr(p[OR + i * LX + k]) * xk));
      an = fr(an + fr(fr(p[ON + i * LX + k]) * xk));
    }
    for (let k = 0; k < LH; k++) {
      const hk = h[k];
      az = fr(az + fr(fr(p[OZ + LH * LX + i * LH + k]) * hk));
      ar = fr(ar + fr(fr(p[OR + LH * LX + i * LH + k]) * hk));
      un = fr(un + fr(fr(p[ON + LH * LX + i * LH + k]) * hk));
    }
    const z = engineSigmoidF(az);
    const r = engineSigmoidF(ar);
    const n = engineTanhF(fr(an + fr(r * un)));
    out[i] = fr(fr(fr(1 - z) * n) + fr(z * h[i]));
  }
}

/**
 * The output layer as the engine computes it (assembly/lstm.ts gruOutputs): per head o, in f32
 * (Math.fround after every operation, weights and inputs 0, 1 rounded to f32 first):
 * bo_o + skip0_o x0 + skip1_o x1, then + Wo[o][k] h[k] (k ascending).
 */
function engineGruOutput(p: Float64Array, h: ArrayLike<number>, x: Float64Array, y: Float64Array): void {
  const { wo: OWO, bo: OBO, skip: OSK } = GruOffset;
  const fr = Math.fround;
  const x0 = fr(x[0]), x1 = fr(x[1]);
  for (let o = 0; o < LO; o++) {
    let v = fr(p[OBO + o]);
    v = fr(v + fr(fr(p[OSK + o]) * x0));
    v = fr(v + fr(fr(p[OSK + LO + o]) * x1));
    for (let k = 0; k < LH; k++) v = fr(v + fr(fr(p[OWO + o * LH + k]) * h[k]));
    y[o] = v;
  }
}

/** Members of the engine ensemble: naive, median-3, Holt-Winters, LSTM-lite, daily log profile. */
export const ENGINE_ENSEMBLE_MEMBERS = ["naive", "median3", "hw", "lstm", "profile", "snaive", "slotMedian3"] as const;
const EJ = ENGINE_ENSEMBLE_MEMBERS.length;
/** Largest horizon (buckets) the engine ensemble serves. */
export const ENGINE_ENSEMBLE_MAX_HORIZON = 6;
/** Pending forecasts by target mod RING (assembly/ensemble.ts: RING >= horizon suffices; sized for the largest). */
const RING = ENGINE_ENSEMBLE_MAX_HORIZON;
/** The LSTM member's index, and the pending-forecast code of a member that made none (assembly/ensemble.ts). */
const J_LSTM = ENGINE_ENSEMBLE_MEMBERS.indexOf("lstm");
const NO_FORECAST = 0xff;
const ERROR_DECAY = 0.9, QUANTILE_STEP = 0.05, SCALE_DECAY = 0.998;
// Ensemble offsets after align4(lstmBytes(P)): f32 bound offset and error scale; EJ x u16 errors
// (encU16); RING x u16 pending combined (encU16); RING x EJ u8 pending member forecasts (encU8).
// The current combined forecast (f32) is in the slot header (SlotField.fcComb).
const E_Q = 0, E_MAE = 4, E_ERR = 8, E_PCOMB = E_ERR + EJ * 2, E_PEND = E_PCOMB + RING * 2, E_BYTES = E_PEND + RING * EJ;
const eOffset = (points: number) => (lstmBytes(points) + 3) & ~3;
/** The 7-input sorting network of assembly/ensemble.ts combine (comparator pairs, in order). */
const SORT7 = [0, 6, 2, 3, 4, 5, 0, 2, 1, 4, 3, 6, 0, 1, 2, 5, 3, 4, 1, 2, 4, 6, 2, 3, 4, 5, 1, 2, 3, 4, 5, 6] as const;
/** Bytes of the shared training block: weights, Adam m1 and m2 (f64 each), step count. */
export const TRAIN_BLOCK_BYTES = (3 * LSTM_PARAM_COUNT + 1) * 8;

export function lstmBytes(points: number): number {
  return F_PROFILE + points * 5;
}
/** Slot-extension bytes for P season points (assembly/ensemble.ts fcExtBytes). */
export function fcExtBytes(points: number): number {
  return (eOffset(points) + E_BYTES + 7) & ~7;
}

/** Engine geometry the mirror needs (the reference core's params). */
export interface MirrorGeometry {
  ext: number;
  points: number;
  period: number;
  horizon: number;
  widthSec: number;
  phiSumH: number;
}

/** A training sample (assembly/lstm.ts recordSample): the previous step's inputs 0, 1 and hidden state, and the target. */
interface TrainSample {
  x0: number;
  x1: number;
  h: Float32Array;
  target: number;
}
/** assembly/lstm.ts TRAIN_TICK_BUCKETS, MAX_TRAIN_PER_BUCKET. */
const TRAIN_TICK_BUCKETS = 8;
const MAX_TRAIN_PER_BUCKET = 65536;

export class FcMirror {
  enabled = false;
  quantile = 0.95;
  trainPerBucket = 0;
  learningRate = 0.001;
  gradClip = 1.0;
  /** log1p of the dense tier's least count per bucket (assembly/lstm.ts Lstm.minLevel). */
  minLevel = 0;
  trainSteps = 0;
  trainLossSum = 0;
  /** Bucket closes of the last tick that ran the GRU, and all of them (assembly/ensemble.ts Fc). */
  denseCloses = 0;
  closes = 0;
  private f32 = new Float32Array(0);
  private u8 = new Uint8Array(0);
  private u16 = new Uint16Array(0);
  private u32 = new Uint32Array(0);
  private f64 = new Float64Array(0);
  private block = 0;
  private g: MirrorGeometry = { ext: 0, points: 0, period: 0, horizon: 0, widthSec: 0, phiSumH: 0 };
  private params = new Float64Array(0);
  private readonly x = new Float64Array(LX);
  private readonly hn = new Float64Array(LH);
  private readonly y = new Float64Array(LO);
  private readonly grad = new Float64Array(3 + LH);
  private readonly val = new Float64Array(EJ);
  private readonly wt = new Float64Array(EJ);
  /** The tick's first closed bucket and users tracked at its start (assembly/ensemble.ts Fc.tickStart, tickTracked). */
  private tickFirst = 0;
  private tickTracked = 0;
  /** Samples kept per closed bucket (assembly/lstm.ts Lstm.room) and the tick's samples by closed bucket. */
  private room = 0;
  private readonly samples: TrainSample[][] = Array.from({ length: TRAIN_TICK_BUCKETS }, () => []);
  private readonly sv = new Float64Array(EJ);
  private readonly sw = new Float64Array(EJ);

  configure(enabled: boolean, quantile: number, trainPerBucket: number, learningRate: number, gradClip: number, minCountPerBucket: number): number {
    Object.assign(this, { enabled, quantile, trainPerBucket: trainPerBucket >>> 0, learningRate, gradClip, minLevel: engineLog1p(Math.max(0, minCountPerBucket)) });
    return 0;
  }

  /** Binds the mirror to the reference's memory; `block` = byte offset of the training block (8-aligned). */
  attach(buf: ArrayBuffer, block: number, g: MirrorGeometry): void {
    this.f32 = new Float32Array(buf);
    this.u8 = new Uint8Array(buf);
    this.u16 = new Uint16Array(buf);
    this.u32 = new Uint32Array(buf);
    this.f64 = new Float64Array(buf);
    this.block = block;
    this.g = g;
    this.params = new Float64Array(buf, block, LSTM_PARAM_COUNT);
  }

  private lf32(a: number): number {
    return this.f32[a >> 2];
  }

  /** assembly/lstm.ts trainStep: Adam on the horizon-1 head's output weights only, from a sample. */
  private trainStep(sample: TrainSample): number {
    const { grad, params: p } = this;
    const GATE = LH * LX + LH * LH + LH;
    const OFF_WO = 3 * GATE + LH, OFF_BO = OFF_WO + LO * LH, OFF_SKIP = OFF_BO + LO;
    const { x0, x1, h, target } = sample;
    let y = p[OFF_BO] + p[OFF_SKIP] * x0 + p[OFF_SKIP + LO] * x1;
    for (let k = 0; k < LH; k++) y += p[OFF_WO + k] * h[k];
    const d = y - target;
    const gy = (d > 0 ? 1 : d < 0 ? -1 : 0) / LO;
    grad[0] = gy;
    grad[1] = gy * x0;
    grad[2] = gy * x1;
    for (let k = 0; k < LH; k++) grad[3 + k] = gy * h[k];
    const nHead = 3 + LH;
    let norm = 0;
    for (let i = 0; i < nHead; i++) norm += grad[i] * grad[i];
    norm = Math.sqrt(norm);
    const scale = norm > this.gradClip ? this.gradClip / norm : 1;
    const f64 = this.f64;
    const b = this.block >> 3;
    const m1o = b + LSTM_PARAM_COUNT, m2o = b + 2 * LSTM_PARAM_COUNT, so = b + 3 * LSTM_PARAM_COUNT;
    const stepN = f64[so] + 1;
    f64[so] = stepN;
    const b1 = 0.9, b2 = 0.999;
    const c1 = 1 - Math.pow(b1, stepN), c2 = 1 - Math.pow(b2, stepN);
    for (let i = 0; i < nHead; i++) {
      const idx = i === 0 ? OFF_BO : i === 1 ? OFF_SKIP : i === 2 ? OFF_SKIP + LO : OFF_WO + (i - 3);
      const gi = grad[i] * scale;
      const m1 = b1 * f64[m1o + idx] + (1 - b1) * gi;
      const m2 = b2 * f64[m2o + idx] + (1 - b2) * gi * gi;
      f64[m1o + idx] = m1;
      f64[m2o + idx] = m2;
      p[idx] = p[idx] - (this.learningRate * (m1 / c1)) / (Math.sqrt(m2 / c2) + 1e-8);
    }
    return Math.abs(d);
  }

  /** assembly/lstm.ts lstmUpdate; `train`: record a training sample of the previous step for the tick's k-th closed bucket. */
  private lstmUpdate(sp: number, count: number, slotOfDay: number, dayOfWeek: number, day3: number, cv: number, tokPerReq: number, throttled: number, train: boolean, k: number): void {
    const { f32, u16, u32, x } = this;
    const { points, period } = this.g;
    const e = sp + this.g.ext;
    const n = u32[(e + F_N) >> 2];
    const ly = engineLog1p(Math.max(0, count));
    const prevLevel = f32[(e + F_LEVEL) >> 2];
    const level = Math.fround(n === 0 ? ly : prevLevel + LSTM_LEVEL_ALPHA * (ly - prevLevel));
    const dense = level >= this.minLevel;
    if (train && dense && n >= 1 && !Number.isNaN(f32[(e + F_PREV_X) >> 2])) {
      const h = (e + F_H) >> 2;
      this.samples[k].push({ x0: f32[(e + F_PREV_X) >> 2], x1: f32[((e + F_PREV_X) >> 2) + 1], h: f32.slice(h, h + LH), target: ly - prevLevel });
    }
    f32[(e + F_LEVEL) >> 2] = level;
    const prof = (e + F_PROFILE) >> 1;
    const ring = e + F_PROFILE + 2 * points; // 3P x u8 counts (encU8)
    if (n === 0) {
      u16.fill(encLog(ly), prof, prof + points);
      this.u8.fill(encU8(count), ring, ring + 3 * points);
    }
    const point = Math.floor((slotOfDay * points) / period);
    const pi = prof + point;
    const pv = decLog(u16[pi]);
    u16[pi] = encLog(pv + LSTM_PROFILE_GAMMA * (ly - pv));
    this.u8[ring + point * 3 + day3] = encU8(count);
    if (!dense) {
      f32[(e + F_PREV_X) >> 2] = NaN;
      u16[((e + F_LAST3) >> 1) + (n % 3)] = encU16(count);
      u32[(e + F_N) >> 2] = n + 1;
      return;
    }
    const next = (slotOfDay + 1) % period;
    const sNext = decLog(u16[prof + Math.floor((next * points) / period)]);
    const tod = (2.0 * Math.PI * slotOfDay) / period;
    const dow = (2.0 * Math.PI * (dayOfWeek + slotOfDay / period)) / 7.0;
    x[0] = ly - level;
    x[1] = sNext - level;
    x[2] = Math.sin(tod);
    x[3] = Math.cos(tod);
    x[4] = Math.sin(dow);
    x[5] = Math.cos(dow);
    x[6] = Math.min(cv, 10.0) / 10.0;
    x[7] = engineLog1p(Math.max(0.0, tokPerReq)) / 10.0;
    x[8] = throttled;
    const hv = f32.subarray((e + F_H) >> 2, ((e + F_H) >> 2) + LH);
    engineGruStep(this.params, hv, x, this.hn);
    for (let k = 0; k < LH; k++) hv[k] = this.hn[k];
    f32[(e + F_PREV_X) >> 2] = x[0];
    f32[((e + F_PREV_X) >> 2) + 1] = x[1];
    engineGruOutput(this.params, hv, x, this.y);
    for (let o = 0; o < LO; o++) u16[((e + F_OUT) >> 1) + o] = encI16(this.y[o]);
    u16[((e + F_LAST3) >> 1) + (n % 3)] = encU16(count);
    u32[(e + F_N) >> 2] = n + 1;
  }

  /**
   * Start of a tick that closes buckets at `first` with `tracked` users (assembly/ensemble.ts
   * fcTickStart and fcRangeStart; the weights need no packing here). `capacity`: the engine's.
   */
  tickStart(first: number, tracked: number, capacity: number): void {
    this.denseCloses = 0;
    this.closes = 0;
    this.tickFirst = first;
    this.tickTracked = tracked;
    this.room = Math.min(this.trainPerBucket, capacity, MAX_TRAIN_PER_BUCKET);
    for (const list of this.samples) list.length = 0;
  }

  /** End of a tick that closed `buckets` buckets (assembly/ensemble.ts fcTickEnd): the samples, bucket by bucket, in slot order. */
  tickEnd(buckets: number): void {
    if (this.trainPerBucket === 0) return;
    for (let k = 0; k < Math.min(buckets, TRAIN_TICK_BUCKETS); k++) {
      for (const sample of this.samples[k].slice(0, this.room)) {
        this.trainLossSum += this.trainStep(sample);
        this.trainSteps += 1;
      }
    }
  }

  /** assembly/lstm.ts lstmIsDense. */
  isDense(sp: number): boolean {
    const e = sp + this.g.ext;
    return this.u32[(e + F_N) >> 2] !== 0 && this.f32[(e + F_LEVEL) >> 2] >= this.minLevel;
  }

  lstmForecastCount(sp: number, h: number): number {
    const e = sp + this.g.ext;
    if (this.u32[(e + F_N) >> 2] === 0) return 0;
    const o = h < 1 ? 0 : h > LO ? LO - 1 : h - 1;
    const v = engineExpm1(this.f32[(e + F_LEVEL) >> 2] + decI16(this.u16[((e + F_OUT) >> 1) + o]));
    return v > 0 ? v : 0;
  }
  profileForecastCount(sp: number, slotOfDay: number): number {
    const e = sp + this.g.ext;
    if (this.u32[(e + F_N) >> 2] === 0) return 0;
    const v = engineExpm1(decLog(this.u16[((e + F_PROFILE) >> 1) + Math.floor((slotOfDay * this.g.points) / this.g.period)]));
    return v > 0 ? v : 0;
  }
  seasonalLastCount(sp: number, slotOfDay: number, day3: number): number {
    const e = sp + this.g.ext;
    if (this.u32[(e + F_N) >> 2] === 0) return 0;
    const point = Math.floor((slotOfDay * this.g.points) / this.g.period);
    return decU8(this.u8[e + F_PROFILE + 2 * this.g.points + point * 3 + ((day3 + 2) % 3)]);
  }
  slotMedian3Count(sp: number, slotOfDay: number): number {
    const e = sp + this.g.ext;
    if (this.u32[(e + F_N) >> 2] === 0) return 0;
    const q = e + F_PROFILE + 2 * this.g.points + Math.floor((slotOfDay * this.g.points) / this.g.period) * 3;
    const a = decU8(this.u8[q]), b = decU8(this.u8[q + 1]), c = decU8(this.u8[q + 2]);
    return Math.max(Math.min(a, b), Math.min(Math.max(a, b), c));
  }
  lastCount(sp: number): number {
    const e = sp + this.g.ext;
    const n = this.u32[(e + F_N) >> 2];
    return n === 0 ? 0 : decU16(this.u16[((e + F_LAST3) >> 1) + ((n - 1) % 3)]);
  }
  median3Count(sp: number): number {
    const e = sp + this.g.ext;
    const n = this.u32[(e + F_N) >> 2];
    if (n === 0) return 0;
    const l = (e + F_LAST3) >> 1;
    const a = decU16(this.u16[l]);
    if (n === 1) return a;
    const b = decU16(this.u16[l + 1]);
    if (n === 2) return 0.5 * (a + b);
    const c = decU16(this.u16[l + 2]);
    return Math.max(Math.min(a, b), Math.min(Math.max(a, b), c));
  }

  /** assembly/ensemble.ts combine: weighted mean, then the weighted median over the sorting network's order. */
  private combine(e: number, skip: number): number {
    const { u16, val, wt } = this;
    let ws = 0, fm = 0;
    for (let j = 0; j < EJ; j++) {
      const a = decU16(u16[(e + E_ERR + 2 * j) >> 1]) + 1e-6;
      const a2 = a * a;
      const w = j === skip ? 0 : 1.0 / (a2 * a2);
      wt[j] = w;
      ws += w;
      fm += w * val[j];
    }
    if (!(ws > 0) || !Number.isFinite(fm / ws)) return val[0];
    const mean = Math.max(0, fm / ws);
    const v = this.sv, w = this.sw;
    v.set(val);
    w.set(wt);
    for (let i = 0; i < SORT7.length; i += 2) {
      const a = SORT7[i], b = SORT7[i + 1];
      if (v[b] < v[a]) {
        const t = v[a];
        v[a] = v[b];
        v[b] = t;
        const u = w[a];
        w[a] = w[b];
        w[b] = u;
      }
    }
    const half = 0.5 * ws;
    let acc = 0, k = 0;
    for (; k < EJ - 1; k++) {
      acc += w[k];
      if (!(acc < half)) break;
    }
    return 0.5 * (mean + v[k]);
  }

  /**
   * The reference's hook after hwUpdate (assembly/ensemble.ts fcOnClose). `hwAt(i0, i1, f)` is
   * the reference's Holt-Winters forecast (req/s) at the configured horizon for that position.
   */
  onClose(sp: number, c: number, y: number, hwAt: (i0: number, i1: number, f: number) => number): void {
    const { f32, u16, u32, f64 } = this;
    const { period: D, points: P, horizon: h, widthSec } = this.g;
    const phase = (c + h) % D;
    const xpos = (phase * P) / D;
    const fl = Math.floor(xpos);
    let i0 = fl;
    if (i0 >= P) i0 = P - 1;
    const i1 = i0 + 1 === P ? 0 : i0 + 1;
    const nReq = u32[(sp + S.cCount) >> 2];
    const tokPerReq = nReq > 0 ? (f64[(sp + S.cInTok) >> 3] + f64[(sp + S.cOutTok) >> 3]) / nReq : 0;
    const throttled = nReq > 0 ? u32[(sp + S.cThrottled) >> 2] / nReq : 0;
    const cv = f32[(sp + S.cCv) >> 2];
    const count = y * widthSec;
    const e = sp + this.g.ext + eOffset(P);
    const nBefore = u32[(sp + this.g.ext) >> 2];
    if (nBefore >= h) {
      const slot = c % RING;
      for (let j = 0; j < EJ; j++) {
        const code = this.u8[e + E_PEND + slot * EJ + j];
        if (code === NO_FORECAST) continue;
        const pj = decU8(code);
        const ej = (e + E_ERR + j * 2) >> 1;
        const a = Math.abs(count - pj);
        u16[ej] = encU16(nBefore === h ? a : ERROR_DECAY * decU16(u16[ej]) + (1 - ERROR_DECAY) * a);
      }
      const fc = decU16(u16[(e + E_PCOMB + slot * 2) >> 1]);
      const err = Math.abs(count - fc);
      const mae0 = f32[(e + E_MAE) >> 2];
      const mae = Number.isNaN(mae0) ? err : SCALE_DECAY * mae0 + (1 - SCALE_DECAY) * err;
      f32[(e + E_MAE) >> 2] = mae;
      const scale = Math.max(mae, 1e-3 * (1 + fc));
      let q = f32[(e + E_Q) >> 2];
      q += QUANTILE_STEP * scale * (count > fc + q ? this.quantile : -(1 - this.quantile));
      f32[(e + E_Q) >> 2] = q < 0 ? 0 : q;
    } else if (nBefore === 0) {
      f32[(e + E_MAE) >> 2] = NaN;
      for (let j = 0; j < EJ; j++) u16[(e + E_ERR + j * 2) >> 1] = encU16(1);
    }
    let train = false;
    const k = c - this.tickFirst;
    if (this.trainPerBucket > 0 && k < TRAIN_TICK_BUCKETS && this.samples[k].length < this.room) {
      let xh = (u32[(sp + S.hashLo) >> 2] ^ Math.imul(c, 0x9e3779b1)) >>> 0;
      xh = (xh ^ (xh >>> 16)) >>> 0;
      xh = Math.imul(xh, 0x85ebca6b) >>> 0;
      xh = (xh ^ (xh >>> 13)) >>> 0;
      const users = this.tickTracked > 0 ? this.tickTracked : 1;
      if (xh % users < this.trainPerBucket) train = true;
    }
    this.lstmUpdate(sp, count, c % D, Math.floor(c / D) % 7, Math.floor(c / D) % 3, cv, tokPerReq, throttled, train, k);
    const target = c + h;
    const val = this.val;
    val[0] = this.lastCount(sp);
    val[1] = this.median3Count(sp);
    val[2] = hwAt(i0, i1, xpos - fl) * widthSec;
    const dense = this.isDense(sp);
    this.closes++;
    if (dense) this.denseCloses++;
    val[3] = dense ? this.lstmForecastCount(sp, h) : 0;
    val[4] = this.profileForecastCount(sp, target % D);
    val[5] = this.seasonalLastCount(sp, target % D, Math.floor(target / D) % 3);
    val[6] = this.slotMedian3Count(sp, target % D);
    const comb = this.combine(e, dense ? EJ : J_LSTM);
    const ts = target % RING;
    for (let j = 0; j < EJ; j++) this.u8[e + E_PEND + ts * EJ + j] = j === J_LSTM && !dense ? NO_FORECAST : Math.min(encU8(val[j]), NO_FORECAST - 1);
    u16[(e + E_PCOMB + ts * 2) >> 1] = encU16(comb);
    f32[(sp + S.fcComb) >> 2] = comb;
  }

  rate(sp: number): number {
    return this.f32[(sp + S.fcComb) >> 2] / this.g.widthSec;
  }
  upper(sp: number): number {
    const e = sp + this.g.ext + eOffset(this.g.points);
    return (this.f32[(sp + S.fcComb) >> 2] + this.f32[(e + E_Q) >> 2]) / this.g.widthSec;
  }
}
