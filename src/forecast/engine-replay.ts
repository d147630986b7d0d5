/**
 * Replays per-client series through the real Engine (WASM or its TypeScript reference) as a
 * stream: at each bucket, the counts of every client are fed with `ingestCounts` (aggregates at
 * bucket close, no synthesised events), then `tick` closes the bucket and the engine's models run;
 * the harness then reads each user's forecasts. Produces the same prediction arrays the per-model
 * TS loop does, so both are scored by one code path.
 *
 * Holt-Winters is read from an engine running HW only (so its cost is HW's alone). With the
 * ensemble, one more engine runs per horizon (the engine's ensemble serves its configured
 * horizon); LSTM-lite is read from the first of those at every horizon.
 */
import { Engine, type CountsInput, type EngineOptions } from "../engine/index.ts";
import { userHash, type UserHash } from "../telemetry/hash.ts";
import type { ClientSeries } from "./trace.ts";

/** Precomputed forecasts of one model, per client key: preds[horizonIndex][target] (counts per bucket). */
export interface PrecomputedModel {
  /** uppers undefined: the model has no bound of its own (the harness tracks one from residuals). */
  byKey: Map<string, { preds: Float64Array[]; uppers?: Float64Array[] }>;
  /** Engine time per user update (ingest + tick share), ns. */
  nsPerUpdate: number;
}

/** Engine-backed model names the replay produces. */
export const ENGINE_MODEL_NAMES = ["hw-engine", "lstm-engine", "ensemble-engine"] as const;

/** Options of {@link replayThroughEngine}. */
export interface EngineReplayOptions {
  /** "wasm" (release build) or "ts" (the engine's TypeScript reference). */
  engine: "wasm" | "ts";
  horizons: number[];
  /** Bucket width, seconds. Default 600. */
  bucketSec?: number;
  /** Upper-bound quantile. */
  quantile: number;
  /** Run LSTM-lite and the ensemble (else Holt-Winters only). Default false. */
  ensemble?: boolean;
  /** LSTM-lite weights (LSTL blob) for the ensemble engines. */
  lstmWeights?: Uint8Array;
  /** Users trained online per closed bucket. Default: the engine's default. */
  trainUsersPerBucket?: number;
  /** Extra engine options (e.g. HW parameters). */
  engineOptions?: EngineOptions;
}

interface Out {
  preds: Float64Array[][];
  uppers: Float64Array[][];
}
const newOut = (series: ClientSeries[], H: number): Out => ({
  preds: series.map((s) => Array.from({ length: H }, () => new Float64Array(s.requests.length))),
  uppers: series.map((s) => Array.from({ length: H }, () => new Float64Array(s.requests.length))),
});
const toModel = (series: ClientSeries[], out: Out, ns: number, bounded = true): PrecomputedModel => ({
  byKey: new Map(series.map((s, i) => [s.key, { preds: out.preds[i], uppers: bounded ? out.uppers[i] : undefined }])),
  nsPerUpdate: ns,
});

export async function replayThroughEngine(series: ClientSeries[], o: EngineReplayOptions): Promise<Record<string, PrecomputedModel>> {
  const bucketSec = o.bucketSec ?? 600;
  const widthMs = bucketSec * 1000;
  const bucketsPerDay = Math.round(86400 / bucketSec);
  const H = o.horizons;
  const base: EngineOptions = {
    capacityUsers: Math.max(1024, series.length * 2),
    bucketWidthMs: widthMs,
    allowedLatenessMs: 0,
    seasonPoints: Math.min(144, bucketsPerDay),
    upperQuantile: o.quantile,
    ...o.engineOptions,
  };
  const make = (opts: EngineOptions) => (o.engine === "wasm" ? Engine.create(opts) : Promise.resolve(Engine.createReference(opts)));
  const engines: Engine[] = [await make({ ...base, horizonBuckets: 1 })];
  if (o.ensemble)
    for (const h of H)
      engines.push(await make({ ...base, horizonBuckets: h, forecastModel: "ensemble", lstmWeights: o.lstmWeights, lstmTrainUsersPerBucket: o.trainUsersPerBucket }));
  // LSTM-lite on its own ("lstm-engine") is scored for every client: the ensemble engines leave
  // sparse users out of the GRU (lstmMinCountPerBucket), so this engine runs it for all of them.
  const lstmAll = o.ensemble
    ? await make({ ...base, horizonBuckets: H[0], forecastModel: "ensemble", lstmWeights: o.lstmWeights, lstmTrainUsersPerBucket: o.trainUsersPerBucket, lstmMinCountPerBucket: 0 })
    : undefined;
  const hashes: UserHash[] = series.map((s) => userHash(s.key));
  const clientOf = new Map(hashes.map((h, i) => [`${h.lo}:${h.hi}`, i]));
  const T = Math.max(...series.map((s) => s.requests.length));
  const hw = newOut(series, H.length);
  const lstm = newOut(series, H.length);
  const ens = newOut(series, H.length);
  const batch: CountsInput[] = series.map((_, i) => ({ userHash: hashes[i], timeMs: 0, requests: 0 }));
  const ns = engines.map(() => 0);
  let updates = 0;
  for (let t = 0; t < T; t++) {
    // Every client sends its bucket's count (0 included, so each user exists from bucket 0).
    let n = 0;
    for (let i = 0; i < series.length; i++) {
      const y = series[i].requests;
      if (t >= y.length) continue;
      const r = batch[n++];
      r.userHash = hashes[i];
      r.timeMs = t * widthMs + 1;
      r.requests = y[t];
    }
    const recs = n === batch.length ? batch : batch.slice(0, n);
    updates += n;
    for (let k = 0; k < engines.length; k++) {
      const e = engines[k];
      const t0 = process.hrtime.bigint();
      e.ingestCounts(recs);
      e.tick((t + 1) * widthMs);
      ns[k] += Number(process.hrtime.bigint() - t0);
      if (k > 0) {
        // The tick's output records: the ensemble at this engine's horizon.
        const v = e.forecastView();
        const target = t + H[k - 1];
        for (let r = 0; r < v.count; r++) {
          const i = clientOf.get(`${v.u32[r * 8]}:${v.u32[r * 8 + 1]}`);
          if (i === undefined || target >= series[i].requests.length) continue;
          ens.preds[i][k - 1][target] = Math.max(0, v.f64[r * 4 + 1] * bucketSec);
          ens.uppers[i][k - 1][target] = Math.max(0, v.f64[r * 4 + 2] * bucketSec);
        }
      }
    }
    if (lstmAll) {
      lstmAll.ingestCounts(recs);
      lstmAll.tick((t + 1) * widthMs);
    }
    const e0 = engines[0];
    for (let i = 0; i < series.length; i++) {
      const len = series[i].requests.length;
      if (t >= len) continue;
      for (let k = 0; k < H.length; k++) {
        const target = t + H[k];
        if (target >= len) continue;
        // The engine speaks req/s; the harness counts requests per bucket.
        const f = e0.userForecast(hashes[i], H[k]);
        hw.preds[i][k][target] = f ? Math.max(0, f.ratePerSec * bucketSec) : 0;
        hw.uppers[i][k][target] = f ? Math.max(0, f.upperPerSec * bucketSec) : 0;
        if (lstmAll) lstm.preds[i][k][target] = lstmAll.userLstmForecast(hashes[i], H[k]) ?? 0;
      }
    }
  }
  const perUpdate = (k: number) => ns[k] / updates;
  const out: Record<string, PrecomputedModel> = { "hw-engine": toModel(series, hw, perUpdate(0)) };
  if (o.ensemble) {
    // LSTM-lite runs inside the ensemble engines; its own cost is measured by bench/accuracy.ts.
    out["lstm-engine"] = toModel(series, lstm, NaN, false);
    out["ensemble-engine"] = toModel(series, ens, ns.slice(1).reduce((a, b) => a + b, 0) / (engines.length - 1) / updates);
  }
  return out;
}
