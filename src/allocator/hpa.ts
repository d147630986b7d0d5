// A pure model of the Kubernetes HorizontalPodAutoscaler (autoscaling/v2) recommender, on a
// demand-based metric: the reactive half of max(predictive, reactive) in the allocator, and the
// "reactive HPA v2" peer of `foresight replay`. No I/O, no clock: the caller passes `nowMs`.
//
// It follows the controller as the Kubernetes docs and pkg/controller/podautoscaler define it:
// - metric: an External/Object metric with an AverageValue target of `capacityPerReplica × target`
//   per pod, so usageRatio = demand / (currentReplicas × capacityPerReplica × target), where
//   currentReplicas counts every existing pod (pods still starting serve nothing: they count as
//   idle, which is what dividing the whole demand by all of them means);
// - tolerance: |usageRatio − 1| ≤ tolerance → keep currentReplicas; else desired = ceil(demand /
//   (capacityPerReplica × target));
// - stabilization: the recommendation is clamped between the lowest raw recommendation of the
//   scale-up window and the highest of the scale-down window (default 0 s and 300 s);
// - rate limits (behavior.policies, selectPolicy Max): scale-up at most max(+4 pods, +100 %) per
//   15 s, scale-down at most −100 % per 15 s, counted from the replicas at the period's start;
// - min/max replicas bound the result (a current count outside them is brought inside first).

/** One scaling policy of `behavior.scaleUp/scaleDown.policies`. */
export interface HpaScalingPolicy {
  /** "Pods": change by `value` pods; "Percent": by `value` % of the replicas at the period start. */
  type: "Pods" | "Percent";
  /** Pods or percent allowed per period (> 0). */
  value: number;
  /** Length of the period the change is counted over, s (> 0). */
  periodSec: number;
}

/** `behavior.scaleUp` or `behavior.scaleDown` of an HPA. */
export interface HpaScalingRules {
  /** Window over which recommendations are stabilized, s. Default 0 (up) / 300 (down). */
  stabilizationWindowSec: number;
  /** "Max": the policy allowing the largest change wins; "Min": the smallest; "Disabled": no change. */
  selectPolicy: "Max" | "Min" | "Disabled";
  policies: readonly HpaScalingPolicy[];
}

/** Options of {@link HpaRecommender}; every field but `capacityPerReplicaPerSec` has a default. */
export interface HpaOptions {
  /** Demand one replica serves at 100 % utilization, per second (requests/s, or tokens/s). Required. */
  capacityPerReplicaPerSec: number;
  /** Target utilization, in (0, 1]: the HPA's AverageValue target is capacity × this. Default 0.7. */
  targetUtilization: number;
  /** Relative band around the target inside which nothing changes. Default 0.1 (the controller's). */
  tolerance: number;
  /** Lowest replicas. Default 1. */
  minReplicas: number;
  /** Highest replicas. Default 1_000_000 (unbounded in practice). */
  maxReplicas: number;
  /** Replicas the workload has before the first recommendation. Default `minReplicas`. */
  initialReplicas?: number;
  /** Demand is averaged over the samples of this trailing window, ms. Default 60_000. */
  metricWindowMs: number;
  /** The controller's sync period, ms (how often `recommend` is meant to be called). Default 15_000. */
  syncPeriodMs: number;
  scaleUp: HpaScalingRules;
  scaleDown: HpaScalingRules;
}

/** The Kubernetes defaults (autoscaling/v2 `behavior` defaults, kube-controller-manager flags). */
export const HPA_DEFAULTS: Readonly<Omit<HpaOptions, "capacityPerReplicaPerSec" | "initialReplicas">> = Object.freeze({
  targetUtilization: 0.7,
  tolerance: 0.1,
  minReplicas: 1,
  maxReplicas: 1_000_000,
  metricWindowMs: 60_000,
  syncPeriodMs: 15_000,
  scaleUp: Object.freeze({
    stabilizationWindowSec: 0,
    selectPolicy: "Max" as const,
    policies: Object.freeze([
      Object.freeze({ type: "Pods" as const, value: 4, periodSec: 15 }),
      Object.freeze({ type: "Percent" as const, value: 100, periodSec: 15 }),
    ]),
  }),
  scaleDown: Object.freeze({
    stabilizationWindowSec: 300,
    selectPolicy: "Max" as const,
    policies: Object.freeze([Object.freeze({ type: "Percent" as const, value: 100, periodSec: 15 })]),
  }),
});

/** Bad HPA options: names the option and the rule. */
export class HpaOptionError extends Error {
  override name = "HpaOptionError";
}

/** Why the recommendation differs from the raw metric-based one (or "none"). */
export type HpaLimit = "none" | "tolerance" | "scaleUpStabilization" | "scaleDownStabilization" | "scaleUpRate" | "scaleDownRate" | "minReplicas" | "maxReplicas";

/** One recommendation. */
export interface HpaRecommendation {
  /** Replicas the HPA sets now (after tolerance, stabilization, rate limits and bounds). */
  replicas: number;
  /** Raw metric-based recommendation, ceil(demand / (capacity × target)) (or current within tolerance). */
  desiredReplicas: number;
  /** Replicas the decision started from (every existing pod, starting or ready). */
  currentReplicas: number;
  /** Demand the metric saw (mean over the metric window), per second. */
  demandPerSec: number;
  /** demand / (currentReplicas × capacity): utilization with starting pods counted as idle. */
  utilization: number;
  /** What limited the change, "none" when the raw recommendation was taken. */
  limitedBy: HpaLimit;
}

function checkRules(r: HpaScalingRules, name: string): void {
  if (!(r.stabilizationWindowSec >= 0)) throw new HpaOptionError(`${name}.stabilizationWindowSec must be >= 0 s (got ${r.stabilizationWindowSec})`);
  if (!["Max", "Min", "Disabled"].includes(r.selectPolicy)) throw new HpaOptionError(`${name}.selectPolicy must be Max, Min or Disabled (got ${r.selectPolicy})`);
  for (const p of r.policies) {
    if (p.type !== "Pods" && p.type !== "Percent") throw new HpaOptionError(`${name}.policies type must be Pods or Percent (got ${p.type})`);
    if (!(p.value > 0)) throw new HpaOptionError(`${name}.policies value must be > 0 (got ${p.value})`);
    if (!(p.periodSec > 0)) throw new HpaOptionError(`${name}.policies periodSec must be > 0 s (got ${p.periodSec})`);
  }
}

/** Fills defaults and checks ranges; throws {@link HpaOptionError}. */
export function resolveHpaOptions(o: Partial<HpaOptions> & Pick<HpaOptions, "capacityPerReplicaPerSec">): HpaOptions {
  const r: HpaOptions = { ...HPA_DEFAULTS, ...o } as HpaOptions;
  if (!(r.capacityPerReplicaPerSec > 0)) throw new HpaOptionError(`capacityPerReplicaPerSec must be > 0 per second (got ${r.capacityPerReplicaPerSec})`);
  if (!(r.targetUtilization > 0 && r.targetUtilization <= 1)) throw new HpaOptionError(`targetUtilization must be in (0, 1] (got ${r.targetUtilization})`);
  if (!(r.tolerance >= 0 && r.tolerance < 1)) throw new HpaOptionError(`tolerance must be in [0, 1) (got ${r.tolerance})`);
  if (!(Number.isInteger(r.minReplicas) && r.minReplicas >= 0)) throw new HpaOptionError(`minReplicas must be an integer >= 0 (got ${r.minReplicas})`);
  if (!(Number.isInteger(r.maxReplicas) && r.maxReplicas >= Math.max(1, r.minReplicas)))
    throw new HpaOptionError(`maxReplicas must be an integer >= max(1, minReplicas) (got ${r.maxReplicas})`);
  if (!(r.metricWindowMs > 0)) throw new HpaOptionError(`metricWindowMs must be > 0 ms (got ${r.metricWindowMs})`);
  if (!(r.syncPeriodMs > 0)) throw new HpaOptionError(`syncPeriodMs must be > 0 ms (got ${r.syncPeriodMs})`);
  checkRules(r.scaleUp, "scaleUp");
  checkRules(r.scaleDown, "scaleDown");
  return r;
}

/**
 * A fixed-capacity ring of (time, value) samples with the mean of those inside a trailing window.
 * Capacity bounds memory; samples beyond it (oldest first) are dropped.
 */
export class RateWindow {
  private readonly t: Float64Array;
  private readonly v: Float64Array;
  private head = 0;
  private n = 0;
  constructor(capacity = 4096) {
    this.t = new Float64Array(capacity);
    this.v = new Float64Array(capacity);
  }
  /** Adds a sample; samples must come in time order. */
  push(nowMs: number, value: number): void {
    const cap = this.t.length;
    const i = (this.head + this.n) % cap;
    this.t[i] = nowMs;
    this.v[i] = value;
    if (this.n < cap) this.n++;
    else this.head = (this.head + 1) % cap;
  }
  /** Mean of the samples with time in (nowMs − windowMs, nowMs]; 0 when there are none. */
  mean(nowMs: number, windowMs: number): number {
    const cap = this.t.length;
    const cutoff = nowMs - windowMs;
    // Drop samples that left every window we will ask about (time only moves forward).
    while (this.n > 0 && this.t[this.head] <= cutoff) {
      this.head = (this.head + 1) % cap;
      this.n--;
    }
    let s = 0;
    let k = 0;
    for (let j = 0; j < this.n; j++) {
      const i = (this.head + j) % cap;
      if (this.t[i] > nowMs) break;
      s += this.v[i];
      k++;
    }
    return k === 0 ? 0 : s / k;
  }
  get size(): number {
    return this.n;
  }
}

interface Timestamped {
  tMs: number;
  value: number;
}

/**
 * The HPA's per-workload state: recommendations of the stabilization windows, scale events of the
 * rate-limit periods, and the replicas it set last. Call {@link observe} with demand samples at
 * any cadence and {@link recommend} every sync period.
 */
export class HpaRecommender {
  readonly options: HpaOptions;
  /** Replicas this HPA set last (its own view of the workload). */
  replicas: number;
  private readonly recommendations: Timestamped[] = [];
  private readonly upEvents: Timestamped[] = [];
  private readonly downEvents: Timestamped[] = [];
  private readonly window: RateWindow;

  constructor(options: Partial<HpaOptions> & Pick<HpaOptions, "capacityPerReplicaPerSec">) {
    this.options = resolveHpaOptions(options);
    const init = options.initialReplicas ?? this.options.minReplicas;
    if (!(Number.isInteger(init) && init >= 0)) throw new HpaOptionError(`initialReplicas must be an integer >= 0 (got ${init})`);
    this.replicas = init;
    // Enough for one sample per second over the window, plus slack.
    this.window = new RateWindow(Math.max(64, Math.ceil(this.options.metricWindowMs / 1000) * 2 + 16));
  }

  /** Records a demand sample (per second) at `nowMs`; the metric is the mean over the metric window. */
  observe(nowMs: number, ratePerSec: number): void {
    if (!(ratePerSec >= 0)) throw new HpaOptionError(`observed rate must be >= 0 per second (got ${ratePerSec})`);
    this.window.push(nowMs, ratePerSec);
  }

  /** Mean demand of the samples in the trailing metric window (0 when none). */
  meanDemand(nowMs: number): number {
    return this.window.mean(nowMs, this.options.metricWindowMs);
  }

  /**
   * One controller sync at `nowMs`. `observedRatePerSec` is the metric's value (default: the mean
   * of the observed samples over the metric window); `currentReplicas` every existing pod, starting
   * or ready (default: what this HPA set last). The result becomes this HPA's `replicas`.
   */
  recommend(nowMs: number, observedRatePerSec?: number, currentReplicas: number = this.replicas): HpaRecommendation {
    const o = this.options;
    const demand = observedRatePerSec ?? this.meanDemand(nowMs);
    if (!(demand >= 0) || !Number.isFinite(demand)) throw new HpaOptionError(`observed rate must be a finite number >= 0 per second (got ${demand})`);
    const current = currentReplicas;
    const utilization = current > 0 ? demand / (current * o.capacityPerReplicaPerSec) : demand > 0 ? Infinity : 0;
    // Out-of-bounds current: the controller brings it inside the bounds before any metric math.
    if (current > o.maxReplicas || current < o.minReplicas) {
      const replicas = current > o.maxReplicas ? o.maxReplicas : o.minReplicas;
      this.storeEvent(nowMs, current, replicas);
      this.replicas = replicas;
      return { replicas, desiredReplicas: replicas, currentReplicas: current, demandPerSec: demand, utilization, limitedBy: current > o.maxReplicas ? "maxReplicas" : "minReplicas" };
    }
    // Metric: AverageValue target per pod over every existing pod (the replica calculator's
    // GetExternalPerPodMetricReplicas); a workload at zero replicas has no usage ratio: scale from
    // demand alone.
    const perPodTarget = o.capacityPerReplicaPerSec * o.targetUtilization;
    let desired: number;
    let withinTolerance = false;
    if (current > 0) {
      const usageRatio = demand / (perPodTarget * current);
      if (Math.abs(usageRatio - 1) <= o.tolerance) {
        desired = current;
        withinTolerance = true;
      } else desired = Math.ceil(demand / perPodTarget - 1e-9);
    } else desired = Math.ceil(demand / perPodTarget - 1e-9);

    // Stabilization (stabilizeRecommendationWithBehaviors).
    const upCutoff = nowMs - o.scaleUp.stabilizationWindowSec * 1000;
    const downCutoff = nowMs - o.scaleDown.stabilizationWindowSec * 1000;
    let upRec = desired;
    let downRec = desired;
    for (const r of this.recommendations) {
      if (r.tMs > upCutoff) upRec = Math.min(upRec, r.value);
      if (r.tMs > downCutoff) downRec = Math.max(downRec, r.value);
    }
    let stabilized = current;
    let limitedBy: HpaLimit = withinTolerance ? "tolerance" : "none";
    if (stabilized < upRec) stabilized = upRec;
    if (stabilized > downRec) stabilized = downRec;
    if (stabilized !== desired) limitedBy = stabilized < desired ? "scaleUpStabilization" : "scaleDownStabilization";
    this.recommendations.push({ tMs: nowMs, value: desired });
    const keepAfter = Math.min(upCutoff, downCutoff);
    while (this.recommendations.length > 0 && this.recommendations[0].tMs <= keepAfter) this.recommendations.shift();

    // Rate limits (convertDesiredReplicasWithBehaviorRate).
    let replicas = stabilized;
    if (stabilized > current) {
      let upLimit = this.scaleUpLimit(nowMs, current);
      if (upLimit < current) upLimit = current;
      const maxAllowed = Math.min(o.maxReplicas, upLimit);
      if (stabilized > maxAllowed) {
        replicas = maxAllowed;
        limitedBy = maxAllowed === o.maxReplicas && o.maxReplicas < upLimit ? "maxReplicas" : "scaleUpRate";
      }
    } else if (stabilized < current) {
      let downLimit = this.scaleDownLimit(nowMs, current);
      if (downLimit > current) downLimit = current;
      const minAllowed = Math.max(o.minReplicas, downLimit);
      if (stabilized < minAllowed) {
        replicas = minAllowed;
        limitedBy = minAllowed === o.minReplicas && o.minReplicas > downLimit ? "minReplicas" : "scaleDownRate";
      }
    }
    this.storeEvent(nowMs, current, replicas);
    this.replicas = replicas;
    return { replicas, desiredReplicas: desired, currentReplicas: current, demandPerSec: demand, utilization, limitedBy };
  }

  private storeEvent(nowMs: number, from: number, to: number): void {
    if (to > from) this.upEvents.push({ tMs: nowMs, value: to - from });
    else if (to < from) this.downEvents.push({ tMs: nowMs, value: from - to });
    // Events older than the longest policy period never count again.
    let longest = 0;
    for (const p of this.options.scaleUp.policies) longest = Math.max(longest, p.periodSec);
    for (const p of this.options.scaleDown.policies) longest = Math.max(longest, p.periodSec);
    const cutoff = nowMs - longest * 1000;
    for (const ev of [this.upEvents, this.downEvents]) while (ev.length > 0 && ev[0].tMs <= cutoff) ev.shift();
  }

  private changeInPeriod(events: Timestamped[], nowMs: number, periodSec: number): number {
    const cutoff = nowMs - periodSec * 1000;
    let s = 0;
    for (const e of events) if (e.tMs > cutoff) s += e.value;
    return s;
  }

  /** calculateScaleUpLimitWithScalingRules. */
  private scaleUpLimit(nowMs: number, current: number): number {
    const r = this.options.scaleUp;
    if (r.selectPolicy === "Disabled") return current;
    const pick = r.selectPolicy === "Min" ? Math.min : Math.max;
    let result = r.selectPolicy === "Min" ? Infinity : -Infinity;
    for (const p of r.policies) {
      const periodStart = current - this.changeInPeriod(this.upEvents, nowMs, p.periodSec) + this.changeInPeriod(this.downEvents, nowMs, p.periodSec);
      const proposed = p.type === "Pods" ? periodStart + p.value : Math.ceil(periodStart * (1 + p.value / 100));
      result = pick(result, proposed);
    }
    return result === -Infinity || result === Infinity ? current : result;
  }

  /** calculateScaleDownLimitWithBehaviors. */
  private scaleDownLimit(nowMs: number, current: number): number {
    const r = this.options.scaleDown;
    if (r.selectPolicy === "Disabled") return current;
    const pick = r.selectPolicy === "Min" ? Math.max : Math.min;
    let result = r.selectPolicy === "Min" ? -Infinity : Infinity;
    for (const p of r.policies) {
      const periodStart = current - this.changeInPeriod(this.upEvents, nowMs, p.periodSec) + this.changeInPeriod(this.downEvents, nowMs, p.periodSec);
      const proposed = p.type === "Pods" ? periodStart - p.value : Math.floor(periodStart * (1 - p.value / 100));
      result = pick(result, proposed);
    }
    return result === -Infinity || result === Infinity ? current : result;
  }
}
