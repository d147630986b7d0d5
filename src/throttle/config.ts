// The config's `throttle` (and `nats`) sections mapped onto the throttle components' options, so
// the composition root and gateways wire them in one line each.
import type { ForesightConfig } from "../config/schema.ts";
import type { ThrottleClientOptions } from "./client.ts";
import type { GrantServiceOptions } from "./service.ts";
import type { ThrottleMiddlewareOptions } from "./middleware.ts";
import type { RateLimiter } from "./decision.ts";
import type { PoolCapacity } from "./grants.ts";

/** ThrottleClient options from the config; `extra` adds gateway id, logger, clock. */
export function throttleClientOptions(cfg: ForesightConfig, extra: Partial<ThrottleClientOptions> = {}): ThrottleClientOptions {
  const t = cfg.throttle;
  return {
    plans: t.plans,
    safeLimits: t.safeLimits,
    burstFactor: t.burstFactor,
    shadow: t.shadow,
    subjectPrefix: cfg.nats.subjectPrefix,
    partitions: cfg.nats.partitions,
    exceedanceSubject: t.exceedanceSubject,
    maxUsers: t.maxUsers,
    demandReportIntervalMs: t.demandReportIntervalMs,
    ...extra,
  };
}

/**
 * Pool capacities from the config's pools (requestsPerSecPerReplica × maxReplicas: the most the
 * allocator may give) until the allocator's live allocation is wired; no pools = one unbounded pool.
 */
export function configPoolCapacities(cfg: ForesightConfig): PoolCapacity[] {
  if (cfg.pools.length === 0) return [{ capacityReqPerSec: Infinity }];
  return cfg.pools.map((p) => ({ capacityReqPerSec: p.costModel.requestsPerSecPerReplica * p.maxReplicas }));
}

/** GrantService options from the config; `extra` supplies pools, poolOf, planOf, allocationOf, logger. */
export function grantServiceOptions(cfg: ForesightConfig, extra: Partial<GrantServiceOptions> = {}): GrantServiceOptions {
  const t = cfg.throttle;
  return {
    subjectPrefix: cfg.nats.subjectPrefix,
    partitions: cfg.nats.partitions,
    plans: t.plans,
    safeLimits: t.safeLimits,
    burstFactor: t.burstFactor,
    grantTtlMs: t.grantTtlMs,
    grantRefreshMs: t.grantRefreshMs,
    snapshotEveryTicks: t.snapshotEveryTicks,
    poolStateIntervalMs: t.poolStateIntervalMs,
    feedback: t.feedback,
    replicas: cfg.nats.replicas,
    pools: () => configPoolCapacities(cfg),
    ...extra,
  };
}

/** Middleware options from the config. */
export function middlewareOptions(cfg: ForesightConfig, limiter: RateLimiter, extra: Partial<ThrottleMiddlewareOptions> = {}): ThrottleMiddlewareOptions {
  const t = cfg.throttle;
  return {
    limiter,
    headerStyle: t.headerStyle,
    policyName: t.policyName,
    userKeyHeader: t.userKeyHeader,
    apiKeyHeader: t.apiKeyHeader,
    planHeader: t.planHeader,
    ...extra,
  };
}
