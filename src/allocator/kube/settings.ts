// The config mapped onto what the allocator runs with: a pure function, used at start and for
// every live config revision (so both read the config the same way).
import type { ForesightConfig } from "../../config/schema.ts";
import { grantServiceOptions } from "../../throttle/config.ts";
import { grantUsersPerPartition } from "./grants.ts";
import type { AllocatorLiveSettings } from "./service.ts";

/**
 * The allocator's live settings from a config: pools (workload fields the allocator reads),
 * cluster budget, the engine's upper quantile and horizon, and, when `grants` is true, the hosted
 * grant service's options (config `throttle`).
 */
export function allocatorSettings(config: ForesightConfig, opts: { grants: boolean }): AllocatorLiveSettings {
  return {
    pools: config.pools.map((p) => ({ ...p, workload: { kind: p.workload.kind, namespace: p.workload.namespace, name: p.workload.name, container: p.workload.container, hpaName: p.workload.hpaName } })),
    cluster: config.cluster,
    upperQuantile: config.engine.upperQuantile,
    horizonSec: (config.engine.horizonBuckets * config.engine.bucketWidthMs) / 1000,
    // The throttle section always exists (schema defaults), so grants are on unless turned off.
    grants: opts.grants ? grantServiceOptions(config, { usersPerPartition: grantUsersPerPartition(config.engine.capacityUsers) }) : undefined,
  };
}
