// Per-partition partial demand: each processor sums its partition's user forecasts per pool every
// tick and publishes the sums on `<prefix>.demand.<partition>`; the allocator leader adds the
// partials of all partitions. The sums (Σmean, Σvariance, Σupper, Σobserved, active users) add
// across partitions exactly, so the leader's pool bound is the one a single process would compute.
//
// Encoding: JSON. A partial is a few numbers per pool (≈ 5 KB for 100 pools) once per tick per
// partition — nothing next to the telemetry stream — and JSON can be read with `nats sub`, checked
// field by field, and extended without a version bump for readers that ignore new fields.
//
// A partial that is missing or older than `staleAfterMs` is never read as zero demand: its last
// value is held and the pool is flagged incomplete (the policy then never scales down on it).
import { FORECAST_RECORD_BYTES, ForecastField } from "../../engine/layout.ts";
import { userHash } from "../../telemetry/hash.ts";
// The directory's plans and segments arrive through this lookup (src/telemetry's DirectoryIndex
// answers it from memory), so the policy here does no I/O.
import type { UserAttributeLookup } from "../../telemetry/directory-index.ts";
import { aggregateDemand, newPoolDemand, PoolMembership, NO_POOL, type PoolDemand, type PoolMatchRules, type UserForecastArrays } from "../demand.ts";

export type { UserAttributeLookup };

/** Version of the partial's JSON. */
export const DEMAND_PARTIAL_VERSION = 1;

/** Subject of a partition's partial demand. */
export function demandSubject(prefix: string, partition: number): string {
  return `${prefix}.demand.${partition}`;
}

/** One partition's per-pool sums of one tick (arrays in `pools` order). */
export interface DemandPartial {
  v: 1;
  partition: number;
  /** Tick time of the processor, ms since the epoch. */
  tickTimeMs: number;
  /** Pool names in config order (the leader refuses a partial whose pools differ from its own). */
  pools: string[];
  meanPerSec: number[];
  variance: number[];
  upperSumPerSec: number[];
  observedPerSec: number[];
  activeUsers: number[];
  /** Users forecast in this partition this tick. */
  users: number;
}

/** A partial that cannot be used (malformed, or for other pools). */
export class BadDemandPartialError extends Error {
  override name = "BadDemandPartialError";
  constructor(message: string, readonly reason: "json" | "schema" | "pools") {
    super(message);
  }
}

export function encodeDemandPartial(p: DemandPartial): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(p));
}

/** Parses and checks a partial. */
export function decodeDemandPartial(bytes: Uint8Array): DemandPartial {
  let v: Record<string, unknown>;
  try {
    v = JSON.parse(new TextDecoder().decode(bytes)) as Record<string, unknown>;
  } catch (err) {
    throw new BadDemandPartialError(`demand partial is not JSON: ${(err as Error).message}`, "json");
  }
  if (!v || typeof v !== "object") throw new BadDemandPartialError("demand partial is not an object", "schema");
  if (v.v !== DEMAND_PARTIAL_VERSION) throw new BadDemandPartialError(`demand partial version ${String(v.v)}, expected ${DEMAND_PARTIAL_VERSION}`, "schema");
  if (!Number.isInteger(v.partition) || (v.partition as number) < 0) throw new BadDemandPartialError(`demand partial: partition must be an integer >= 0, got ${String(v.partition)}`, "schema");
  if (!Number.isFinite(v.tickTimeMs)) throw new BadDemandPartialError("demand partial: tickTimeMs must be a number", "schema");
  if (!Array.isArray(v.pools) || !v.pools.every((p) => typeof p === "string")) throw new BadDemandPartialError("demand partial: pools must be a list of names", "schema");
  const n = v.pools.length;
  for (const f of ["meanPerSec", "variance", "upperSumPerSec", "observedPerSec", "activeUsers"] as const) {
    const a = v[f];
    if (!Array.isArray(a) || a.length !== n || !a.every((x) => typeof x === "number" && Number.isFinite(x) && x >= 0)) {
      throw new BadDemandPartialError(`demand partial: ${f} must be ${n} finite numbers >= 0`, "schema");
    }
  }
  return v as unknown as DemandPartial;
}

/**
 * The pool of a user known only by its telemetry hash (what forecasts carry), by the config's
 * match rules in this order: an explicit `users` entry; the user's plan in a pool's `plans`; the
 * user's segment in a pool's `segments` (plan and segment from the user directory, when a lookup
 * is given); else the default pool, else {@link NO_POOL}. A name claimed by two pools belongs to
 * the first in config order. Routes and models need the user's route mix, which forecasts do not
 * carry: they apply in the allocator's own aggregation only (PoolMatcher; docs/allocator-kube.md).
 * The demand partials and the allocator's grants both map users so.
 */
export class UserPoolResolver {
  private readonly explicit = new Map<string, number>();
  private readonly byPlan = new Map<string, number>();
  private readonly bySegment = new Map<string, number>();
  /** The default pool's index, or {@link NO_POOL}. */
  readonly defaultPool: number;

  constructor(pools: readonly PoolMatchRules[], private readonly directory?: UserAttributeLookup) {
    let def = NO_POOL;
    // Walked last to first so that the first pool's claim is the one kept.
    for (let i = pools.length - 1; i >= 0; i--) {
      const m = pools[i].match;
      for (const u of m.users) {
        const h = userHash(u);
        this.explicit.set(`${h.lo}:${h.hi}`, i);
      }
      for (const p of m.plans) this.byPlan.set(p, i);
      for (const s of m.segments) this.bySegment.set(s, i);
      if (m.default && def === NO_POOL) def = i;
    }
    this.defaultPool = def;
    if (!directory) {
      // Without a directory no user has a plan or segment: those rules match nobody.
      this.byPlan.clear();
      this.bySegment.clear();
    }
  }

  /** Pool index of the user with this hash, or {@link NO_POOL}. */
  resolve(userHashLo: number, userHashHi: number): number {
    if (this.explicit.size > 0) {
      const p = this.explicit.get(`${userHashLo}:${userHashHi}`);
      if (p !== undefined) return p;
    }
    if (this.byPlan.size > 0) {
      const plan = this.directory!.planOf(userHashLo, userHashHi);
      const p = plan === undefined ? undefined : this.byPlan.get(plan);
      if (p !== undefined) return p;
    }
    if (this.bySegment.size > 0) {
      const segment = this.directory!.segmentOf(userHashLo, userHashHi);
      const p = segment === undefined ? undefined : this.bySegment.get(segment);
      if (p !== undefined) return p;
    }
    return this.defaultPool;
  }
}

/**
 * Builds a partition's partial from the engine's forecast records (processor side); users map to
 * pools by {@link UserPoolResolver}, each tick afresh (a user's directory entry arriving later
 * moves it from the default pool to its plan's pool at the next tick).
 */
export class DemandPartialBuilder {
  private readonly poolOf: UserPoolResolver;
  private readonly names: string[];
  private membership: PoolMembership;
  private arrays: UserForecastArrays;
  private readonly out: PoolDemand;

  /**
   * `z`: the normal quantile of the engine's upper bound (normalQuantile(engine.upperQuantile));
   * `directory`: users' plans and segments for the pools' `plans`/`segments` rules (absent: those
   * rules match nobody).
   */
  constructor(pools: readonly PoolMatchRules[], private readonly z: number, directory?: UserAttributeLookup) {
    if (pools.length === 0) throw new RangeError("DemandPartialBuilder needs at least one pool");
    this.names = pools.map((p) => p.name);
    this.poolOf = new UserPoolResolver(pools, directory);
    this.membership = new PoolMembership(1024, pools.length);
    this.arrays = { count: 0, meanPerSec: new Float64Array(1024), upperPerSec: new Float64Array(1024), observedPerSec: new Float64Array(1024) };
    this.out = newPoolDemand(pools.length, false);
  }

  /** The partial of one tick's forecast records (`count` records of 32 bytes in `records`). */
  build(partition: number, tickTimeMs: number, records: Uint8Array, count: number): DemandPartial {
    if (count > this.membership.capacityUsers) {
      const cap = Math.max(count, this.membership.capacityUsers * 2);
      this.membership = new PoolMembership(cap, this.names.length);
      this.arrays = { count: 0, meanPerSec: new Float64Array(cap), upperPerSec: new Float64Array(cap), observedPerSec: new Float64Array(cap) };
    }
    const dv = new DataView(records.buffer, records.byteOffset, records.byteLength);
    const a = this.arrays;
    for (let i = 0; i < count; i++) {
      const o = i * FORECAST_RECORD_BYTES;
      a.meanPerSec[i] = dv.getFloat64(o + ForecastField.ratePerSec, true);
      a.upperPerSec[i] = dv.getFloat64(o + ForecastField.upperPerSec, true);
      a.observedPerSec[i] = dv.getFloat64(o + ForecastField.observedPerSec, true);
      this.membership.set(i, this.poolOf.resolve(dv.getUint32(o + ForecastField.userHashLo, true), dv.getUint32(o + ForecastField.userHashHi, true)));
    }
    a.count = count;
    const d = aggregateDemand(a, this.membership, this.z, this.out);
    return {
      v: 1,
      partition,
      tickTimeMs,
      pools: this.names,
      meanPerSec: Array.from(d.meanPerSec),
      variance: Array.from(d.variance),
      upperSumPerSec: Array.from(d.upperSumPerSec),
      observedPerSec: Array.from(d.observedPerSec),
      activeUsers: Array.from(d.activeUsers),
      users: count,
    };
  }
}

/** What {@link DemandSummer.sum} returns. */
export interface DemandSum {
  demand: PoolDemand;
  /** Partitions never heard from. */
  missing: number[];
  /** Partitions whose last partial is older than the staleness limit (its value is held). */
  stale: number[];
  /** True when any partition is missing or stale: no pool may scale down on this sum. */
  incomplete: boolean;
}

/** Adds the latest partial of every partition (leader side). */
export class DemandSummer {
  private readonly latest = new Map<number, { partial: DemandPartial; receivedMs: number }>();
  private readonly out: PoolDemand;

  constructor(private readonly pools: readonly string[], private readonly partitions: number, private readonly staleAfterMs: number) {
    this.out = newPoolDemand(pools.length, false);
  }

  /** Keeps a partition's newest partial; refuses one for other pools or partitions. */
  accept(p: DemandPartial, receivedMs: number): void {
    if (p.partition >= this.partitions) throw new BadDemandPartialError(`demand partial of partition ${p.partition}, but there are ${this.partitions}`, "schema");
    if (p.pools.length !== this.pools.length || p.pools.some((n, i) => n !== this.pools[i])) {
      throw new BadDemandPartialError(`demand partial of partition ${p.partition} is for pools [${p.pools.join(", ")}], the allocator has [${this.pools.join(", ")}] (config differs between processor and allocator)`, "pools");
    }
    const prev = this.latest.get(p.partition);
    if (prev && prev.partial.tickTimeMs > p.tickTimeMs) return; // late delivery of an older tick
    this.latest.set(p.partition, { partial: p, receivedMs });
  }

  /** Sums the held partials; flags missing and stale partitions (their last value stays in the sum). */
  sum(nowMs: number): DemandSum {
    const d = this.out;
    d.meanPerSec.fill(0);
    d.variance.fill(0);
    d.upperSumPerSec.fill(0);
    d.observedPerSec.fill(0);
    d.activeUsers.fill(0);
    const missing: number[] = [];
    const stale: number[] = [];
    for (let p = 0; p < this.partitions; p++) {
      const l = this.latest.get(p);
      if (!l) {
        missing.push(p);
        continue;
      }
      if (nowMs - l.receivedMs > this.staleAfterMs) stale.push(p);
      const x = l.partial;
      for (let i = 0; i < this.pools.length; i++) {
        d.meanPerSec[i] += x.meanPerSec[i];
        d.variance[i] += x.variance[i];
        d.upperSumPerSec[i] += x.upperSumPerSec[i];
        d.observedPerSec[i] += x.observedPerSec[i];
        d.activeUsers[i] += x.activeUsers[i];
      }
    }
    return { demand: d, missing, stale, incomplete: missing.length + stale.length > 0 };
  }
}
