// Prometheus series of the allocator: each pool's predicted demand per horizon (so an HPA through
// an external-metrics adapter, or a KEDA prometheus scaler, can scale on the prediction), the
// replicas decided and the reactive floor, and how actuation went.
import { Counter, Gauge, Registry } from "prom-client";
import { METRIC_PREFIX } from "../../obs/metrics.ts";

/** The allocator's metrics, registered in `registry`. */
export class AllocatorMetrics {
  readonly registry: Registry;
  /** Pool demand forecast (sum over its users), requests/s, per horizon (e.g. "60s"). */
  readonly demandForecast: Gauge<"pool" | "horizon">;
  /** Upper bound of the pool's demand forecast, requests/s, per horizon. */
  readonly demandUpper: Gauge<"pool" | "horizon">;
  /** Observed pool demand, requests/s. */
  readonly demandObserved: Gauge<"pool">;
  /** Replicas decided (max of predictive and reactive, within bounds). */
  readonly replicasDecided: Gauge<"pool">;
  /** Replicas the forecast alone requires. */
  readonly replicasPredictive: Gauge<"pool">;
  /** Replicas a reactive HPA would run on the observed rate (the floor). */
  readonly replicasReactiveFloor: Gauge<"pool">;
  /** Replicas the cluster runs as last read (scale subresource). */
  readonly replicasCurrent: Gauge<"pool">;
  /** Actuations by outcome (shadow, applied, unchanged, invalid, field-conflict, forbidden, gone, conflict, skipped). */
  readonly actuations: Counter<"pool" | "mode" | "outcome">;
  /** Actuation errors by class (ApiThrottledError, KubeUnreachableError, ...). */
  readonly actuationErrors: Counter<"pool" | "error">;
  /** 409 resourceVersion conflicts retried with a fresh read. */
  readonly conflictRetries: Counter<"pool">;
  /** Decisions replaced in the per-object queue by a newer one before they were sent. */
  readonly decisionsCoalesced: Counter;
  /** 1 while this process holds the allocator leader lease. */
  readonly leader: Gauge;
  /** Partitions whose demand partial is missing or stale (their last value is held), per pool. */
  readonly demandPartialsMissing: Gauge;
  /** 1 while a pool is not acted on (its workload is gone). */
  readonly poolStopped: Gauge<"pool">;

  constructor(registry = new Registry()) {
    this.registry = registry;
    const p = METRIC_PREFIX;
    const r = [registry];
    this.demandForecast = new Gauge({ name: `${p}pool_forecast_requests_per_second`, help: "Forecast pool demand (sum over its users), requests/s, per horizon.", labelNames: ["pool", "horizon"], registers: r });
    this.demandUpper = new Gauge({ name: `${p}pool_forecast_upper_requests_per_second`, help: "Upper bound of the forecast pool demand, requests/s, per horizon.", labelNames: ["pool", "horizon"], registers: r });
    this.demandObserved = new Gauge({ name: `${p}pool_observed_requests_per_second`, help: "Observed pool demand, requests/s.", labelNames: ["pool"], registers: r });
    this.replicasDecided = new Gauge({ name: `${p}pool_replicas_decided`, help: "Replicas decided for the pool: max(predictive, reactive floor) within bounds.", labelNames: ["pool"], registers: r });
    this.replicasPredictive = new Gauge({ name: `${p}pool_replicas_predictive`, help: "Replicas the forecast alone requires.", labelNames: ["pool"], registers: r });
    this.replicasReactiveFloor = new Gauge({ name: `${p}pool_replicas_reactive_floor`, help: "Replicas a reactive HPA would run on the observed rate.", labelNames: ["pool"], registers: r });
    this.replicasCurrent = new Gauge({ name: `${p}pool_replicas_current`, help: "Replicas the workload runs as last read from the API.", labelNames: ["pool"], registers: r });
    this.actuations = new Counter({ name: `${p}allocator_actuations_total`, help: "Decisions actuated, by mode and outcome.", labelNames: ["pool", "mode", "outcome"], registers: r });
    this.actuationErrors = new Counter({ name: `${p}allocator_actuation_errors_total`, help: "Kubernetes request failures, by error class.", labelNames: ["pool", "error"], registers: r });
    this.conflictRetries = new Counter({ name: `${p}allocator_conflict_retries_total`, help: "409 resourceVersion conflicts retried after a fresh read.", labelNames: ["pool"], registers: r });
    this.decisionsCoalesced = new Counter({ name: `${p}allocator_decisions_coalesced_total`, help: "Queued decisions replaced by a newer one before being sent.", registers: r });
    this.leader = new Gauge({ name: `${p}allocator_leader`, help: "1 while this process is the allocator leader.", registers: r });
    this.demandPartialsMissing = new Gauge({ name: `${p}allocator_demand_partials_missing`, help: "Partitions whose demand partial is missing or stale (last value held).", registers: r });
    this.poolStopped = new Gauge({ name: `${p}allocator_pool_stopped`, help: "1 while the pool is not acted on (its workload is gone).", labelNames: ["pool"], registers: r });
  }

  /**
   * Drops a pool's gauges (a pool removed by a live config change: its last values would
   * otherwise stay exported as if current). Its counters stay: they are history.
   */
  async forgetPool(pool: string): Promise<void> {
    const gauges: Gauge<string>[] = [this.demandForecast, this.demandUpper, this.demandObserved, this.replicasDecided, this.replicasPredictive, this.replicasReactiveFloor, this.replicasCurrent, this.poolStopped];
    for (const g of gauges) {
      for (const v of (await g.get()).values) if (v.labels.pool === pool) g.remove(v.labels as Record<string, string>);
    }
  }

  /** Exports one decision's numbers. */
  recordDecision(d: { pool: string; replicas: number; predictiveReplicas: number; reactiveReplicas: number }): void {
    this.replicasDecided.set({ pool: d.pool }, d.replicas);
    this.replicasPredictive.set({ pool: d.pool }, d.predictiveReplicas);
    this.replicasReactiveFloor.set({ pool: d.pool }, d.reactiveReplicas);
  }
}
