// Exceedance feedback: after a user's observed rate went above the upper bound its grant was made
// from, the bound used for its next grants is raised until the forecaster has caught up. Pure
// policy in typed arrays (no I/O), shared by the grant service (live) and the step experiment
// (bench/feedback.ts). The forecaster's own fast adaptation (the engine's Trigg-Leach adaptive
// smoothing rate) runs underneath either way; this layer closes the gap it leaves after a step.
//
// Variants, chosen by measurement (bench/feedback.ts, docs/feedback.md):
//   "none"  grant bound = forecast upper bound;
//   "bias"  grant bound = upper + the last miss (observed − upper at the exceedance), decaying by
//           `decay` per tick while no new exceedance comes: a per-user bias correction;
//   "hold"  grant bound = max(upper, observed × (1 + margin)) for `holdTicks` after an exceedance:
//           the last observed rate is honoured until the forecast covers it.

/** Which correction runs. */
export type FeedbackMode = "none" | "bias" | "hold";

/** Options of {@link ExceedanceFeedback}. */
export interface FeedbackOptions {
  /** Correction variant. Default "bias" (the best trade-off in bench/feedback.ts). */
  mode?: FeedbackMode;
  /** Ticks a correction lasts after the last exceedance ("hold"). Default 6. */
  holdTicks?: number;
  /** Margin over the observed rate while holding, fraction (0.1 = +10 %). Default 0.1. */
  margin?: number;
  /** Per-tick factor the "bias" correction keeps, 0..1. Default 0.7. */
  decay?: number;
}

/** Bad feedback options; names the option. */
export class FeedbackOptionError extends Error {
  override name = "FeedbackOptionError";
}

/** Per-user exceedance state for `capacity` users, indexed by the caller's user index. */
export class ExceedanceFeedback {
  readonly mode: FeedbackMode;
  private readonly holdTicks: number;
  private readonly margin: number;
  private readonly decay: number;
  /** Upper bound the user's current grant was made from (requests/s); NaN = none yet. */
  private readonly lastUpper: Float64Array;
  /** "bias": the correction added now; "hold": the rate held (observed at the last exceedance). */
  private readonly correction: Float64Array;
  /** Ticks the correction still lasts. */
  private readonly ticksLeft: Uint16Array;
  /** Exceedances seen since construction. */
  exceedances = 0;

  constructor(readonly capacity: number, o: FeedbackOptions = {}) {
    this.mode = o.mode ?? "bias";
    this.holdTicks = o.holdTicks ?? 6;
    this.margin = o.margin ?? 0.1;
    this.decay = o.decay ?? 0.7;
    if (!["none", "bias", "hold"].includes(this.mode)) throw new FeedbackOptionError(`mode must be none, bias or hold (got ${String(this.mode)})`);
    if (!(Number.isInteger(this.holdTicks) && this.holdTicks >= 1 && this.holdTicks <= 65_535)) throw new FeedbackOptionError(`holdTicks must be an integer in 1..65535 (got ${this.holdTicks})`);
    if (!(this.margin >= 0 && this.margin <= 10)) throw new FeedbackOptionError(`margin must be in 0..10 (got ${this.margin})`);
    if (!(this.decay >= 0 && this.decay <= 1)) throw new FeedbackOptionError(`decay must be in 0..1 (got ${this.decay})`);
    this.lastUpper = new Float64Array(capacity).fill(NaN);
    this.correction = new Float64Array(capacity);
    this.ticksLeft = new Uint16Array(capacity);
  }

  /**
   * One tick for user `i`: `observedPerSec` is the rate of the bucket that just closed,
   * `upperPerSec` the forecaster's new upper bound. Returns the bound to grant from.
   */
  update(i: number, observedPerSec: number, upperPerSec: number): number {
    const prev = this.lastUpper[i];
    const exceeded = prev === prev && observedPerSec > prev;
    if (exceeded) this.exceedances++;
    let out = upperPerSec;
    switch (this.mode) {
      case "none":
        break;
      case "bias":
        if (exceeded) {
          this.correction[i] = observedPerSec - prev;
          this.ticksLeft[i] = this.holdTicks;
        } else if (this.ticksLeft[i] > 0) {
          this.ticksLeft[i]--;
          this.correction[i] *= this.decay;
        } else this.correction[i] = 0;
        out = upperPerSec + this.correction[i];
        break;
      case "hold":
        if (exceeded) {
          this.correction[i] = observedPerSec * (1 + this.margin);
          this.ticksLeft[i] = this.holdTicks;
        } else if (this.ticksLeft[i] > 0) this.ticksLeft[i]--;
        else this.correction[i] = 0;
        if (this.ticksLeft[i] > 0 && this.correction[i] > out) out = this.correction[i];
        break;
    }
    this.lastUpper[i] = out;
    return out;
  }

  /** Forgets user `i` (its index now belongs to a new user). */
  reset(i: number): void {
    this.lastUpper[i] = NaN;
    this.correction[i] = 0;
    this.ticksLeft[i] = 0;
  }

  /** Whether user `i` is under a correction now. */
  active(i: number): boolean {
    return this.ticksLeft[i] > 0;
  }
}
