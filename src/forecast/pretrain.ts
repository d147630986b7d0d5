/** `foresight train`: pre-trains the shared LSTM-lite weights on the training split of a trace. */
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { ForecastOptionError } from "./errors.ts";
import { DEFAULT_MIN_REQUESTS, DEFAULT_TRAIN_WINDOWS } from "./evaluate.ts";
import { LstmWeights, trainLstm } from "./lstm.ts";
import { DEFAULT_SEASON_BUCKETS } from "./models.ts";
import { attachTokenStats, DEFAULT_TOKENS_PATH, DEFAULT_TRACE_PATH, loadRateTrace } from "./trace.ts";

/** Default pre-training epochs. */
export const DEFAULT_PRETRAIN_EPOCHS = 3;

/** Options of {@link runTrain}. */
export interface RunTrainOptions {
  /** Trace file. Default {@link DEFAULT_TRACE_PATH}. */
  data?: string;
  /** Token statistics file (optional feature). Default {@link DEFAULT_TOKENS_PATH}. */
  tokens?: string;
  /** Where to write the weights blob (required). */
  out: string;
  /** Buckets of each client used for training (the train split). Default {@link DEFAULT_TRAIN_WINDOWS}. */
  trainWindows?: number;
  /** Least total requests of a client. Default {@link DEFAULT_MIN_REQUESTS}. */
  minRequests?: number;
  /** Passes over the data. Default {@link DEFAULT_PRETRAIN_EPOCHS}. */
  epochs?: number;
  /** Adam learning rate (default: lstm.ts DEFAULT_LEARNING_RATE). */
  learningRate?: number;
  /** Seed. Default 1. */
  seed?: number;
  /** Progress lines (stderr in the CLI). */
  progress?: (line: string) => void;
}

export async function runTrain(o: RunTrainOptions): Promise<{ clients: number; loss: number; bytes: number; elapsedMs: number }> {
  const data = o.data ?? DEFAULT_TRACE_PATH;
  if (!existsSync(data)) throw new ForecastOptionError(`--data: ${data} does not exist`);
  const trainWindows = o.trainWindows ?? DEFAULT_TRAIN_WINDOWS;
  const minRequests = o.minRequests ?? DEFAULT_MIN_REQUESTS;
  const epochs = o.epochs ?? DEFAULT_PRETRAIN_EPOCHS;
  if (!Number.isInteger(epochs) || epochs < 1) throw new ForecastOptionError(`--epochs must be an integer >= 1, got ${epochs}`);
  const series = await loadRateTrace(data);
  const tokens = o.tokens ?? DEFAULT_TOKENS_PATH;
  if (existsSync(tokens)) await attachTokenStats(series, tokens);
  // Only the train split of each client, and only clients with a full split and enough requests.
  const seqs = series
    .filter((s) => s.requests.length >= trainWindows && s.requests.subarray(0, trainWindows).reduce((a, b) => a + b, 0) >= minRequests / 2 && s.totalRequests >= minRequests)
    .map((s) => ({
      counts: s.requests.subarray(0, trainWindows),
      iatCv: s.iatCv.subarray(0, trainWindows),
      tokensPerRequest: s.tokensPerRequest.subarray(0, trainWindows),
    }));
  if (seqs.length === 0) throw new ForecastOptionError(`no client of ${data} has ${trainWindows} buckets and ${minRequests} requests`);
  const t0 = performance.now();
  const w = LstmWeights.init(o.seed ?? 1);
  const loss = trainLstm(w, seqs, {
    epochs,
    learningRate: o.learningRate,
    seed: o.seed,
    seasonBuckets: DEFAULT_SEASON_BUCKETS,
    onEpoch: (e, l) => o.progress?.(`epoch ${e + 1}/${epochs}: mean |log error| ${l.toFixed(4)}, ${((performance.now() - t0) / 1000).toFixed(1)} s`),
  });
  const bytes = w.toBytes();
  mkdirSync(dirname(o.out), { recursive: true });
  writeFileSync(o.out, bytes);
  return { clients: seqs.length, loss, bytes: bytes.length, elapsedMs: performance.now() - t0 };
}
