/**
 * Text table of the evaluation harness. Every figure it shows is measured by this repository on
 * the same protocol: the baselines (naive, EWMA, seasonal naive) by the harness itself, R's
 * stlf / auto.arima by bench/r-reference.R (bench/results/r-reference.json). Figures quoted from
 * elsewhere without a run that reproduces them are not shown.
 */
import { existsSync, readFileSync } from "node:fs";
import { median, mean } from "./metrics.ts";
import type { EvalResult } from "./evaluate.ts";

/** What bench/r-reference.R writes: per method, per horizon, MASE per client key. */
export interface RReferenceFile {
  generated?: string;
  methods: Record<string, Record<string, Record<string, number>>>;
  elapsedSec?: number;
  note?: string;
}

/** Median and mean of the R reference MASE over the clients of `result` it covers. */
export function summariseRReference(ref: RReferenceFile, result: EvalResult) {
  const rows: { method: string; horizons: Record<string, { median: number; mean: number; clients: number }> }[] = [];
  for (const [method, byH] of Object.entries(ref.methods)) {
    const horizons: Record<string, { median: number; mean: number; clients: number }> = {};
    for (const h of result.protocol.horizons) {
      const per = byH[String(h)] ?? {};
      const v = result.clients.map((k) => per[k]).filter((x): x is number => typeof x === "number" && Number.isFinite(x));
      horizons[String(h)] = { median: median(v), mean: mean(v), clients: v.length };
    }
    rows.push({ method, horizons });
  }
  return rows;
}

/** Reads the R reference JSON, or explains why it is not there. */
export function loadRReference(path: string): { ref?: RReferenceFile; reason?: string } {
  if (!existsSync(path)) return { reason: `${path} not found (run: Rscript bench/r-reference.R; needs Debian r-cran-forecast)` };
  try {
    const ref = JSON.parse(readFileSync(path, "utf8")) as RReferenceFile;
    if (!ref || typeof ref.methods !== "object") return { reason: `${path} has no "methods" object` };
    return { ref };
  } catch (err) {
    return { reason: `${path} is not valid JSON: ${(err as Error).message}` };
  }
}

const f3 = (x: number) => (Number.isFinite(x) ? x.toFixed(3) : "n/a");
const pct = (x: number) => (Number.isFinite(x) ? (100 * x).toFixed(1) + "%" : "n/a");

/** The result as a fixed-width text table (one row per model, column groups per horizon). */
export function formatTable(result: EvalResult, rRef?: ReturnType<typeof summariseRReference>, rReason?: string): string {
  const H = result.protocol.horizons;
  const lines: string[] = [];
  lines.push(
    `${result.clients.length} clients, train ${result.protocol.trainWindows} buckets, horizons ${H.join("/")}, upper quantile ${result.protocol.quantile}; ${result.protocol.feed}`,
  );
  lines.push(`clients used: ${result.clients.join(" ")}`);
  if (result.skipped.length) lines.push(`clients skipped: ${result.skipped.length} (reasons in the JSON)`);
  lines.push("");
  lines.push("MASE median (mean) per horizon, and for each model: sMAPE median, GM rel. MAE vs naive, bucket share above upper, under-forecast volume share");
  const head = ["model".padEnd(34), ...H.map((h) => `h=${h} MASE med (mean)`.padEnd(24)), ...H.map((h) => `h=${h} sMAPE / relMAE / >upper / under`.padEnd(38)), "ns/update"];
  lines.push(head.join(" "));
  for (const m of result.models) {
    const cells = [m.model.padEnd(34)];
    for (const h of m.horizons) cells.push(`${f3(h.mase.median)} (${f3(h.mase.mean)})`.padEnd(24));
    for (const h of m.horizons) cells.push(`${h.smape.median.toFixed(1)} / ${f3(h.relMaeGeo)} / ${pct(h.exceedShare)} / ${pct(h.underShare)}`.padEnd(38));
    cells.push(Number.isFinite(m.nsPerUpdate) ? m.nsPerUpdate.toFixed(0) : "n/a");
    lines.push(cells.join(" "));
  }
  if (rRef) {
    for (const r of rRef) {
      const cells = [`R ${r.method} (offline, refit daily)`.padEnd(34)];
      for (const h of H) {
        const v = r.horizons[String(h)];
        cells.push(`${f3(v.median)} (${f3(v.mean)}) n=${v.clients}`.padEnd(24));
      }
      lines.push(cells.join(" "));
    }
  } else {
    lines.push(`R stlf / auto.arima+Fourier: not run (${rReason ?? "no reference file"})`);
  }
  return lines.join("\n");
}
