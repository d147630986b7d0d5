/**
 * The seams between the replay harness and the policy code it replays. Each port is implemented
 * by an adapter over the LIVE module (src/allocator, src/throttle, src/envoy) in adapters.ts; the
 * harness never decides anything itself except the peers the issue defines (static, oracle).
 */

/** Per-user forecasts at the decision's horizon (index = client index of the pool). */
export interface UserForecasts {
  count: number;
  /** Forecast rate, requests/s. */
  meanPerSec: Float64Array;
  /** Upper bound at the engine's quantile, requests/s. */
  upperPerSec: Float64Array;
  /** Observed rate in the bucket that closed last, requests/s. */
  observedPerSec: Float64Array;
}

/** A capacity decision of the Foresight allocator for one pool. */
export interface CapacityDecision {
  /** Replicas to set. */
  replicas: number;
  /** What the forecast alone asked for. */
  predictiveReplicas: number;
  /** What the reactive (HPA) floor asked for. */
  reactiveReplicas: number;
  /** Per-user allocation, requests/s (index = client), when the policy computes one. */
  userAllocPerSec?: Float64Array;
}

/** The Foresight allocator of one pool, replayed (adapter over src/allocator). */
export interface ForesightAllocator {
  /** One observed second of pool demand (what the gateways report), at the end of that second. */
  observe(nowMs: number, ratePerSec: number): void;
  /** One decision at `nowMs` from the users' forecasts, with `existing` replicas (starting or ready). */
  decide(nowMs: number, users: UserForecasts, existing: number): CapacityDecision;
}

/** Settings of one Foresight run (one frontier point). */
export interface ForesightSettings {
  /** Extra capacity over the pool's upper bound, fraction. */
  headroom: number;
  /** Upper-bound quantile of the engine's forecasts. */
  quantile: number;
  /** Target utilization of the reactive HPA floor (pools[].reactive.targetUtilization). */
  floorTarget: number;
}

/** Builds a Foresight allocator for a pool. */
export type ForesightAllocatorFactory = (o: {
  /** Requests/s one replica serves (R). */
  replicaRatePerSec: number;
  settings: ForesightSettings;
  /** Scale-up delay, s. */
  startDelaySec: number;
  /** Decision interval, s. */
  decisionSec: number;
  /** Replicas before the first decision. */
  initialReplicas: number;
  /** Compute the per-user allocation at each decision (only the throttled run reads it). */
  userAllocation: boolean;
}) => ForesightAllocator;

/** Reactive HPA v2 of one pool (adapter over src/allocator/hpa.ts). */
export interface ReactiveHpa {
  observe(nowMs: number, ratePerSec: number): void;
  /** Replicas the HPA sets at `nowMs` given every existing replica. */
  recommend(nowMs: number, existing: number): number;
}

export type ReactiveHpaFactory = (o: { replicaRatePerSec: number; targetUtilization: number; initialReplicas: number }) => ReactiveHpa;

/**
 * A per-user throttle for one pool, one second at a time: `arrivals[u]` requests of user u arrive;
 * it writes `admitted[u]` (≤ arrivals[u]). Requests are fluid (fractions allowed).
 */
export interface PoolThrottle {
  /**
   * @param tSec second since the trace start
   * @param loadPerSec the pool's load: mean arrival rate over the trailing pressure window, requests/s
   * @param capacityPerSec what the ready replicas serve this second
   */
  admit(tSec: number, arrivals: Float64Array, admitted: Float64Array, loadPerSec: number, capacityPerSec: number): void;
}

/** Fixed-window per-user limiter (adapter over src/envoy/fixed-window.ts): static quota per user per window. */
export type FixedWindowFactory = (o: { quotaPerWindow: Float64Array; windowSec: number }) => PoolThrottle;

/** Foresight throttle: grants from forecasts and allocation (adapter over src/throttle/grants.ts). */
export interface GrantThrottle extends PoolThrottle {
  /** New forecasts / allocation: recompute the grants. */
  update(tSec: number, users: UserForecasts, capacityPerSec: number, userAllocPerSec?: Float64Array): void;
}

export type GrantThrottleFactory = (o: { users: number; burstFactor: number }) => GrantThrottle;

/** Every policy module the replay drives. */
export interface PolicyModules {
  hpa: ReactiveHpaFactory;
  foresight: ForesightAllocatorFactory;
  fixedWindow: FixedWindowFactory;
  grants: GrantThrottleFactory;
}
