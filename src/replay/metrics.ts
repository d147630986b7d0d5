/**
 * Figures of one policy run on one pool (scored seconds only), their sums over pools, and the
 * frontier maths: replica-hours a policy family needs at a given SLO, interpolated between runs.
 */

/** Accumulated figures of one policy on one pool. */
export interface PolicyFigures {
  /** Requests that arrived in scored seconds (throttled ones included). */
  requests: number;
  /** Of those, served within the maximum wait. */
  served: number;
  /** Of those, served in their own second with no queue (demand above capacity is lost). */
  noQueueServed: number;
  /** Billed replica-seconds (every existing replica, starting or ready). */
  replicaSec: number;
  /** Replica-seconds above demand: max(0, existing − demand / R). */
  overProvSec: number;
  /** Decisions in scored time that raised / lowered the replica count. */
  scaleUps: number;
  scaleDowns: number;
  /** Requests refused by a throttle. */
  refused: number;
  /** Refused requests the pool had capacity to spare for in their second. */
  falseThrottles: number;
  /** Requests of users within their forecast in seconds when another user was above its forecast. */
  nnRequests: number;
  /** Of those, served within the maximum wait. */
  nnServed: number;
  /** Scored seconds. */
  seconds: number;
  /** Foresight: decisions in scored time, and those in which the forecast asked for more than the reactive floor. */
  decisions: number;
  predictiveAboveFloor: number;
}

export const emptyFigures = (): PolicyFigures => ({
  requests: 0, served: 0, noQueueServed: 0, replicaSec: 0, overProvSec: 0, scaleUps: 0, scaleDowns: 0, refused: 0,
  falseThrottles: 0, nnRequests: 0, nnServed: 0, seconds: 0, decisions: 0, predictiveAboveFloor: 0,
});

/** Sum of figures (pools of one policy). */
export function addFigures(a: PolicyFigures, b: PolicyFigures): PolicyFigures {
  const o = emptyFigures();
  for (const k of Object.keys(o) as (keyof PolicyFigures)[]) o[k] = a[k] + b[k];
  return o;
}

/** Figures in report units. */
export interface PolicySummary {
  slo: number;
  noQueueSlo: number;
  replicaHours: number;
  overProvReplicaHours: number;
  scaleUps: number;
  scaleDowns: number;
  /** Refused / requests. */
  throttledShare: number;
  /** False throttles / requests. */
  falseThrottleShare: number;
  /** 1 − SLO of within-forecast users during another user's burst (NaN without such seconds). */
  nnDamage: number;
  requests: number;
  /** Foresight: share of decisions in which the forecast asked for more than the reactive HPA floor (NaN for other rows). */
  predictiveShare: number;
}

export function summarize(f: PolicyFigures): PolicySummary {
  const r = f.requests || 1;
  return {
    slo: f.served / r,
    noQueueSlo: f.noQueueServed / r,
    replicaHours: f.replicaSec / 3600,
    overProvReplicaHours: f.overProvSec / 3600,
    scaleUps: f.scaleUps,
    scaleDowns: f.scaleDowns,
    throttledShare: f.refused / r,
    falseThrottleShare: f.falseThrottles / r,
    nnDamage: f.nnRequests > 0 ? 1 - f.nnServed / f.nnRequests : NaN,
    requests: f.requests,
    predictiveShare: f.decisions > 0 ? f.predictiveAboveFloor / f.decisions : NaN,
  };
}

/** One point of a frontier: a setting's SLO, cost and scaling actions. */
export interface FrontierPoint {
  label: string;
  slo: number;
  replicaHours: number;
  scalingActions: number;
}

/**
 * Replica-hours (and scaling actions) a family needs at `slo`: the lower convex-free envelope of
 * its points (sorted by cost, SLO made non-decreasing by keeping only points that improve it),
 * linearly interpolated between the two points around `slo`. NaN when no point reaches `slo`;
 * the cheapest point's figures when even it is above `slo` (flagged `extrapolated`).
 */
export function atSlo(points: readonly FrontierPoint[], slo: number): { replicaHours: number; scalingActions: number; bracket: string; extrapolated: boolean } {
  const env = paretoEnvelope(points);
  if (env.length === 0 || env[env.length - 1].slo < slo) return { replicaHours: NaN, scalingActions: NaN, bracket: "not reached", extrapolated: false };
  if (env[0].slo >= slo) return { replicaHours: env[0].replicaHours, scalingActions: env[0].scalingActions, bracket: `≤ ${env[0].label}`, extrapolated: true };
  for (let i = 1; i < env.length; i++) {
    const a = env[i - 1];
    const b = env[i];
    if (b.slo >= slo) {
      const f = (slo - a.slo) / (b.slo - a.slo);
      return {
        replicaHours: a.replicaHours + f * (b.replicaHours - a.replicaHours),
        scalingActions: a.scalingActions + f * (b.scalingActions - a.scalingActions),
        bracket: `${a.label} … ${b.label}`,
        extrapolated: false,
      };
    }
  }
  return { replicaHours: NaN, scalingActions: NaN, bracket: "not reached", extrapolated: false };
}

/** Points sorted by cost whose SLO beats every cheaper point (the efficient frontier). */
export function paretoEnvelope(points: readonly FrontierPoint[]): FrontierPoint[] {
  const sorted = [...points].filter((p) => Number.isFinite(p.slo) && Number.isFinite(p.replicaHours)).sort((a, b) => a.replicaHours - b.replicaHours || b.slo - a.slo);
  const out: FrontierPoint[] = [];
  for (const p of sorted) if (out.length === 0 || p.slo > out[out.length - 1].slo) out.push(p);
  return out;
}

/** q-quantile (linear between order statistics) of a sample; sorts a copy. */
export function quantile(values: ArrayLike<number>, q: number): number {
  const s = Float64Array.from(values).sort();
  if (s.length === 0) return NaN;
  const pos = q * (s.length - 1);
  const lo = Math.floor(pos);
  const hi = Math.min(s.length - 1, lo + 1);
  return s[lo] + (pos - lo) * (s[hi] - s[lo]);
}
