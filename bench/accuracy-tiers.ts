// `npm run bench:accuracy-tiers`: how the engine's sparse tier (engine.lstm.minCountPerBucket,
// EngineOptions.lstmMinCountPerBucket) trades accuracy for tick time. For each threshold, the
// accuracy protocol of `npm run bench:accuracy` (docs/forecasting.md) runs the WASM engine's
// ensemble on the real ServeGen trace: median MASE and the upper bound's exceedance share at
// h = 1/3/6, and the engine's time per user update on that trace. Threshold 0 is the engine
// before tiers (every user runs the GRU). The tick time per user of each tier at 100k and 1M users
// is measured by `npm run bench:engine` (its dense and sparse populations). Prints a table and
// writes bench/results/accuracy-tiers.json.
import { runEval } from "../src/forecast/index.ts";
import { writeBenchJson } from "./env.ts";

const THRESHOLDS = (process.env.BENCH_TIER_THRESHOLDS ?? "0,0.5,1,2,4").split(",").map(Number);
const HORIZONS = [1, 3, 6];

interface Row {
  minCountPerBucket: number;
  medianMase: Record<string, number>;
  exceedShare: Record<string, number>;
  nsPerUpdate: number;
}

async function accuracyAt(minCount: number): Promise<Row> {
  const { json } = await runEval({
    engine: "wasm",
    models: ["ensemble-engine"],
    engineOptions: { lstmMinCountPerBucket: minCount },
    progress: (line) => process.stderr.write(`  ${line}\n`),
  });
  const models = (json as { models: { model: string; nsPerUpdate: number; horizons: { horizon: number; mase: { median: number }; exceedShare: number }[] }[] }).models;
  const m = models.find((x) => x.model === "ensemble-engine");
  if (!m) throw new Error("accuracy-tiers: no ensemble-engine row in the evaluation");
  const medianMase: Record<string, number> = {};
  const exceedShare: Record<string, number> = {};
  for (const h of m.horizons) {
    medianMase[h.horizon] = h.mase.median;
    exceedShare[h.horizon] = h.exceedShare;
  }
  for (const h of HORIZONS) if (!(h in medianMase)) throw new Error(`accuracy-tiers: no horizon ${h} in the evaluation`);
  return { minCountPerBucket: minCount, medianMase, exceedShare, nsPerUpdate: m.nsPerUpdate };
}

const rows: Row[] = [];
for (const m of THRESHOLDS) {
  process.stderr.write(`threshold ${m}: accuracy protocol…\n`);
  rows.push(await accuracyAt(m));
}
const base = rows.find((r) => r.minCountPerBucket === 0);
// Tick cost per user of a dense user (count 8 per bucket: above every threshold here) and a
// sparse one (count 0.. a level below the threshold), with the tier on and off.
const fmt = (v: number, d = 4) => v.toFixed(d);
const lines = [
  "min count/bucket | MASE h=1 | MASE h=3 | MASE h=6 | Δ vs 0 (h=1/3/6)      | exceed h=1/3/6      | ns/update (trace)",
  "---|---|---|---|---|---|---",
  ...rows.map((r) => {
    const d = base ? HORIZONS.map((h) => (r.medianMase[h] - base.medianMase[h] >= 0 ? "+" : "") + fmt(r.medianMase[h] - base.medianMase[h])).join(" / ") : "n/a";
    return `${r.minCountPerBucket} | ${HORIZONS.map((h) => fmt(r.medianMase[h])).join(" | ")} | ${d} | ${HORIZONS.map((h) => (100 * r.exceedShare[h]).toFixed(1) + " %").join(" / ")} | ${r.nsPerUpdate.toFixed(0)}`;
  }),
];
process.stdout.write(lines.join("\n") + "\n");
writeBenchJson("bench/results/accuracy-tiers.json", "npm run bench:accuracy-tiers", { horizons: HORIZONS, rows });
process.stdout.write("JSON in bench/results/accuracy-tiers.json\n");
