/**
 * LSTM-lite: a small recurrent forecaster whose weights are shared by all users, with a per-user
 * hidden state of HIDDEN floats. The cell is a GRU (the issue allows LSTM or GRU; a GRU needs
 * no separate cell state, so the per-user state is half an LSTM's: 8 × f32 = 32 bytes).
 *
 * Everything is level-normalised so one set of weights fits users of any volume: the user's level
 * L is an EW mean of log1p(count); inputs and targets are log1p(count) − L. The model outputs,
 * for every horizon h = 1..MAX_HORIZON, the predicted log1p(count[t+h]) − L, and is trained with
 * absolute loss: the median is invariant under the monotone log1p, so the back-transformed
 * forecast expm1(L + out) is a median forecast of the count, the MAE-optimal point forecast.
 *
 * Inputs per bucket (INPUTS = 9): log1p(y) − L; the user's daily log profile at the next bucket − L
 * (an EW mean of log1p(count) per bucket of the day, LSTM_PROFILE_POINTS points kept per user);
 * sin/cos of time of day; sin/cos of day of week; burstiness (min(iatCv, 10) / 10); tokens per
 * request (log1p / 10); throttled share. Training: truncated BPTT over a window of buckets, Adam,
 * gradient-norm clipping; offline by `foresight train` and online on a sample of users per tick.
 */
// One gradient clip for offline pre-training and the engine's online training.
import { LSTM_GRAD_CLIP } from "../engine/options.ts";
import type { BucketContext, UserForecaster } from "./models.ts";
import { DEFAULT_SEASON_BUCKETS } from "./models.ts";
import { xorshift32 } from "../util/random.ts";
import {
  GruOffset, gruOutput, gruStep, LSTM_HIDDEN, LSTM_INPUTS, LSTM_LEVEL_ALPHA, LSTM_MAX_HORIZON, LSTM_PARAM_COUNT,
  LSTM_PROFILE_GAMMA, LstmWeights,
} from "../engine/gru.ts";

// The shared GRU (shapes, weights, blob format, step) lives with the engine; re-exported here.
export { gruOutput, gruStep, LSTM_HIDDEN, LSTM_INPUTS, LSTM_LEVEL_ALPHA, LSTM_MAX_HORIZON, LSTM_PARAM_COUNT, LSTM_PROFILE_GAMMA, LstmWeights };

/** Default truncated-BPTT window in buckets. */
export const DEFAULT_BPTT_WINDOW = 24;
/** Default Adam learning rate. */
export const DEFAULT_LEARNING_RATE = 0.003;

const H = LSTM_HIDDEN;
const X = LSTM_INPUTS;
const O = LSTM_MAX_HORIZON;
const { z: OFF_Z, r: OFF_R, n: OFF_N, bu: OFF_BU, wo: OFF_WO, bo: OFF_BO, skip: OFF_SKIP } = GruOffset;

/**
 * Updates the daily log profile (`profile`, P points, stored as f32 like the WASM slot) with the
 * bucket at `slotOfDay` of `period` buckets per day, and returns the profile at the next bucket.
 * The first observation fills every point, so a new user's profile starts flat at its level.
 */
export function profileStep(profile: Float32Array, first: boolean, ly: number, slotOfDay: number, period: number): number {
  const P = profile.length;
  if (first) profile.fill(ly);
  const i = Math.floor((slotOfDay * P) / period);
  profile[i] = profile[i] + LSTM_PROFILE_GAMMA * (ly - profile[i]);
  const next = (slotOfDay + 1) % period;
  return profile[Math.floor((next * P) / period)];
}

/** Fills `x` (length LSTM_INPUTS) with the normalised input of one bucket. */
export function lstmInput(x: Float64Array, logY: number, logSeasonNext: number, level: number, ctx: BucketContext, seasonBuckets = DEFAULT_SEASON_BUCKETS): void {
  const tod = (2 * Math.PI * ctx.slotOfDay) / seasonBuckets;
  const dow = (2 * Math.PI * (ctx.dayOfWeek + ctx.slotOfDay / seasonBuckets)) / 7;
  x[0] = logY - level;
  x[1] = logSeasonNext - level;
  x[2] = Math.sin(tod);
  x[3] = Math.cos(tod);
  x[4] = Math.sin(dow);
  x[5] = Math.cos(dow);
  x[6] = Math.min(ctx.iatCv, 10) / 10;
  x[7] = Math.log1p(Math.max(0, ctx.tokensPerRequest)) / 10;
  x[8] = ctx.throttledShare;
}

/** One user's LSTM-lite state and forecaster (TS reference). */
export class LstmLiteModel implements UserForecaster {
  /** Per-user state (f32, as in the WASM slot): hidden vector, level, daily log profile. */
  readonly h = new Float32Array(H);
  level = NaN;
  private readonly profile: Float32Array;
  private n = 0;
  private readonly x = new Float64Array(X);
  private readonly hNext = new Float64Array(H);
  private readonly out = new Float64Array(O);
  constructor(
    readonly weights: LstmWeights,
    readonly seasonBuckets = DEFAULT_SEASON_BUCKETS,
    /** Points of the daily log profile (the engine's seasonPoints). Default: one per bucket. */
    profilePoints = seasonBuckets,
  ) {
    this.profile = new Float32Array(profilePoints);
  }
  observe(count: number, ctx: BucketContext): void {
    const ly = Math.log1p(Math.max(0, count));
    this.level = Math.fround(Number.isNaN(this.level) ? ly : this.level + LSTM_LEVEL_ALPHA * (ly - this.level));
    const sNext = profileStep(this.profile, this.n === 0, ly, ctx.slotOfDay, this.seasonBuckets);
    this.lastSlot = ctx.slotOfDay;
    this.n++;
    lstmInput(this.x, ly, sNext, this.level, ctx, this.seasonBuckets);
    gruStep(this.weights.params, this.h, this.x, this.hNext);
    this.h.set(this.hNext);
    gruOutput(this.weights.params, this.h, this.x, this.out);
  }
  /** The daily log profile's forecast of the count hz buckets ahead (an ensemble member in the engine). */
  profileForecast(hz: number): number {
    if (this.n === 0) return 0;
    const slot = (this.lastSlot + hz) % this.seasonBuckets;
    const v = Math.expm1(this.profile[Math.floor((slot * this.profile.length) / this.seasonBuckets)]);
    return v > 0 ? v : 0;
  }
  private lastSlot = 0;

  forecast(hz: number): number {
    if (Number.isNaN(this.level)) return 0;
    const v = this.out[Math.min(hz, O) - 1];
    return Math.max(0, Math.expm1(this.level + v));
  }
}

/** Options of {@link trainLstm}. */
export interface TrainOptions {
  /** Passes over the training sequences. Default 3. */
  epochs?: number;
  /** Truncated-BPTT window in buckets. Default {@link DEFAULT_BPTT_WINDOW}. */
  bpttWindow?: number;
  /** Adam learning rate. Default {@link DEFAULT_LEARNING_RATE}. */
  learningRate?: number;
  /** Gradient L2-norm clip. Default {@link LSTM_GRAD_CLIP}. */
  gradClip?: number;
  /** Seed of the initialisation and the shuffling. Default 1. */
  seed?: number;
  /** Seasonal period in buckets. Default {@link DEFAULT_SEASON_BUCKETS}. */
  seasonBuckets?: number;
  /** Called after each epoch with the mean absolute loss (log space). */
  onEpoch?: (epoch: number, loss: number) => void;
}

/** One training sequence: a user's counts and contexts over the training split. */
export interface TrainSequence {
  counts: ArrayLike<number>;
  iatCv?: ArrayLike<number>;
  tokensPerRequest?: ArrayLike<number>;
}

/**
 * Precomputes a sequence's inputs and targets: X[t] (inputs after bucket t) and the target
 * log1p(y[t+h]) − L[t] for every horizon (NaN past the end).
 */
function prepare(seq: TrainSequence, m: number) {
  const T = seq.counts.length;
  const xs = new Float64Array(T * X);
  const ts = new Float64Array(T * O);
  const levels = new Float64Array(T);
  const ly = new Float64Array(T);
  for (let t = 0; t < T; t++) ly[t] = Math.log1p(Math.max(0, seq.counts[t]));
  let L = NaN;
  const profile = new Float32Array(m);
  const x = new Float64Array(X);
  const ctx: BucketContext = { index: 0, slotOfDay: 0, dayOfWeek: 0, iatCv: 0, tokensPerRequest: 0, throttledShare: 0 };
  for (let t = 0; t < T; t++) {
    L = Math.fround(Number.isNaN(L) ? ly[t] : L + LSTM_LEVEL_ALPHA * (ly[t] - L));
    levels[t] = L;
    ctx.index = t;
    ctx.slotOfDay = t % m;
    ctx.dayOfWeek = Math.floor(t / m) % 7;
    ctx.iatCv = seq.iatCv?.[t] ?? 0;
    ctx.tokensPerRequest = seq.tokensPerRequest?.[t] ?? 0;
    const sNext = profileStep(profile, t === 0, ly[t], t % m, m);
    lstmInput(x, ly[t], sNext, L, ctx, m);
    xs.set(x, t * X);
    for (let o = 0; o < O; o++) ts[t * O + o] = t + o + 1 < T ? ly[t + o + 1] - L : NaN;
  }
  return { T, xs, ts };
}

/**
 * Trains shared weights on many users' sequences with truncated BPTT (window W, state carried
 * across windows without gradient), absolute loss over all horizons, Adam and norm clipping.
 * Returns the final epoch's mean loss.
 */
export function trainLstm(weights: LstmWeights, seqs: TrainSequence[], opts: TrainOptions = {}): number {
  const epochs = opts.epochs ?? 3;
  const W = opts.bpttWindow ?? DEFAULT_BPTT_WINDOW;
  const lr = opts.learningRate ?? DEFAULT_LEARNING_RATE;
  const clip = opts.gradClip ?? LSTM_GRAD_CLIP;
  const m = opts.seasonBuckets ?? DEFAULT_SEASON_BUCKETS;
  const prepared = seqs.map((s) => prepare(s, m));
  const trainer = new BpttTrainer(weights, { learningRate: lr, gradClip: clip });
  const rand = xorshift32(opts.seed ?? 1);
  let lastLoss = NaN;
  for (let e = 0; e < epochs; e++) {
    // Interleave users window by window (shuffled), so updates mix users as online training does.
    const jobs: [number, number][] = [];
    for (let u = 0; u < prepared.length; u++) for (let t0 = 0; t0 < prepared[u].T; t0 += W) jobs.push([u, t0]);
    for (let i = jobs.length - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      [jobs[i], jobs[j]] = [jobs[j], jobs[i]];
    }
    // The hidden state entering each window is recomputed by running the user's prefix forward
    // (cheap at these sizes), since windows are visited out of order.
    const hIn = prepared.map((pp) => new Float64Array(pp.T * H));
    for (let u = 0; u < prepared.length; u++) forwardStates(weights.params, prepared[u].xs, prepared[u].T, hIn[u]);
    let lossSum = 0;
    let lossN = 0;
    for (const [u, t0] of jobs) {
      const pp = prepared[u];
      const len = Math.min(W, pp.T - t0);
      const h0 = t0 === 0 ? new Float64Array(H) : hIn[u].subarray((t0 - 1) * H, t0 * H);
      const r = trainer.step(h0, pp.xs.subarray(t0 * X, (t0 + len) * X), pp.ts.subarray(t0 * O, (t0 + len) * O), len);
      lossSum += r.lossSum;
      lossN += r.count;
    }
    lastLoss = lossN ? lossSum / lossN : NaN;
    opts.onEpoch?.(e, lastLoss);
  }
  return lastLoss;
}

/** Runs the GRU over a whole sequence, writing the hidden state after every bucket. */
function forwardStates(p: Float64Array, xs: Float64Array, T: number, hs: Float64Array): void {
  const h = new Float64Array(H);
  const hn = new Float64Array(H);
  for (let t = 0; t < T; t++) {
    gruStep(p, h, xs.subarray(t * X, (t + 1) * X), hn);
    h.set(hn);
    hs.set(h, t * H);
  }
}

/** Options of {@link BpttTrainer}. */
export interface TrainerOptions {
  /** Adam learning rate. Default {@link DEFAULT_LEARNING_RATE}. */
  learningRate?: number;
  /** Gradient L2-norm clip. Default {@link LSTM_GRAD_CLIP}. */
  gradClip?: number;
}

/** Truncated BPTT with Adam over shared weights; used offline and for online per-tick updates. */
export class BpttTrainer {
  private readonly g = new Float64Array(LSTM_PARAM_COUNT);
  private readonly m1 = new Float64Array(LSTM_PARAM_COUNT);
  private readonly m2 = new Float64Array(LSTM_PARAM_COUNT);
  private stepN = 0;
  private readonly lr: number;
  private readonly clip: number;
  constructor(
    readonly weights: LstmWeights,
    opts: TrainerOptions = {},
  ) {
    this.lr = opts.learningRate ?? DEFAULT_LEARNING_RATE;
    this.clip = opts.gradClip ?? LSTM_GRAD_CLIP;
  }

  /**
   * One update from a window: h0 = state before the window, xs = len inputs, targets = len × O
   * (NaN = unknown, skipped). Returns the absolute loss sum and the number of scored targets.
   */
  step(h0: Float64Array, xs: Float64Array, targets: Float64Array, len: number): { lossSum: number; count: number } {
    const r = this.gradient(h0, xs, targets, len);
    if (r.count > 0) this.apply();
    return r;
  }

  /**
   * Fills the gradient (see {@link gradientView}) of (1/len) Σ_t Σ_h |out_h(t) − target_h(t)| / O
   * over the window, without changing the weights.
   */
  gradient(h0: Float64Array, xs: Float64Array, targets: Float64Array, len: number): { lossSum: number; count: number } {
    const p = this.weights.params;
    const g = this.g;
    g.fill(0);
    const hs = new Float64Array((len + 1) * H);
    const cache = new Float64Array(len * 4 * H);
    hs.set(h0.subarray(0, H), 0);
    const hn = new Float64Array(H);
    for (let t = 0; t < len; t++) {
      gruStep(p, hs.subarray(t * H, (t + 1) * H), xs.subarray(t * X, (t + 1) * X), hn, cache.subarray(t * 4 * H, (t + 1) * 4 * H));
      hs.set(hn, (t + 1) * H);
    }
    let lossSum = 0;
    let count = 0;
    const dh = new Float64Array(H);
    const dhPrev = new Float64Array(H);
    const y = new Float64Array(O);
    for (let t = len - 1; t >= 0; t--) {
      const ht = hs.subarray((t + 1) * H, (t + 2) * H);
      const x = xs.subarray(t * X, (t + 1) * X);
      gruOutput(p, ht, x, y);
      // Output-layer gradient of Σ_h |y_h − target_h| (sign subgradient), averaged over horizons.
      for (let o = 0; o < O; o++) {
        const tg = targets[t * O + o];
        if (Number.isNaN(tg)) continue;
        const d = y[o] - tg;
        lossSum += Math.abs(d);
        count++;
        const gy = (d > 0 ? 1 : d < 0 ? -1 : 0) / O;
        g[OFF_BO + o] += gy;
        g[OFF_SKIP + o] += gy * x[0];
        g[OFF_SKIP + O + o] += gy * x[1];
        for (let k = 0; k < H; k++) {
          g[OFF_WO + o * H + k] += gy * ht[k];
          dh[k] += gy * p[OFF_WO + o * H + k];
        }
      }
      // Back through the GRU step t.
      const hp = hs.subarray(t * H, (t + 1) * H);
      const c = cache.subarray(t * 4 * H, (t + 1) * 4 * H);
      dhPrev.fill(0);
      for (let i = 0; i < H; i++) {
        const z = c[i], r = c[H + i], n = c[2 * H + i], un = c[3 * H + i];
        const dhi = dh[i];
        dhPrev[i] += dhi * z;
        const dz = dhi * (hp[i] - n) * z * (1 - z);
        const dn = dhi * (1 - z) * (1 - n * n);
        const dr = dn * un * r * (1 - r);
        const dun = dn * r;
        g[OFF_Z + H * X + H * H + i] += dz;
        g[OFF_R + H * X + H * H + i] += dr;
        g[OFF_N + H * X + H * H + i] += dn;
        g[OFF_BU + i] += dun;
        for (let k = 0; k < X; k++) {
          g[OFF_Z + i * X + k] += dz * x[k];
          g[OFF_R + i * X + k] += dr * x[k];
          g[OFF_N + i * X + k] += dn * x[k];
        }
        for (let k = 0; k < H; k++) {
          g[OFF_Z + H * X + i * H + k] += dz * hp[k];
          g[OFF_R + H * X + i * H + k] += dr * hp[k];
          g[OFF_N + H * X + i * H + k] += dun * hp[k];
          dhPrev[k] += dz * p[OFF_Z + H * X + i * H + k] + dr * p[OFF_R + H * X + i * H + k] + dun * p[OFF_N + H * X + i * H + k];
        }
      }
      dh.set(dhPrev);
    }
    for (let i = 0; i < LSTM_PARAM_COUNT; i++) g[i] /= len;
    return { lossSum, count };
  }

  /** The last computed gradient (read-only use; for tests). */
  get gradientView(): Float64Array {
    return this.g;
  }

  /** One Adam update from the last gradient, its global L2 norm clipped first. */
  private apply(): void {
    const p = this.weights.params;
    const g = this.g;
    let norm = 0;
    for (let i = 0; i < LSTM_PARAM_COUNT; i++) norm += g[i] * g[i];
    norm = Math.sqrt(norm);
    const scale = norm > this.clip ? this.clip / norm : 1;
    this.stepN++;
    const b1 = 0.9, b2 = 0.999;
    const c1 = 1 - Math.pow(b1, this.stepN), c2 = 1 - Math.pow(b2, this.stepN);
    for (let i = 0; i < LSTM_PARAM_COUNT; i++) {
      const gi = g[i] * scale;
      this.m1[i] = b1 * this.m1[i] + (1 - b1) * gi;
      this.m2[i] = b2 * this.m2[i] + (1 - b2) * gi * gi;
      p[i] -= (this.lr * (this.m1[i] / c1)) / (Math.sqrt(this.m2[i] / c2) + 1e-8);
    }
  }
}
