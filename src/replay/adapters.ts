/**
 * Adapters from the replay's ports (ports.ts) to the live policy modules: the replay calls the
 * same functions and classes the allocator, the throttle and the Envoy rate-limit service run.
 */
import { HpaRecommender } from "../allocator/hpa.ts";
import { PoolPolicy, POOL_POLICY_DEFAULTS, type PoolPolicyConfig } from "../allocator/policy.ts";
import { PoolMembership, aggregateDemand, newPoolDemand, poolUpperBound } from "../allocator/demand.ts";
import { UserAllocations } from "../allocator/users.ts";
import { normalQuantile } from "../engine/options.ts";
import { bucketCapacity, computeGrants, enforcedRate, poolPressure, refillBucket, type GrantInputs, type GrantSettings, type GrantTable } from "../throttle/grants.ts";
import { FixedWindowLimiter, type FixedWindowPlanLimit } from "../envoy/fixed-window.ts";
import type { FixedWindowFactory, ForesightAllocatorFactory, GrantThrottleFactory, PolicyModules, ReactiveHpaFactory } from "./ports.ts";

/** The live policy code the adapters call (tests check these are the modules' own exports). */
export const POLICY_SOURCES = { HpaRecommender, PoolPolicy, aggregateDemand, poolUpperBound, UserAllocations, computeGrants, poolPressure, enforcedRate, refillBucket, FixedWindowLimiter } as const;

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

/**
 * Foresight's allocator for one pool: src/allocator's PoolPolicy (max(predictive, HPA floor,
 * active users), immediate scale-up, stabilized step-limited scale-down, tolerance) sized from the
 * pool's upper bound that src/allocator/demand.ts forms from the users' engine forecasts
 * ("variance": Σμ + z√Σσ²), and the per-user allocation of src/allocator/users.ts (what the
 * throttle's grants read). Every field not set here is the config schema's default.
 */
export const liveForesight: ForesightAllocatorFactory = (o) => {
  const config: PoolPolicyConfig = {
    ...POOL_POLICY_DEFAULTS,
    name: "replay",
    costModel: { requestsPerSecPerReplica: o.replicaRatePerSec, cpuPerReplicaMillicores: 1000, memoryPerReplicaMiB: 1024 },
    maxReplicas: 10_000,
    headroom: o.settings.headroom,
    podStartDelaySec: o.startDelaySec,
    decisionIntervalMs: o.decisionSec * 1000,
    reactive: { ...POOL_POLICY_DEFAULTS.reactive, targetUtilization: o.settings.floorTarget },
  };
  const policy = new POLICY_SOURCES.PoolPolicy(config, o.initialReplicas);
  const z = normalQuantile(o.settings.quantile);
  let members: PoolMembership | null = null;
  let allocs: UserAllocations | null = null;
  const demand = newPoolDemand(1, false);
  const capacity = new Float64Array(1);
  let observed = false;
  return {
    observe: (nowMs, rate) => {
      observed = true;
      policy.observe(nowMs, rate);
    },
    decide(nowMs, users, existing) {
      if (!members || !allocs) {
        members = new PoolMembership(users.count, 1);
        for (let i = 0; i < users.count; i++) members.set(i, 0);
        allocs = new POLICY_SOURCES.UserAllocations(users.count);
      }
      POLICY_SOURCES.aggregateDemand(users, members, z, demand);
      const upper = POLICY_SOURCES.poolUpperBound(demand, 0, { method: config.demandMethod, z, blendWeight: config.blendWeight });
      // Before the first observed second the reactive half has no metric: keep what runs.
      if (!observed) return { replicas: existing, predictiveReplicas: existing, reactiveReplicas: existing };
      const d = policy.decide(nowMs, { upperRequestsPerSec: upper, currentReplicas: existing });
      policy.settle(d.replicas);
      if (!o.userAllocation) return { replicas: d.replicas, predictiveReplicas: d.predictiveReplicas, reactiveReplicas: d.reactiveReplicas };
      capacity[0] = d.replicas * o.replicaRatePerSec;
      allocs.allocateAll(users, members, capacity);
      return { replicas: d.replicas, predictiveReplicas: d.predictiveReplicas, reactiveReplicas: d.reactiveReplicas, userAllocPerSec: allocs.allocatedPerSec };
    },
  };
};

/**
 * Foresight's throttle: src/throttle/grants.ts. Grants (U, A, P, G) are computed at each decision
 * from the users' forecast upper bounds and the allocator's per-user allocation; every second each
 * user's bucket refills at enforcedRate(P, G, pressure) with pressure = load / ready capacity, and
 * admits what its tokens cover. Plans: one, unlimited (the trace has no plan limits).
 */
export const liveGrants: GrantThrottleFactory = ({ users, burstFactor }) => {
  const inputs: GrantInputs = {
    count: users, userHashLo: new Uint32Array(users), userHashHi: new Uint32Array(users), upperReqPerSec: new Float64Array(users),
    allocReqPerSec: new Float64Array(users), planIndex: new Uint8Array(users), poolIndex: new Uint16Array(users),
  };
  for (let i = 0; i < users; i++) inputs.userHashLo[i] = i;
  const settings: GrantSettings = { plans: [{ requestsPerSec: Infinity }], burstFactor };
  let table: GrantTable | null = null;
  const tokens = new Float64Array(users).fill(Infinity);
  return {
    update(_t, u, capacityPerSec, alloc) {
      inputs.upperReqPerSec.set(u.upperPerSec.subarray(0, users));
      if (alloc) inputs.allocReqPerSec!.set(alloc.subarray(0, users));
      else inputs.allocReqPerSec!.fill(NaN);
      table = POLICY_SOURCES.computeGrants(inputs, [{ capacityReqPerSec: capacityPerSec }], settings);
    },
    admit(_t, arrivals, admitted, loadPerSec, capacityPerSec) {
      const pressure = POLICY_SOURCES.poolPressure(loadPerSec, capacityPerSec);
      for (let i = 0; i < users; i++) {
        const rate = table ? POLICY_SOURCES.enforcedRate(table.planReqPerSec[i], table.grantReqPerSec[i], pressure) : Infinity;
        tokens[i] = POLICY_SOURCES.refillBucket(tokens[i], 1000, rate, bucketCapacity(rate, burstFactor));
        const a = arrivals[i] < tokens[i] ? arrivals[i] : tokens[i];
        admitted[i] = a;
        tokens[i] -= a;
      }
    },
  };
};

/**
 * Envoy `ratelimit`'s fixed window: src/envoy/fixed-window.ts's FixedWindowLimiter on the replay's
 * clock, one plan per user holding its static quota. A second's requests of a user are checked as
 * one hit of that many (hits_addend); the ones admitted are those that fit in what the window had
 * left before them (what per-request checks admit), the limiter counting every hit.
 */
export const liveFixedWindow: FixedWindowFactory = ({ quotaPerWindow, windowSec }) => {
  const n = quotaPerWindow.length;
  let nowMs = 0;
  const plans: Record<string, FixedWindowPlanLimit> = { default: { requestsPerWindow: 1 } };
  const keys = Array.from({ length: n }, (_, i) => `u${i}`);
  keys.forEach((k, i) => (plans[k] = { requestsPerWindow: quotaPerWindow[i] }));
  const limiter = new POLICY_SOURCES.FixedWindowLimiter({ windowMs: windowSec * 1000, plans, defaultPlan: "default", now: () => nowMs });
  const left = new Float64Array(n);
  let window = -1;
  return {
    admit(t, arrivals, admitted) {
      nowMs = t * 1000;
      const w = Math.floor(t / windowSec);
      if (w !== window) {
        window = w;
        left.set(quotaPerWindow);
      }
      for (let i = 0; i < n; i++) {
        const x = arrivals[i];
        if (!(x > 0)) {
          admitted[i] = 0;
          continue;
        }
        const d = limiter.check(keys[i], { requests: x, tokens: 0 }, keys[i]);
        admitted[i] = d.allowed ? x : Math.min(x, left[i]);
        left[i] = d.remaining;
      }
    },
  };
};

/** The modules the replay runs by default. */
export const LIVE_MODULES: PolicyModules = {
  hpa: liveHpa,
  foresight: liveForesight,
  fixedWindow: liveFixedWindow,
  grants: liveGrants,
};
