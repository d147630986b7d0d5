/**
 * Replays per-client series through the real Engine (WASM or its TypeScript reference) as a
 * stream: at each bucket, the counts of every client are fed with `ingestCounts` (aggregates at
 * bucket close, no synthesised events), then `tick` closes the bucket and the engine's models run;
 * the harness then reads each user's forecast at every horizon. Produces the same prediction
 * arrays the per-model TS loop does, so both are scored by one code path.
 */
import { Engine, type CountsInput, type EngineOptions } from "../engine/index.ts";
import { userHash, type UserHash } from "../telemetry/hash.ts";
import type { ClientSeries } from "./trace.ts";

/** Precomputed forecasts of one model, per client key: preds[horizonIndex][target] (counts per bucket). */
export interface PrecomputedModel {
  byKey: Map<string, { preds: Float64Array[]; uppers: Float64Array[] }>;
  /** Engine time per user update (ingest + tick share + reads), ns. */
  nsPerUpdate: number;
}

/** Options of {@link replayThroughEngine}. */
export interface EngineReplayOptions {
  /** "wasm" (release build) or "ts" (the engine's TypeScript reference). */
  engine: "wasm" | "ts";
  horizons: number[];
  /** Bucket width, seconds. Default 600. */
  bucketSec?: number;
  /** Upper-bound quantile. */
  quantile: number;
  /** Extra engine options (e.g. HW parameters). */
  engineOptions?: EngineOptions;
}

export async function replayThroughEngine(series: ClientSeries[], o: EngineReplayOptions): Promise<PrecomputedModel> {
  const bucketSec = o.bucketSec ?? 600;
  const widthMs = bucketSec * 1000;
  const bucketsPerDay = Math.round(86400 / bucketSec);
  const opts: EngineOptions = {
    capacityUsers: Math.max(1024, series.length * 2),
    bucketWidthMs: widthMs,
    allowedLatenessMs: 0,
    seasonPoints: Math.min(144, bucketsPerDay),
    horizonBuckets: 1,
    upperQuantile: o.quantile,
    ...o.engineOptions,
  };
  const engine = o.engine === "wasm" ? await Engine.create(opts) : Engine.createReference(opts);
  const hashes: UserHash[] = series.map((s) => userHash(s.key));
  const T = Math.max(...series.map((s) => s.requests.length));
  const preds = series.map((s) => o.horizons.map(() => new Float64Array(s.requests.length)));
  const uppers = series.map((s) => o.horizons.map(() => new Float64Array(s.requests.length)));
  const batch: CountsInput[] = series.map((_, i) => ({ userHash: hashes[i], timeMs: 0, requests: 0 }));
  let ns = 0;
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
    const t0 = process.hrtime.bigint();
    engine.ingestCounts(n === batch.length ? batch : batch.slice(0, n));
    engine.tick((t + 1) * widthMs);
    for (let i = 0; i < series.length; i++) {
      const len = series[i].requests.length;
      if (t >= len) continue;
      for (let k = 0; k < o.horizons.length; k++) {
        const target = t + o.horizons[k];
        if (target >= len) continue;
        const f = engine.userForecast(hashes[i], o.horizons[k]);
        // The engine speaks req/s; the harness counts requests per bucket.
        preds[i][k][target] = f ? Math.max(0, f.ratePerSec * bucketSec) : 0;
        uppers[i][k][target] = f ? Math.max(0, f.upperPerSec * bucketSec) : 0;
      }
    }
    ns += Number(process.hrtime.bigint() - t0);
    updates += n;
  }
  return { byKey: new Map(series.map((s, i) => [s.key, { preds: preds[i], uppers: uppers[i] }])), nsPerUpdate: ns / updates };
}
