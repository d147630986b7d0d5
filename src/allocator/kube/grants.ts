// The grant service hosted by the allocator (`foresight allocate`): only the leader runs it, so
// exactly one process publishes grants. It maps users to pools as the demand partials do
// (UserPoolResolver), gives the grant service each pool's allocated capacity (the leader's
// decisions), and each user's allocation from the allocator's per-user policy
// (src/allocator/users.ts): max-min fair shares of the pool's capacity, with the deallocation
// safeguard, over every partition's latest claims (GrantShares).
//
// Leadership: the host starts a fresh GrantService when this process becomes leader and stops it
// when it is not any more; the service also checks the lease before every publication, so a
// process whose lease lapsed publishes nothing even before the lease loop notices. Gateways ride
// over the hand-over on their grants' leases (throttle.grantTtlMs, longer than the lease TTL).
// A live config change of the pools or throttle settings restarts the running service the same
// way (reconfigure): stop, then start with the new settings; starts, stops and restarts run one
// at a time.
import type { NatsConnection } from "@nats-io/transport-node";
import { Counter, Gauge, type Registry } from "prom-client";
import type { Logger } from "pino";
import { GrantService, emptyGrantStats, type GrantServiceOptions, type GrantServiceStats } from "../../throttle/service.ts";
import { GrantServiceMetrics, addGrantStats } from "../../throttle/metrics.ts";
import { UserTable } from "../../throttle/table.ts";
import type { GrantInputs, PoolCapacity } from "../../throttle/grants.ts";
import { METRIC_PREFIX } from "../../obs/metrics.ts";
import { NO_POOL, type PoolMatchRules } from "../demand.ts";
import { UserAllocations, sortedClaims, waterLevelOfGroups, type SortedClaims, type UserAllocationOptions } from "../users.ts";
import { UserPoolResolver, type UserAttributeLookup } from "./partials.ts";
import { canonicalJson } from "../../util/canonical-json.ts";

/** What the grants read of a pool: its name and match rules. */
function matchRulesOf(p: PoolMatchRules): { name: string; match: PoolMatchRules["match"] } {
  return { name: p.name, match: p.match };
}

/** Default user slots per partition of the hosted grant service (the GrantService default). */
export const DEFAULT_GRANT_USERS_PER_PARTITION = 524_288;
/**
 * Grant slots per partition for an engine of `engineCapacityUsers` users per partition: a
 * partition never forecasts more users than its engine holds, and the table fills to 7/8.
 */
export function grantUsersPerPartition(engineCapacityUsers: number): number {
  return Math.ceil((engineCapacityUsers * 8) / 7);
}

/** First size of the per-partition allocation arrays, users (they double as users arrive). */
const INITIAL_USERS = 1024;

/** The grant service's options a host passes through (the host supplies the rest). */
export type HostedGrantServiceOptions = Omit<GrantServiceOptions, "pools" | "poolOf" | "allocationOf" | "active">;

interface PartitionShares {
  /** User hash → slot (the same probing as the grant service's table; never shrinks). */
  table: UserTable;
  /** Table slot → dense index into `allocations`; −1 = none yet. */
  denseOf: Int32Array;
  dense: number;
  allocations: UserAllocations;
  /** Tick that last saw each dense user. */
  seenTick: Uint32Array;
  ticks: number;
  /** The partition's last tick's claims per pool (for the pool-wide sums and levels). */
  lastByPool: (PoolClaims | undefined)[];
}

/** One partition's claims in one pool: their sum, and sorted once a level is needed (a short pool). */
interface PoolClaims {
  claims: Float64Array;
  sum: number;
  sorted?: SortedClaims;
}

/**
 * Per-user allocations for the grant service (`allocationOf`), by the allocator's policy
 * (src/allocator/users.ts, the same rule as {@link UserAllocations.allocateAll} over a whole
 * pool). A pool's users are spread over partitions whose ticks arrive one by one, so each pool's
 * share is formed from every partition's latest claims (forecast upper bounds): a pool short of
 * capacity is shared max-min fair at the level {@link waterLevelOfGroups} finds over all its
 * claims (each partition's claims sorted at most once per tick: a tick costs O(n log n) of its own
 * users in a short pool, O(n) otherwise), and
 * the change applies at once; a pool with spare capacity gives every claim the same multiple, and
 * a decrease follows the policy's safeguard (allocateResources, as `allocate`). Users absent from their
 * partition's tick are deallocated, as allocateAll does for users without a pool. A partition's
 * first tick, before the others were heard, sees only its own claims.
 */
export class GrantShares {
  private readonly parts: PartitionShares[] = [];

  /**
   * `partitions`: partitions of the forecasts; `usersPerPartition`: slots per partition;
   * `capacities()`: each pool's allocated capacity now, requests/s (pool index order).
   */
  constructor(partitions: number, private readonly usersPerPartition: number, private readonly capacities: () => readonly number[], private readonly options: UserAllocationOptions = {}) {
    for (let p = 0; p < partitions; p++) {
      const table = new UserTable(this.usersPerPartition);
      this.parts.push({
        table, denseOf: new Int32Array(table.capacity).fill(-1), dense: 0,
        allocations: new UserAllocations(INITIAL_USERS, options), seenTick: new Uint32Array(INITIAL_USERS), ticks: 0,
        lastByPool: [],
      });
    }
  }

  /**
   * The allocation of each user of one partition's tick, requests/s, same order as `inp`: 0 for
   * users outside the pools (index >= the pool count: no pool's capacity is theirs, as allocateAll
   * gives users without a pool), NaN (the grant service's proportional share) beyond the table's
   * capacity.
   */
  allocationOf(partition: number, inp: GrantInputs): Float64Array {
    const st = this.parts[partition];
    const n = inp.count;
    const caps = this.capacities();
    const P = caps.length;
    st.lastByPool = groupClaims(inp, P);
    // Pool-wide: Σ claims; where short, the fair level; else the multiple every claim gets.
    const level = new Float64Array(P).fill(Infinity);
    const ratio = new Float64Array(P);
    for (let pool = 0; pool < P; pool++) {
      let total = 0;
      for (const q of this.parts) total += q.lastByPool[pool]?.sum ?? 0;
      const cap = Math.max(0, caps[pool]);
      if (cap >= total) {
        ratio[pool] = total > 0 ? cap / total : 0;
        continue;
      }
      const groups: SortedClaims[] = [];
      for (const q of this.parts) {
        const g = q.lastByPool[pool];
        if (g) groups.push((g.sorted ??= sortedClaims(g.claims)));
      }
      level[pool] = waterLevelOfGroups(groups, cap);
    }
    const tick = ++st.ticks;
    const out = new Float64Array(n);
    for (let k = 0; k < n; k++) {
      const pool = inp.poolIndex[k];
      if (pool >= P) continue;
      const slot = st.table.findOrInsert(inp.userHashLo[k], inp.userHashHi[k]);
      if (slot < 0) {
        out[k] = NaN;
        continue;
      }
      if (st.table.isNew) {
        this.grow(st, st.dense + 1);
        st.denseOf[slot] = st.dense++;
      }
      const i = st.denseOf[slot];
      st.seenTick[i] = tick;
      const u = inp.upperReqPerSec[k];
      const short = level[pool] !== Infinity;
      const required = short ? Math.min(u, level[pool]) : u * ratio[pool];
      out[k] = st.allocations.allocate(i, required, short);
    }
    for (let i = 0; i < st.dense; i++) {
      if (st.seenTick[i] !== tick && st.allocations.allocatedPerSec[i] !== 0) st.allocations.allocate(i, 0, true);
    }
    return out;
  }

  /** Grows a partition's arrays to hold `users` (doubling), keeping the recorded allocations. */
  private grow(st: PartitionShares, users: number): void {
    const cap = st.allocations.allocatedPerSec.length;
    if (users <= cap) return;
    const next = Math.max(users, cap * 2);
    const a = new UserAllocations(next, this.options);
    a.allocatedPerSec.set(st.allocations.allocatedPerSec);
    st.allocations = a;
    const seen = new Uint32Array(next);
    seen.set(st.seenTick);
    st.seenTick = seen;
  }
}

/** One tick's claims (forecast upper bounds) grouped by pool; pools >= `pools` are left out. */
function groupClaims(inp: GrantInputs, pools: number): (PoolClaims | undefined)[] {
  const count = new Int32Array(pools);
  for (let k = 0; k < inp.count; k++) if (inp.poolIndex[k] < pools) count[inp.poolIndex[k]]++;
  const out = Array.from({ length: pools }, (_, q) => (count[q] > 0 ? { claims: new Float64Array(count[q]), sum: 0 } : undefined));
  const fill = new Int32Array(pools);
  for (let k = 0; k < inp.count; k++) {
    const q = inp.poolIndex[k];
    if (q >= pools) continue;
    const g = out[q]!;
    g.claims[fill[q]++] = inp.upperReqPerSec[k];
    g.sum += inp.upperReqPerSec[k];
  }
  return out;
}

/** Options of {@link GrantHost}. */
export interface GrantHostOptions {
  /** The allocator's NATS connection. */
  nc: NatsConnection;
  /** The grant service's options from config (src/throttle/config.ts grantServiceOptions). */
  service: HostedGrantServiceOptions;
  /** The allocator's pools (their match rules map users to pools). */
  pools: readonly PoolMatchRules[];
  /** Each pool's allocated capacity now, requests/s, in pool order. */
  capacities: () => readonly number[];
  /** Whether this process holds the leader lease now. */
  isLeader: () => boolean;
  /** Registry of the allocator's /metrics. */
  registry: Registry;
  /** The per-user allocation safeguards. Default: src/allocator/users.ts defaults. */
  userAllocation?: UserAllocationOptions;
  /**
   * Users' plans and segments from the user directory: each grant's plan (plans missing from
   * throttle.plans get "default", as the grant service maps them) and the pools' plan and segment
   * rules. Absent: every grant carries the default plan and those rules match nobody.
   */
  directory?: UserAttributeLookup;
  log: Logger;
}

/** Runs a GrantService while this process leads; exports its stats. */
export class GrantHost {
  private current: GrantService | undefined;
  private readonly retired = emptyGrantStats();
  private resolver: UserPoolResolver;
  /** Pool index of users outside every pool (an extra unbounded pool), or −1 when a default pool takes them. */
  private unpooled: number;
  /** The start/stop/restart in progress: they run one at a time. */
  private serial: Promise<unknown> = Promise.resolve();
  /** 1 while this process publishes grants. */
  readonly active: Gauge;
  /** Grant service starts that failed (retried at the next lease round). */
  readonly startErrors: Counter;
  readonly metrics: GrantServiceMetrics;
  /** Called after a hosted service started or stopped (tests). */
  onChange?: (service: GrantService | undefined) => void;

  constructor(private opts: GrantHostOptions) {
    this.resolver = new UserPoolResolver(opts.pools, opts.directory);
    this.unpooled = this.resolver.defaultPool === NO_POOL ? opts.pools.length : -1;
    const r = [opts.registry];
    this.active = new Gauge({ name: `${METRIC_PREFIX}grants_active`, help: "1 while this process (the allocator leader) publishes grants.", registers: r });
    this.startErrors = new Counter({ name: `${METRIC_PREFIX}grants_start_errors_total`, help: "Grant service starts that failed (retried at the next lease round).", registers: r });
    this.metrics = new GrantServiceMetrics(opts.registry, () => this.stats());
  }

  /** The grant service options the next (or running) service starts with (the config's throttle settings). */
  get serviceOptions(): HostedGrantServiceOptions {
    return this.opts.service;
  }

  /** The running grant service (while leading), else undefined. */
  get service(): GrantService | undefined {
    return this.current;
  }

  /** Counters of every grant service this process ran, the current one's gauges. */
  stats(): GrantServiceStats {
    const s = addGrantStats(emptyGrantStats(), this.retired);
    s.users = 0;
    return this.current ? addGrantStats(s, this.current.stats()) : s;
  }

  /**
   * Pool capacities as the grant service reads them: the pools, plus an unbounded one for users
   * outside them (their allocation is 0, the pool's pressure 0: gateways hold them to their plan).
   */
  private poolCapacities(): PoolCapacity[] {
    const caps = this.opts.capacities().map((c) => ({ capacityReqPerSec: c }));
    if (this.unpooled >= 0) caps.push({ capacityReqPerSec: Infinity });
    return caps;
  }

  /** Runs `f` after the start/stop/restart in progress. */
  private oneAtATime<T>(f: () => Promise<T>): Promise<T> {
    const run = this.serial.then(f, f);
    this.serial = run.catch(() => undefined);
    return run;
  }

  /**
   * New pools (their match rules) and grant service settings (a live config change; `service`
   * absent = unchanged; its logger is kept). A running service restarts with them; resolves to
   * whether it did. `apply` (the caller's own switch to the new pools, synchronous) runs exactly
   * once: after the running service stopped, before the new one starts, so no service ever runs
   * on pools (or capacities) other than those it started with. A restart that fails to start is
   * logged and counted, and retried at the next lease round (sync), as a failed start on
   * leadership is.
   */
  reconfigure(next: { pools: readonly PoolMatchRules[]; service?: HostedGrantServiceOptions }, apply: () => void = () => undefined): Promise<boolean> {
    return this.oneAtATime(async () => {
      const service = next.service ? { ...next.service, log: next.service.log ?? this.opts.service.log } : this.opts.service;
      const omit = new Set(["log"]);
      const samePools = canonicalJson(next.pools.map(matchRulesOf)) === canonicalJson(this.opts.pools.map(matchRulesOf));
      if (samePools && canonicalJson(service, omit) === canonicalJson(this.opts.service, omit)) {
        apply();
        return false;
      }
      const running = this.current !== undefined;
      // A failed stop still retires the service (stopService); the switch goes ahead.
      if (running) await this.stopService("config changed").catch((err: unknown) => this.opts.log.error({ err }, "grant service: stop for a config change failed"));
      apply();
      this.opts = { ...this.opts, pools: next.pools, service };
      this.resolver = new UserPoolResolver(next.pools, this.opts.directory);
      this.unpooled = this.resolver.defaultPool === NO_POOL ? next.pools.length : -1;
      if (!running) return false;
      try {
        await this.startService();
      } catch (err) {
        this.opts.log.error({ err }, "grant service: restart with the new config failed; retried at the next lease round");
        return false;
      }
      return true;
    });
  }

  /** Starts or stops the grant service to match the lease; errors are logged and counted, never thrown. */
  sync(): Promise<void> {
    return this.oneAtATime(() => this.syncNow());
  }

  private async syncNow(): Promise<void> {
    const lead = this.opts.isLeader();
    try {
      if (lead && !this.current) await this.startService();
      else if (!lead && this.current) await this.stopService("leadership lost");
    } catch (err) {
      this.opts.log.error({ err }, "grant service: leadership change not applied; retried at the next lease round");
    }
  }

  private async startService(): Promise<void> {
    const o = this.opts;
    const partitions = o.service.partitions ?? 8;
    const usersPerPartition = o.service.usersPerPartition ?? DEFAULT_GRANT_USERS_PER_PARTITION;
    const shares = new GrantShares(partitions, usersPerPartition, o.capacities, o.userAllocation);
    const unpooled = this.unpooled;
    const s = new GrantService({
      ...o.service,
      usersPerPartition,
      pools: () => this.poolCapacities(),
      poolOf: (lo, hi) => {
        const p = this.resolver.resolve(lo, hi);
        return p === NO_POOL ? unpooled : p;
      },
      allocationOf: (partition, inp) => shares.allocationOf(partition, inp),
      planOf: o.directory ? (lo, hi) => o.directory!.planOf(lo, hi) ?? "default" : o.service.planOf,
      active: o.isLeader,
    });
    try {
      await s.start(o.nc);
    } catch (err) {
      this.startErrors.inc();
      await s.stop().catch(() => undefined);
      throw err;
    }
    this.current = s;
    this.active.set(1);
    o.log.info({ partitions, grantsStream: s.names.grantsStream }, "grant service started (leader)");
    this.onChange?.(s);
  }

  private async stopService(why: string): Promise<void> {
    const s = this.current!;
    this.active.set(0);
    try {
      await s.stop();
    } finally {
      // Stopped or not (a closed connection), it is never used again: its `active()` gate is false.
      this.current = undefined;
      addGrantStats(this.retired, s.stats());
      this.opts.log.info({ why }, "grant service stopped");
      this.onChange?.(undefined);
    }
  }

  /** Stops the grant service if it runs (shutdown). */
  stop(): Promise<void> {
    return this.oneAtATime(async () => {
      if (this.current) await this.stopService("shutdown");
    });
  }
}
