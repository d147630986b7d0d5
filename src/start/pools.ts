// Per-pool view of a `foresight start` run: observed demand from the gateway, per-user forecasts
// from the processor, and the replicas Foresight decides against the reactive HPA floor alone.
// Rates are requests per wall second (the engine sees wall-clock event times); the HPA's windows
// run on trace time (wall time × speedup), so a 300 s stabilization window is 300 trace seconds.
import type { LoadPlan, LoadResult } from "../loadgen/index.ts";
import type { TelemetryPublisherStats } from "../telemetry/publisher.ts";
import type { DashboardPoint, PoolPoint, TopUser } from "../dashboard/index.ts";
import { HpaRecommender } from "../allocator/hpa.ts";

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
}

interface ClientState {
  pool: number;
  rate: number;
  upper: number;
  observed: number;
  prevUpper: number;
  lastTickMs: number;
}

interface Pool {
  name: string;
  clients: number[];
  capacityPerReplicaPerSec: number;
  hpa: HpaRecommender;
  decided: number;
  reactive: number;
  requestsWindow: number;
  requestsTotal: number;
  demandSum: number;
  forecastSum: number;
  samples: number;
  covered: number;
  scored: number;
  summary: PoolSummary;
}

/** Headroom over the pool's upper bound Foresight keeps (0.1 = +10 %). */
export const START_HEADROOM = 0.1;
/** Target utilization of both Foresight and the reactive floor. */
export const START_TARGET_UTILIZATION = 0.7;

export class PoolTracker {
  private readonly clients: ClientState[];
  private readonly pools: Pool[] = [];
  private readonly byUser = new Map<string, number>();
  private lastSampleMs = performance.now();
  private throttlesWindow = 0;
  private exceedWindow = 0;
  private lastPublished = 0;
  private tickWaiters: { afterMs: number; resolve: () => void }[] = [];
  private lastTickMs = 0;
  /** (user, tick) pairs above the previous upper bound. */
  exceedances = 0;
  /** Distinct forecast ticks seen. */
  ticks = 0;

  constructor(private readonly plan: LoadPlan) {
    const poolIndex = new Map<string, number>();
    this.clients = plan.clients.map((key, i) => {
      const model = plan.models[i];
      let p = poolIndex.get(model);
      if (p === undefined) {
        p = this.pools.length;
        poolIndex.set(model, p);
        // Size replicas so the pool's mean planned load needs ~10 of them at the target.
        let n = 0;
        for (let k = 0; k < plan.count; k++) if (plan.models[plan.client[k]] === model) n++;
        const meanRate = n / (plan.durationMs / 1000);
        const cap = Math.max(0.5, meanRate / (10 * START_TARGET_UTILIZATION));
        this.pools.push({
          name: model,
          clients: [],
          capacityPerReplicaPerSec: cap,
          hpa: new HpaRecommender({ capacityPerReplicaPerSec: cap, targetUtilization: START_TARGET_UTILIZATION, minReplicas: 1 }),
          decided: 1,
          reactive: 1,
          requestsWindow: 0,
          requestsTotal: 0,
          demandSum: 0,
          forecastSum: 0,
          samples: 0,
          covered: 0,
          scored: 0,
          summary: { pool: model, clients: 0, requests: 0, meanDemandPerSec: 0, meanForecastPerSec: 0, coverage: 1, replicaSecondsForesight: 0, replicaSecondsReactive: 0, maxReplicasForesight: 0, maxReplicasReactive: 0, shortSecondsForesight: 0, shortSecondsReactive: 0 },
        });
      }
      this.pools[p].clients.push(i);
      this.byUser.set(key, i);
      return { pool: p, rate: 0, upper: 0, observed: 0, prevUpper: -1, lastTickMs: 0 };
    });
  }

  /** A request answered by the gateway. */
  onRequest(user: string, _tokens: number, throttled: boolean): void {
    const ci = this.byUser.get(user);
    if (ci === undefined) return;
    const p = this.pools[this.clients[ci].pool];
    p.requestsWindow++;
    p.requestsTotal++;
    if (throttled) this.throttlesWindow++;
  }

  /** One user's forecast record of a tick. */
  onForecast(ci: number, ratePerSec: number, upperPerSec: number, observedPerSec: number, tickTimeMs: number): void {
    const c = this.clients[ci];
    const p = this.pools[c.pool];
    if (c.prevUpper >= 0 && tickTimeMs > c.lastTickMs) {
      p.scored++;
      if (observedPerSec <= c.prevUpper) p.covered++;
      else {
        this.exceedances++;
        this.exceedWindow++;
      }
    }
    c.rate = ratePerSec;
    c.upper = upperPerSec;
    c.observed = observedPerSec;
    c.prevUpper = upperPerSec;
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

  /** Closes one sampling period: decides replicas and returns the dashboard point. */
  point(pub: TelemetryPublisherStats, load: LoadResult, usersForecast: number): DashboardPoint {
    const now = performance.now();
    const dtSec = Math.max(1e-3, (now - this.lastSampleMs) / 1000);
    this.lastSampleMs = now;
    // The HPA's clock is trace time.
    const traceMs = now * this.plan.speedup;
    const poolPoints: PoolPoint[] = this.pools.map((p) => {
      const demand = p.requestsWindow / dtSec;
      p.requestsWindow = 0;
      let forecast = 0;
      let mean = 0;
      let varSum = 0;
      for (const ci of p.clients) {
        const c = this.clients[ci];
        forecast += c.rate;
        mean += c.rate;
        // upper = mean + z·sd per user: combine variances, not bounds (a sum of bounds over-provisions ~√N).
        varSum += (c.upper - c.rate) ** 2;
      }
      const upper = mean + Math.sqrt(varSum);
      p.hpa.observe(traceMs, demand);
      const reactive = p.hpa.recommend(traceMs).replicas;
      const predictive = Math.ceil((upper * (1 + START_HEADROOM)) / (p.capacityPerReplicaPerSec * START_TARGET_UTILIZATION));
      const decided = Math.max(reactive, predictive, 1);
      const s = p.summary;
      s.replicaSecondsForesight += p.decided * dtSec;
      s.replicaSecondsReactive += p.reactive * dtSec;
      if (demand > p.decided * p.capacityPerReplicaPerSec) s.shortSecondsForesight += dtSec;
      if (demand > p.reactive * p.capacityPerReplicaPerSec) s.shortSecondsReactive += dtSec;
      p.decided = decided;
      p.reactive = reactive;
      s.maxReplicasForesight = Math.max(s.maxReplicasForesight, decided);
      s.maxReplicasReactive = Math.max(s.maxReplicasReactive, reactive);
      p.demandSum += demand;
      p.forecastSum += forecast;
      p.samples++;
      return {
        pool: p.name,
        demandPerSec: demand,
        forecastPerSec: forecast,
        upperPerSec: upper,
        capacityNowPerSec: reactive * p.capacityPerReplicaPerSec,
        capacityDecidedPerSec: decided * p.capacityPerReplicaPerSec,
        replicasDecided: decided,
        replicasReactive: reactive,
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
