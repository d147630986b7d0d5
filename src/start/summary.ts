// The table `foresight start` prints at the end of a run (its rows are also the run report's tables).
import type { StartSummary } from "./system.ts";

function table(rows: string[][]): string {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  return rows.map((r, i) => r.map((v, c) => (c === 0 ? v.padEnd(widths[c]) : v.padStart(widths[c]))).join("  ") + (i === 0 ? "\n" + widths.map((w) => "-".repeat(w)).join("  ") : "")).join("\n");
}

const n = (v: number) => Math.round(v).toLocaleString("en-US");
const pct = (v: number) => `${(v * 100).toFixed(1)} %`;

/** Heading line of the run: how it ended and the traffic it replayed. */
export function runHeading(s: StartSummary): [string, string] {
  return [
    `foresight start — ${s.interrupted ? "interrupted" : "finished"} after ${(s.wallMs / 1000).toFixed(0)} s`,
    `trace ${s.plan.traceStart}, ${s.plan.clients} clients, ${s.plan.speedup}× speed, thinned to ${pct(s.plan.thinning)}`,
  ];
}

/** The load table, header row first. */
export function loadRows(s: StartSummary): string[][] {
  return [
    ["load", "value"],
    ["requests planned", n(s.plan.requests)],
    ["sent / served / throttled / errors", `${n(s.load.sent)} / ${n(s.load.ok)} / ${n(s.load.throttled)} / ${n(s.load.errors)}`],
    ["skipped (driver at its in-flight cap)", n(s.load.skipped)],
    ["gateway latency p50 / p99 (from planned send)", `${s.load.p50Ms.toFixed(2)} / ${s.load.p99Ms.toFixed(2)} ms`],
    ["telemetry recorded / acked / dropped", `${n(s.telemetry.recorded)} / ${n(s.telemetry.acked)} / ${n(s.telemetry.dropped)}`],
    ["forecast ticks / records / users forecast", `${n(s.forecasts.ticks)} / ${n(s.forecasts.records)} / ${n(s.forecasts.usersForecast)}`],
    ["upper-bound coverage (user-ticks within bound)", pct(s.forecasts.coverage)],
    ["exceedances (user-ticks above bound)", n(s.forecasts.exceedances)],
    ["allocator pool-state messages / restarts / data complete", `${n(s.allocator.stateMessages)} / ${n(s.allocator.restarts)} / ${s.allocator.dataComplete ? "yes" : "no"}`],
    [`actuation (${s.allocator.target})`, s.allocator.actuation || "-"],
    ["gateway checks / refused / on safe limits", `${n(s.throttle.checks)} / ${n(s.throttle.denied)} / ${n(s.throttle.safeLimitDecisions)}`],
    ["exceedance events published / grant ticks", `${n(s.throttle.exceedancesPublished)} / ${n(s.throttle.grantTicks)}`],
    [
      "processor restarts",
      s.processor.restarts === 0 ? "0" : `${s.processor.restarts} (resumed from checkpoint: ${s.processor.resumedFromCheckpoint ? `yes, at stream seq ${s.processor.restoredSeqs.join(", ")}` : "no"})`,
    ],
  ];
}

/** The per-pool table, header row first. */
export function poolRows(s: StartSummary): string[][] {
  return [
    ["pool", "clients", "requests", "demand/s", "forecast/s", "coverage", "replica-s Foresight", "replica-s HPA floor", "max Foresight", "max HPA floor", "short s Foresight", "short s HPA floor"],
    ...s.pools.map((p) => [
      p.pool,
      n(p.clients),
      n(p.requests),
      p.meanDemandPerSec.toFixed(1),
      p.meanForecastPerSec.toFixed(1),
      pct(p.coverage),
      n(p.replicaSecondsForesight),
      n(p.replicaSecondsReactive),
      n(p.maxReplicasForesight),
      n(p.maxReplicasReactive),
      n(p.shortSecondsForesight),
      n(p.shortSecondsReactive),
    ]),
  ];
}

/** What the columns of the pool table mean. */
export const POOL_TABLE_NOTE =
  "Foresight: replicas the allocator applied (max of predictive and the HPA floor); HPA floor: the reactive half alone (a modelled Kubernetes HPA v2).\nshort s: seconds in which observed demand exceeded that capacity.";

/** Formats the summary as plain text tables. */
export function formatSummary(s: StartSummary): string {
  const [title, trace] = runHeading(s);
  const out: string[] = [];
  out.push(`\n${title}`);
  out.push(`${trace}\n`);
  out.push(table(loadRows(s)));
  out.push("");
  out.push(table(poolRows(s)));
  out.push(`\n${POOL_TABLE_NOTE}`);
  if (s.report) out.push(`\nreport: ${s.report.htmlPath}\n        ${s.report.jsonPath}`);
  return out.join("\n") + "\n";
}
