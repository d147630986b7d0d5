// Envoy's rate limit service: server, limiters, mapping, headers, client.
export {
  type BatchRateLimiter,
  isBatchLimiter,
  type LimitCheck,
  type RateLimiter,
  type RateLimiterFactory,
  type RlsLimiter,
  type ThrottleDecision,
  type ThrottleUse,
} from "./limiter.ts";
export {
  LimiterConfigError,
  RedisLimiterError,
  RlsInvalidRequestError,
  RlsListenError,
  RlsProtoLoadError,
} from "./errors.ts";
export {
  loadRlsPackage,
  protoRoot,
  RLS_LOADER_OPTIONS,
  RLS_PROTO_FILE,
  RLS_SERVICE_NAME,
  rlsServerDefinition,
  type UndecodableRequest,
} from "./proto.ts";
export {
  encodeRlsResponse,
  type RlsResponseObject,
} from "./codec.ts";
export {
  DescriptorMapping,
  type DescriptorMappingOptions,
  type DescriptorRole,
  type DescriptorRule,
  fieldLabel,
  type HitsAddendMode,
  type MappedDescriptor,
  MAX_HITS_ADDEND,
  type RlsRequestObject,
} from "./mapping.ts";
export {
  type HeaderPair,
  type HeaderStyle,
  type PolicyDecision,
  rateLimitHeaders,
} from "./headers.ts";
export {
  checkFixedWindowOptions,
  fixedWindowDecision,
  FixedWindowLimiter,
  type FixedWindowOptions,
  type FixedWindowPlanLimit,
} from "./fixed-window.ts";
export {
  RedisFixedWindowLimiter,
  type RedisLimiterOptions,
} from "./redis-limiter.ts";
export {
  RLS_DURATION_BUCKETS_SEC,
  RlsMetrics,
  type RlsResult,
} from "./metrics.ts";
export {
  DEFAULT_DRAIN_DELAY_MS,
  DEFAULT_MAX_CONCURRENT_REQUESTS,
  DEFAULT_SHUTDOWN_GRACE_MS,
  limitInUnits,
  RlsCode,
  RlsServer,
  type RlsServerOptions,
  type RlsShutdownResult,
  RlsUnit,
} from "./server.ts";
export {
  createRlsClient,
  type RlsClient,
  type RlsRequest,
  type RlsResponse,
  shouldRateLimit,
} from "./client.ts";
export {
  fixedWindowFromConfig,
  fixedWindowLimiterFactory,
  fixedWindowPlans,
  mappingFromConfig,
} from "./config.ts";
export {
  REDIS_START_TIMEOUT_MS,
  RedisServer,
} from "./redis-server.ts";
