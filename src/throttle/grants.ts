// The grant policy: pure functions of forecasts, allocations, plan limits and pool load, no I/O,
// shared by the grant service (live), the gateways' ThrottleClient and the replay harness.
//
// The rule (seed, ATM): a request is throttled only when the user's actual rate exceeds its
// forecast upper bound AND its pool is above the capacity allocated to it.
//   - Per user the grant carries U (forecast upper bound), A (the user's allocation: its share of
//     the pool's allocated capacity), P (the plan's limit) and G = min(P, max(U, A)).
//   - Pool has spare (pressure < 1): the user's bucket refills at P: over-forecast users are still
//     served up to their plan's limit.
//   - Pool short (pressure >= 1): the bucket refills at G: a user within its forecast (rate <= U <= G)
//     is never cut, a user above both forecast and allocation is throttled to G by its bucket.
// `enforcedRate` is that switch; the token bucket maths is `refillBucket`.

/** A plan's limit (or safe limit): requests/s and optionally tokens/s (absent = unlimited). */
export interface PlanLimit {
  requestsPerSec: number;
  tokensPerSec?: number;
}

/** Per-user inputs of one grant computation, index i = one user (typed arrays: 1M users cheap). */
export interface GrantInputs {
  /** Users in the arrays. */
  count: number;
  /** Low / high words of each user's 64-bit hash. */
  userHashLo: Uint32Array;
  userHashHi: Uint32Array;
  /** Forecast upper bound, requests/s. */
  upperReqPerSec: Float64Array;
  /** Forecast upper bound of tokens, tokens/s; NaN = unknown (the plan's token limit applies). */
  upperTokPerSec?: Float64Array;
  /** Observed rate in the last bucket, requests/s (pool load when no fresher load is known). */
  observedReqPerSec?: Float64Array;
  /**
   * The user's allocation, requests/s (from the allocator's per-user allocation); NaN or absent =
   * a share of its pool's capacity proportional to its forecast upper bound.
   */
  allocReqPerSec?: Float64Array;
  /** Index into `plans` per user (0 = default). */
  planIndex: Uint8Array;
  /** Index into `pools` per user. */
  poolIndex: Uint16Array;
}

/** One pool's allocated capacity. */
export interface PoolCapacity {
  /** Requests/s the pool is allocated (replicas × requestsPerSecPerReplica). */
  capacityReqPerSec: number;
}

/** Grant computation settings. */
export interface GrantSettings {
  /** Plan limits, by plan index (index 0 = "default"). */
  plans: readonly PlanLimit[];
  /** Bucket capacity = rate × burstFactor × 1 s (throttle.burstFactor). */
  burstFactor: number;
  /**
   * Safe limits by plan index: the floor of a grant, so a short pool slows a user down to at
   * least its plan's safe limit instead of cutting it off. Absent = no floor.
   */
  safe?: readonly PlanLimit[];
}

/** Per-user grants (same indices as the inputs) plus per-pool figures. */
export interface GrantTable {
  count: number;
  userHashLo: Uint32Array;
  userHashHi: Uint32Array;
  /** U: forecast upper bound, requests/s. */
  upperReqPerSec: Float32Array;
  /** A: allocation, requests/s. */
  allocReqPerSec: Float32Array;
  /** G = min(P, max(U, A)): the rate enforced when the pool is short, requests/s. */
  grantReqPerSec: Float32Array;
  /** P: the plan's limit, requests/s (enforced while the pool has spare). */
  planReqPerSec: Float32Array;
  /** Token analogues (tokens/s; Infinity = unlimited). */
  upperTokPerSec: Float32Array;
  grantTokPerSec: Float32Array;
  planTokPerSec: Float32Array;
  planIndex: Uint8Array;
  poolIndex: Uint16Array;
  /** Per pool: sum of the users' allocations, requests/s. */
  poolAllocatedReqPerSec: Float64Array;
  /** Per pool: sum of the users' forecast upper bounds, requests/s. */
  poolForecastReqPerSec: Float64Array;
}

/** Bad grant-policy input; `field` names it. */
export class GrantInputError extends Error {
  override name = "GrantInputError";
  constructor(readonly field: string, message: string) {
    super(`grant input ${field}: ${message}`);
  }
}

/** Computes every user's grant from forecasts, allocations and plan limits. */
export function computeGrants(inp: GrantInputs, pools: readonly PoolCapacity[], s: GrantSettings): GrantTable {
  const n = inp.count;
  if (s.plans.length === 0) throw new GrantInputError("plans", "at least the default plan is required");
  if (pools.length === 0) throw new GrantInputError("pools", "at least one pool is required");
  const poolForecast = new Float64Array(pools.length);
  for (let i = 0; i < n; i++) {
    const pool = inp.poolIndex[i];
    if (pool >= pools.length) throw new GrantInputError(`poolIndex[${i}]`, `pool ${pool} of ${pools.length}`);
    if (inp.planIndex[i] >= s.plans.length) throw new GrantInputError(`planIndex[${i}]`, `plan ${inp.planIndex[i]} of ${s.plans.length}`);
    const u = inp.upperReqPerSec[i];
    if (!(u >= 0)) throw new GrantInputError(`upperReqPerSec[${i}]`, `expected a rate >= 0, got ${u}`);
    poolForecast[pool] += u;
  }
  const t: GrantTable = {
    count: n,
    userHashLo: inp.userHashLo.slice(0, n),
    userHashHi: inp.userHashHi.slice(0, n),
    upperReqPerSec: new Float32Array(n),
    allocReqPerSec: new Float32Array(n),
    grantReqPerSec: new Float32Array(n),
    planReqPerSec: new Float32Array(n),
    upperTokPerSec: new Float32Array(n),
    grantTokPerSec: new Float32Array(n),
    planTokPerSec: new Float32Array(n),
    planIndex: inp.planIndex.slice(0, n),
    poolIndex: inp.poolIndex.slice(0, n),
    poolAllocatedReqPerSec: new Float64Array(pools.length),
    poolForecastReqPerSec: poolForecast,
  };
  for (let i = 0; i < n; i++) {
    const pool = inp.poolIndex[i];
    const plan = s.plans[inp.planIndex[i]];
    const u = inp.upperReqPerSec[i];
    let a = inp.allocReqPerSec ? inp.allocReqPerSec[i] : NaN;
    if (!(a >= 0)) {
      // Proportional share of the pool's capacity by forecast: users forecast to need more get more.
      const f = poolForecast[pool];
      a = f > 0 ? (pools[pool].capacityReqPerSec * u) / f : 0;
    }
    const p = plan.requestsPerSec;
    const floor = s.safe?.[inp.planIndex[i]]?.requestsPerSec ?? 0;
    t.upperReqPerSec[i] = u;
    t.allocReqPerSec[i] = a;
    t.planReqPerSec[i] = p;
    t.grantReqPerSec[i] = Math.min(p, Math.max(u, a, floor));
    t.poolAllocatedReqPerSec[pool] += a;
    // Tokens: without a token forecast the plan's token limit is both bound and grant.
    const pt = plan.tokensPerSec ?? Infinity;
    const ut = inp.upperTokPerSec ? inp.upperTokPerSec[i] : NaN;
    t.planTokPerSec[i] = pt;
    if (ut >= 0) {
      // The token allocation follows the request allocation's ratio to the forecast.
      const at = u > 0 ? (ut * a) / u : ut;
      t.upperTokPerSec[i] = ut;
      t.grantTokPerSec[i] = Math.min(pt, Math.max(ut, at, s.safe?.[inp.planIndex[i]]?.tokensPerSec ?? 0));
    } else {
      t.upperTokPerSec[i] = pt;
      t.grantTokPerSec[i] = pt;
    }
  }
  return t;
}

/** Pool pressure: load over allocation (>= 1 means the pool is short); 0 for an idle pool. */
export function poolPressure(loadReqPerSec: number, allocatedReqPerSec: number): number {
  if (!(loadReqPerSec > 0)) return 0;
  if (!(allocatedReqPerSec > 0)) return Infinity;
  return loadReqPerSec / allocatedReqPerSec;
}

/** The rate a user's bucket refills at: the plan limit while its pool has spare, the grant G when short. */
export function enforcedRate(planRate: number, grantRate: number, pressure: number): number {
  return pressure < 1 ? planRate : grantRate;
}

/** Token bucket capacity for a refill rate (per second) and burst factor. */
export function bucketCapacity(ratePerSec: number, burstFactor: number): number {
  return ratePerSec * burstFactor;
}

/** Tokens in a bucket after `elapsedMs` of refill at `ratePerSec`, capped at `capacity`. */
export function refillBucket(tokens: number, elapsedMs: number, ratePerSec: number, capacity: number): number {
  const t = tokens + (elapsedMs > 0 ? (elapsedMs * ratePerSec) / 1000 : 0);
  return t < capacity ? t : capacity;
}

/** The plan order both sides use for plan indices: "default" first, then the others sorted (<= 255). */
export function planOrder(plans: Readonly<Record<string, unknown>>): string[] {
  const names = ["default", ...Object.keys(plans).filter((k) => k !== "default").sort()];
  if (names.length > 255) throw new GrantInputError("plans", `${names.length} plans, at most 255`);
  return names;
}

/** Plan limits as an array in {@link planOrder}; plans missing from `limits` take its "default". */
export function planLimits(order: readonly string[], limits: Readonly<Record<string, PlanLimit>>): PlanLimit[] {
  const d = limits.default;
  if (!d) throw new GrantInputError("plans", 'the "default" plan is required');
  return order.map((n) => limits[n] ?? d);
}
