/**
 * Adapters from the replay's ports (ports.ts) to the live policy modules: the replay calls the
 * same functions and classes the allocator, the throttle and the Envoy rate-limit service run.
 */
import { HpaRecommender } from "../allocator/hpa.ts";
import type { PolicyModules, ReactiveHpaFactory } from "./ports.ts";
import { interimFixedWindow, interimForesight, interimGrants } from "./interim.ts";

/** Reactive HPA v2: src/allocator/hpa.ts with the Kubernetes defaults (HPA_DEFAULTS). */
export const liveHpa: ReactiveHpaFactory = ({ replicaRatePerSec, targetUtilization, initialReplicas }) => {
  const hpa = new HpaRecommender({ capacityPerReplicaPerSec: replicaRatePerSec, targetUtilization, initialReplicas });
  return {
    observe: (nowMs, rate) => hpa.observe(nowMs, rate),
    recommend: (nowMs, existing) => hpa.recommend(nowMs, undefined, existing).replicas,
  };
};

/** The modules the replay runs by default. */
export const LIVE_MODULES: PolicyModules = {
  hpa: liveHpa,
  foresight: interimForesight,
  fixedWindow: interimFixedWindow,
  grants: interimGrants,
};
