// Per-pool view of a `foresight start` run: observed demand from the gateway, per-user forecasts
// from the processor, and the allocator's decisions (pool state): replicas Foresight decided
// against the reactive half of the same decision (the modelled HPA v2 alone). Rates are requests
// per wall second (the engine sees wall-clock event times).
import type { LoadPlan, LoadResult } from "../loadgen/index.ts";
import type { TelemetryPublisherStats } from "../telemetry/publisher.ts";
import type { DashboardPoint, PoolPoint, TopUser } from "../dashboard/index.ts";
import type { PoolsState } from "../allocator/kube/service.ts";

/** Pool summary for the final table. */
export interface PoolSummary {
  pool: string;
  clients: number;
  requests: number;
  meanDemandPerSec: number;
  meanForecastPerSec: number;
  /** Share of (user, tick) pairs whose observed rate stayed within the previous upper bound. */
  coverage: number;
  /** Replica-seconds (wall) Foresight decided / the reactive floor alone would run. */
  replicaSecondsForesight: number;
  replicaSecondsReactive: number;
  maxReplicasForesight: number;
  maxReplicasReactive: number;
  /** Seconds in which demand exceeded the capacity Foresight had decided / the reactive floor had. */
  shortSecondsForesight: number;
  shortSecondsReactive: number;
  /** Requests of the pool's clients the gateway refused (429). */
  throttled: number;
}

/**
 * One pool over a run, one value per sampling period (about a second) in the order of
 * {@link RunTimeline.timeSec}. Rates are requests per wall second.
 */
export interface PoolSeries {
  /** Observed rate: requests the gateway answered in the period / its length. */
  demandPerSec: number[];
  /** The allocator's forecast of the pool's demand (mean), or the sum of the per-user forecasts before the first pool state. */
  forecastPerSec: number[];
  /** The allocator's upper bound of the pool's demand (0 before the first pool state). */
  upperPerSec: number[];
  /** Replicas the workload ran as last read (what Foresight had applied). */
  replicasAllocated: number[];
  /** Replicas Foresight decided: max of the predictive and the reactive half. */
  replicasDecided: number[];
  /** The decision's predictive half (from the forecast upper bound). */
  replicasPredictive: number[];
  /** What a reactive HPA v2 alone would have chosen (the decision's reactive half). */
  replicasReactive: number[];
  /** Requests refused by the gateway in the period / its length. */
  throttledPerSec: number[];
  /** Share of the pool's scored (user, tick) pairs within the upper bound so far (1 before any is scored). */
  coverage: number[];
}

/** The per-pool time series of a run, for the run report. */
export interface RunTimeline {
  /** End of each sampling period, seconds since the load started. */
  timeSec: number[];
  /** Per pool, by pool name. */
  pools: Record<string, PoolSeries>;
}

const emptySeries = (): PoolSeries => ({ demandPerSec: [], forecastPerSec: [], upperPerSec: [], replicasAllocated: [], replicasDecided: [], replicasPredictive: [], replicasReactive: [], throttledPerSec: [], coverage: [] });

interface ClientState {
  pool: number;
  rate: number;
  upper: number;
  observed: number;
  /** Upper bounds of the last `horizon` ticks (ring): the bound for the bucket closing now was made `horizon` ticks ago. */
  uppers: Float64Array;
  ticks: number;
  lastTickMs: number;
}

interface Pool {
  name: string;
  clients: number[];
  capacityPerReplicaPerSec: number;
  allocated: number;
  decided: number;
  predictive: number;
  reactive: number;
  requestsWindow: number;
  throttledWindow: number;
  requestsTotal: number;
  demandSum: number;
  forecastSum: number;
  samples: number;
  covered: number;
  scored: number;
  summary: PoolSummary;
  series: PoolSeries;
}

/** Target utilization the per-replica capacity is sized for. */
export const START_TARGET_UTILIZATION = 0.7;

/**
 * Requests/s one replica of each pool (model) serves at full utilization, sized so the pool's mean
 * planned load needs `replicasAtMean` replicas at {@link START_TARGET_UTILIZATION}.
 */
export function poolCapacities(plan: LoadPlan, replicasAtMean: number): Map<string, number> {
  const counts = new Map<string, number>();
  for (let k = 0; k < plan.count; k++) {
    const m = plan.models[plan.client[k]];
    counts.set(m, (counts.get(m) ?? 0) + 1);
  }
  for (const m of plan.models) if (!counts.has(m)) counts.set(m, 0);
  const out = new Map<string, number>();
  for (const [m, n] of counts) out.set(m, Math.max(0.5, n / (plan.durationMs / 1000) / (replicasAtMean * START_TARGET_UTILIZATION)));
  return out;
}

export class PoolTracker {
  private readonly clients: ClientState[];
  private readonly pools: Pool[] = [];
  private readonly byUser = new Map<string, number>();
  private lastSampleMs = performance.now();
  private readonly startedMs = performance.now();
  private readonly timeSec: number[] = [];
  private throttlesWindow = 0;
  private exceedWindow = 0;
  private lastPublished = 0;
  private tickWaiters: { afterMs: number; resolve: () => void }[] = [];
  private lastTickMs = 0;
  /** (user, tick) pairs above the previous upper bound. */
  exceedances = 0;
  /** Distinct forecast ticks seen. */
  ticks = 0;

  /** `horizonBuckets`: the engine's horizon (one tick per bucket), so bounds are scored against the bucket they were made for. */
  constructor(private readonly plan: LoadPlan, capacity: Map<string, number>, horizonBuckets: number) {
    const poolIndex = new Map<string, number>();
    this.clients = plan.clients.map((key, i) => {
      const model = plan.models[i];
      let p = poolIndex.get(model);
      if (p === undefined) {
        p = this.pools.length;
        poolIndex.set(model, p);
        this.pools.push({
          name: model,
          clients: [],
          capacityPerReplicaPerSec: capacity.get(model) ?? 1,
          allocated: 0,
          decided: 0,
          predictive: 0,
          reactive: 0,
          requestsWindow: 0,
          throttledWindow: 0,
          requestsTotal: 0,
          demandSum: 0,
          forecastSum: 0,
          samples: 0,
          covered: 0,
          scored: 0,
          summary: { pool: model, clients: 0, requests: 0, meanDemandPerSec: 0, meanForecastPerSec: 0, coverage: 1, replicaSecondsForesight: 0, replicaSecondsReactive: 0, maxReplicasForesight: 0, maxReplicasReactive: 0, shortSecondsForesight: 0, shortSecondsReactive: 0, throttled: 0 },
          series: emptySeries(),
        });
      }
      this.pools[p].clients.push(i);
      this.byUser.set(key, i);
      return { pool: p, rate: 0, upper: 0, observed: 0, uppers: new Float64Array(horizonBuckets), ticks: 0, lastTickMs: 0 };
    });
  }

  /** A request answered by the gateway. */
  onRequest(user: string, _tokens: number, throttled: boolean): void {
    const ci = this.byUser.get(user);
    if (ci === undefined) return;
    const p = this.pools[this.clients[ci].pool];
    p.requestsWindow++;
    p.requestsTotal++;
    if (throttled) {
      this.throttlesWindow++;
      p.throttledWindow++;
      p.summary.throttled++;
    }
  }

  /** One user's forecast record of a tick. */
  onForecast(ci: number, ratePerSec: number, upperPerSec: number, observedPerSec: number, tickTimeMs: number): void {
    const c = this.clients[ci];
    const p = this.pools[c.pool];
    if (tickTimeMs <= c.lastTickMs) return;
    const slot = c.ticks % c.uppers.length;
    if (c.ticks >= c.uppers.length) {
      p.scored++;
      if (observedPerSec <= c.uppers[slot]) p.covered++;
      else {
        this.exceedances++;
        this.exceedWindow++;
      }
    }
    c.rate = ratePerSec;
    c.upper = upperPerSec;
    c.observed = observedPerSec;
    c.uppers[slot] = upperPerSec;
    c.ticks++;
    c.lastTickMs = tickTimeMs;
    if (tickTimeMs > this.lastTickMs) {
      this.lastTickMs = tickTimeMs;
      this.ticks++;
      this.tickWaiters = this.tickWaiters.filter((w) => {
        if (tickTimeMs > w.afterMs) w.resolve();
        return tickTimeMs <= w.afterMs;
      });
    }
  }

  /** Resolves at the first tick after `afterMs` (or after `timeoutMs`). */
  waitForTickAfter(afterMs: number, timeoutMs: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(resolve, timeoutMs);
      this.tickWaiters.push({ afterMs, resolve: () => (clearTimeout(t), resolve()) });
    });
  }

  /** Share of scored (user, tick) pairs within the previous upper bound, all pools. */
  coverage(): number {
    const s = this.pools.reduce((a, p) => a + p.scored, 0);
    return s === 0 ? 1 : this.pools.reduce((a, p) => a + p.covered, 0) / s;
  }

  /** Closes one sampling period and returns the dashboard point; `state` is the allocator's latest. */
  point(pub: TelemetryPublisherStats, load: LoadResult, usersForecast: number, state?: PoolsState): DashboardPoint {
    const now = performance.now();
    const dtSec = Math.max(1e-3, (now - this.lastSampleMs) / 1000);
    this.lastSampleMs = now;
    this.timeSec.push((now - this.startedMs) / 1000);
    const poolPoints: PoolPoint[] = this.pools.map((p) => {
      const demand = p.requestsWindow / dtSec;
      p.requestsWindow = 0;
      let forecast = 0;
      for (const ci of p.clients) forecast += this.clients[ci].rate;
      const st = state?.pools.find((x) => x.pool === p.name);
      // Replica-seconds and shortfalls of the period that just ended, under the replicas it had.
      const s = p.summary;
      s.replicaSecondsForesight += p.allocated * dtSec;
      s.replicaSecondsReactive += p.reactive * dtSec;
      if (demand > p.allocated * p.capacityPerReplicaPerSec) s.shortSecondsForesight += dtSec;
      if (demand > p.reactive * p.capacityPerReplicaPerSec) s.shortSecondsReactive += dtSec;
      if (st) {
        p.allocated = st.replicasAllocated;
        p.decided = st.replicasDecided;
        p.predictive = st.replicasPredictive;
        p.reactive = st.replicasReactive;
      }
      s.maxReplicasForesight = Math.max(s.maxReplicasForesight, p.allocated);
      s.maxReplicasReactive = Math.max(s.maxReplicasReactive, p.reactive);
      p.demandSum += demand;
      p.forecastSum += forecast;
      p.samples++;
      const forecastPerSec = st?.forecastRequestsPerSec ?? forecast;
      const upperPerSec = st?.upperRequestsPerSec ?? 0;
      const ser = p.series;
      ser.demandPerSec.push(demand);
      ser.forecastPerSec.push(forecastPerSec);
      ser.upperPerSec.push(upperPerSec);
      ser.replicasAllocated.push(p.allocated);
      ser.replicasDecided.push(p.decided);
      ser.replicasPredictive.push(p.predictive);
      ser.replicasReactive.push(p.reactive);
      ser.throttledPerSec.push(p.throttledWindow / dtSec);
      ser.coverage.push(p.scored ? p.covered / p.scored : 1);
      p.throttledWindow = 0;
      return {
        pool: p.name,
        demandPerSec: demand,
        forecastPerSec,
        upperPerSec,
        capacityNowPerSec: p.allocated * p.capacityPerReplicaPerSec,
        capacityDecidedPerSec: p.decided * p.capacityPerReplicaPerSec,
        replicasDecided: p.decided,
        replicasReactive: p.reactive,
      };
    });
    const top: TopUser[] = this.clients
      .map((c, i) => ({ user: this.plan.clients[i], forecastPerSec: c.rate, upperPerSec: c.upper, observedPerSec: c.observed }))
      .sort((a, b) => b.forecastPerSec - a.forecastPerSec)
      .slice(0, 10);
    const eventsPerSec = (pub.ackedEvents - this.lastPublished) / dtSec;
    this.lastPublished = pub.ackedEvents;
    const point: DashboardPoint = {
      tMs: Date.now(),
      pools: poolPoints,
      topUsers: top,
      throttlesPerSec: this.throttlesWindow / dtSec,
      exceedancesPerSec: this.exceedWindow / dtSec,
      health: {
        "events/s": Math.round(eventsPerSec),
        "users tracked": usersForecast,
        "forecast ticks": this.ticks,
        exceedances: this.exceedances,
        "telemetry acked": pub.ackedEvents,
        "telemetry dropped": pub.droppedEvents,
        "requests sent": load.sent,
        "requests throttled": load.throttled,
        nats: pub.connected ? "connected" : "disconnected",
      },
    };
    this.throttlesWindow = 0;
    this.exceedWindow = 0;
    return point;
  }

  /** The per-pool series sampled so far (one value per {@link point} call). */
  timeline(): RunTimeline {
    return { timeSec: this.timeSec, pools: Object.fromEntries(this.pools.map((p) => [p.name, p.series])) };
  }

  /** Per-pool totals for the summary table. */
  summaries(): PoolSummary[] {
    return this.pools.map((p) => ({
      ...p.summary,
      clients: p.clients.length,
      requests: p.requestsTotal,
      meanDemandPerSec: p.samples ? p.demandSum / p.samples : 0,
      meanForecastPerSec: p.samples ? p.forecastSum / p.samples : 0,
      coverage: p.scored ? p.covered / p.scored : 1,
    }));
  }
}
