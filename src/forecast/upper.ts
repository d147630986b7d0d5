/**
 * Online upper bound of a point forecast from its own residuals: upper = forecast + q, with q
 * tracked by stochastic approximation of the residual quantile (as in adaptive conformal
 * inference). After each scored forecast, q += step * scale * (exceeded ? quantile : -(1 - quantile)),
 * so the long-run share of actuals above the bound converges to 1 - quantile, per user and horizon,
 * whatever the residual distribution. `scale` is the EW mean absolute error, which makes the step
 * proportional to the user's own volume.
 */

/** Default step of the quantile tracker, as a share of the long-run absolute error. */
export const DEFAULT_QUANTILE_STEP = 0.05;
/**
 * Default per-bucket decay of the error scale average (0.998 ≈ 3.5 days of 10-minute buckets).
 * A slow scale matters: a fast one grows right after bursts, exactly when the bound is exceeded,
 * which makes upward steps larger than downward ones and over-covers (measured: 97 % for 95 %).
 */
export const DEFAULT_SCALE_DECAY = 0.998;

export class ResidualQuantile {
  /** Offset added to the point forecast. */
  q = 0;
  /** EW mean absolute error (the step scale). */
  mae = NaN;
  constructor(
    /** Target share of actuals at or below the bound, 0..1. */
    readonly quantile: number,
    /** Step as a share of the recent absolute error. Default {@link DEFAULT_QUANTILE_STEP}. */
    readonly step = DEFAULT_QUANTILE_STEP,
    /** Per-bucket decay of the error average. Default {@link DEFAULT_SCALE_DECAY}. */
    readonly decay = DEFAULT_SCALE_DECAY,
  ) {}
  /** Scores one forecast against its actual. */
  update(actual: number, forecast: number): void {
    const e = Math.abs(actual - forecast);
    this.mae = Number.isNaN(this.mae) ? e : this.decay * this.mae + (1 - this.decay) * e;
    // A floor keeps the tracker moving when the recent error is exactly 0 (long empty runs).
    const scale = Math.max(this.mae, 1e-3 * (1 + forecast));
    this.q += this.step * scale * (actual > forecast + this.q ? this.quantile : -(1 - this.quantile));
    if (this.q < 0) this.q = 0;
  }
  upper(forecast: number): number {
    return forecast + this.q;
  }
}
