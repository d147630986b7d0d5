// What the live dashboard shows, one point per status period. Shared by the hub (server) and the
// browser bundle, so it holds types only.

/** One pool at one instant. Rates are requests per second; replica counts are whole pods. */
export interface PoolPoint {
  pool: string;
  /** Requests per second observed over the last period. */
  demandPerSec: number;
  /** Forecast mean for the allocator's horizon, requests per second. */
  forecastPerSec: number;
  /** Forecast upper bound for that horizon, requests per second. */
  upperPerSec: number;
  /** Capacity the pool has now (ready replicas × per-replica rate), requests per second. */
  capacityNowPerSec: number;
  /** Capacity Foresight decided (replicas decided × per-replica rate), requests per second. */
  capacityDecidedPerSec: number;
  /** Replicas Foresight decided. */
  replicasDecided: number;
  /** Replicas a reactive HPA alone would run now. */
  replicasReactive: number;
}

/** A user among the top by forecast. */
export interface TopUser {
  user: string;
  forecastPerSec: number;
  upperPerSec: number;
  observedPerSec: number;
}

/** One dashboard point. */
export interface DashboardPoint {
  /** Wall time, ms since the epoch. */
  tMs: number;
  pools: PoolPoint[];
  topUsers: TopUser[];
  /** Requests refused by the gateway per second. */
  throttlesPerSec: number;
  /** Requests above their user's forecast upper bound per second. */
  exceedancesPerSec: number;
  /** Engine and pipeline health, shown as key/value pairs. */
  health: Record<string, number | string | boolean>;
}
