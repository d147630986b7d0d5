// The allocator's decision per pool and tick: allocation = max(predictive, reactive HPA floor,
// what the users active now need), scaled up at once, scaled down only to the highest requirement
// of the stabilization window and by at most a step per decision, inside min/max and a tolerance
// band; then the cluster budget by priority and max-min fair share. Pure: the live allocator and
// `foresight replay` run this same code. docs/allocator.md explains each rule.
import { shareBudget, type BudgetRequest, type ClusterBudget } from "./budget.ts";
import { combineUpper, type DemandMethod, type PoolDemand } from "./demand.ts";
import { HpaRecommender } from "./hpa.ts";
import { normalQuantile } from "../engine/options.ts";
import { calculateRequiredResources, type BandwidthConfig, type CostModel } from "./resources.ts";
import { canonicalJson } from "../util/canonical-json.ts";

/** What the policy reads of a pool's config (config `pools[]` satisfies it). */
export interface PoolPolicyConfig {
  name: string;
  costModel: CostModel;
  priority: number;
  minReplicas: number;
  maxReplicas: number;
  targetUtilization: number;
  headroom: number;
  stabilizationWindowSec: number;
  scaleDownMaxStepReplicas?: number;
  scaleDownMaxStepPercent: number;
  tolerance: number;
  podStartDelaySec: number;
  decisionIntervalMs: number;
  demandMethod: DemandMethod;
  /** Quantile of the pool bound ("variance", "blend"); absent = the z passed to decideFromDemand. */
  upperQuantile?: number;
  blendWeight: number;
  reactive: { targetUtilization: number; metricWindowSec: number };
  bandwidth?: BandwidthConfig;
}

/** Defaults of the policy fields, the same as the config schema's (for replay and tests). */
export const POOL_POLICY_DEFAULTS = Object.freeze({
  priority: 0,
  minReplicas: 1,
  maxReplicas: 10,
  targetUtilization: 0.8,
  headroom: 0.1,
  stabilizationWindowSec: 300,
  scaleDownMaxStepPercent: 50,
  tolerance: 0.1,
  podStartDelaySec: 30,
  decisionIntervalMs: 15_000,
  demandMethod: "variance" as DemandMethod,
  upperQuantile: 0.99,
  blendWeight: 0.5,
  reactive: Object.freeze({ targetUtilization: 0.7, metricWindowSec: 60 }),
});

/** One pool's inputs at a tick. */
export interface PoolTickInput {
  /** The pool's demand upper bound at the sizing horizon (pod start + one decision), requests/s. */
  upperRequestsPerSec: number;
  /** The same in tokens/s (LLM pools); absent = from costModel.tokensPerRequest, if set. */
  upperTokensPerSec?: number;
  /**
   * The pool's upper bound over the stabilization window ahead (the longest look-ahead the
   * forecasts offer), requests/s: a scale-down never goes below what it needs, so a dip the
   * forecast already sees ending does not cause a down-then-up inside the window. Absent = not used.
   */
  aheadUpperRequestsPerSec?: number;
  /** Demand observed now, requests/s: a sample of the reactive HPA's metric. Absent = samples given to observe(). */
  observedRequestsPerSec?: number;
  /** Demand of the users active now, requests/s (never provision below it); default the observed rate. */
  activeRequestsPerSec?: number;
  /** Same in tokens/s. */
  activeTokensPerSec?: number;
  /** Demand data is incomplete (a partition's partial is missing): hold, never scale down on it. */
  incomplete?: boolean;
  /** Replicas the workload has now, as the cluster reports them; default the last decision. */
  currentReplicas?: number;
}

/** Which way a decision moves the pool. */
export type ScaleDirection = "up" | "down" | "none";

/** One pool's decision. */
export interface PoolDecision {
  pool: string;
  /** Replicas to run (after every safeguard and the cluster budget). */
  replicas: number;
  /** Replicas before this decision. */
  previousReplicas: number;
  /** Replicas the forecast alone needs (bounded by min/max). */
  predictiveReplicas: number;
  /** What a Kubernetes HPA v2 alone would run now (the reactive floor). */
  reactiveReplicas: number;
  /** Replicas the users active now need at the target utilization. */
  activeReplicas: number;
  /** max(predictive, reactive, active) bounded by min/max, before stabilization and budget. */
  wantedReplicas: number;
  /** CPU request per replica, millicores. */
  cpuMillicores: number;
  /** Memory request per replica, MiB. */
  memoryMiB: number;
  /** Pod annotations (bandwidth); empty when not configured. */
  annotations: Record<string, string>;
  /** Why: which rule set `replicas` (e.g. "up: predictive", "hold: stabilization"). */
  reason: string;
  direction: ScaleDirection;
  /** True when the cluster budget granted less than wanted. */
  budgetLimited: boolean;
  /** Inputs echoed for logs and metrics. */
  upperRequestsPerSec: number;
  observedRequestsPerSec: number;
  timeMs: number;
}

/** Bad policy config or input. */
export class PolicyInputError extends Error {
  override name = "PolicyInputError";
}

/** The per-pool state of the policy: stabilization history, the modelled HPA, the last decision. */
export class PoolPolicy {
  readonly config: PoolPolicyConfig;
  /** Replicas of the last decision. */
  replicas: number;
  readonly hpa: HpaRecommender;
  // Ring of (time, wanted) over the stabilization window.
  private histT: Float64Array;
  private histV: Float64Array;
  private histHead = 0;
  private histN = 0;

  constructor(config: PoolPolicyConfig, initialReplicas?: number) {
    const c = config;
    if (!(c.minReplicas >= 0 && c.maxReplicas >= Math.max(1, c.minReplicas))) throw new PolicyInputError(`pool ${c.name}: need 0 <= minReplicas <= maxReplicas, maxReplicas >= 1 (got ${c.minReplicas}, ${c.maxReplicas})`);
    if (!(c.decisionIntervalMs > 0)) throw new PolicyInputError(`pool ${c.name}: decisionIntervalMs must be > 0`);
    if (!(c.tolerance >= 0 && c.tolerance < 1)) throw new PolicyInputError(`pool ${c.name}: tolerance must be in [0, 1)`);
    this.config = c;
    this.replicas = clamp(initialReplicas ?? c.minReplicas, c.minReplicas, c.maxReplicas);
    this.hpa = new HpaRecommender({
      capacityPerReplicaPerSec: c.costModel.requestsPerSecPerReplica,
      targetUtilization: c.reactive.targetUtilization,
      tolerance: 0.1,
      minReplicas: Math.max(1, c.minReplicas),
      maxReplicas: c.maxReplicas,
      initialReplicas: Math.max(1, this.replicas),
      metricWindowMs: c.reactive.metricWindowSec * 1000,
      syncPeriodMs: c.decisionIntervalMs,
    });
    const cap = Math.ceil((c.stabilizationWindowSec * 1000) / c.decisionIntervalMs) + 8;
    this.histT = new Float64Array(cap);
    this.histV = new Float64Array(cap);
  }

  /** Feeds an observed-demand sample (any cadence, e.g. every second in replay) to the reactive HPA. */
  observe(nowMs: number, ratePerSec: number): void {
    this.hpa.observe(nowMs, ratePerSec);
  }

  /**
   * The pool's decision before the cluster budget. The state (history, HPA) advances; call
   * {@link settle} with the replicas finally granted (the budget may cut them).
   */
  decide(nowMs: number, input: PoolTickInput): PoolDecision {
    const c = this.config;
    if (!(input.upperRequestsPerSec >= 0) || !Number.isFinite(input.upperRequestsPerSec)) throw new PolicyInputError(`pool ${c.name}: upperRequestsPerSec must be a finite number >= 0 (got ${input.upperRequestsPerSec})`);
    const current = input.currentReplicas ?? this.replicas;
    const observed = input.observedRequestsPerSec;
    if (observed !== undefined) {
      if (!(observed >= 0) || !Number.isFinite(observed)) throw new PolicyInputError(`pool ${c.name}: observedRequestsPerSec must be a finite number >= 0 (got ${observed})`);
      this.hpa.observe(nowMs, observed);
    }
    const hpa = this.hpa.recommend(nowMs);
    const reactive = hpa.replicas;
    const req = calculateRequiredResources({ requestsPerSec: input.upperRequestsPerSec, tokensPerSec: input.upperTokensPerSec }, c);
    const predictive = clamp(req.replicas, c.minReplicas, c.maxReplicas);
    const activeRate = input.activeRequestsPerSec ?? observed ?? hpa.demandPerSec;
    const activeNeed = calculateRequiredResources({ requestsPerSec: activeRate, tokensPerSec: input.activeTokensPerSec }, { ...c, headroom: 0 }).replicas;
    const active = clamp(activeNeed, c.minReplicas, c.maxReplicas);
    const floor = Math.max(reactive, active);
    const wanted = clamp(Math.max(predictive, floor), c.minReplicas, c.maxReplicas);
    this.pushHistory(nowMs, wanted);

    let replicas = current;
    let reason: string;
    if (current < c.minReplicas || current > c.maxReplicas) {
      replicas = clamp(current, c.minReplicas, c.maxReplicas);
      reason = current < c.minReplicas ? "up: minReplicas" : "down: maxReplicas";
    } else if (wanted > current) {
      const within = current > 0 && (wanted - current) / current <= c.tolerance;
      if (within && current >= floor) reason = "hold: tolerance";
      else {
        replicas = wanted;
        reason = predictive >= floor ? "up: predictive" : reactive >= active ? "up: reactive floor" : "up: active users";
      }
    } else if (wanted < current) {
      const ahead = input.aheadUpperRequestsPerSec;
      const aheadReplicas = ahead === undefined ? 0 : clamp(calculateRequiredResources({ requestsPerSec: ahead }, c).replicas, c.minReplicas, c.maxReplicas);
      const stable = Math.max(this.windowMax(nowMs), aheadReplicas);
      if (input.incomplete) reason = "hold: incomplete demand";
      else if (stable >= current) reason = aheadReplicas >= current ? "hold: forecast rises within the window" : "hold: stabilization";
      else if ((current - stable) / current <= c.tolerance) reason = "hold: tolerance";
      else {
        const step = c.scaleDownMaxStepReplicas ?? Math.max(1, Math.floor((current * c.scaleDownMaxStepPercent) / 100));
        // Land inside the tolerance band above the requirement: a later rise within the band is
        // then held by the up-tolerance instead of reversing this scale-down.
        const landing = Math.min(current, Math.ceil(stable * (1 + c.tolerance) - 1e-9));
        replicas = Math.max(landing, current - step);
        reason = replicas > landing ? "down: step-limited" : "down: stabilized";
      }
    } else reason = "hold: at requirement";
    return {
      pool: c.name,
      replicas,
      previousReplicas: current,
      predictiveReplicas: predictive,
      reactiveReplicas: reactive,
      activeReplicas: active,
      wantedReplicas: wanted,
      cpuMillicores: req.cpuMillicores,
      memoryMiB: req.memoryMiB,
      annotations: req.annotations,
      reason,
      direction: replicas > current ? "up" : replicas < current ? "down" : "none",
      budgetLimited: false,
      upperRequestsPerSec: input.upperRequestsPerSec,
      observedRequestsPerSec: observed ?? hpa.demandPerSec,
      timeMs: nowMs,
    };
  }

  /** Records the replicas finally set (after the budget). */
  settle(replicas: number): void {
    this.replicas = replicas;
  }

  /**
   * This pool under a new config (a live config change): the last replicas (or `replicas`, e.g.
   * what the workload runs; clamped to the new bounds) and the stabilization history carry over, so a changed setting never opens a window
   * for an unstabilized scale-down; the modelled HPA starts afresh under the new settings (its
   * samples were taken against the old capacity per replica).
   */
  withConfig(config: PoolPolicyConfig, replicas = this.replicas): PoolPolicy {
    const next = new PoolPolicy(config, replicas);
    for (let j = 0; j < this.histN; j++) {
      const i = (this.histHead + j) % this.histT.length;
      next.pushHistory(this.histT[i], this.histV[i]);
    }
    return next;
  }

  private pushHistory(tMs: number, v: number): void {
    const cap = this.histT.length;
    if (this.histN === cap) {
      // Decisions came faster than decisionIntervalMs: grow rather than lose the window's maximum.
      const t = new Float64Array(cap * 2), w = new Float64Array(cap * 2);
      for (let j = 0; j < this.histN; j++) {
        t[j] = this.histT[(this.histHead + j) % cap];
        w[j] = this.histV[(this.histHead + j) % cap];
      }
      this.histT = t;
      this.histV = w;
      this.histHead = 0;
    }
    const c2 = this.histT.length;
    const i = (this.histHead + this.histN) % c2;
    this.histT[i] = tMs;
    this.histV[i] = v;
    this.histN++;
  }

  /** Highest wanted replicas of the samples in (now − window, now]; drops older ones. */
  private windowMax(nowMs: number): number {
    const cap = this.histT.length;
    const cutoff = nowMs - this.config.stabilizationWindowSec * 1000;
    while (this.histN > 1 && this.histT[this.histHead] <= cutoff) {
      this.histHead = (this.histHead + 1) % cap;
      this.histN--;
    }
    let m = 0;
    for (let j = 0; j < this.histN; j++) m = Math.max(m, this.histV[(this.histHead + j) % cap]);
    return m;
  }
}

/** True when two pool configs hold the same settings (key order aside). */
function samePolicyConfig(a: PoolPolicyConfig, b: PoolPolicyConfig): boolean {
  return canonicalJson(a) === canonicalJson(b);
}

function clamp(v: number, lo: number, hi: number): number {
  return v < lo ? lo : v > hi ? hi : v;
}

/**
 * All pools of a cluster: each pool's decision, then the cluster budget. Pool order is config order.
 */
export class ClusterPolicy {
  pools: PoolPolicy[];
  budget: ClusterBudget;
  private index = new Map<string, number>();
  private poolZ: (number | undefined)[];

  constructor(pools: readonly PoolPolicyConfig[], budget: ClusterBudget, initialReplicas?: readonly (number | undefined)[]) {
    this.pools = pools.map((p, i) => new PoolPolicy(p, initialReplicas?.[i]));
    this.poolZ = [];
    this.setIndex(pools);
    this.budget = budget;
  }

  private setIndex(pools: readonly PoolPolicyConfig[]): void {
    const index = new Map<string, number>();
    pools.forEach((p, i) => {
      if (index.has(p.name)) throw new PolicyInputError(`duplicate pool name "${p.name}"`);
      index.set(p.name, i);
    });
    this.index = index;
    this.poolZ = pools.map((p) => (p.upperQuantile === undefined ? undefined : normalQuantile(p.upperQuantile)));
  }

  /**
   * Applies a new config (live): pools are matched by name. An unchanged pool keeps its state, a
   * changed one carries its stabilization history over ({@link PoolPolicy.withConfig}) and starts
   * from `initialReplicasOf(name)` (e.g. what the cluster runs; default its last decision), an
   * added one starts at `initialReplicasOf(name)` (default its minReplicas), a removed one is dropped. Pool order becomes the new config's order. Returns the
   * names of the pools added, changed and removed. Throws (changing nothing) on a bad pool config.
   */
  reconfigure(
    pools: readonly PoolPolicyConfig[],
    budget: ClusterBudget,
    initialReplicasOf: (name: string) => number | undefined = () => undefined,
  ): { added: string[]; changed: string[]; removed: string[] } {
    const added: string[] = [], changed: string[] = [];
    const next = pools.map((c) => {
      const i = this.indexOf(c.name);
      if (i < 0) {
        added.push(c.name);
        return new PoolPolicy(c, initialReplicasOf(c.name));
      }
      const old = this.pools[i];
      if (samePolicyConfig(old.config, c)) return old;
      changed.push(c.name);
      return old.withConfig(c, initialReplicasOf(c.name));
    });
    const keep = new Set(pools.map((p) => p.name));
    const removed = this.pools.map((p) => p.config.name).filter((n) => !keep.has(n));
    this.setIndex(pools);
    this.pools = next;
    this.budget = budget;
    return { added, changed, removed };
  }

  /** Index of a pool by name, or -1. */
  indexOf(name: string): number {
    return this.index.get(name) ?? -1;
  }

  /** One tick: `inputs[i]` is pool i's input. */
  decide(nowMs: number, inputs: readonly PoolTickInput[]): PoolDecision[] {
    if (inputs.length !== this.pools.length) throw new PolicyInputError(`${inputs.length} inputs for ${this.pools.length} pools`);
    const decisions = this.pools.map((p, i) => p.decide(nowMs, inputs[i]));
    const reqs: BudgetRequest[] = decisions.map((d, i) => {
      const c = this.pools[i].config;
      return { priority: c.priority, minReplicas: c.minReplicas, wantReplicas: d.replicas, cpuPerReplicaMillicores: d.cpuMillicores, memoryPerReplicaMiB: d.memoryMiB };
    });
    const grant = shareBudget(reqs, this.budget);
    decisions.forEach((d, i) => {
      if (grant.limited[i]) {
        d.replicas = grant.replicas[i];
        d.budgetLimited = true;
        d.reason += "; cut by cluster budget";
        d.direction = d.replicas > d.previousReplicas ? "up" : d.replicas < d.previousReplicas ? "down" : "none";
      }
      this.pools[i].settle(d.replicas);
    });
    return decisions;
  }

  /**
   * One tick from aggregated demand: pool i's bound is formed by its own demandMethod at its own
   * upperQuantile (else at `z`, e.g. the engine's); `incomplete[i]` marks pools whose demand lacks
   * a partition's partial; `aheadUpperRequestsPerSec[i]` is pool i's bound over the window ahead.
   */
  decideFromDemand(
    nowMs: number,
    demand: PoolDemand,
    z: number,
    opts: { incomplete?: ArrayLike<boolean>; currentReplicas?: ArrayLike<number>; aheadUpperRequestsPerSec?: ArrayLike<number> } = {},
  ): PoolDecision[] {
    if (demand.poolCount !== this.pools.length) throw new PolicyInputError(`demand has ${demand.poolCount} pools, policy ${this.pools.length}`);
    const inputs: PoolTickInput[] = this.pools.map((p, i) => {
      const c = p.config;
      const bound = { method: c.demandMethod, z: this.poolZ[i] ?? z, blendWeight: c.blendWeight };
      const t = demand.tokens;
      return {
        upperRequestsPerSec: combineUpper(demand.meanPerSec[i], demand.variance[i], demand.upperSumPerSec[i], bound),
        upperTokensPerSec: t ? combineUpper(t.meanPerSec[i], t.variance[i], t.upperSumPerSec[i], bound) : undefined,
        observedRequestsPerSec: demand.observedPerSec[i],
        activeTokensPerSec: t ? t.observedPerSec[i] : undefined,
        aheadUpperRequestsPerSec: opts.aheadUpperRequestsPerSec?.[i],
        incomplete: opts.incomplete?.[i] ?? false,
        currentReplicas: opts.currentReplicas?.[i],
      };
    });
    return this.decide(nowMs, inputs);
  }
}
