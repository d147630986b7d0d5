// The table `foresight start` prints at the end of a run.
import type { StartSummary } from "./system.ts";

function table(rows: string[][]): string {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  return rows.map((r, i) => r.map((v, c) => (c === 0 ? v.padEnd(widths[c]) : v.padStart(widths[c]))).join("  ") + (i === 0 ? "\n" + widths.map((w) => "-".repeat(w)).join("  ") : "")).join("\n");
}

const n = (v: number) => Math.round(v).toLocaleString("en-US");
const pct = (v: number) => `${(v * 100).toFixed(1)} %`;

/** Formats the summary as plain text tables. */
export function formatSummary(s: StartSummary): string {
  const out: string[] = [];
  out.push(`\nforesight start — ${s.interrupted ? "interrupted" : "finished"} after ${(s.wallMs / 1000).toFixed(0)} s`);
  out.push(`trace ${s.plan.traceStart}, ${s.plan.clients} clients, ${s.plan.speedup}× speed, thinned to ${pct(s.plan.thinning)}\n`);
  out.push(
    table([
      ["load", "value"],
      ["requests planned", n(s.plan.requests)],
      ["sent / served / throttled / errors", `${n(s.load.sent)} / ${n(s.load.ok)} / ${n(s.load.throttled)} / ${n(s.load.errors)}`],
      ["skipped (driver at its in-flight cap)", n(s.load.skipped)],
      ["gateway latency p50 / p99 (from planned send)", `${s.load.p50Ms.toFixed(2)} / ${s.load.p99Ms.toFixed(2)} ms`],
      ["telemetry recorded / acked / dropped", `${n(s.telemetry.recorded)} / ${n(s.telemetry.acked)} / ${n(s.telemetry.dropped)}`],
      ["forecast ticks / records / users forecast", `${n(s.forecasts.ticks)} / ${n(s.forecasts.records)} / ${n(s.forecasts.usersForecast)}`],
      ["upper-bound coverage (user-ticks within bound)", pct(s.forecasts.coverage)],
      ["exceedances (user-ticks above bound)", n(s.forecasts.exceedances)],
      [
        "processor restarts",
        s.processor.restarts === 0 ? "0" : `${s.processor.restarts} (resumed from checkpoint: ${s.processor.resumedFromCheckpoint ? `yes, at stream seq ${s.processor.restoredSeqs.join(", ")}` : "no"})`,
      ],
    ]),
  );
  out.push("");
  out.push(
    table([
      ["pool", "clients", "requests", "demand/s", "forecast/s", "coverage", "replica-s Foresight", "replica-s reactive", "max Foresight", "max reactive", "short s Foresight", "short s reactive"],
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
    ]),
  );
  out.push("\nshort s: seconds in which observed demand exceeded the capacity decided (Foresight) or the reactive HPA floor alone.");
  return out.join("\n") + "\n";
}
