// `npm run bench:accuracy`: the full forecast-accuracy protocol (docs/forecasting.md) on the real
// ServeGen trace: baselines and the TypeScript models per client, the engine's Holt-Winters
// through the WASM engine as a stream, the R reference beside them if bench/r-reference.R has
// run. Prints the table and writes bench/results/accuracy.json.
//
// Usage: node --import tsx bench/accuracy.ts [--limit N] [--engine wasm|ts] [--weights file]
import { existsSync } from "node:fs";
import { runEval } from "../src/forecast/index.ts";
import { benchEnv } from "./env.ts";

const arg = (name: string) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : undefined;
};
const engine = (arg("--engine") ?? (existsSync("build/engine.wasm") ? "wasm" : "ts")) as "wasm" | "ts";
const started = performance.now();
const { table } = await runEval({
  engine,
  limit: Number(arg("--limit") ?? 0),
  weights: arg("--weights"),
  json: arg("--json") ?? "bench/results/accuracy.json",
  progress: (line) => process.stderr.write(line + "\n"),
});
process.stdout.write(table + "\n");
process.stdout.write(`\nengine-backed model: hw-engine on the ${engine} engine; total ${((performance.now() - started) / 1000).toFixed(1)} s; JSON in bench/results/accuracy.json\n`);

// ---- Cost of the engine models per user update, WASM (tick time only; HW alone, + LSTM-lite and
// the ensemble with training off, + online training on a bounded sample).
import { Engine as EngineClass, type EngineOptions as EO } from "../src/engine/index.ts";
import { LstmWeights as LW } from "../src/forecast/index.ts";

async function tickCost(users: number, buckets: number, extra: EO): Promise<number> {
  const e = engine === "wasm" ? await EngineClass.create({ bucketWidthMs: 600_000, allowedLatenessMs: 0, seasonPoints: 144, horizonBuckets: 3, capacityUsers: users * 2, ...extra })
    : EngineClass.createReference({ bucketWidthMs: 600_000, allowedLatenessMs: 0, seasonPoints: 144, horizonBuckets: 3, capacityUsers: users * 2, ...extra });
  const recs = Array.from({ length: users }, (_, i) => ({ userHash: { lo: (i * 2654435761) >>> 0 || 1, hi: i + 1 }, timeMs: 0, requests: 0 }));
  let ns = 0;
  for (let t = 0; t < buckets; t++) {
    for (let i = 0; i < users; i++) {
      recs[i].timeMs = t * 600_000 + 1;
      recs[i].requests = (i * 7 + t * 13) % 50;
    }
    e.ingestCounts(recs);
    const t0 = process.hrtime.bigint();
    e.tick((t + 1) * 600_000);
    if (t >= 10) ns += Number(process.hrtime.bigint() - t0);
  }
  return ns / ((buckets - 10) * users);
}
const USERS = 20_000, BUCKETS = 60;
const w = LW.init(1).toBytes();
const hwNs = await tickCost(USERS, BUCKETS, {});
const ens0 = await tickCost(USERS, BUCKETS, { forecastModel: "ensemble", lstmWeights: w, lstmTrainUsersPerBucket: 0 });
const ens64 = await tickCost(USERS, BUCKETS, { forecastModel: "ensemble", lstmWeights: w, lstmTrainUsersPerBucket: 64 });
const ensAll = await tickCost(USERS, BUCKETS, { forecastModel: "ensemble", lstmWeights: w, lstmTrainUsersPerBucket: USERS });
const cost = {
  engine,
  users: USERS,
  tickNsPerUser: { hwOnly: hwNs, ensembleNoTraining: ens0, ensembleTrain64PerBucket: ens64, ensembleTrainEveryUser: ensAll },
  lstmAndEnsembleInferenceNsPerUser: ens0 - hwNs,
  trainingNsPerStep: ensAll - ens0,
};
process.stdout.write(
  `\nEngine cost per user per closed bucket (${engine}, ${USERS} users, tick only): HW ${hwNs.toFixed(0)} ns; ` +
    `HW + LSTM-lite + ensemble ${ens0.toFixed(0)} ns (LSTM-lite + ensemble ${cost.lstmAndEnsembleInferenceNsPerUser.toFixed(0)} ns); ` +
    `with training of 64 users/bucket ${ens64.toFixed(0)} ns, of every user ${ensAll.toFixed(0)} ns (≈ ${cost.trainingNsPerStep.toFixed(0)} ns per training step)\n`,
);
const { readFileSync: rf, writeFileSync: wf } = await import("node:fs");
const outPath = arg("--json") ?? "bench/results/accuracy.json";
const j = JSON.parse(rf(outPath, "utf8"));
const argv = process.argv.slice(2).join(" ");
wf(outPath, JSON.stringify({ env: benchEnv(`npm run bench:accuracy${argv ? ` -- ${argv}` : ""}`), ...j, engineCost: cost }, null, 1));
