// Feedback-loop step experiment (`npm run bench:feedback`): real ServeGen clients with a 4× step
// at a seeded time in days 8-12, replayed through the WASM engine (the served ensemble). Compares
// the forecaster's adaptive smoothing off/on, and exceedance feedback (bias, hold) on top.
// Prints a table and writes bench/results/feedback.json.
import { loadRateTrace, DEFAULT_TRACE_PATH } from "../src/forecast/trace.ts";
import { stepExperiment } from "../src/feedback/index.ts";
import { writeBenchJson } from "./env.ts";

const CLIENTS = Number(process.env.BENCH_CLIENTS ?? 60);
const started = performance.now();
const all = await loadRateTrace(process.env.FORESIGHT_TRACE ?? DEFAULT_TRACE_PATH, { filter: (k) => /^m-(large|mid|small):/.test(k) });
// The busiest language-model clients over days 0-6 (chosen on history only).
const series = all
  .filter((s) => s.requests.length >= 14 * 144)
  .map((s) => ({ s, v: s.requests.subarray(0, 7 * 144).reduce((a, b) => a + b, 0) }))
  .sort((a, b) => b.v - a.v || a.s.key.localeCompare(b.s.key))
  .slice(0, CLIENTS)
  .map((x) => x.s);
const r = await stepExperiment(series, { stepFactor: 4, seed: 1 });
const rows = [["variant", "cover p50", "cover p90", "above grant, 6 h after step", "grant / demand elsewhere", "exceedance elsewhere"]];
for (const v of r.variants) {
  rows.push([
    v.name,
    `${v.coverBucketsP50 * 10} min`,
    `${v.coverBucketsP90 * 10} min`,
    `${(v.throttledShare * 100).toFixed(1)} % (${Math.round(v.throttledRequests).toLocaleString("en-US")} req)`,
    v.grantOverDemand.toFixed(3),
    `${(v.exceedanceRate * 100).toFixed(2)} %`,
  ]);
}
const w = rows[0].map((_, c) => Math.max(...rows.map((x) => x[c].length)));
console.log(`feedback step experiment: ${r.clients} clients, ${r.stepFactor}× step, 10-minute buckets, WASM ensemble, grant = upper bound one bucket ahead`);
rows.forEach((x, i) => {
  console.log(x.map((v, c) => (c === 0 ? v.padEnd(w[c]) : v.padStart(w[c]))).join("  "));
  if (i === 0) console.log(w.map((n) => "-".repeat(n)).join("  "));
});
writeBenchJson("bench/results/feedback.json", "npm run bench:feedback", { ...r, wallSec: (performance.now() - started) / 1000 });
console.log(`\n${((performance.now() - started) / 1000).toFixed(0)} s; JSON in bench/results/feedback.json`);
