// Actuation of allocator decisions on Kubernetes (docs/allocator-kube.md).
export {
  ACTUATION_MODES,
  type ActuationMode,
  type ActuationOutcome,
  type DesiredPoolState,
  type PoolTarget,
} from "./types.ts";
export {
  ApiThrottledError,
  classifyKubeError,
  describeRequest,
  FieldManagerConflictError,
  type FieldOwner,
  InvalidDecisionError,
  type KubeRequest,
  KubeRequestError,
  KubeUnexpectedError,
  KubeUnreachableError,
  RbacForbiddenError,
  ResourceVersionConflictError,
  type ServerStatus,
  WorkloadGoneError,
} from "./errors.ts";
export {
  cpuQuantity,
  EVENT_SOURCE,
  FIELD_MANAGER,
  type HpaState,
  KubeClient,
  memoryQuantity,
  type PodState,
  type ScaleState,
  type WorkloadKind,
} from "./client.ts";
export {
  type QueueStats,
  type RunResult,
  SingleFlightQueue,
  type SingleFlightQueueOptions,
} from "./queue.ts";
export {
  Actuator,
  type ActuatorOptions,
  ContainerNotFoundError,
  DEFAULT_BACKOFF_BASE_MS,
  DEFAULT_BACKOFF_MAX_MS,
  DEFAULT_MAX_CONFLICT_RETRIES,
  objectKey,
  type PoolActuationStatus,
} from "./actuator.ts";
export {
  AllocatorMetrics,
} from "./metrics.ts";
export {
  LEADER_KEY,
  LeaderLease,
  type LeaderLeaseOptions,
} from "./leader.ts";
export {
  BadDemandPartialError,
  decodeDemandPartial,
  DEMAND_PARTIAL_VERSION,
  type DemandPartial,
  DemandPartialBuilder,
  demandSubject,
  type DemandSum,
  DemandSummer,
  encodeDemandPartial,
} from "./partials.ts";
export {
  type AllocatorLiveSettings,
  type AllocatorPoolConfig,
  AllocatorService,
  type AllocatorServiceOptions,
  type AllocatorSettingsChange,
  AllocatorSettingsError,
  DEFAULT_STALE_AFTER_MS,
  POOLS_STATE_VERSION,
  type PoolsState,
  poolsStateSubject,
  type PoolStateEntry,
} from "./service.ts";
export { parseQuantity } from "./quantity.ts";
export { allocatorSettings } from "./settings.ts";
