/**
 * Per-user point forecasters in plain TypeScript. Each model sees one bucket at a time (counts fed
 * at bucket close) and forecasts the count of bucket t+h from data up to t only. These are the
 * baselines of the evaluation harness and the reference form of the engine's models.
 */

/** Buckets per day at 10-minute buckets: the seasonal period. */
export const DEFAULT_SEASON_BUCKETS = 144;
/** Default EWMA smoothing factor (per bucket) when none is fitted. */
export const DEFAULT_EWMA_ALPHA = 0.5;

/** What a model learns about the bucket that just closed, beside its count. */
export interface BucketContext {
  /** Bucket index since the trace origin (t_start_s / bucketSec). */
  index: number;
  /** Bucket of the day, 0 .. seasonBuckets-1. */
  slotOfDay: number;
  /** Day of week, 0..6 (day index mod 7). */
  dayOfWeek: number;
  /** Inter-arrival coefficient of variation in the bucket (burstiness; 0 = unknown/empty). */
  iatCv: number;
  /** Mean tokens per request (0 = unknown). */
  tokensPerRequest: number;
  /** Share of the bucket's requests that were throttled, 0..1. */
  throttledShare: number;
}

/** One user's forecaster. */
export interface UserForecaster {
  /** Feeds the count of the bucket that just closed. */
  observe(count: number, ctx: BucketContext): void;
  /** Forecast of the count of bucket t+h (h >= 1), clipped at 0. */
  forecast(h: number): number;
}

/** Last value. */
export class NaiveModel implements UserForecaster {
  private last = 0;
  observe(count: number, _ctx?: BucketContext): void {
    this.last = count;
  }
  forecast(_h?: number): number {
    return this.last;
  }
}

/** Value one season (day) earlier; falls back to the last value before a full season is seen. */
export class SeasonalNaiveModel implements UserForecaster {
  private readonly ring: Float64Array;
  private n = 0;
  constructor(readonly seasonBuckets = DEFAULT_SEASON_BUCKETS) {
    this.ring = new Float64Array(seasonBuckets);
  }
  observe(count: number, _ctx?: BucketContext): void {
    this.ring[this.n % this.seasonBuckets] = count;
    this.n++;
  }
  forecast(h: number): number {
    if (this.n === 0) return 0;
    const m = this.seasonBuckets;
    if (this.n < m) return this.ring[(this.n - 1) % m];
    // Bucket t+h one season back is t+h-m; h beyond a season wraps to the same slot of day.
    const back = m - (((h - 1) % m) + 1);
    return this.ring[(this.n - 1 - back + m * 2) % m];
  }
}

/** Exponentially weighted moving average (flat forecast). */
export class EwmaModel implements UserForecaster {
  private level = NaN;
  constructor(readonly alpha = DEFAULT_EWMA_ALPHA) {}
  observe(count: number, _ctx?: BucketContext): void {
    this.level = Number.isNaN(this.level) ? count : this.level + this.alpha * (count - this.level);
  }
  forecast(_h?: number): number {
    return Number.isNaN(this.level) ? 0 : Math.max(0, this.level);
  }
}

/** Fits the EWMA alpha on a training series by one-step squared error over a grid. */
export function fitEwmaAlpha(y: ArrayLike<number>, n = y.length): number {
  let best = DEFAULT_EWMA_ALPHA;
  let bestErr = Infinity;
  for (let a = 0.05; a <= 1.0001; a += 0.05) {
    let level = y[0];
    let err = 0;
    for (let t = 1; t < n; t++) {
      const e = y[t] - level;
      err += e * e;
      level += a * e;
    }
    if (err < bestErr) {
      bestErr = err;
      best = a;
    }
  }
  return Math.min(1, best);
}

/** Parameters of the damped-trend additive Holt-Winters model. */
export interface HoltWintersParams {
  /** Level smoothing, 0..1. Default {@link DEFAULT_HW_PARAMS}. */
  alpha: number;
  /** Trend smoothing, 0..1. */
  beta: number;
  /** Seasonal smoothing, 0..1. */
  gamma: number;
  /** Trend damping per bucket, 0..1. */
  phi: number;
  /** Model in log1p space (forecasts are back-transformed with expm1). */
  log: boolean;
}

/** Defaults tuned on the train split of the ServeGen trace (see docs/forecasting.md). */
export const DEFAULT_HW_PARAMS: HoltWintersParams = { alpha: 0.5, beta: 0.01, gamma: 0.1, phi: 0.9, log: true };

/**
 * Online damped-trend additive Holt-Winters with a daily seasonal profile. Until a full season has
 * been seen, the seasonal terms stay 0 and the model is damped Holt.
 */
export class HoltWintersModel implements UserForecaster {
  private level = NaN;
  private trend = 0;
  private readonly season: Float64Array;
  private n = 0;
  constructor(
    readonly p: HoltWintersParams = DEFAULT_HW_PARAMS,
    readonly seasonBuckets = DEFAULT_SEASON_BUCKETS,
  ) {
    this.season = new Float64Array(seasonBuckets);
  }
  observe(count: number, ctx: BucketContext): void {
    const y = this.p.log ? Math.log1p(count) : count;
    const m = this.seasonBuckets;
    const si = ctx.slotOfDay % m;
    if (Number.isNaN(this.level)) {
      this.level = y;
      this.n = 1;
      return;
    }
    const { alpha, beta, gamma, phi } = this.p;
    const seasonOn = this.n >= m;
    const s = seasonOn ? this.season[si] : 0;
    const prev = this.level;
    this.level = alpha * (y - s) + (1 - alpha) * (prev + phi * this.trend);
    this.trend = beta * (this.level - prev) + (1 - beta) * phi * this.trend;
    // During the first season, learn the profile as deviation from the level without using it.
    this.season[si] = seasonOn ? gamma * (y - this.level) + (1 - gamma) * s : 0.5 * (y - this.level) + 0.5 * this.season[si];
    this.n++;
    this.lastSlot = si;
  }
  private lastSlot = 0;
  forecast(h: number): number {
    if (Number.isNaN(this.level)) return 0;
    const { phi } = this.p;
    let damp = 0;
    let f = 1;
    for (let i = 0; i < h; i++) {
      f *= phi;
      damp += f;
    }
    const m = this.seasonBuckets;
    const s = this.n > m ? this.season[(this.lastSlot + h) % m] : 0;
    const v = this.level + damp * this.trend + s;
    return Math.max(0, this.p.log ? Math.expm1(v) : v);
  }
}

/** Default number of past days the slot median looks at. */
export const DEFAULT_SLOT_MEDIAN_DAYS = 7;

/**
 * Median of the same bucket of the day over the last `days` days: a seasonal forecast robust to
 * one-off bursts (a member of the ensemble; keeps days × season counts per user as f32).
 */
export class SlotMedianModel implements UserForecaster {
  private readonly ring: Float32Array;
  private readonly tmp: Float64Array;
  private n = 0;
  constructor(
    readonly days = DEFAULT_SLOT_MEDIAN_DAYS,
    readonly seasonBuckets = DEFAULT_SEASON_BUCKETS,
  ) {
    this.ring = new Float32Array(days * seasonBuckets);
    this.tmp = new Float64Array(days);
  }
  observe(count: number, _ctx?: BucketContext): void {
    this.ring[this.n % this.ring.length] = count;
    this.n++;
  }
  forecast(h: number): number {
    if (this.n === 0) return 0;
    const m = this.seasonBuckets;
    const target = this.n - 1 + h;
    let k = 0;
    for (let d = 1; d <= this.days; d++) {
      const t = target - d * m;
      if (t < 0 || t >= this.n) continue;
      // Insertion sort while gathering: at most `days` values.
      const v = this.ring[t % this.ring.length];
      let i = k++;
      while (i > 0 && this.tmp[i - 1] > v) {
        this.tmp[i] = this.tmp[i - 1];
        i--;
      }
      this.tmp[i] = v;
    }
    if (k === 0) return this.ring[(this.n - 1) % this.ring.length];
    return k % 2 ? this.tmp[k >> 1] : (this.tmp[k / 2 - 1] + this.tmp[k / 2]) / 2;
  }
}
