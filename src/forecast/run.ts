/**
 * One entry point for `foresight eval` and `npm run bench:accuracy`: load the trace, evaluate,
 * format the table beside the R reference, write JSON.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { ForecastOptionError } from "./errors.ts";
import { ENGINE_MODEL_NAMES, replayThroughEngine, type PrecomputedModel } from "./engine-replay.ts";
import type { EngineOptions } from "../engine/index.ts";
import { evaluate, MODEL_NAMES, pretrainOnTrainSplit, resolveOptions, selectClients, type EvalOptions, type EvalResult, type ModelName } from "./evaluate.ts";
import { LstmWeights } from "./lstm.ts";
import { formatTable, loadRReference, summariseRReference } from "./report.ts";
import { attachTokenStats, DEFAULT_TOKENS_PATH, DEFAULT_TRACE_PATH, loadRateTrace } from "./trace.ts";

/** Default path of the R reference output read beside our figures. */
export const DEFAULT_R_REFERENCE_PATH = "bench/results/r-reference.json";
/** Least time between two progress lines on stderr, ms. */
export const PROGRESS_INTERVAL_MS = 2000;

/** Options of {@link runEval} (the CLI flags, parsed). */
export interface RunEvalOptions extends Omit<EvalOptions, "onProgress" | "lstmWeights" | "models"> {
  /** Trace file (gzipped or plain CSV). Default {@link DEFAULT_TRACE_PATH}. */
  data?: string;
  /** Token statistics file for the tokens-per-request feature; skipped if absent. Default {@link DEFAULT_TOKENS_PATH}. */
  tokens?: string;
  /** `model:client_id` keys, or null for all. Default null. */
  clients?: string[] | null;
  /** Model names. Default all. */
  models?: string[];
  /** LSTM-lite weights file from `foresight train`; default: pre-train on the train split. */
  weights?: string;
  /** JSON output path (none = no file). */
  json?: string;
  /** R reference JSON. Default {@link DEFAULT_R_REFERENCE_PATH}. */
  rReference?: string;
  /** Implementation running the engine-backed model "hw-engine" ("wasm" or the engine's "ts" reference); none = TS models only. */
  engine?: "wasm" | "ts";
  /** Progress lines go here (stderr in the CLI); undefined = silent. */
  progress?: (line: string) => void;
  /** Extra options of the engines behind the engine-backed models (e.g. lstmMinCountPerBucket). Default none. */
  engineOptions?: EngineOptions;
}

export function parseModels(list: string[] | undefined, extra: string[] = []): ModelName[] | undefined {
  if (!list) return undefined;
  const known = new Set<string>([...MODEL_NAMES, ...extra]);
  for (const m of list) if (!known.has(m)) throw new ForecastOptionError(`--models: unknown model "${m}" (known: ${[...known].join(", ")})`);
  return list as ModelName[];
}

export async function runEval(o: RunEvalOptions): Promise<{ result: EvalResult; table: string; json: unknown }> {
  const data = o.data ?? DEFAULT_TRACE_PATH;
  if (!existsSync(data)) throw new ForecastOptionError(`--data: ${data} does not exist`);
  const ro = resolveOptions({ ...o, models: undefined }); // validate before the slow load
  const wanted = o.clients ? new Set(o.clients) : null;
  const series = await loadRateTrace(data, { filter: wanted ? (k) => wanted.has(k) : undefined });
  if (wanted) {
    const missing = [...wanted].filter((k) => !series.some((s) => s.key === k));
    if (missing.length) throw new ForecastOptionError(`--clients: not in ${data}: ${missing.join(", ")}`);
  }
  const tokens = o.tokens ?? DEFAULT_TOKENS_PATH;
  if (existsSync(tokens)) await attachTokenStats(series, tokens);
  let lstmWeights = o.weights ? LstmWeights.fromBytes(new Uint8Array(readFileSync(o.weights))) : undefined;
  let lastProgress = 0;
  const precomputed: Record<string, PrecomputedModel> = {};
  const engineNames: string[] = [...ENGINE_MODEL_NAMES];
  const models = parseModels(o.models, [...Object.keys(o.factories ?? {}), ...engineNames]) ?? (o.engine ? [...MODEL_NAMES, ...engineNames] : [...MODEL_NAMES]);
  const onPretrain: NonNullable<EvalOptions["onPretrain"]> = (p) =>
    o.progress?.(`LSTM-lite pre-trained on the train split of ${p.sequences} clients: ${p.epochs} epochs, ${(p.elapsedMs / 1000).toFixed(1)} s, loss ${p.loss.toFixed(4)}`);
  const wantEngine = models.filter((m) => engineNames.includes(m));
  if (wantEngine.length) {
    if (!o.engine) throw new ForecastOptionError(`models ${wantEngine.join(", ")} need --engine wasm|ts`);
    const { used } = selectClients(series, ro);
    const ensemble = wantEngine.some((m) => m !== "hw-engine");
    // The engine's LSTM-lite starts from the same pre-trained weights as the TS one.
    if (ensemble && !lstmWeights) lstmWeights = pretrainOnTrainSplit(used, ro, onPretrain);
    const t0 = performance.now();
    const got = await replayThroughEngine(used, { engine: o.engine, horizons: ro.horizons, quantile: ro.quantile, ensemble, lstmWeights: lstmWeights?.toBytes(), engineOptions: o.engineOptions });
    for (const m of wantEngine) precomputed[m] = got[m];
    o.progress?.(`engine (${o.engine}) replay of ${used.length} clients: ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  }
  const result = evaluate(series, {
    ...o,
    precomputed,
    models: models as ModelName[],
    lstmWeights,
    onPretrain,
    onProgress: (p) => {
      const now = performance.now();
      if (!o.progress || (now - lastProgress < PROGRESS_INTERVAL_MS && p.clientsDone < p.clients)) return;
      lastProgress = now;
      const perSec = p.buckets / (p.elapsedMs / 1000);
      const left = ((p.clients - p.clientsDone) * p.elapsedMs) / p.clientsDone / 1000;
      o.progress(`clients ${p.clientsDone}/${p.clients}, ${Math.round(perSec).toLocaleString("en")} bucket updates/s, ~${left.toFixed(0)} s left`);
    },
  });
  const rPath = o.rReference ?? DEFAULT_R_REFERENCE_PATH;
  const { ref, reason } = loadRReference(rPath);
  const rRows = ref ? summariseRReference(ref, result) : undefined;
  const table = formatTable(result, rRows, reason);
  const json = { ...result, rReference: rRows ?? { notRun: reason }, data };
  if (o.json) {
    mkdirSync(dirname(o.json), { recursive: true });
    writeFileSync(o.json, JSON.stringify(json, null, 1));
  }
  return { result, table, json };
}
