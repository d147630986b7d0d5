// Public API of the engine component.
export {
  type CountsInput,
  Engine,
  type EngineFactory,
  type EngineStats,
  type EventInput,
  type ForecastRecord,
  type ForecastView,
  type IngressBuffer,
  LIVE_ENGINE_OPTIONS,
  REFERENCE,
  type UserFeatures,
  type UserTotals,
  WASM,
} from "./engine.ts";
export {
  EngineInputError,
  EngineLoadError,
  EngineOptionsError,
  EngineTrapError,
  SnapshotError,
} from "./errors.ts";
export {
  DEFAULT_ALLOWED_LATENESS_MS,
  DEFAULT_ALPHA,
  DEFAULT_ALPHA_DECAY,
  DEFAULT_ALPHA_MAX,
  DEFAULT_BETA,
  DEFAULT_BUCKET_WIDTH_MS,
  DEFAULT_CAPACITY_USERS,
  DEFAULT_COUNTS_CAPACITY,
  DEFAULT_FORECAST_MODEL,
  DEFAULT_GAMMA,
  DEFAULT_HORIZON_BUCKETS,
  DEFAULT_INGRESS_CAPACITY,
  DEFAULT_LSTM_LEARNING_RATE,
  DEFAULT_LSTM_TRAIN_USERS_PER_BUCKET,
  DEFAULT_PHI,
  DEFAULT_SEASON_POINTS,
  DEFAULT_TIME_OF_DAY_DAY_WEIGHT,
  DEFAULT_TRACKING_SMOOTHING,
  DEFAULT_TRACKING_THRESHOLD,
  DEFAULT_UPPER_QUANTILE,
  DEFAULT_VARIANCE_SMOOTHING,
  type EngineOptions,
  LSTM_GRAD_CLIP,
  MAX_CAPACITY_USERS,
  MAX_TICK_THREADS,
  normalQuantile,
  type ResolvedEngineOptions,
  resolveEngineOptions,
} from "./options.ts";
export type { EngineCore } from "./core.ts";
export { MIN_PARALLEL_SLOTS } from "./tick-pool.ts";
export { ReferenceCore } from "./reference.ts";
export { COUNTS_RECORD_BYTES, CountsField } from "./regions.ts";
