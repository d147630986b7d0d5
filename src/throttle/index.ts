// Public API of the throttle component: grant policy, wire format, grant service, gateway client,
// HTTP middleware and the config mapping (named, so the package surface is explicit).
export type { ThrottleUse, ThrottleReason, ThrottleDecision, RateLimiter } from "./decision.ts";
export {
  GrantInputError, computeGrants, poolPressure, enforcedRate, bucketCapacity, refillBucket, planOrder, planLimits,
  type PlanLimit, type GrantInputs, type PoolCapacity, type GrantSettings, type GrantTable,
} from "./grants.ts";
export {
  GRANT_MAGIC, GRANT_VERSION, GRANT_HEADER_BYTES, GRANT_RECORD_BYTES, POOL_RECORD_BYTES, DEMAND_RECORD_BYTES,
  DEFAULT_MAX_MESSAGE_BYTES, MessageKind, GrantHeaderField, GrantRecordField, GRANT_FLAG_REMOVED, BadGrantMessageError,
  decodeThrottleMessage, writeGrantRecord, encodeGrantMessages, encodePoolsMessage, poolStates, encodeDemandMessage,
  throttleNames, type BadGrantReason, type ThrottleMessage, type PoolState, type ThrottleNames,
} from "./wire.ts";
export { UserTable, UserTableFullError } from "./table.ts";
export {
  ThrottleClient, DEFAULT_LOAD_TIMEOUT_MS, DEFAULT_HOUSEKEEPING_MS,
  type ThrottleLog, type ThrottleClientOptions, type ThrottleClientStats,
} from "./client.ts";
export { GrantService, DEFAULT_DELTA_TOLERANCE, DEFAULT_GRANTS_RETAIN_MS, emptyGrantStats, type GrantServiceOptions, type GrantServiceStats } from "./service.ts";
export { GrantServiceMetrics, addGrantStats, type GrantCounterName } from "./metrics.ts";
export { userKeyOf, rateLimitHeaders, throttleMiddleware, withThrottle, type HeaderStyle, type ThrottleMiddlewareOptions } from "./middleware.ts";
export { throttleClientOptions, configPoolCapacities, grantServiceOptions, middlewareOptions } from "./config.ts";
