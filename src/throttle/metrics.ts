// Prometheus series of the grant service, read from its counters at scrape time (the service keeps
// plain numbers on its hot path; nothing is counted twice). A host that replaces its GrantService
// (a new allocator leader starts a fresh one) hands in a source that adds up every instance's
// counters, so the series stay monotonic.
import { Counter, Gauge, type Registry } from "prom-client";
import { METRIC_PREFIX } from "../obs/metrics.ts";
import type { GrantServiceStats } from "./service.ts";

/** The counters of {@link GrantServiceStats} (all but the gauges `users` and `lastTickPublishedMs`). */
export type GrantCounterName = Exclude<keyof GrantServiceStats, "users" | "lastTickPublishedMs">;

/** Counter series: name (after the prefix), help, the stats field it reads. */
const COUNTERS: readonly [name: string, help: string, field: GrantCounterName][] = [
  ["grants_ticks_total", "Partition forecast ticks turned into grants and published.", "ticks"],
  ["grants_forecast_messages_total", "Forecast messages received.", "forecastMessages"],
  ["grants_bad_forecast_messages_total", "Forecast messages that did not decode or named an unknown partition (skipped).", "badForecastMessages"],
  ["grants_incomplete_ticks_total", "Forecast ticks dropped because a chunk never arrived.", "incompleteTicks"],
  ["grants_delta_records_total", "Grant records published in deltas (new, moved or removed grants).", "deltaRecords"],
  ["grants_snapshot_records_total", "Grant records published in full snapshots.", "snapshotRecords"],
  ["grants_removals_total", "Grants removed (users absent from a tick).", "removals"],
  ["grants_messages_published_total", "Messages published on the grants stream (deltas, snapshots, lease renewals, pool state).", "messagesPublished"],
  ["grants_published_bytes_total", "Payload bytes published on the grants stream.", "bytesPublished"],
  ["grants_publish_errors_total", "Publications that failed (the next tick or renewal retries).", "publishErrors"],
  ["grants_publications_skipped_total", "Publications skipped because this process was not the leader.", "publicationsSkipped"],
  ["grants_pool_publications_total", "Pool state messages published.", "poolPublications"],
  ["grants_demand_reports_total", "Gateway demand reports received.", "demandReports"],
  ["grants_exceedances_total", "Users seen above the bound their last grant was made from (exceedance feedback).", "exceedances"],
];

/** Registers the grant service's series in `registry`, read from `source()` at every scrape. */
export class GrantServiceMetrics {
  /** The counter series by stats field (tests read them). */
  readonly counters = new Map<GrantCounterName, Counter>();
  /** Users holding a live grant now. */
  readonly users: Gauge;
  /** Time of the last tick published, seconds since the epoch (0 = none yet): alert when it stops moving. */
  readonly lastTickPublished: Gauge;

  /** `source` returns the cumulative stats, or undefined when no grant service ran yet. */
  constructor(registry: Registry, source: () => GrantServiceStats | undefined) {
    const p = METRIC_PREFIX;
    const exported = new Map<GrantCounterName, number>();
    for (const [name, help, field] of COUNTERS) {
      const c = new Counter({
        name: `${p}${name}`, help, registers: [registry],
        collect() {
          // Counters only go up: add what the source counted since the last scrape.
          const v = source()?.[field] ?? 0;
          const d = v - (exported.get(field) ?? 0);
          if (d > 0) {
            this.inc(d);
            exported.set(field, v);
          }
        },
      });
      this.counters.set(field, c);
    }
    this.users = new Gauge({
      name: `${p}grants_users`, help: "Users holding a live grant now (0 on a standby).", registers: [registry],
      collect() {
        this.set(source()?.users ?? 0);
      },
    });
    this.lastTickPublished = new Gauge({
      name: `${p}grants_last_tick_published_timestamp_seconds`, help: "Time of the last grant tick published, seconds since the epoch (0 = none).", registers: [registry],
      collect() {
        this.set((source()?.lastTickPublishedMs ?? 0) / 1000);
      },
    });
  }
}

/** Adds `b`'s counters to `a` (in place; gauges are taken from `b`). */
export function addGrantStats(a: GrantServiceStats, b: GrantServiceStats): GrantServiceStats {
  for (const [, , field] of COUNTERS) a[field] += b[field];
  a.users = b.users;
  a.lastTickPublishedMs = Math.max(a.lastTickPublishedMs, b.lastTickPublishedMs);
  return a;
}
