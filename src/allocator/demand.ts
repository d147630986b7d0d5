// Pool demand: which users a pool serves, and the pool's forecast (mean and upper bound) from its
// users' forecasts. Pure: no I/O, typed arrays over user slots so one pass covers a million users.
//
// The pool's upper bound is not the sum of per-user upper bounds: with N users of similar spread
// that sum is N·(μ + zσ) while the pool's own bound is Nμ + zσ√N (independent errors), so it
// over-provisions by about √N. "variance" combines the users' forecast variances
// (σᵢ = (upperᵢ − meanᵢ) / z, the engine's own bound inverted); "sum" is the naive sum; "blend"
// mixes the two. docs/allocator.md measures which covers the real pool totals at what capacity.

/** How a pool's upper bound is formed (config `pools[].demandMethod`). */
export type DemandMethod = "variance" | "sum" | "blend";

/** Per-user forecasts of one tick, indexed by user slot (what the processor publishes per user). */
export interface UserForecastArrays {
  /** Slots 0..count−1 are read. */
  count: number;
  /** Forecast requests/s at the horizon. */
  meanPerSec: Float64Array;
  /** Upper bound of the forecast at the engine's quantile, requests/s. */
  upperPerSec: Float64Array;
  /** Observed requests/s in the bucket that closed last (what the user sends now). */
  observedPerSec: Float64Array;
  /** Tokens per request of each user (input + output); absent = requests only. */
  tokensPerRequest?: Float64Array;
}

/** A user's share of one pool. */
export interface PoolShare {
  pool: number;
  /** Fraction of the user's traffic in this pool, in (0, 1]. */
  weight: number;
}

/** Bad membership or demand input. */
export class DemandInputError extends Error {
  override name = "DemandInputError";
}

/** Marks a user slot without a pool. */
export const NO_POOL = -1;

/**
 * Which pool each user slot belongs to: `poolOf[i]` is a pool index, {@link NO_POOL}, or, for a
 * user whose traffic spans pools, −2 − r where r is a row of the split table (pools and weights).
 */
export class PoolMembership {
  readonly poolCount: number;
  poolOf: Int32Array;
  private rowStart: Int32Array;
  private rowEnd: Int32Array;
  private splitPool: Int32Array;
  private splitWeight: Float64Array;
  private rows = 0;
  private entries = 0;
  private liveSplits = 0;
  private splitList: Int32Array | undefined;
  private dirty = true;

  constructor(capacityUsers: number, poolCount: number) {
    if (!(Number.isInteger(capacityUsers) && capacityUsers >= 0)) throw new DemandInputError(`capacityUsers must be an integer >= 0 (got ${capacityUsers})`);
    if (!(Number.isInteger(poolCount) && poolCount >= 1)) throw new DemandInputError(`poolCount must be an integer >= 1 (got ${poolCount})`);
    this.poolCount = poolCount;
    this.poolOf = new Int32Array(capacityUsers).fill(NO_POOL);
    this.rowStart = new Int32Array(64);
    this.rowEnd = new Int32Array(64);
    this.splitPool = new Int32Array(256);
    this.splitWeight = new Float64Array(256);
  }

  get capacityUsers(): number {
    return this.poolOf.length;
  }

  /** Users currently split across pools. */
  get splitUsers(): number {
    return this.liveSplits;
  }

  /** Puts a user wholly in one pool (or {@link NO_POOL}). */
  set(user: number, pool: number): void {
    this.checkUser(user);
    if (pool !== NO_POOL) this.checkPool(pool);
    if (this.poolOf[user] <= -2) {
      this.liveSplits--;
      this.dirty = true;
    }
    this.poolOf[user] = pool;
  }

  /**
   * Sets a user's shares; weights are normalised to sum 1. One share is the same as {@link set};
   * shares of the same pool are merged.
   */
  setShares(user: number, shares: readonly PoolShare[]): void {
    this.checkUser(user);
    const merged = new Map<number, number>();
    let total = 0;
    for (const s of shares) {
      this.checkPool(s.pool);
      if (!(s.weight >= 0) || !Number.isFinite(s.weight)) throw new DemandInputError(`share weight of pool ${s.pool} must be a finite number >= 0 (got ${s.weight})`);
      if (s.weight === 0) continue;
      merged.set(s.pool, (merged.get(s.pool) ?? 0) + s.weight);
      total += s.weight;
    }
    if (merged.size === 0) return this.set(user, NO_POOL);
    if (merged.size === 1) return this.set(user, merged.keys().next().value!);
    if (this.poolOf[user] > -2) {
      this.liveSplits++;
      this.dirty = true;
    }
    // Append a row; old rows of this user become garbage, compacted when they dominate.
    if (this.entries + merged.size > this.splitPool.length || this.rows >= this.rowStart.length) this.compact(merged.size);
    const r = this.rows++;
    this.rowStart[r] = this.entries;
    for (const [p, w] of merged) {
      this.splitPool[this.entries] = p;
      this.splitWeight[this.entries] = w / total;
      this.entries++;
    }
    this.rowEnd[r] = this.entries;
    this.poolOf[user] = -2 - r;
  }

  /** The user's shares (one entry of weight 1 for a single pool; empty for none). */
  sharesOf(user: number): PoolShare[] {
    const p = this.poolOf[user];
    if (p === NO_POOL) return [];
    if (p >= 0) return [{ pool: p, weight: 1 }];
    const r = -2 - p;
    const out: PoolShare[] = [];
    for (let k = this.rowStart[r]; k < this.rowEnd[r]; k++) out.push({ pool: this.splitPool[k], weight: this.splitWeight[k] });
    return out;
  }

  /** Calls `fn(pool, weight)` for each share of a split user (poolOf ≤ −2); for aggregation loops. */
  forEachSplit(code: number, fn: (pool: number, weight: number) => void): void {
    const r = -2 - code;
    for (let k = this.rowStart[r]; k < this.rowEnd[r]; k++) fn(this.splitPool[k], this.splitWeight[k]);
  }

  /** Slots of the users split across pools (cached until membership changes). */
  splitUserList(): Int32Array {
    if (this.splitList && !this.dirty) return this.splitList;
    const out = new Int32Array(this.liveSplits);
    let k = 0;
    for (let u = 0; u < this.poolOf.length && k < out.length; u++) if (this.poolOf[u] <= -2) out[k++] = u;
    this.splitList = out;
    this.dirty = false;
    return out;
  }

  /** Raw split table (read-only use in hot loops): row r spans [rowStart[r], rowEnd[r]). */
  get splitTable(): { rowStart: Int32Array; rowEnd: Int32Array; pool: Int32Array; weight: Float64Array } {
    return { rowStart: this.rowStart, rowEnd: this.rowEnd, pool: this.splitPool, weight: this.splitWeight };
  }

  private compact(need: number): void {
    // Rebuild rows from live users only, then grow if still short.
    const liveRows: number[] = [];
    for (let u = 0; u < this.poolOf.length; u++) if (this.poolOf[u] <= -2) liveRows.push(u);
    let entries = 0;
    for (const u of liveRows) {
      const r = -2 - this.poolOf[u];
      entries += this.rowEnd[r] - this.rowStart[r];
    }
    const rowCap = Math.max(64, (liveRows.length + 1) * 2);
    const entryCap = Math.max(256, (entries + need) * 2);
    const rowStart = new Int32Array(rowCap);
    const rowEnd = new Int32Array(rowCap);
    const pool = new Int32Array(entryCap);
    const weight = new Float64Array(entryCap);
    let e = 0;
    liveRows.forEach((u, nr) => {
      const r = -2 - this.poolOf[u];
      rowStart[nr] = e;
      for (let k = this.rowStart[r]; k < this.rowEnd[r]; k++) {
        pool[e] = this.splitPool[k];
        weight[e] = this.splitWeight[k];
        e++;
      }
      rowEnd[nr] = e;
      this.poolOf[u] = -2 - nr;
    });
    this.rowStart = rowStart;
    this.rowEnd = rowEnd;
    this.splitPool = pool;
    this.splitWeight = weight;
    this.rows = liveRows.length;
    this.entries = e;
  }

  private checkUser(user: number): void {
    if (!(Number.isInteger(user) && user >= 0 && user < this.poolOf.length)) throw new DemandInputError(`user slot ${user} is outside 0..${this.poolOf.length - 1}`);
  }
  private checkPool(pool: number): void {
    if (!(Number.isInteger(pool) && pool >= 0 && pool < this.poolCount)) throw new DemandInputError(`pool index ${pool} is outside 0..${this.poolCount - 1}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Membership rules (config `pools[].match`).

/** The `match` rules of one pool, in pool order. */
export interface PoolMatchRules {
  name: string;
  match: { routes: readonly string[]; models: readonly string[]; plans: readonly string[]; segments: readonly string[]; users: readonly string[]; default: boolean };
}

/** What the user directory and recent telemetry say about a user. */
export interface UserAttributes {
  key: string;
  plan?: string;
  segment?: string;
  /** Recent requests per route or model name (the user's route mix); absent = unknown. */
  routeMix?: ReadonlyMap<string, number> | Readonly<Record<string, number>>;
}

/**
 * Resolves users to pools by the config rules, in this order: an explicit `users` entry; the
 * user's recent route mix (routes by longest prefix, models by name; a mix spanning pools splits
 * the user in proportion); the user's plan, then segment; else the default pool (or none).
 */
export class PoolMatcher {
  private readonly byUser = new Map<string, number>();
  private readonly byModel = new Map<string, number>();
  private readonly byPlan = new Map<string, number>();
  private readonly bySegment = new Map<string, number>();
  /** Route prefixes, longest first. */
  private readonly routes: { prefix: string; pool: number }[] = [];
  readonly defaultPool: number;

  constructor(pools: readonly PoolMatchRules[]) {
    let def = NO_POOL;
    pools.forEach((p, i) => {
      for (const u of p.match.users) this.claim(this.byUser, u, i, pools, "users");
      for (const m of p.match.models) this.claim(this.byModel, m, i, pools, "models");
      for (const pl of p.match.plans) this.claim(this.byPlan, pl, i, pools, "plans");
      for (const s of p.match.segments) this.claim(this.bySegment, s, i, pools, "segments");
      for (const r of p.match.routes) {
        if (this.routes.some((x) => x.prefix === r)) throw new DemandInputError(`route "${r}" is claimed by two pools (pools.${i}.match.routes)`);
        this.routes.push({ prefix: r, pool: i });
      }
      if (p.match.default) {
        if (def !== NO_POOL) throw new DemandInputError(`only one pool may be the default (pools.${def} and pools.${i})`);
        def = i;
      }
    });
    this.routes.sort((a, b) => b.prefix.length - a.prefix.length);
    this.defaultPool = def;
  }

  private claim(map: Map<string, number>, key: string, pool: number, pools: readonly PoolMatchRules[], field: string): void {
    const prev = map.get(key);
    if (prev !== undefined && prev !== pool) throw new DemandInputError(`${field} entry "${key}" is claimed by pools "${pools[prev].name}" and "${pools[pool].name}"`);
    map.set(key, pool);
  }

  /** The pool a route or model name belongs to, or {@link NO_POOL}. */
  poolOfRoute(route: string): number {
    const m = this.byModel.get(route);
    if (m !== undefined) return m;
    for (const r of this.routes) if (route.startsWith(r.prefix)) return r.pool;
    return NO_POOL;
  }

  /** The user's pool shares (empty = no pool). */
  resolve(user: UserAttributes): PoolShare[] {
    const explicit = this.byUser.get(user.key);
    if (explicit !== undefined) return [{ pool: explicit, weight: 1 }];
    if (user.routeMix) {
      const entries = user.routeMix instanceof Map ? [...user.routeMix] : Object.entries(user.routeMix);
      const byPool = new Map<number, number>();
      let unmatched = 0;
      for (const [route, n] of entries) {
        if (!(n > 0)) continue;
        const p = this.poolOfRoute(route);
        if (p === NO_POOL) unmatched += n;
        else byPool.set(p, (byPool.get(p) ?? 0) + n);
      }
      // Traffic on routes no pool claims goes to the default pool, if there is one.
      if (unmatched > 0 && this.defaultPool !== NO_POOL) byPool.set(this.defaultPool, (byPool.get(this.defaultPool) ?? 0) + unmatched);
      if (byPool.size > 0) return [...byPool].map(([pool, weight]) => ({ pool, weight }));
    }
    const byPlan = user.plan !== undefined ? this.byPlan.get(user.plan) : undefined;
    if (byPlan !== undefined) return [{ pool: byPlan, weight: 1 }];
    const bySeg = user.segment !== undefined ? this.bySegment.get(user.segment) : undefined;
    if (bySeg !== undefined) return [{ pool: bySeg, weight: 1 }];
    return this.defaultPool === NO_POOL ? [] : [{ pool: this.defaultPool, weight: 1 }];
  }

  /** Resolves a user and records it in `membership` at `slot`. */
  assign(membership: PoolMembership, slot: number, user: UserAttributes): void {
    membership.setShares(slot, this.resolve(user));
  }
}

// ---------------------------------------------------------------------------------------------
// Aggregation.

/** Per-pool sums of one tick; every array has one entry per pool. */
export interface PoolDemand {
  poolCount: number;
  /** Σ users' forecast means, requests/s. */
  meanPerSec: Float64Array;
  /** Σ users' forecast variances, (requests/s)². */
  variance: Float64Array;
  /** Σ users' upper bounds, requests/s (the naive bound). */
  upperSumPerSec: Float64Array;
  /** Σ users' observed rates, requests/s (what active users need now). */
  observedPerSec: Float64Array;
  /** Users with observed traffic > 0 (split users count in each of their pools). */
  activeUsers: Float64Array;
  /** Token sums, present when the forecasts carry tokens per request. */
  tokens?: { meanPerSec: Float64Array; variance: Float64Array; upperSumPerSec: Float64Array; observedPerSec: Float64Array };
}

/** Fresh (zeroed) per-pool sums. */
export function newPoolDemand(poolCount: number, withTokens: boolean): PoolDemand {
  const f = () => new Float64Array(poolCount);
  return {
    poolCount,
    meanPerSec: f(),
    variance: f(),
    upperSumPerSec: f(),
    observedPerSec: f(),
    activeUsers: f(),
    tokens: withTokens ? { meanPerSec: f(), variance: f(), upperSumPerSec: f(), observedPerSec: f() } : undefined,
  };
}

const scratches = new WeakMap<PoolDemand, Float64Array>();
/** The zeroed interleaved accumulator of `d` (W sums per pool), allocated once per output. */
function scratch(d: PoolDemand, W: number): Float64Array {
  let a = scratches.get(d);
  if (!a || a.length !== d.poolCount * W) scratches.set(d, (a = new Float64Array(d.poolCount * W)));
  else a.fill(0);
  return a;
}

function zero(d: PoolDemand): void {
  d.meanPerSec.fill(0);
  d.variance.fill(0);
  d.upperSumPerSec.fill(0);
  d.observedPerSec.fill(0);
  d.activeUsers.fill(0);
  if (d.tokens) {
    d.tokens.meanPerSec.fill(0);
    d.tokens.variance.fill(0);
    d.tokens.upperSumPerSec.fill(0);
    d.tokens.observedPerSec.fill(0);
  }
}

/**
 * Sums the users' forecasts per pool in one pass. `z` is the normal quantile of the engine's
 * upper bound (normalQuantile(engine.upperQuantile)): σᵢ = max(0, upperᵢ − meanᵢ) / z. A split
 * user contributes w·mean and w²·σ² to each pool (its traffic there is w times its traffic).
 * Reuses `out` when given (no allocation per tick).
 */
export function aggregateDemand(f: UserForecastArrays, m: PoolMembership, z: number, out?: PoolDemand): PoolDemand {
  if (!(z > 0)) throw new DemandInputError(`z must be > 0 (got ${z})`);
  const n = f.count;
  if (n > m.capacityUsers) throw new DemandInputError(`forecasts have ${n} users, membership holds ${m.capacityUsers}`);
  if (f.meanPerSec.length < n || f.upperPerSec.length < n || f.observedPerSec.length < n || (f.tokensPerRequest && f.tokensPerRequest.length < n))
    throw new DemandInputError(`forecast arrays are shorter than count ${n}`);
  const tpr = f.tokensPerRequest;
  const d = out ?? newPoolDemand(m.poolCount, tpr !== undefined);
  if (d.poolCount !== m.poolCount) throw new DemandInputError(`output has ${d.poolCount} pools, membership ${m.poolCount}`);
  if (tpr && !d.tokens) throw new DemandInputError("forecasts carry tokens but the output has no token sums");
  zero(d);
  const poolOf = m.poolOf;
  const mean = f.meanPerSec, upper = f.upperPerSec, obs = f.observedPerSec;
  const dm = d.meanPerSec, dv = d.variance, du = d.upperSumPerSec, dob = d.observedPerSec, da = d.activeUsers;
  // Hot loop: single-pool users only, into one interleaved accumulator (a pool's sums share a
  // cache line: ~30 % faster than five arrays at 1M users), variance as (upper − mean)² scaled by
  // 1/z² once per pool; split users (few) are summed afterwards from their own list.
  const W = tpr ? 9 : 5;
  const acc = scratch(d, W);
  if (!tpr) {
    for (let i = 0; i < n; i++) {
      const p = poolOf[i];
      if (p < 0) continue;
      const b = p * 5;
      const mu = mean[i], up = upper[i], o = obs[i];
      const e = up > mu ? up - mu : 0;
      acc[b] += mu;
      acc[b + 1] += e * e;
      acc[b + 2] += up;
      acc[b + 3] += o;
      acc[b + 4] += o > 0 ? 1 : 0;
    }
  } else {
    for (let i = 0; i < n; i++) {
      const p = poolOf[i];
      if (p < 0) continue;
      const b = p * 9;
      const mu = mean[i], up = upper[i], o = obs[i], k1 = tpr[i];
      const e = up > mu ? up - mu : 0;
      acc[b] += mu;
      acc[b + 1] += e * e;
      acc[b + 2] += up;
      acc[b + 3] += o;
      acc[b + 4] += o > 0 ? 1 : 0;
      acc[b + 5] += mu * k1;
      acc[b + 6] += e * e * k1 * k1;
      acc[b + 7] += up * k1;
      acc[b + 8] += o * k1;
    }
  }
  for (let p = 0; p < d.poolCount; p++) {
    const b = p * W;
    dm[p] = acc[b];
    dv[p] = acc[b + 1];
    du[p] = acc[b + 2];
    dob[p] = acc[b + 3];
    da[p] = acc[b + 4];
    if (tpr) {
      const t = d.tokens!;
      t.meanPerSec[p] = acc[b + 5];
      t.variance[p] = acc[b + 6];
      t.upperSumPerSec[p] = acc[b + 7];
      t.observedPerSec[p] = acc[b + 8];
    }
  }
  if (m.splitUsers > 0) {
    const split = m.splitTable;
    const users = m.splitUserList();
    for (let j = 0; j < users.length; j++) {
      const i = users[j];
      if (i >= n) continue;
      const r = -2 - poolOf[i];
      const mu = mean[i], up = upper[i], o = obs[i], k1 = tpr ? tpr[i] : 0;
      const e = up > mu ? up - mu : 0;
      for (let k = split.rowStart[r]; k < split.rowEnd[r]; k++) {
        const q = split.pool[k], w = split.weight[k];
        dm[q] += w * mu;
        dv[q] += w * w * e * e;
        du[q] += w * up;
        dob[q] += w * o;
        if (o > 0) da[q] += 1;
        if (tpr) {
          const t = d.tokens!;
          t.meanPerSec[q] += w * mu * k1;
          t.variance[q] += w * w * e * e * k1 * k1;
          t.upperSumPerSec[q] += w * up * k1;
          t.observedPerSec[q] += w * o * k1;
        }
      }
    }
  }
  const inv2 = 1 / (z * z);
  for (let p = 0; p < d.poolCount; p++) {
    dv[p] *= inv2;
    if (d.tokens) d.tokens.variance[p] *= inv2;
  }
  return d;
}

/**
 * Sums per-pool partial demands (one per processor partition) into `out` (or a new one): the
 * leader's aggregation. Sums are additive, variances included (users are disjoint across
 * partitions). Token sums are kept only when every part has them.
 */
export function mergePoolDemand(parts: readonly PoolDemand[], out?: PoolDemand): PoolDemand {
  if (parts.length === 0 && !out) throw new DemandInputError("no partial demands to merge");
  const P = out?.poolCount ?? parts[0].poolCount;
  const withTokens = parts.length > 0 && parts.every((d) => d.tokens !== undefined);
  const d = out ?? newPoolDemand(P, withTokens);
  zero(d);
  for (const part of parts) {
    if (part.poolCount !== P) throw new DemandInputError(`partial demand has ${part.poolCount} pools, expected ${P}`);
    for (let p = 0; p < P; p++) {
      d.meanPerSec[p] += part.meanPerSec[p];
      d.variance[p] += part.variance[p];
      d.upperSumPerSec[p] += part.upperSumPerSec[p];
      d.observedPerSec[p] += part.observedPerSec[p];
      d.activeUsers[p] += part.activeUsers[p];
      if (d.tokens && withTokens) {
        d.tokens.meanPerSec[p] += part.tokens!.meanPerSec[p];
        d.tokens.variance[p] += part.tokens!.variance[p];
        d.tokens.upperSumPerSec[p] += part.tokens!.upperSumPerSec[p];
        d.tokens.observedPerSec[p] += part.tokens!.observedPerSec[p];
      }
    }
  }
  return d;
}

/** Options of {@link poolUpperBound}. */
export interface PoolBoundOptions {
  method: DemandMethod;
  /** Normal quantile of the pool bound (usually the engine's z). */
  z: number;
  /** Weight of the variance bound in "blend", in [0, 1]. Default 0.5. */
  blendWeight?: number;
}

/** The pool's upper bound from its sums: Σμ + z√Σσ² ("variance"), Σupper ("sum"), or a blend. */
export function combineUpper(mean: number, variance: number, upperSum: number, o: PoolBoundOptions): number {
  const v = mean + o.z * Math.sqrt(variance);
  if (o.method === "variance") return v;
  if (o.method === "sum") return upperSum;
  const w = o.blendWeight ?? 0.5;
  return w * v + (1 - w) * upperSum;
}

/** Upper bound of pool `p`'s requests/s. */
export function poolUpperBound(d: PoolDemand, p: number, o: PoolBoundOptions): number {
  return combineUpper(d.meanPerSec[p], d.variance[p], d.upperSumPerSec[p], o);
}

/** Upper bound of pool `p`'s tokens/s, or undefined when the demand carries no tokens. */
export function poolTokenUpperBound(d: PoolDemand, p: number, o: PoolBoundOptions): number | undefined {
  if (!d.tokens) return undefined;
  return combineUpper(d.tokens.meanPerSec[p], d.tokens.variance[p], d.tokens.upperSumPerSec[p], o);
}
