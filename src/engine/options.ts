/** Engine options: meaning, unit and default of each, validation and derived scalars. */
import { EngineOptionsError } from "./errors.ts";
import { ringBuckets } from "./regions.ts";

export interface EngineOptions {
  /** Users tracked at most (table capacity); beyond it the least recently seen user is evicted. Default 2^18 (262 144). Range 1..2^22. */
  capacityUsers?: number;
  /** Width of a feature/forecast time bucket, ms; integer, 1 000..600 000, must divide a day (86 400 000). Default 60 000. */
  bucketWidthMs?: number;
  /** How late (event time behind the tick clock) an event may arrive and still be counted, ms. Default 10 000. Ring R = ceil(lateness / width) + 2 must be <= 8. */
  allowedLatenessMs?: number;
  /** Points of the daily seasonal profile (f32 each, linearly interpolated); integer 24..144, at most the buckets per day. Default 48. */
  seasonPoints?: number;
  /** Forecast horizon written at every tick, in buckets after the last closed one; integer 1..buckets per day. Default 5. */
  horizonBuckets?: number;
  /** Quantile of the upper bound (normal approximation of the one-step error); 0.5 < q < 1. Default 0.95. */
  upperQuantile?: number;
  /** Holt-Winters base level smoothing alpha, 0 < alpha < 1. Default 0.2. */
  alpha?: number;
  /** Holt-Winters trend smoothing (applied to the error directly: b += beta * e), 0 <= beta < 1. Default 0.02. */
  beta?: number;
  /** Seasonal smoothing gamma, 0 <= gamma < 1. Default 0.05. */
  gamma?: number;
  /** Trend damping phi, 0 <= phi <= 1. Default 0.9. */
  phi?: number;
  /** Largest alpha the Trigg-Leach adaptation may reach, alpha <= alphaMax < 1. Default 0.8. */
  alphaMax?: number;
  /** |tracking signal| above which alpha rises halfway to alphaMax at each bucket, 0 < t < 1. Default 0.6. */
  trackingThreshold?: number;
  /** Smoothing of the tracking signal's error and absolute error, 0 < d < 1. Default 0.2. */
  trackingSmoothing?: number;
  /** Per-bucket fraction by which alpha decays back to its base value when the signal is quiet, 0 < r <= 1. Default 0.1. */
  alphaDecay?: number;
  /** Smoothing of the exponentially weighted one-step error variance, 0 < v < 1. Default 0.05. */
  varianceSmoothing?: number;
  /** Weight one day of data has in the hourly time-of-day profile (converted to a per-bucket rate), 0 < w <= 1. Default 0.3. */
  timeOfDayDayWeight?: number;
  /** Users with no event for this many closed buckets are dropped at tick (counted); 0 = never. Default 0. */
  expireAfterBuckets?: number;
  /** Most buckets one tick closes after a long gap; older ones are skipped (counted). Default: one day of buckets. */
  maxCatchUpBuckets?: number;
  /** Event records the ingress buffer holds (one WASM call per this many). Default 8 192. */
  ingressCapacity?: number;
  /** Aggregate records the counts buffer holds. Default 1 024. */
  countsCapacity?: number;
  /** Load the debug build (build/engine.debug.wasm, assertions on) instead of the release build. Default false. */
  debug?: boolean;
  /** Explicit path of the .wasm file (overrides the build/ lookup). */
  wasmPath?: string;
  /**
   * Forecast written at every tick: "hw" (Holt-Winters) or "ensemble" (HW, LSTM-lite, naive,
   * median-3, daily profile, seasonal naive and 3-day slot median combined per user; adds align8(236 + 8 x seasonPoints) bytes per
   * user; horizonBuckets must be <= 6). Default "hw".
   */
  forecastModel?: "hw" | "ensemble";
  /** LSTM-lite weights (an LSTL blob from `foresight train`); default: the built-in initialisation. */
  lstmWeights?: Uint8Array;
  /** Users whose LSTM-lite step trains the shared weights per closed bucket (bounds the cost); 0 = frozen. Default 64. */
  lstmTrainUsersPerBucket?: number;
  /** Adam learning rate of the online LSTM-lite training, > 0. Default 0.001. */
  lstmLearningRate?: number;
  /**
   * Least mean request count per bucket (the user's level, an EW mean of log1p counts) for which
   * a user runs LSTM-lite's GRU ("dense" tier); sparser users keep every other ensemble member and
   * leave the LSTM member out, which costs a fraction of the GRU's time. 0 = every user runs the
   * GRU. Default {@link DEFAULT_LSTM_MIN_COUNT_PER_BUCKET}.
   */
  lstmMinCountPerBucket?: number;
  /**
   * Threads that run a tick's per-user work (the calling thread and tickThreads - 1 workers over
   * the engine's shared memory; WASM engines only, the reference ignores it). The results are the
   * same for any value; an engine whose capacityUsers is below 8 192 (MIN_PARALLEL_SLOTS) starts
   * no workers. Integer 1..{@link MAX_TICK_THREADS}. Default 1.
   */
  tickThreads?: number;
}

/** Most tick threads (assembly/threads.ts MAX_THREADS). */
export const MAX_TICK_THREADS = 4;

export const DEFAULT_CAPACITY_USERS = 1 << 18;
export const DEFAULT_BUCKET_WIDTH_MS = 60_000;
export const DEFAULT_ALLOWED_LATENESS_MS = 10_000;
export const DEFAULT_SEASON_POINTS = 48;
export const DEFAULT_HORIZON_BUCKETS = 5;
export const DEFAULT_UPPER_QUANTILE = 0.95;
export const DEFAULT_ALPHA = 0.2;
export const DEFAULT_BETA = 0.02;
export const DEFAULT_GAMMA = 0.05;
export const DEFAULT_PHI = 0.9;
export const DEFAULT_ALPHA_MAX = 0.8;
export const DEFAULT_TRACKING_THRESHOLD = 0.6;
export const DEFAULT_TRACKING_SMOOTHING = 0.2;
export const DEFAULT_ALPHA_DECAY = 0.1;
export const DEFAULT_VARIANCE_SMOOTHING = 0.05;
export const DEFAULT_TIME_OF_DAY_DAY_WEIGHT = 0.3;
export const DEFAULT_INGRESS_CAPACITY = 8192;
export const DEFAULT_COUNTS_CAPACITY = 1024;
export const MAX_CAPACITY_USERS = 1 << 22;

export const DEFAULT_FORECAST_MODEL = "hw";
export const DEFAULT_LSTM_TRAIN_USERS_PER_BUCKET = 64;
export const DEFAULT_LSTM_LEARNING_RATE = 0.001;
/** Default of {@link EngineOptions.lstmMinCountPerBucket}: requests per bucket (see bench/results/accuracy-tiers.json for how it was chosen). */
export const DEFAULT_LSTM_MIN_COUNT_PER_BUCKET = 0.5;
/** Gradient-norm clip of the online LSTM-lite training. */
export const LSTM_GRAD_CLIP = 1.0;

export type ResolvedEngineOptions = Required<Omit<EngineOptions, "wasmPath" | "lstmWeights">> & {
  wasmPath: string | undefined;
  lstmWeights: Uint8Array | undefined;
  /** Derived: z of the upper quantile. */
  z: number;
  /** Derived: per-bucket weight of the time-of-day profile. */
  todAlpha: number;
  /** Derived: buckets per day. */
  periodBuckets: number;
  /** Derived: ring buckets per user. */
  ringBuckets: number;
};

/** Inverse of the standard normal CDF (Acklam's rational approximation, |rel err| < 1.2e-9). */
export function normalQuantile(p: number): number {
  const a = [-3.969683028665376e1, 2.209460984245205e2, -2.759285104469687e2, 1.38357751867269e2, -3.066479806614716e1, 2.506628277459239];
  const b = [-5.447609879822406e1, 1.615858368580409e2, -1.556989798598866e2, 6.680131188771972e1, -1.328068155288572e1];
  const c = [-7.784894002430293e-3, -3.223964580411365e-1, -2.400758277161838, -2.549732539343734, 4.374664141464968, 2.938163982698783];
  const d = [7.784695709041462e-3, 3.224671290700398e-1, 2.445134137142996, 3.754408661907416];
  const pl = 0.02425;
  if (p < pl) {
    const q = Math.sqrt(-2 * Math.log(p));
    return (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  }
  if (p > 1 - pl) return -normalQuantile(1 - p);
  const q = p - 0.5;
  const r = q * q;
  return ((((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q) / (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
}

function check(ok: boolean, name: string, value: unknown, rule: string): void {
  if (!ok) throw new EngineOptionsError(`engine option ${name} = ${JSON.stringify(value)}: ${rule}`);
}
const isInt = (v: number) => Number.isInteger(v);

/** Applies defaults and validates; throws EngineOptionsError naming the first bad option. */
export function resolveEngineOptions(o: EngineOptions = {}): ResolvedEngineOptions {
  const bucketWidthMs = o.bucketWidthMs ?? DEFAULT_BUCKET_WIDTH_MS;
  check(isInt(bucketWidthMs) && bucketWidthMs >= 1000 && bucketWidthMs <= 600_000, "bucketWidthMs", bucketWidthMs, "must be an integer from 1000 to 600000 ms");
  check(86_400_000 % bucketWidthMs === 0, "bucketWidthMs", bucketWidthMs, "must divide a day (86400000 ms) exactly");
  const periodBuckets = 86_400_000 / bucketWidthMs;
  const capacityUsers = o.capacityUsers ?? DEFAULT_CAPACITY_USERS;
  check(isInt(capacityUsers) && capacityUsers >= 1 && capacityUsers <= MAX_CAPACITY_USERS, "capacityUsers", capacityUsers, `must be an integer from 1 to ${MAX_CAPACITY_USERS}`);
  const allowedLatenessMs = o.allowedLatenessMs ?? DEFAULT_ALLOWED_LATENESS_MS;
  check(Number.isFinite(allowedLatenessMs) && allowedLatenessMs >= 0, "allowedLatenessMs", allowedLatenessMs, "must be a finite number >= 0 ms");
  const ring = Math.ceil(allowedLatenessMs / bucketWidthMs) + 2;
  check(ring <= 8, "allowedLatenessMs", allowedLatenessMs, `needs ceil(lateness / bucketWidthMs) + 2 <= 8 ring buckets (at most ${6 * bucketWidthMs} ms for this bucket width)`);
  const seasonPoints = o.seasonPoints ?? DEFAULT_SEASON_POINTS;
  check(isInt(seasonPoints) && seasonPoints >= 24 && seasonPoints <= 144, "seasonPoints", seasonPoints, "must be an integer from 24 to 144");
  check(seasonPoints <= periodBuckets, "seasonPoints", seasonPoints, `must not exceed the ${periodBuckets} buckets of a day`);
  const horizonBuckets = o.horizonBuckets ?? DEFAULT_HORIZON_BUCKETS;
  check(isInt(horizonBuckets) && horizonBuckets >= 1 && horizonBuckets <= periodBuckets, "horizonBuckets", horizonBuckets, `must be an integer from 1 to ${periodBuckets}`);
  const upperQuantile = o.upperQuantile ?? DEFAULT_UPPER_QUANTILE;
  check(upperQuantile > 0.5 && upperQuantile < 1, "upperQuantile", upperQuantile, "must be > 0.5 and < 1");
  const unit = (name: string, v: number, lo: number, hi: number, loIncl: boolean, hiIncl: boolean) =>
    check(Number.isFinite(v) && (loIncl ? v >= lo : v > lo) && (hiIncl ? v <= hi : v < hi), name, v,
      `must be in ${loIncl ? "[" : "("}${lo}, ${hi}${hiIncl ? "]" : ")"}`);
  const alpha = o.alpha ?? DEFAULT_ALPHA;
  unit("alpha", alpha, 0, 1, false, false);
  const beta = o.beta ?? DEFAULT_BETA;
  unit("beta", beta, 0, 1, true, false);
  const gamma = o.gamma ?? DEFAULT_GAMMA;
  unit("gamma", gamma, 0, 1, true, false);
  const phi = o.phi ?? DEFAULT_PHI;
  unit("phi", phi, 0, 1, true, true);
  const alphaMax = o.alphaMax ?? DEFAULT_ALPHA_MAX;
  unit("alphaMax", alphaMax, alpha, 1, true, false);
  const trackingThreshold = o.trackingThreshold ?? DEFAULT_TRACKING_THRESHOLD;
  unit("trackingThreshold", trackingThreshold, 0, 1, false, false);
  const trackingSmoothing = o.trackingSmoothing ?? DEFAULT_TRACKING_SMOOTHING;
  unit("trackingSmoothing", trackingSmoothing, 0, 1, false, false);
  const alphaDecay = o.alphaDecay ?? DEFAULT_ALPHA_DECAY;
  unit("alphaDecay", alphaDecay, 0, 1, false, true);
  const varianceSmoothing = o.varianceSmoothing ?? DEFAULT_VARIANCE_SMOOTHING;
  unit("varianceSmoothing", varianceSmoothing, 0, 1, false, false);
  const timeOfDayDayWeight = o.timeOfDayDayWeight ?? DEFAULT_TIME_OF_DAY_DAY_WEIGHT;
  unit("timeOfDayDayWeight", timeOfDayDayWeight, 0, 1, false, true);
  const expireAfterBuckets = o.expireAfterBuckets ?? 0;
  check(isInt(expireAfterBuckets) && expireAfterBuckets >= 0 && expireAfterBuckets < 2 ** 31, "expireAfterBuckets", expireAfterBuckets, "must be an integer >= 0 (0 = never)");
  const maxCatchUpBuckets = o.maxCatchUpBuckets ?? periodBuckets;
  check(isInt(maxCatchUpBuckets) && maxCatchUpBuckets >= 1 && maxCatchUpBuckets <= periodBuckets, "maxCatchUpBuckets", maxCatchUpBuckets, `must be an integer from 1 to ${periodBuckets}`);
  const ingressCapacity = o.ingressCapacity ?? DEFAULT_INGRESS_CAPACITY;
  check(isInt(ingressCapacity) && ingressCapacity >= 1 && ingressCapacity <= 1 << 20, "ingressCapacity", ingressCapacity, "must be an integer from 1 to 1048576");
  const countsCapacity = o.countsCapacity ?? DEFAULT_COUNTS_CAPACITY;
  check(isInt(countsCapacity) && countsCapacity >= 1 && countsCapacity <= 1 << 20, "countsCapacity", countsCapacity, "must be an integer from 1 to 1048576");
  const forecastModel = o.forecastModel ?? DEFAULT_FORECAST_MODEL;
  check(forecastModel === "hw" || forecastModel === "ensemble", "forecastModel", forecastModel, 'must be "hw" or "ensemble"');
  if (forecastModel === "ensemble") check(horizonBuckets <= 6, "horizonBuckets", horizonBuckets, 'must be <= 6 with forecastModel "ensemble"');
  const lstmTrainUsersPerBucket = o.lstmTrainUsersPerBucket ?? DEFAULT_LSTM_TRAIN_USERS_PER_BUCKET;
  check(isInt(lstmTrainUsersPerBucket) && lstmTrainUsersPerBucket >= 0 && lstmTrainUsersPerBucket < 2 ** 31, "lstmTrainUsersPerBucket", lstmTrainUsersPerBucket, "must be an integer >= 0");
  const lstmLearningRate = o.lstmLearningRate ?? DEFAULT_LSTM_LEARNING_RATE;
  check(Number.isFinite(lstmLearningRate) && lstmLearningRate > 0, "lstmLearningRate", lstmLearningRate, "must be a finite number > 0");
  const lstmMinCountPerBucket = o.lstmMinCountPerBucket ?? DEFAULT_LSTM_MIN_COUNT_PER_BUCKET;
  check(Number.isFinite(lstmMinCountPerBucket) && lstmMinCountPerBucket >= 0, "lstmMinCountPerBucket", lstmMinCountPerBucket, "must be a finite number >= 0");
  const tickThreads = o.tickThreads ?? 1;
  check(isInt(tickThreads) && tickThreads >= 1 && tickThreads <= MAX_TICK_THREADS, "tickThreads", tickThreads, `must be an integer from 1 to ${MAX_TICK_THREADS}`);
  check(o.lstmWeights === undefined || o.lstmWeights instanceof Uint8Array, "lstmWeights", typeof o.lstmWeights, "must be a Uint8Array (LSTL blob)");
  const bucketsPerHour = 3_600_000 / bucketWidthMs;
  const todAlpha = 1 - Math.pow(1 - timeOfDayDayWeight, 1 / bucketsPerHour);
  return {
    capacityUsers, bucketWidthMs, allowedLatenessMs, seasonPoints, horizonBuckets, upperQuantile, alpha, beta,
    gamma, phi, alphaMax, trackingThreshold, trackingSmoothing, alphaDecay, varianceSmoothing,
    timeOfDayDayWeight, expireAfterBuckets, maxCatchUpBuckets, ingressCapacity, countsCapacity,
    debug: o.debug ?? false, wasmPath: o.wasmPath, z: normalQuantile(upperQuantile), todAlpha, periodBuckets,
    ringBuckets: ringBuckets(bucketWidthMs, allowedLatenessMs),
    forecastModel, lstmWeights: o.lstmWeights, lstmTrainUsersPerBucket, lstmLearningRate, lstmMinCountPerBucket,
    tickThreads,
  };
}
