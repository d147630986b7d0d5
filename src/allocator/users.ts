// Per-user allocation: each user's share of its pool's capacity, in the seed's
// `allocateResources(user, predicted)` shape (current → required → delta → allocate or deallocate
// with safeguards → record). Typed arrays over user slots, for a million users. The throttle reads
// `allocatedPerSec`: a user above its forecast is throttled only when its pool is above its allocation.
//
// Share rule: when a pool's capacity covers the sum of its users' forecast upper bounds, every
// user gets its bound plus the spare in proportion to it; when it does not, capacity is shared
// max-min fair (water-filling, exact): users asking less than the level
// get what they ask, the others the level, so a small user keeps its forecast while a big one bursts.
import { NO_POOL, type PoolMembership, type UserForecastArrays } from "./demand.ts";

/** Options of {@link UserAllocations}. */
export interface UserAllocationOptions {
  /**
   * Most of its allocation a user loses in one decision while its pool has spare capacity, as a
   * fraction in (0, 1]. Default 0.5: a user's grant halves at most per decision, so a lull between
   * two bursts does not cut it at once. In a pool short of capacity the fair share applies at once.
   */
  maxDecreaseFraction?: number;
  /** Allocation below which a user's grant is recorded as 0, requests/s. Default 0. */
  minAllocationPerSec?: number;
}

/** What the seed's allocateResources returns for one user. */
export interface UserAllocationResult {
  user: number;
  current: number;
  required: number;
  delta: number;
  action: "allocate" | "deallocate" | "none";
  /** The allocation recorded (may differ from `required` by the deallocation safeguard). */
  allocated: number;
}

/** Summary of {@link UserAllocations.allocateAll}. */
export interface UserAllocationSummary {
  /** Per pool: Σ of the users' claims (upper bounds, weighted for split users), requests/s. */
  claimsPerSec: Float64Array;
  /** Per pool: Σ of the allocations recorded, requests/s. */
  allocatedPerSec: Float64Array;
  /** Per pool: water level when short (the most a user gets), else Infinity. */
  levelPerSec: Float64Array;
  /** Per pool: capacity < claims. */
  short: Uint8Array;
  allocations: number;
  deallocations: number;
}

/** Bad allocation input. */
export class UserAllocationError extends Error {
  override name = "UserAllocationError";
}

/** Per-user allocations (requests/s), recorded across ticks. */
export class UserAllocations {
  /** The recorded allocation of each user slot, requests/s (what the throttle reads). */
  readonly allocatedPerSec: Float64Array;
  /** This tick's requirement of each user, requests/s. */
  readonly requiredPerSec: Float64Array;
  /** allocated − previous allocated of this tick. */
  readonly deltaPerSec: Float64Array;
  private readonly maxDecrease: number;
  private readonly minAlloc: number;

  constructor(capacityUsers: number, options: UserAllocationOptions = {}) {
    if (!(Number.isInteger(capacityUsers) && capacityUsers >= 0)) throw new UserAllocationError(`capacityUsers must be an integer >= 0 (got ${capacityUsers})`);
    this.maxDecrease = options.maxDecreaseFraction ?? 0.5;
    if (!(this.maxDecrease > 0 && this.maxDecrease <= 1)) throw new UserAllocationError(`maxDecreaseFraction must be in (0, 1] (got ${this.maxDecrease})`);
    this.minAlloc = options.minAllocationPerSec ?? 0;
    if (!(this.minAlloc >= 0)) throw new UserAllocationError(`minAllocationPerSec must be >= 0 (got ${this.minAlloc})`);
    this.allocatedPerSec = new Float64Array(capacityUsers);
    this.requiredPerSec = new Float64Array(capacityUsers);
    this.deltaPerSec = new Float64Array(capacityUsers);
  }

  /** The user's recorded allocation, requests/s. */
  currentAllocation(user: number): number {
    return this.allocatedPerSec[user];
  }

  /**
   * The seed's shape for one user: `required` is what the user should get now (its predicted
   * share); an increase is allocated at once; a decrease is deallocated with the safeguard (at most
   * maxDecreaseFraction of the current allocation) unless `immediate` (its pool is short).
   */
  allocateResources(user: number, required: number, immediate = false): UserAllocationResult {
    if (!(Number.isInteger(user) && user >= 0 && user < this.allocatedPerSec.length)) throw new UserAllocationError(`user slot ${user} is outside 0..${this.allocatedPerSec.length - 1}`);
    if (!(required >= 0) || !Number.isFinite(required)) throw new UserAllocationError(`required allocation of user ${user} must be a finite number >= 0 (got ${required})`);
    const current = this.allocatedPerSec[user];
    let next = required;
    let action: UserAllocationResult["action"] = "none";
    if (required > current) action = "allocate";
    else if (required < current) {
      action = "deallocate";
      if (!immediate) next = Math.max(required, current * (1 - this.maxDecrease));
    }
    if (next < this.minAlloc) next = 0;
    this.requiredPerSec[user] = required;
    this.deltaPerSec[user] = next - current;
    this.allocatedPerSec[user] = next;
    if (next === current) action = "none";
    return { user, current, required, delta: required - current, action, allocated: next };
  }

  /**
   * {@link allocateResources} without the result object (for callers that decide user by user at
   * scale): records the allocation and returns it, requests/s.
   */
  allocate(user: number, required: number, immediate = false): number {
    if (!((user >>> 0) === user && user < this.allocatedPerSec.length) || !(required >= 0) || !Number.isFinite(required)) return this.allocateResources(user, required, immediate).allocated; // throws the named error
    this.record(user, required, immediate);
    return this.allocatedPerSec[user];
  }

  /**
   * Every user's share of its pool's capacity (`poolCapacityPerSec[p]`, requests/s), recorded with
   * the safeguards. Claims are the forecast upper bounds; split users claim w·upper in each pool.
   */
  allocateAll(f: UserForecastArrays, m: PoolMembership, poolCapacityPerSec: ArrayLike<number>): UserAllocationSummary {
    const n = f.count;
    const P = m.poolCount;
    if (poolCapacityPerSec.length !== P) throw new UserAllocationError(`${poolCapacityPerSec.length} pool capacities for ${P} pools`);
    if (n > this.allocatedPerSec.length) throw new UserAllocationError(`forecasts have ${n} users, allocations hold ${this.allocatedPerSec.length}`);
    const poolOf = m.poolOf;
    const upper = f.upperPerSec;
    const split = m.splitUsers > 0 ? m.splitTable : undefined;
    const claims = new Float64Array(P);
    for (let i = 0; i < n; i++) {
      const p = poolOf[i];
      if (p >= 0) claims[p] += upper[i];
      else if (p !== NO_POOL && split) {
        const r = -2 - p;
        for (let k = split.rowStart[r]; k < split.rowEnd[r]; k++) claims[split.pool[k]] += split.weight[k] * upper[i];
      }
    }
    const short = new Uint8Array(P);
    const level = new Float64Array(P).fill(Infinity);
    const ratio = new Float64Array(P); // spare multiplier where not short
    let anyShort = false;
    for (let p = 0; p < P; p++) {
      const cap = poolCapacityPerSec[p];
      if (!(cap >= 0)) throw new UserAllocationError(`capacity of pool ${p} must be >= 0 (got ${cap})`);
      if (cap < claims[p]) {
        short[p] = 1;
        anyShort = true;
      } else ratio[p] = claims[p] > 0 ? cap / claims[p] : 0;
    }
    if (anyShort) this.waterLevels(f, m, poolCapacityPerSec, short, level, claims);
    const allocated = new Float64Array(P);
    let allocs = 0, deallocs = 0;
    for (let i = 0; i < n; i++) {
      const p = poolOf[i];
      if (p === NO_POOL) {
        this.record(i, 0, true);
        continue;
      }
      const u = upper[i];
      let req = 0;
      let immediate = false;
      if (p >= 0) {
        if (short[p]) {
          req = u < level[p] ? u : level[p];
          immediate = true;
        } else req = u * ratio[p];
      } else if (split) {
        const r = -2 - p;
        for (let k = split.rowStart[r]; k < split.rowEnd[r]; k++) {
          const q = split.pool[k], c = split.weight[k] * u;
          if (short[q]) {
            req += c < level[q] ? c : level[q];
            immediate = true;
          } else req += c * ratio[q];
        }
      }
      const before = this.allocatedPerSec[i];
      this.record(i, req, immediate);
      const after = this.allocatedPerSec[i];
      if (after > before) allocs++;
      else if (after < before) deallocs++;
      if (p >= 0) allocated[p] += after;
      else if (split) {
        // Each pool's part of the allocation: its part of the requirement, scaled like the whole.
        const r = -2 - p;
        const scale = req > 0 ? after / req : 0;
        for (let k = split.rowStart[r]; k < split.rowEnd[r]; k++) {
          const q = split.pool[k], c = split.weight[k] * u;
          const part = short[q] ? (c < level[q] ? c : level[q]) : c * ratio[q];
          allocated[q] += req > 0 ? part * scale : split.weight[k] * after;
        }
      }
    }
    return { claimsPerSec: claims, allocatedPerSec: allocated, levelPerSec: level, short, allocations: allocs, deallocations: deallocs };
  }

  // Inline form of allocateResources for the vector path (no result object per user).
  private record(i: number, required: number, immediate: boolean): void {
    const current = this.allocatedPerSec[i];
    let next = required;
    if (required < current && !immediate) {
      const floor = current * (1 - this.maxDecrease);
      if (floor > next) next = floor;
    }
    if (next < this.minAlloc) next = 0;
    this.requiredPerSec[i] = required;
    this.deltaPerSec[i] = next - current;
    this.allocatedPerSec[i] = next;
  }

  /**
   * Exact water level of each short pool: its claims gathered into one array grouped by pool
   * (two passes), then {@link waterLevel} per group.
   */
  private waterLevels(f: UserForecastArrays, m: PoolMembership, cap: ArrayLike<number>, short: Uint8Array, level: Float64Array, _claims: Float64Array): void {
    const P = m.poolCount;
    const n = f.count, poolOf = m.poolOf, upper = f.upperPerSec;
    const split = m.splitUsers > 0 ? m.splitTable : undefined;
    const count = new Int32Array(P + 1);
    for (let i = 0; i < n; i++) {
      const p = poolOf[i];
      if (p >= 0) count[p + 1] += short[p];
      else if (p !== NO_POOL && split) {
        const r = -2 - p;
        for (let k = split.rowStart[r]; k < split.rowEnd[r]; k++) count[split.pool[k] + 1] += short[split.pool[k]];
      }
    }
    for (let p = 0; p < P; p++) count[p + 1] += count[p];
    const buf = new Float64Array(count[P]);
    const fill = count.slice(0, P);
    for (let i = 0; i < n; i++) {
      const p = poolOf[i];
      if (p >= 0) {
        if (short[p]) buf[fill[p]++] = upper[i];
      } else if (p !== NO_POOL && split) {
        const r = -2 - p;
        for (let k = split.rowStart[r]; k < split.rowEnd[r]; k++) {
          const q = split.pool[k];
          if (short[q]) buf[fill[q]++] = split.weight[k] * upper[i];
        }
      }
    }
    for (let p = 0; p < P; p++) if (short[p]) level[p] = waterLevel(buf.subarray(count[p], count[p + 1]), cap[p]);
  }
}

/**
 * The level L with Σ min(cᵢ, L) = capacity (capacity < Σ cᵢ). Fixed-point iteration: claims at or
 * below the current level are satisfied for sure (the level only rises), so L ← (capacity − Σ
 * satisfied) / #unsatisfied until the satisfied set stops growing — exact, a few passes on real
 * (heavy-tailed) claims; after 32 passes the rest is sorted.
 */
export function waterLevel(claims: Float64Array, capacity: number): number {
  const n = claims.length;
  if (n === 0) return 0;
  let level = capacity / n;
  let above = n;
  for (let it = 0; it < 32; it++) {
    let below = 0, nAbove = 0;
    for (let j = 0; j < n; j++) {
      const c = claims[j];
      if (c <= level) below += c;
      else nAbove++;
    }
    if (nAbove === 0) return level;
    const next = (capacity - below) / nAbove;
    if (nAbove === above && it > 0) return next;
    above = nAbove;
    level = next;
  }
  const g = Float64Array.from(claims).sort();
  let left = capacity;
  for (let j = 0; j < g.length; j++) {
    const rest = g.length - j;
    if (g[j] * rest >= left) return left / rest;
    left -= g[j];
  }
  return g[g.length - 1];
}

/** One group of claims for {@link waterLevelOfGroups}: sorted ascending, with running sums. */
export interface SortedClaims {
  /** Claims, ascending. */
  sorted: Float64Array;
  /** prefix[k] = Σ sorted[0..k−1] (length = sorted.length + 1). */
  prefix: Float64Array;
}

/** Sorts claims and forms their running sums (for {@link waterLevelOfGroups}). */
export function sortedClaims(claims: Float64Array): SortedClaims {
  const sorted = Float64Array.from(claims).sort();
  const prefix = new Float64Array(sorted.length + 1);
  for (let k = 0; k < sorted.length; k++) prefix[k + 1] = prefix[k] + sorted[k];
  return { sorted, prefix };
}

/** Claims of a sorted group at or below `level` (binary search). */
function countAtOrBelow(sorted: Float64Array, level: number): number {
  let lo = 0, hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid] <= level) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * {@link waterLevel} over the union of several sorted groups, without merging them: the level L
 * with Σ min(cᵢ, L) = capacity (capacity < Σ cᵢ). For claims held in parts that change one part at
 * a time (a pool's users over partitions): each part is sorted once when it changes, and the level
 * costs O(groups · log n) per step of a bisection over the claims' range, then the exact value from
 * the set of claims it leaves below the level.
 */
export function waterLevelOfGroups(groups: readonly SortedClaims[], capacity: number): number {
  let total = 0, n = 0, max = 0;
  for (const g of groups) {
    total += g.prefix[g.sorted.length];
    n += g.sorted.length;
    if (g.sorted.length > 0 && g.sorted[g.sorted.length - 1] > max) max = g.sorted[g.sorted.length - 1];
  }
  if (n === 0) return 0;
  if (capacity >= total) return max;
  // Σ min(c, L) is continuous and increasing in L: bisect until the set below L stops changing.
  let lo = 0, hi = max;
  for (let it = 0; it < 200 && lo < hi; it++) {
    const mid = (lo + hi) / 2;
    if (mid === lo || mid === hi) break;
    let filled = 0;
    for (const g of groups) {
      const k = countAtOrBelow(g.sorted, mid);
      filled += g.prefix[k] + mid * (g.sorted.length - k);
    }
    if (filled < capacity) lo = mid;
    else hi = mid;
  }
  let below = 0, above = 0;
  for (const g of groups) {
    const k = countAtOrBelow(g.sorted, lo);
    below += g.prefix[k];
    above += g.sorted.length - k;
  }
  return above > 0 ? (capacity - below) / above : max;
}

/** A pool's capacity in requests/s for per-user shares: replicas × requests/s per replica × utilization. */
export function poolCapacityPerSec(replicas: number, requestsPerSecPerReplica: number, utilization = 1): number {
  return replicas * requestsPerSecPerReplica * utilization;
}
