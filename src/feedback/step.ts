// The step-change experiment of the feedback loop: real ServeGen clients, each given a 4× step at
// a seeded time in the scored days, replayed through the real WASM engine (the served ensemble);
// grants are made from the forecast upper bound one bucket ahead, with and without feedback.
// Measures, per variant: time until the grant covers the new rate, requests above the grant
// meanwhile (throttled if the pool is short), and what the variant costs elsewhere (grant over
// demand, and how often demand exceeds the grant outside the steps).
import type { ClientSeries } from "../forecast/trace.ts";
import { replayThroughEngine } from "../forecast/engine-replay.ts";
import type { EngineOptions } from "../engine/index.ts";
import { mulberry32 } from "../util/random.ts";
import { ExceedanceFeedback, type FeedbackOptions } from "./correction.ts";

/** Options of {@link stepExperiment}. */
export interface StepExperimentOptions {
  /** Multiplier applied from the step on. Default 4. */
  stepFactor?: number;
  /** First and last bucket a step may start at (the scored days). Default days 8..12 of 10-min buckets. */
  stepFromBucket?: number;
  stepToBucket?: number;
  /** Buckets after the step that are watched; a grant that never covers counts as this many. Default 36 (6 h). */
  watchBuckets?: number;
  /** Seed of the step times. Default 1. */
  seed?: number;
  /** Upper-bound quantile. Default 0.95. */
  quantile?: number;
  /** "wasm" or "ts" engine. Default "wasm". */
  engine?: "wasm" | "ts";
}

/** One variant: an engine configuration plus a feedback mode. */
export interface Variant {
  name: string;
  engineOptions: EngineOptions;
  /** Upper-bound quantile; default the experiment's. */
  quantile?: number;
  feedback: FeedbackOptions;
}

/** Per-variant figures. */
export interface VariantResult {
  name: string;
  /** Buckets until the grant first covers demand after the step: median and 90th percentile. */
  coverBucketsP50: number;
  coverBucketsP90: number;
  /** Requests above the grant in the watch window after the step, as a share of the demand in it. */
  throttledShare: number;
  /** Requests above the grant in the watch window after the step, summed over clients. */
  throttledRequests: number;
  /** Outside the 36 buckets after each step (scored days): sum of grants / sum of demand. */
  grantOverDemand: number;
  /** Outside the steps: share of buckets where demand exceeded the grant. */
  exceedanceRate: number;
}

export interface StepResult {
  clients: number;
  stepFactor: number;
  bucketSec: number;
  variants: VariantResult[];
}

/** Bucket and value percentile of a sorted array. */
function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i];
}

/** The variants measured: the forecaster's own adaptation off/on, then feedback on top. */
export function defaultVariants(): Variant[] {
  const adaptiveOff: EngineOptions = { alpha: 0.2, alphaMax: 0.2 };
  return [
    { name: "engine, adaptive smoothing off; no feedback", engineOptions: adaptiveOff, feedback: { mode: "none" } },
    { name: "engine as served (adaptive smoothing); no feedback", engineOptions: {}, feedback: { mode: "none" } },
    { name: "as served + bias feedback", engineOptions: {}, feedback: { mode: "bias" } },
    { name: "as served + hold feedback", engineOptions: {}, feedback: { mode: "hold" } },
    // Same cost through a wider bound instead of feedback: the fair comparison.
    { name: "as served, quantile 0.98; no feedback", engineOptions: {}, quantile: 0.98, feedback: { mode: "none" } },
    { name: "as served, quantile 0.99; no feedback", engineOptions: {}, quantile: 0.99, feedback: { mode: "none" } },
  ];
}

/** Runs the experiment on `series` (each gets its own step). */
export async function stepExperiment(series: ClientSeries[], o: StepExperimentOptions = {}, variants: Variant[] = defaultVariants()): Promise<StepResult> {
  const factor = o.stepFactor ?? 4;
  const from = o.stepFromBucket ?? 8 * 144;
  const to = o.stepToBucket ?? 12 * 144;
  const watch = o.watchBuckets ?? 36;
  const rand = mulberry32(o.seed ?? 1);
  const steps = series.map(() => from + Math.floor(rand() * (to - from)));
  const stepped: ClientSeries[] = series.map((s, i) => {
    const requests = Float64Array.from(s.requests, (v, t) => (t >= steps[i] ? v * factor : v));
    return { ...s, requests, totalRequests: requests.reduce((a, b) => a + b, 0) };
  });
  // One engine run per distinct engine configuration; feedback is applied on its output.
  const runs = new Map<string, Map<string, { uppers?: Float64Array[] }>>();
  const runKey = (v: Variant) => JSON.stringify([v.engineOptions, v.quantile ?? o.quantile ?? 0.95]);
  for (const v of variants) {
    const key = runKey(v);
    if (runs.has(key)) continue;
    const out = await replayThroughEngine(stepped, { engine: o.engine ?? "wasm", horizons: [1], quantile: v.quantile ?? o.quantile ?? 0.95, ensemble: true, engineOptions: v.engineOptions });
    runs.set(key, out["ensemble-engine"].byKey);
  }
  const results: VariantResult[] = [];
  for (const v of variants) {
    const byKey = runs.get(runKey(v))!;
    const fb = new ExceedanceFeedback(stepped.length, v.feedback);
    const covers: number[] = [];
    let throttled = 0;
    let demandInCatchUp = 0;
    let grantSum = 0;
    let demandSum = 0;
    let outside = 0;
    let outsideExceed = 0;
    stepped.forEach((s, i) => {
      const upper = byKey.get(s.key)!.uppers![0];
      const y = s.requests;
      // grant[t] is made at the close of bucket t-1 from upper[t] and what bucket t-1 showed.
      const grant = new Float64Array(y.length);
      for (let t = 1; t < y.length; t++) grant[t] = fb.update(i, y[t - 1], upper[t]);
      const st = steps[i];
      let k = 0;
      while (k < watch && st + k < y.length && grant[st + k] < y[st + k]) k++;
      covers.push(k);
      // What a short pool would refuse: demand above the grant over the whole watch window (a grant
      // can cover once and fall behind again).
      for (let t = st; t < Math.min(y.length, st + watch); t++) {
        if (y[t] > grant[t]) throttled += y[t] - grant[t];
        demandInCatchUp += y[t];
      }
      // Cost outside the step's watch window, over the scored days (7..13).
      for (let t = 7 * 144; t < y.length; t++) {
        if (t >= st && t < st + watch) continue;
        grantSum += grant[t];
        demandSum += y[t];
        outside++;
        if (y[t] > grant[t]) outsideExceed++;
      }
    });
    covers.sort((a, b) => a - b);
    results.push({
      name: v.name,
      coverBucketsP50: quantile(covers, 0.5),
      coverBucketsP90: quantile(covers, 0.9),
      throttledShare: demandInCatchUp > 0 ? throttled / demandInCatchUp : 0,
      throttledRequests: throttled,
      grantOverDemand: demandSum > 0 ? grantSum / demandSum : NaN,
      exceedanceRate: outside > 0 ? outsideExceed / outside : 0,
    });
  }
  return { clients: series.length, stepFactor: factor, bucketSec: 600, variants: results };
}
