// The allocator service (`foresight allocate`): one leader (KV lease `allocator.leader`) sums the
// processors' partial demand, runs the pure policy (src/allocator/policy.ts) every decision
// interval, hands each pool's decision to the actuator, exports the pool series for Prometheus,
// and publishes pool state on `<prefix>.pools.state` for the gateways' throttling.
// Safety: a missing or stale partial is held and flags the pools incomplete (never a scale-down
// on it); a new leader holds scale-downs for one stabilization window (its history is empty);
// with NATS disconnected no decision is made at all (the current allocation stays); with the
// Kubernetes API unreachable the actuator keeps retrying and the allocation stays as it is.
// Live config: applySettings() takes new pools, budget and grant settings without a restart
// (see its comment for what happens to each pool).
import { hostname } from "node:os";
import { randomBytes } from "node:crypto";
import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import type { KubeConfig } from "@kubernetes/client-node";
import type { Logger } from "pino";
import { connectNats, type NatsConnectionSettings } from "../../nats/connect.ts";
import { createLogger } from "../../obs/logger.ts";
import { ObsServer, DEFAULT_HTTP_HOST, type CheckResult } from "../../obs/http.ts";
import { PeriodicTask } from "../../processor/periodic.ts";
import { DEFAULT_LEASE_TTL_MS } from "../../config/schema.ts";
import { processorNames } from "../../processor/names.ts";
import { normalQuantile } from "../../engine/options.ts";
import { DEFAULT_PARTITIONS } from "../../telemetry/frame.ts";
import { ClusterPolicy, PolicyInputError, type PoolDecision, type PoolPolicyConfig } from "../policy.ts";
import { canonicalJson } from "../../util/canonical-json.ts";
import { combineUpper } from "../demand.ts";
import type { ClusterBudget } from "../budget.ts";
import { poolCapacityPerSec } from "../users.ts";
import { Actuator, type ActuatorOptions } from "./actuator.ts";
import { KubeClient } from "./client.ts";
import { LeaderLease } from "./leader.ts";
import { AllocatorMetrics } from "./metrics.ts";
import { GrantHost, type HostedGrantServiceOptions } from "./grants.ts";
import { DirectoryIndex } from "../../telemetry/directory-index.ts";
import { registerDirectoryIndexMetrics } from "../../telemetry/directory-index-metrics.ts";
import type { UserAllocationOptions } from "../users.ts";
import { BadDemandPartialError, decodeDemandPartial, DemandSummer, type DemandSum } from "./partials.ts";
import type { PoolTarget } from "./types.ts";

/** Default age after which a partition's partial counts as stale, ms (a few processor ticks). */
export const DEFAULT_STALE_AFTER_MS = 10_000;
/** Version of the pools-state JSON. */
export const POOLS_STATE_VERSION = 1;

/** Subject of the pool state. */
export function poolsStateSubject(prefix: string): string {
  return `${prefix}.pools.state`;
}

/** A pool as the allocator reads it from config (config `pools[]` satisfies it). */
export interface AllocatorPoolConfig extends PoolPolicyConfig {
  mode: PoolTarget["mode"];
  workload: { kind: "Deployment" | "StatefulSet"; namespace: string; name: string; container?: string; hpaName?: string };
  match: { routes: readonly string[]; models: readonly string[]; plans: readonly string[]; segments: readonly string[]; users: readonly string[]; default: boolean };
}

/** One pool in `<prefix>.pools.state` (schema in docs/allocator-kube.md). */
export interface PoolStateEntry {
  pool: string;
  mode: PoolTarget["mode"];
  /** Replicas the workload runs as last read (the decided count until the first read). */
  replicasAllocated: number;
  /** Replicas decided this tick. */
  replicasDecided: number;
  /** The decision's predictive half (forecast upper bound) and reactive half (the modelled HPA v2). */
  replicasPredictive: number;
  replicasReactive: number;
  /** Requests/s the allocated replicas serve at full utilization (replicas × requestsPerSecPerReplica). */
  capacityRequestsPerSec: number;
  /** Observed pool load now, requests/s. */
  loadRequestsPerSec: number;
  /** Forecast pool demand (mean), requests/s. */
  forecastRequestsPerSec: number;
  /** Upper bound of the pool demand, requests/s. */
  upperRequestsPerSec: number;
  /** Users with traffic in the pool. */
  activeUsers: number;
  /** Actuation state: ok, backoff, unreachable, forbidden, gone, field-conflict, invalid. */
  actuation: string;
  /** Why the decision is what it is. */
  reason: string;
}

/**
 * What the allocator follows live from config (allocatorSettings() in ./settings.ts maps the
 * config onto it). Everything else in AllocatorServiceOptions is fixed at start.
 */
export interface AllocatorLiveSettings {
  /** Pools (config `pools`); at least one. */
  pools: readonly AllocatorPoolConfig[];
  /** Cluster budget (config `cluster`). */
  cluster: ClusterBudget;
  /** Quantile of the engine's upper bound (config engine.upperQuantile). Default: unchanged. */
  upperQuantile?: number;
  /** Forecast horizon, s (the metrics' `horizon` label). Default: unchanged. */
  horizonSec?: number;
  /**
   * The hosted grant service's options (config `throttle`). Ignored when the service started
   * without grants; absent = unchanged.
   */
  grants?: HostedGrantServiceOptions;
}

/** What one {@link AllocatorService.applySettings} changed. */
export interface AllocatorSettingsChange {
  /** Pools new to the allocator (acted on in their configured mode from the next decision). */
  added: string[];
  /** Pools whose settings changed (policy, mode, workload or match rules). */
  changed: string[];
  /** Pools no longer acted on (their workloads are left as they are). */
  removed: string[];
  /** Pools whose mode changed, as "pool: old -> new". */
  modes: string[];
  /** True when the cluster budget changed. */
  cluster: boolean;
  /** True when the grant service was restarted with new settings. */
  grantsRestarted: boolean;
}

/** A live settings change the allocator cannot take (the running settings stay). */
export class AllocatorSettingsError extends Error {
  override name = "AllocatorSettingsError";
}

/** The message on `<prefix>.pools.state`. */
export interface PoolsState {
  v: 1;
  /** Decision time, ms since the epoch. */
  timeMs: number;
  /** Leader process id. */
  leader: string;
  /** False when a partition's partial is missing or stale (held values in the sums). */
  dataComplete: boolean;
  missingPartitions: number[];
  stalePartitions: number[];
  pools: PoolStateEntry[];
}

export interface AllocatorServiceOptions {
  /** NATS connection settings. Default nats://127.0.0.1:4222. */
  nats?: NatsConnectionSettings;
  /** Subject prefix. Default "foresight". */
  prefix?: string;
  /** Lease bucket (shared with the processors). Default: derived from the prefix. */
  leaseBucket?: string;
  /** Partitions P (partials expected from 0..P−1). Default {@link DEFAULT_PARTITIONS}. */
  partitions?: number;
  /** Pools (config `pools`). */
  pools: readonly AllocatorPoolConfig[];
  /** Cluster budget (config `cluster`). */
  cluster: ClusterBudget;
  /** Quantile of the engine's upper bound (config engine.upperQuantile); z of the pool bound. Default 0.95. */
  upperQuantile?: number;
  /** Forecast horizon, s, as the metric's `horizon` label. Default 60. */
  horizonSec?: number;
  /** Kubernetes access (client-node KubeConfig: --kubeconfig, in-cluster, or the test server). */
  kubeConfig: KubeConfig;
  /** Process id in the leader lease. Default `<hostname>-<pid>-<random>`. */
  processId?: string;
  /** Leader lease TTL, ms; renewed every TTL/3. Default {@link DEFAULT_LEASE_TTL_MS}. */
  leaseTtlMs?: number;
  /** Interval between decisions, ms. Default: the smallest of the pools' decisionIntervalMs. */
  decisionIntervalMs?: number;
  /** A partial older than this is stale (held and flagged), ms. Default {@link DEFAULT_STALE_AFTER_MS}. */
  staleAfterMs?: number;
  /** Port of /metrics /healthz /readyz; 0 = free port; -1 = none. Default -1. */
  httpPort?: number;
  /** HTTP bind address. Default 0.0.0.0. */
  httpHost?: string;
  /** Logger. Default pino "allocator". */
  log?: Logger;
  /** Extra actuator options (forceConflicts, backoff, events). */
  actuator?: Partial<Omit<ActuatorOptions, "client" | "metrics" | "log">>;
  /** Wall clock, ms since the epoch. Default Date.now. */
  clock?: () => number;
  /**
   * The grant service the leader runs (src/throttle/config.ts grantServiceOptions; pools, users'
   * pools and allocations come from the allocator). Absent = no grants published by this process.
   */
  grants?: HostedGrantServiceOptions;
  /** Safeguards of the per-user allocations fed to the grants. Default: src/allocator/users.ts defaults. */
  userAllocation?: UserAllocationOptions;
  /**
   * The user directory (config nats.kv.directoryBucket) whose plans and segments the grants use:
   * each grant's plan, and the pools' `plans`/`segments` rules (src/telemetry/directory-index.ts,
   * followed in memory). Used only with `grants`. Absent = default plan for every grant.
   */
  directory?: { bucket: string; maxUsers?: number };
  /** Called after every decision tick of the leader (tests). */
  onDecisions?: (decisions: PoolDecision[], sum: DemandSum) => void;
}

/** The actuator's targets of the pools. */
function targetsOf(pools: readonly AllocatorPoolConfig[]): PoolTarget[] {
  return pools.map((p) => ({ pool: p.name, mode: p.mode, ...p.workload }));
}

/** See the module comment. */
/** Decision ticks a new leader waits for every pool's workload replicas to be readable before it starts without them. */
const INITIAL_READ_ATTEMPTS = 5;

export class AllocatorService {
  readonly metrics: AllocatorMetrics;
  readonly actuator: Actuator;
  readonly log: Logger;
  readonly processId: string;
  readonly prefix: string;
  httpPort = 0;
  /** Partials refused (malformed or for other pools), by reason. */
  readonly badPartials = new Map<string, number>();
  private nc!: NatsConnection;
  private lease!: LeaderLease;
  private sub: Subscription | undefined;
  private summer: DemandSummer;
  private policy: ClusterPolicy | undefined;
  /** The live settings (applySettings replaces them). */
  private pools: readonly AllocatorPoolConfig[];
  private cluster: ClusterBudget;
  private horizonSec: number;
  /** Pools added by a live change, with when: scale-downs wait one stabilization window, as for a new leader. */
  private readonly addedAtMs = new Map<string, number>();
  private decideTask: PeriodicTask | undefined;
  private leaderSinceMs = 0;
  /** Reads of the workloads' replicas since this process became leader (see decideTick). */
  private initialReadAttempts = 0;
  private natsConnected = false;
  private tasks: PeriodicTask[] = [];
  private http: ObsServer | undefined;
  private grantHost: GrantHost | undefined;
  private directory: DirectoryIndex | undefined;
  private readonly clock: () => number;
  private z: number;
  private lastState: PoolsState | undefined;
  private lastGap = "[[],[]]";
  private stopPromise: Promise<void> | undefined;

  private constructor(private readonly opts: AllocatorServiceOptions) {
    if (opts.pools.length === 0) throw new RangeError("the allocator needs at least one pool (config pools)");
    this.prefix = opts.prefix ?? "foresight";
    this.metrics = new AllocatorMetrics();
    this.log = opts.log ?? createLogger({ name: "allocator" });
    this.processId = opts.processId ?? `${hostname()}-${process.pid}-${randomBytes(3).toString("hex")}`;
    this.clock = opts.clock ?? Date.now;
    this.z = normalQuantile(opts.upperQuantile ?? 0.95);
    this.pools = opts.pools;
    this.cluster = opts.cluster;
    this.horizonSec = opts.horizonSec ?? 60;
    this.summer = this.newSummer(opts.pools);
    this.actuator = new Actuator({ client: new KubeClient(opts.kubeConfig), metrics: this.metrics, log: this.log.child({ component: "actuator" }), ...opts.actuator });
    this.actuator.setTargets(targetsOf(opts.pools));
  }

  /** Connects, opens the lease and starts the lease and decision loops. */
  static async start(opts: AllocatorServiceOptions): Promise<AllocatorService> {
    const s = new AllocatorService(opts);
    try {
      await s.init();
    } catch (err) {
      await s.stop().catch(() => undefined);
      throw err;
    }
    return s;
  }

  private readonly onError = (err: unknown, source: string): void => {
    try {
      this.log.error({ err, source }, "allocator error");
    } catch {
      /* never throw from here */
    }
  };

  private async init(): Promise<void> {
    const o = this.opts;
    if (o.httpPort !== undefined && o.httpPort !== -1) {
      this.http = new ObsServer({ port: o.httpPort, host: o.httpHost ?? DEFAULT_HTTP_HOST, registry: this.metrics.registry, health: () => this.health(), ready: () => this.readiness() });
      this.httpPort = await this.http.start();
    }
    this.nc = await connectNats({ name: `foresight-allocator-${this.processId}`, ...o.nats });
    this.natsConnected = true;
    void this.followStatus().catch((err) => this.onError(err, "nats-status"));
    const names = processorNames(this.prefix, { leaseBucket: o.leaseBucket });
    this.lease = await LeaderLease.open(this.nc, names.leaseBucket, { processId: this.processId, ttlMs: o.leaseTtlMs });
    this.sub = this.nc.subscribe(`${this.prefix}.demand.*`, {
      callback: (err, msg) => {
        if (err) return this.onError(err, "demand-subscription");
        try {
          this.summer.accept(decodeDemandPartial(msg.data), this.clock());
        } catch (e) {
          const reason = e instanceof BadDemandPartialError ? e.reason : "other";
          this.badPartials.set(reason, (this.badPartials.get(reason) ?? 0) + 1);
          this.log.warn({ subject: msg.subject, reason, err: (e as Error).message }, "demand partial refused");
        }
      },
    });
    const ttl = this.lease.ttlMs;
    const interval = this.decisionIntervalMs();
    if (o.grants && o.directory) {
      // A reader of the gateways' bucket: waited for, never created (docs/allocator-kube.md).
      const directory = await DirectoryIndex.open(this.nc, { ...o.directory, create: false, log: this.log.child({ component: "directory" }) });
      registerDirectoryIndexMetrics(this.metrics.registry, () => directory.stats());
      this.directory = directory;
    }
    if (o.grants) {
      this.grantHost = new GrantHost({
        nc: this.nc, service: { ...o.grants, log: o.grants.log ?? this.log.child({ component: "grants" }) }, pools: o.pools,
        capacities: () => this.poolCapacities(), isLeader: () => this.isLeader(), registry: this.metrics.registry,
        userAllocation: o.userAllocation, directory: this.directory, log: this.log.child({ component: "grants" }),
      });
    }
    const leaseTask = new PeriodicTask({ name: "allocator-lease", intervalMs: Math.max(50, Math.floor(ttl / 3)), timeoutMs: ttl, run: () => this.leaseRoundAndGrants(), onError: this.onError });
    const decideTask = new PeriodicTask({ name: "allocator-decide", intervalMs: interval, timeoutMs: Math.max(interval, 10_000), run: async () => void (await this.decideNow()), onError: this.onError });
    this.tasks = [leaseTask, decideTask];
    this.decideTask = decideTask;
    await leaseTask.runNow();
    leaseTask.start();
    decideTask.start();
    this.log.info({ processId: this.processId, leader: this.lease.isLeader(), pools: o.pools.map((p) => `${p.name}:${p.mode}`), decisionIntervalMs: interval }, "allocator started");
  }

  private async followStatus(): Promise<void> {
    for await (const s of this.nc.status()) {
      if (s.type === "disconnect") {
        this.natsConnected = false;
        this.log.warn({ server: s.server }, "NATS disconnected: no decisions, keeping the current allocation");
      } else if (s.type === "reconnect") {
        this.natsConnected = true;
        this.log.info({ server: s.server }, "NATS reconnected");
      }
    }
  }

  /** A lease round, then the grant service started or stopped to match (even when the round failed). */
  private async leaseRoundAndGrants(): Promise<void> {
    try {
      await this.leaseRound();
    } finally {
      await this.grantHost?.sync();
    }
  }

  private async leaseRound(): Promise<void> {
    const was = this.lease.isLeader();
    let now = false;
    try {
      now = await this.lease.round();
    } finally {
      now = this.lease.isLeader();
      this.metrics.leader.set(now ? 1 : 0);
      if (now && !was) {
        this.leaderSinceMs = this.clock();
        // A new leader starts the policy afresh from the replicas the workloads run (read before its
        // first decision, see decideTick); scale-downs wait one stabilization window (below).
        this.policy = undefined;
        this.initialReadAttempts = 0;
        this.log.info({ processId: this.processId }, "allocator leadership acquired");
      } else if (!now && was) {
        this.policy = undefined;
        this.initialReadAttempts = 0;
        this.log.warn({ processId: this.processId }, "allocator leadership lost: not deciding");
      }
    }
  }

  /**
   * Each pool's allocated capacity now, requests/s: the replicas of the last decision's state (as
   * last read from the cluster), else as the actuator last read them, else the pool's minimum.
   */
  poolCapacities(): number[] {
    const statuses = new Map(this.actuator.statuses().map((s) => [s.pool, s]));
    const entries = new Map(this.lastState?.pools.map((e) => [e.pool, e]));
    return this.pools.map((p) => {
      const entry = entries.get(p.name);
      const replicas = entry?.replicasAllocated ?? statuses.get(p.name)?.currentReplicas ?? p.minReplicas;
      return poolCapacityPerSec(replicas, p.costModel.requestsPerSecPerReplica);
    });
  }

  /** The hosted grant service while this process leads and grants are on (tests, status). */
  get grants(): GrantHost | undefined {
    return this.grantHost;
  }

  /** True while this process leads. */
  isLeader(): boolean {
    return this.lease?.isLeader() ?? false;
  }

  /** The last pool state published. */
  state(): PoolsState | undefined {
    return this.lastState;
  }

  /**
   * One decision tick (the periodic task runs it; tests may call it). A new leader first reads the
   * replicas every pool's workload runs, so its policy starts from them (starting from minReplicas
   * would patch a running workload down at once, past its stabilization window); while a pool's
   * workload cannot be read it makes no decision, for up to {@link INITIAL_READ_ATTEMPTS} ticks,
   * then starts with what it has. Returns the decisions, or undefined when this process does not
   * lead, has not read its workloads yet, or NATS is disconnected.
   */
  async decideNow(): Promise<PoolDecision[] | undefined> {
    if (!this.policy && this.lease.isLeader()) {
      const read = await this.actuator.readAllReplicas();
      this.initialReadAttempts++;
      if (!this.lease.isLeader()) return undefined;
      if (!this.policy) {
        const unread = this.pools.filter((p) => !read.has(p.name)).map((p) => p.name);
        if (unread.length && this.initialReadAttempts < INITIAL_READ_ATTEMPTS) return undefined;
        if (unread.length) this.log.warn({ pools: unread, attempts: this.initialReadAttempts }, "workload replicas unreadable: those pools start from minReplicas");
        this.policy = new ClusterPolicy(this.pools, this.cluster, this.pools.map((p) => read.get(p.name)));
        this.log.info({ replicas: Object.fromEntries(read) }, "leader's policy starts from the replicas the workloads run");
      }
    }
    return this.decide();
  }

  /** One decision with the policy as it is (undefined when this process does not lead or NATS is disconnected). */
  private decide(): PoolDecision[] | undefined {
    const policy = this.policy;
    if (!policy || !this.lease.isLeader()) return undefined;
    if (!this.natsConnected) {
      this.log.warn("NATS unreachable: keeping the current allocation (no decision this tick)");
      return undefined;
    }
    const now = this.clock();
    const sum = this.summer.sum(now);
    this.metrics.demandPartialsMissing.set(sum.missing.length + sum.stale.length);
    const gap = JSON.stringify([sum.missing, sum.stale]);
    if (gap !== this.lastGap) {
      // Logged when the set of missing/stale partitions changes, not every tick.
      if (sum.incomplete) this.log.warn({ missing: sum.missing, stale: sum.stale }, "demand partials missing or stale: last values held, no scale-down");
      else this.log.info("demand partials complete");
      this.lastGap = gap;
    }
    const pools = this.pools;
    const statuses = new Map(this.actuator.statuses().map((s) => [s.pool, s]));
    const incomplete = pools.map((p) => sum.incomplete || now - Math.max(this.leaderSinceMs, this.addedAtMs.get(p.name) ?? 0) < p.stabilizationWindowSec * 1000);
    const current = pools.map((p) => statuses.get(p.name)?.currentReplicas ?? policy.pools[policy.indexOf(p.name)].replicas);
    const decisions = policy.decideFromDemand(now, sum.demand, this.z, { incomplete, currentReplicas: current });
    const horizon = `${this.horizonSec}s`;
    const entries: PoolStateEntry[] = [];
    decisions.forEach((d, i) => {
      const p = pools[i];
      const upper = combineUpper(sum.demand.meanPerSec[i], sum.demand.variance[i], sum.demand.upperSumPerSec[i], { method: p.demandMethod, z: this.z, blendWeight: p.blendWeight });
      this.metrics.demandForecast.set({ pool: p.name, horizon }, sum.demand.meanPerSec[i]);
      this.metrics.demandUpper.set({ pool: p.name, horizon }, upper);
      this.metrics.demandObserved.set({ pool: p.name }, sum.demand.observedPerSec[i]);
      this.actuator.submit({
        pool: d.pool, replicas: d.replicas, predictiveReplicas: d.predictiveReplicas, reactiveReplicas: d.reactiveReplicas,
        cpuMillicores: d.cpuMillicores, memoryMiB: d.memoryMiB, annotations: Object.keys(d.annotations).length ? d.annotations : undefined,
        reason: d.reason, direction: d.direction,
      });
      const st = statuses.get(p.name);
      const allocated = st?.currentReplicas ?? d.replicas;
      entries.push({
        pool: p.name, mode: p.mode, replicasAllocated: allocated, replicasDecided: d.replicas,
        replicasPredictive: d.predictiveReplicas, replicasReactive: d.reactiveReplicas,
        capacityRequestsPerSec: poolCapacityPerSec(allocated, p.costModel.requestsPerSecPerReplica),
        loadRequestsPerSec: sum.demand.observedPerSec[i], forecastRequestsPerSec: sum.demand.meanPerSec[i], upperRequestsPerSec: upper,
        activeUsers: sum.demand.activeUsers[i], actuation: st?.state ?? "ok", reason: d.reason,
      });
    });
    const state: PoolsState = { v: 1, timeMs: now, leader: this.processId, dataComplete: !sum.incomplete, missingPartitions: sum.missing, stalePartitions: sum.stale, pools: entries };
    this.lastState = state;
    try {
      this.nc.publish(poolsStateSubject(this.prefix), JSON.stringify(state));
    } catch (err) {
      this.onError(err, "pools-state");
    }
    this.opts.onDecisions?.(decisions, sum);
    return decisions;
  }

  /**
   * Applies new live settings (a config revision) between two decisions:
   * - the policy of an unchanged pool keeps its state; a changed pool keeps its replicas and its
   *   stabilization history (ClusterPolicy.reconfigure), so a new setting never opens a window
   *   for an unstabilized scale-down; lowered bounds (maxReplicas, minReplicas) apply at the next
   *   decision;
   * - an added pool is acted on in its configured mode from the next decision; it starts from the
   *   replicas its workload runs (read here) and scale-downs wait one stabilization window (as for
   *   a new leader); a pool moved to another workload starts from that one's replicas;
   * - a mode change keeps the replicas last read (the same workload), so `shadow` -> `scale`
   *   starts from what the workload runs, not from the shadow decisions;
   * - a removed pool is no longer acted on; its workload, HPA and resources stay as they are
   *   (the allocator never deletes Kubernetes objects) and its pool series leave /metrics;
   * - a changed pool list (names or order) restarts the sum of partials: partials for the old
   *   list are refused until the processors follow the same revision, and meanwhile every pool is
   *   held (incomplete demand: no scale-down);
   * - the grant service restarts with the new pools and throttle settings (gateways ride over it
   *   on their grants' leases).
   * Throws {@link AllocatorSettingsError} (changing nothing) when the settings cannot run.
   */
  async applySettings(next: AllocatorLiveSettings): Promise<AllocatorSettingsChange> {
    if (next.pools.length === 0) throw new AllocatorSettingsError(`a config without pools is not applied: the allocator keeps its pools (${this.pools.map((p) => p.name).join(", ")})`);
    const before = new Map(this.pools.map((p) => [p.name, p]));
    const statuses = new Map(this.actuator.statuses().map((s) => [s.pool, s]));
    // Pools whose workload is new to the allocator (added, or moved to another object): what they
    // run now is read first, so their first decision starts from it (never a scale-down from a
    // replica count the workload does not run).
    const read = new Map<string, number>();
    for (const t of targetsOf(next.pools)) {
      const old = before.get(t.pool);
      if (old && old.workload.kind === t.kind && old.workload.namespace === t.namespace && old.workload.name === t.name) continue;
      const replicas = await this.actuator.readReplicas(t);
      if (replicas !== undefined) read.set(t.pool, replicas);
    }
    const initialReplicasOf = (name: string) => read.get(name) ?? statuses.get(name)?.currentReplicas;
    // Checked on a copy first: the policy is the one step that can refuse the settings, and then
    // nothing has changed.
    let change: { added: string[]; changed: string[]; removed: string[] };
    try {
      change = new ClusterPolicy(this.pools, this.cluster).reconfigure(next.pools, next.cluster);
    } catch (err) {
      if (err instanceof PolicyInputError) throw new AllocatorSettingsError(`pool settings refused, keeping the running ones: ${err.message}`, { cause: err });
      throw err;
    }
    const namesChanged = canonicalJson(this.pools.map((p) => p.name)) !== canonicalJson(next.pools.map((p) => p.name));
    const modes = next.pools.filter((p) => before.has(p.name) && before.get(p.name)!.mode !== p.mode).map((p) => `${p.name}: ${before.get(p.name)!.mode} -> ${p.mode}`);
    const clusterChanged = canonicalJson(this.cluster) !== canonicalJson(next.cluster);
    // The switch itself, synchronous (no decision sees half of it); with grants, while the grant
    // service is stopped, so it never runs on a pool list other than the one it started with.
    const swap = () => {
      this.policy?.reconfigure(next.pools, next.cluster, initialReplicasOf);
      this.pools = next.pools;
      this.cluster = next.cluster;
      if (next.upperQuantile !== undefined) this.z = normalQuantile(next.upperQuantile);
      if (next.horizonSec !== undefined) this.horizonSec = next.horizonSec;
      if (namesChanged) {
        this.summer = this.newSummer(next.pools);
        this.lastGap = "";
      }
      this.actuator.setTargets(targetsOf(next.pools));
      for (const [pool, replicas] of read) this.actuator.noteReplicas(pool, replicas);
      const now = this.clock();
      for (const name of change.added) this.addedAtMs.set(name, now);
      for (const name of change.removed) this.addedAtMs.delete(name);
      if (this.decideTask && this.opts.decisionIntervalMs === undefined) this.decideTask.setIntervalMs(this.decisionIntervalMs());
    };
    let grantsRestarted = false;
    if (this.grantHost) grantsRestarted = await this.grantHost.reconfigure({ pools: next.pools, service: next.grants }, swap);
    else swap();
    for (const name of change.removed) await this.metrics.forgetPool(name);
    const result: AllocatorSettingsChange = { ...change, modes, cluster: clusterChanged, grantsRestarted };
    this.log.info(result, "allocator settings applied");
    return result;
  }

  /** The live settings' pools (tests, status). */
  get poolConfigs(): readonly AllocatorPoolConfig[] {
    return this.pools;
  }

  private newSummer(pools: readonly AllocatorPoolConfig[]): DemandSummer {
    return new DemandSummer(pools.map((p) => p.name), this.opts.partitions ?? DEFAULT_PARTITIONS, this.opts.staleAfterMs ?? DEFAULT_STALE_AFTER_MS);
  }

  /** The decision interval, ms: the option, else the smallest of the pools'. */
  private decisionIntervalMs(): number {
    return this.opts.decisionIntervalMs ?? Math.min(...this.pools.map((p) => p.decisionIntervalMs));
  }

  health(): CheckResult {
    const nats = this.natsConnected && !!this.nc && !this.nc.isClosed();
    return { ok: nats, checks: { nats } };
  }

  readiness(): CheckResult {
    const h = this.health();
    return { ok: h.ok && this.tasks.length > 0, checks: { ...h.checks, leader: this.isLeader() } };
  }

  /** The NATS connection (tests). */
  get connection(): NatsConnection {
    return this.nc;
  }

  /** Stops deciding, lets requests in flight finish, releases the lease, drains NATS. */
  stop(): Promise<void> {
    this.stopPromise ??= (async () => {
      for (const t of this.tasks) await t.stop();
      // Grants stop before the lease is released, so two processes never publish at once.
      await this.grantHost?.stop().catch((err) => this.onError(err, "grants-stop"));
      await this.directory?.stop().catch((err) => this.onError(err, "directory-stop"));
      await this.actuator.stop();
      this.sub?.unsubscribe();
      if (this.lease) await this.lease.release().catch(() => undefined);
      this.metrics.leader.set(0);
      if (this.nc && !this.nc.isClosed()) await this.nc.drain().catch((err) => this.onError(err, "drain"));
      await this.http?.stop();
    })();
    return this.stopPromise;
  }
}
