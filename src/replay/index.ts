// The outcome harness: `foresight replay` (see docs/replay.md).
export {
  ReplayDataError,
  ReplayOptionError,
} from "./errors.ts";
export {
  addWindowArrivals,
  DEFAULT_MAX_DRAWS_PER_WINDOW,
  IAT_GAMMA,
  IAT_NONE,
  IAT_WEIBULL,
  loadPoolTraces,
  logGamma,
  type PoolTrace,
  poolWindowTotals,
  refillGaps,
  Rng,
  streamSeed,
  weibullGammaMatch,
  windowArrivals,
} from "./traffic.ts";
export {
  FluidQueue,
  ReplicaSet,
} from "./capacity.ts";
export {
  addFigures,
  atSlo,
  emptyFigures,
  type FrontierPoint,
  paretoEnvelope,
  type PolicyFigures,
  type PolicySummary,
  quantile,
  summarize,
} from "./metrics.ts";
export {
  type CapacityDecision,
  type FixedWindowFactory,
  type ForesightAllocator,
  type ForesightAllocatorFactory,
  type ForesightSettings,
  type GrantThrottle,
  type GrantThrottleFactory,
  type PolicyModules,
  type PoolThrottle,
  type ReactiveHpa,
  type ReactiveHpaFactory,
  type UserForecasts,
} from "./ports.ts";
export {
  checkParams,
  chooseSetting,
  type DayTimeline,
  DEFAULT_PARAMS,
  type DemandPolicy,
  engineForecasts,
  foresightGrid,
  historyPass,
  type MissEpisode,
  type PolicyRun,
  type PoolForecasts,
  type PoolHistory,
  type PoolProgress,
  type PoolResult,
  replayDemand,
  type ReplayParams,
  replayPool,
  sameSetting,
} from "./sim.ts";
export {
  DEFAULT_POOLS,
  type Matched,
  MATCHED_SLOS,
  replayOnePool,
  type ReplayResult,
  type ReplayRunOptions,
  type Row,
  runReplay,
  type Scope,
  type Targets,
} from "./run.ts";
export {
  renderHtml,
  renderText,
} from "./report.ts";
export {
  LIVE_MODULES,
  liveFixedWindow,
  liveForesight,
  liveGrants,
  liveHpa,
  POLICY_SOURCES,
} from "./adapters.ts";
export {
  replaySummary,
} from "./summary.ts";
