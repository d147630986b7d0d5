/**
 * Adapters from the replay's ports (ports.ts) to the live policy modules: the replay calls the
 * same functions and classes the allocator, the throttle and the Envoy rate-limit service run.
 */
import { HpaRecommender } from "../allocator/hpa.ts";
import type { PolicyModules, ReactiveHpaFactory } from "./ports.ts";
import { interimFixedWindow, interimForesight, interimGrants } from "./interim.ts";

/** The live policy code the adapters call (tests check these are the modules' own exports). */
export const POLICY_SOURCES = { HpaRecommender } as const;

/** Reactive HPA v2: src/allocator/hpa.ts with the Kubernetes defaults (HPA_DEFAULTS). */
export const liveHpa: ReactiveHpaFactory = ({ replicaRatePerSec, targetUtilization, initialReplicas }) => {
  const hpa = new POLICY_SOURCES.HpaRecommender({ capacityPerReplicaPerSec: replicaRatePerSec, targetUtilization, initialReplicas });
  let observed = false;
  return {
    observe: (nowMs, rate) => {
      observed = true;
      hpa.observe(nowMs, rate);
    },
    // Before its first metric sample an HPA has no usage ratio and leaves the workload alone.
    recommend: (nowMs, existing) => (observed ? hpa.recommend(nowMs, undefined, existing).replicas : existing),
  };
};

/** The modules the replay runs by default. */
export const LIVE_MODULES: PolicyModules = {
  hpa: liveHpa,
  foresight: interimForesight,
  fixedWindow: interimFixedWindow,
  grants: interimGrants,
};
