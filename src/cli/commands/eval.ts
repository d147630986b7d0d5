// `foresight eval`: replays a per-client rate trace through the forecasters bucket by bucket and
// prints accuracy per model and horizon (see docs/forecasting.md).
import { InvalidArgumentError, type Command } from "commander";
import { DEFAULT_HORIZONS, DEFAULT_MIN_REQUESTS, DEFAULT_TRAIN_WINDOWS, DEFAULT_QUANTILE, DEFAULT_TRACE_PATH, MODEL_NAMES, parseClientList, runEval } from "../../forecast/index.ts";

function intList(v: string): number[] {
  const out = v.split(",").map((s) => Number(s.trim()));
  if (out.some((n) => !Number.isInteger(n) || n < 1)) throw new InvalidArgumentError(`"${v}" is not a comma list of integers >= 1`);
  return out;
}
function posInt(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`"${v}" is not an integer >= 0`);
  return n;
}
function quantile(v: string): number {
  const n = Number(v);
  if (!(n > 0 && n < 1)) throw new InvalidArgumentError(`"${v}" is not a quantile in (0, 1)`);
  return n;
}

export function register(program: Command): void {
  program
    .command("eval")
    .description("Evaluate forecast accuracy on a per-client rate trace (counts fed at bucket close, rolling origin)")
    .option("--data <csv.gz>", "trace with columns model,client_id,t_start_s,requests[,iat_cv,...]", DEFAULT_TRACE_PATH)
    .option("--clients <list|all>", "model:client_id comma list, or all", "all")
    .option("--min-requests <n>", "least total requests of a client", posInt, DEFAULT_MIN_REQUESTS)
    .option("--horizons <list>", "forecast horizons in buckets", intList, DEFAULT_HORIZONS)
    .option("--train-windows <n>", "buckets in the training split", posInt, DEFAULT_TRAIN_WINDOWS)
    .option("--quantile <q>", "upper-bound quantile", quantile, DEFAULT_QUANTILE)
    .option("--models <list>", `models (${MODEL_NAMES.join(",")})`, (v: string) => v.split(",").map((s) => s.trim()))
    .option("--engine <wasm|ts>", "implementation of the engine-backed models (hw-engine, lstm-engine, ensemble-engine): the WASM build or the engine's TypeScript reference", "wasm")
    .option("--weights <file>", "LSTM-lite weights from `foresight train` (default: pre-train on the train split)")
    .option("--json <file>", "write the full result as JSON")
    .option("--limit <n>", "first N eligible clients only (0 = all)", posInt, 0)
    .option("--quiet", "no progress lines on stderr")
    .action(async (opts) => {
      if (opts.engine !== "wasm" && opts.engine !== "ts") throw new InvalidArgumentError(`--engine must be wasm or ts, not "${opts.engine}"`);
      const { table } = await runEval({
        data: opts.data,
        clients: parseClientList(opts.clients),
        minRequests: opts.minRequests,
        horizons: opts.horizons,
        trainWindows: opts.trainWindows,
        quantile: opts.quantile,
        models: opts.models,
        weights: opts.weights,
        json: opts.json,
        limit: opts.limit,
        engine: opts.engine,
        progress: opts.quiet ? undefined : (line) => process.stderr.write(line + "\n"),
      });
      process.stdout.write(table + "\n");
    });
}
