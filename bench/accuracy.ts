// `npm run bench:accuracy`: the full forecast-accuracy protocol (docs/forecasting.md) on the real
// ServeGen trace: baselines and the TypeScript models per client, the engine's Holt-Winters
// through the WASM engine as a stream, the R reference beside them if bench/r-reference.R has
// run. Prints the table and writes bench/results/accuracy.json.
//
// Usage: node --import tsx bench/accuracy.ts [--limit N] [--engine wasm|ts] [--weights file]
import { existsSync } from "node:fs";
import { runEval } from "../src/forecast/index.ts";

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
