// `npm run bench:accuracy-tiers`: how the engine's sparse tier (engine.lstm.minCountPerBucket,
// EngineOptions.lstmMinCountPerBucket) trades accuracy for tick time. For each threshold, the
// accuracy protocol of `npm run bench:accuracy` (docs/forecasting.md) runs the WASM engine's
// ensemble on the real ServeGen trace: median MASE and the upper bound's exceedance share at
// h = 1/3/6, and the engine's time per user update on that trace. Threshold 0 is the engine
// before tiers (every user runs the GRU). Also times one tick over users whose buckets hold a
// fixed count below and at/above each threshold (synthetic, 100k users), so the saving per
// sparse user is measured apart from the trace's mix. Prints a table and writes
// bench/results/accuracy-tiers.json.
import { runEval } from "../src/forecast/index.ts";
import { Engine } from "../src/engine/index.ts";
import { DEFAULT_CONFIG } from "../src/config/schema.ts";
import { engineOptionsFromConfig } from "../src/processor/engine-adapter.ts";
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

/** CPU ns per user of ticks over `users` users that each send `count` requests per bucket (served config, 1-minute buckets). */
async function tickNsPerUser(minCount: number, count: number, users = 100_000, buckets = 12): Promise<number> {
  const e = await Engine.create({ ...engineOptionsFromConfig(DEFAULT_CONFIG.engine), capacityUsers: users * 2, lstmMinCountPerBucket: minCount });
  const W = DEFAULT_CONFIG.engine.bucketWidthMs;
  const recs = Array.from({ length: users }, (_, i) => ({ userHash: { lo: (Math.imul(i + 1, 2654435761) >>> 0) || 1, hi: i + 1 }, timeMs: 0, requests: count }));
  let cpuUs = 0;
  for (let t = 0; t < buckets; t++) {
    for (const r of recs) r.timeMs = t * W + 1;
    e.ingestCounts(recs);
    const c0 = process.cpuUsage();
    const n = e.tick((t + 1) * W + DEFAULT_CONFIG.engine.allowedLatenessMs);
    const d = process.cpuUsage(c0);
    if (n !== users) throw new Error(`accuracy-tiers: tick wrote ${n} records, wanted ${users}`);
    // The first buckets warm the level up from its start; time the steady ones.
    if (t >= buckets / 2) cpuUs += d.user + d.system;
  }
  return (cpuUs * 1000) / ((buckets - buckets / 2) * users);
}

const rows: Row[] = [];
for (const m of THRESHOLDS) {
  process.stderr.write(`threshold ${m}: accuracy protocol…\n`);
  rows.push(await accuracyAt(m));
}
const base = rows.find((r) => r.minCountPerBucket === 0);
// Tick cost per user of a dense user (count 8 per bucket: above every threshold here) and a
// sparse one (count 0.. a level below the threshold), with the tier on and off.
const tick = {
  users: 100_000,
  denseCount: 8,
  sparseCount: 0,
  allDenseNsPerUser: await tickNsPerUser(0, 8),
  sparseUsersTierOffNsPerUser: await tickNsPerUser(0, 0),
  sparseUsersTierOnNsPerUser: await tickNsPerUser(1, 0),
  denseUsersTierOnNsPerUser: await tickNsPerUser(1, 8),
};

const fmt = (v: number, d = 4) => v.toFixed(d);
const lines = [
  "min count/bucket | MASE h=1 | MASE h=3 | MASE h=6 | Δ vs 0 (h=1/3/6)      | exceed h=1/3/6      | ns/update (trace)",
  "---|---|---|---|---|---|---",
  ...rows.map((r) => {
    const d = base ? HORIZONS.map((h) => (r.medianMase[h] - base.medianMase[h] >= 0 ? "+" : "") + fmt(r.medianMase[h] - base.medianMase[h])).join(" / ") : "n/a";
    return `${r.minCountPerBucket} | ${HORIZONS.map((h) => fmt(r.medianMase[h])).join(" | ")} | ${d} | ${HORIZONS.map((h) => (100 * r.exceedShare[h]).toFixed(1) + " %").join(" / ")} | ${r.nsPerUpdate.toFixed(0)}`;
  }),
  "",
  `tick CPU per user (100k users, served config): every user dense ${tick.allDenseNsPerUser.toFixed(0)} ns; sparse users with the tier off ${tick.sparseUsersTierOffNsPerUser.toFixed(0)} ns, on ${tick.sparseUsersTierOnNsPerUser.toFixed(0)} ns; dense users with the tier on ${tick.denseUsersTierOnNsPerUser.toFixed(0)} ns`,
];
process.stdout.write(lines.join("\n") + "\n");
writeBenchJson("bench/results/accuracy-tiers.json", "npm run bench:accuracy-tiers", { horizons: HORIZONS, rows, tick });
process.stdout.write("JSON in bench/results/accuracy-tiers.json\n");
