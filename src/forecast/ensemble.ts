/**
 * Per-user ensemble: combines member forecasters by their recent errors at each horizon, and
 * bounds the combined forecast from above with an online quantile of its own residuals.
 *
 * Weights: for horizon h, member j gets w = 1 / (E[h][j] + eps)^power, where E is the
 * exponentially weighted mean absolute h-step error of j's forecasts (each forecast is scored
 * when its target bucket closes, so a forecast of t+h uses only errors of targets up to t).
 * A high power makes the ensemble close to "pick the member that has been best lately for this
 * user at this horizon", which is what this bursty, persistent traffic rewards. The combined
 * forecast is the average of the weighted mean and the weighted median of the members: the
 * median part keeps one member's burst from moving the forecast (MAE rewards medians).
 *
 * Upper bound: combined + q[h], with q[h] tracked online from the combined forecast's own
 * residuals (see upper.ts), so the share of buckets above the bound converges to 1 − quantile.
 */
import type { BucketContext, UserForecaster } from "./models.ts";
import { DEFAULT_QUANTILE_STEP, DEFAULT_SCALE_DECAY, ResidualQuantile } from "./upper.ts";

/** Default quantile of the upper bound (share of buckets at or below it). */
export const DEFAULT_QUANTILE = 0.95;
/** Default per-bucket decay of the members' error averages (0.9 ≈ a 10-bucket memory; tuned on train). */
export const DEFAULT_ERROR_DECAY = 0.9;
/** Default exponent on the inverse errors (4 ≈ soft selection of the best recent member). */
export const DEFAULT_WEIGHT_POWER = 4;
/** Default combination rule: the mean of the weighted mean and the weighted median (tuned on the ServeGen protocol). */
export const DEFAULT_COMBINE = "mix" as const;
/** Largest horizon the ensemble keeps forecasts for, in buckets. */
export const DEFAULT_MAX_HORIZON = 6;

/** Options of {@link EnsembleModel}. */
export interface EnsembleOptions {
  /** Quantile of the upper bound, 0..1. Default {@link DEFAULT_QUANTILE}. */
  quantile?: number;
  /** Per-bucket decay of the error averages, 0..1. Default {@link DEFAULT_ERROR_DECAY}. */
  errorDecay?: number;
  /** Exponent on the inverse errors. Default {@link DEFAULT_WEIGHT_POWER}. */
  weightPower?: number;
  /** Quantile-tracker step relative to the error scale. Default {@link DEFAULT_QUANTILE_STEP}. */
  quantileStep?: number;
  /** Per-bucket decay of the bound's error scale. Default {@link DEFAULT_SCALE_DECAY}. */
  scaleDecay?: number;
  /** Largest horizon in buckets. Default {@link DEFAULT_MAX_HORIZON}. */
  maxHorizon?: number;
  /**
   * "mean": weighted mean of the members; "median": weighted median (robust to one member's
   * burst); "mix": the average of both. Default {@link DEFAULT_COMBINE}.
   */
  combine?: "mean" | "median" | "mix";
}

export class EnsembleModel implements UserForecaster {
  readonly quantile: number;
  private readonly decay: number;
  private readonly power: number;
  private readonly step: number;
  private readonly H: number;
  private readonly J: number;
  private readonly combine: "mean" | "median" | "mix";
  /** err[h-1][j]: EW mean absolute h-step error of member j. */
  private readonly err: Float64Array;
  /** Ring of past member forecasts: pending[(slot * H + (h-1)) * J + j], slot = target mod (H+1). */
  private readonly pending: Float64Array;
  /** Ring of past combined forecasts per target slot and horizon. */
  private readonly pendingComb: Float64Array;
  /** Current forecast per horizon (members) and combined. */
  private readonly cur: Float64Array;
  private readonly comb: Float64Array;
  /** Upper-bound tracker per horizon. */
  private readonly bound: ResidualQuantile[];
  private n = 0;

  constructor(
    readonly members: UserForecaster[],
    opts: EnsembleOptions = {},
  ) {
    this.quantile = opts.quantile ?? DEFAULT_QUANTILE;
    this.decay = opts.errorDecay ?? DEFAULT_ERROR_DECAY;
    this.power = opts.weightPower ?? DEFAULT_WEIGHT_POWER;
    this.step = opts.quantileStep ?? DEFAULT_QUANTILE_STEP;
    this.H = opts.maxHorizon ?? DEFAULT_MAX_HORIZON;
    this.J = members.length;
    this.combine = opts.combine ?? DEFAULT_COMBINE;
    this.order = new Int32Array(members.length);
    const H = this.H, J = this.J;
    this.err = new Float64Array(H * J).fill(1);
    this.pending = new Float64Array((H + 1) * H * J);
    this.pendingComb = new Float64Array((H + 1) * H);
    this.cur = new Float64Array(H * J);
    this.comb = new Float64Array(H);
    this.bound = Array.from({ length: H }, () => new ResidualQuantile(this.quantile, this.step, opts.scaleDecay ?? DEFAULT_SCALE_DECAY));
  }

  observe(count: number, ctx: BucketContext): void {
    const H = this.H, J = this.J, d = this.decay;
    // 1. Score the forecasts whose target is this bucket (made h buckets ago).
    const slot = this.n % (H + 1);
    for (let h = 1; h <= H && h <= this.n; h++) {
      const base = (slot * H + (h - 1)) * J;
      for (let j = 0; j < J; j++) {
        const e = Math.abs(count - this.pending[base + j]);
        const k = (h - 1) * J + j;
        this.err[k] = this.n === h ? e : d * this.err[k] + (1 - d) * e;
      }
      this.bound[h - 1].update(count, this.pendingComb[slot * H + (h - 1)]);
    }
    // 2. Members learn the bucket, then forecast every horizon.
    for (let j = 0; j < J; j++) {
      const m = this.members[j];
      m.observe(count, ctx);
      for (let h = 1; h <= H; h++) this.cur[(h - 1) * J + j] = m.forecast(h);
    }
    // 3. Combine and remember the forecasts under their target's ring slot.
    this.n++;
    for (let h = 1; h <= H; h++) {
      let ws = 0, f = 0;
      for (let j = 0; j < J; j++) {
        const k = (h - 1) * J + j;
        // Relative epsilon keeps a perfect member from taking weight infinity.
        const w = 1 / Math.pow(this.err[k] + 1e-6, this.power);
        ws += w;
        f += w * this.cur[k];
      }
      let c = ws > 0 && Number.isFinite(f / ws) ? Math.max(0, f / ws) : this.cur[(h - 1) * J];
      if (this.combine === "median" && ws > 0) c = this.weightedMedian(h, ws);
      else if (this.combine === "mix" && ws > 0) c = 0.5 * (c + this.weightedMedian(h, ws));
      this.comb[h - 1] = c;
      const target = (this.n - 1 + h) % (H + 1);
      const base = (target * H + (h - 1)) * J;
      for (let j = 0; j < J; j++) this.pending[base + j] = this.cur[(h - 1) * J + j];
      this.pendingComb[target * H + (h - 1)] = c;
    }
  }

  private weightedMedian(h: number, ws: number): number {
    const J = this.J;
    const base = (h - 1) * J;
    // Insertion sort of member indices by forecast (J is small; no allocation).
    const idx = this.order;
    for (let j = 0; j < J; j++) {
      let i = j;
      while (i > 0 && this.cur[base + idx[i - 1]] > this.cur[base + j]) {
        idx[i] = idx[i - 1];
        i--;
      }
      idx[i] = j;
    }
    let acc = 0;
    for (let k = 0; k < J; k++) {
      acc += 1 / Math.pow(this.err[base + idx[k]] + 1e-6, this.power) / ws;
      if (acc >= 0.5) return this.cur[base + idx[k]];
    }
    return this.cur[base + idx[J - 1]];
  }
  private readonly order: Int32Array;

  forecast(h: number): number {
    return this.comb[Math.min(h, this.H) - 1];
  }

  /** Upper bound of bucket t+h at the configured quantile. */
  upper(h: number): number {
    const k = Math.min(h, this.H) - 1;
    return this.bound[k].upper(this.comb[k]);
  }

  /** Current weights at horizon h (normalised), for reports and tests. */
  weights(h: number): number[] {
    const J = this.J;
    const w = Array.from({ length: J }, (_, j) => 1 / Math.pow(this.err[(h - 1) * J + j] + 1e-6, this.power));
    const s = w.reduce((a, b) => a + b, 0);
    return w.map((x) => x / s);
  }
}
