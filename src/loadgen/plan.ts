// A load plan: real ServeGen clients turned into a seeded schedule of HTTP requests, accelerated
// (trace seconds per wall second) and, when the trace is busier than this machine can drive,
// thinned uniformly (every client keeps its share of the mix).
import type { ClientSeries } from "../forecast/trace.ts";
import { mulberry32 } from "../util/random.ts";

/** Options of {@link buildLoadPlan}. */
export interface LoadPlanOptions {
  /** Trace seconds replayed per wall second. Default 60 (one 10-minute window in 10 s). */
  speedup?: number;
  /** Wall-clock length of the plan, ms. Default 150 000 (2.5 minutes). */
  durationMs?: number;
  /** Trace second the plan starts at (e.g. 7 days in). Default 0. */
  traceStartSec?: number;
  /** Highest mean request rate the plan may ask for, requests per wall second; the trace is thinned above it. Default 400. */
  maxRatePerSec?: number;
  /** Seed of the arrival draws: the same seed gives the same plan. Default 1. */
  seed?: number;
  /** Tokens per request when the token file has nothing for a client/window. Default 600. */
  defaultTokensPerRequest?: number;
  /** Length of one trace window, s (the series' resolution). Default 600. */
  bucketSec?: number;
}

/** The schedule: parallel arrays sorted by `atMs`. */
export interface LoadPlan {
  /** Client keys (`model:client_id`); `client[i]` indexes this. */
  clients: string[];
  /** Model (pool) of each client. */
  models: string[];
  /** Offset of request i from the start, ms. */
  atMs: Float64Array;
  /** Client index of request i. */
  client: Uint32Array;
  /** Tokens (input + output) of request i. */
  tokens: Uint32Array;
  /** Requests planned. */
  count: number;
  /** Fraction of the trace's requests kept (1 = none thinned). */
  thinning: number;
  /** Mean rate the unthinned trace would have asked for, requests per wall second. */
  traceRatePerSec: number;
  speedup: number;
  durationMs: number;
  traceStartSec: number;
}

/** A plan option out of range. */
export class LoadPlanError extends Error {
  override name = "LoadPlanError";
  constructor(message: string) {
    super(message);
  }
}

function positive(name: string, v: number): number {
  if (!Number.isFinite(v) || v <= 0) throw new LoadPlanError(`${name} must be a positive number, got ${v}`);
  return v;
}

/**
 * Draws Poisson arrivals per client: within each trace window the client's rate is constant
 * (requests / window length), scaled by `speedup` and the thinning factor.
 */
export function buildLoadPlan(series: ClientSeries[], opts: LoadPlanOptions = {}): LoadPlan {
  const speedup = positive("speedup", opts.speedup ?? 60);
  const durationMs = positive("durationMs", opts.durationMs ?? 150_000);
  const maxRatePerSec = positive("maxRatePerSec", opts.maxRatePerSec ?? 400);
  const bucketSec = positive("bucketSec", opts.bucketSec ?? 600);
  const traceStartSec = opts.traceStartSec ?? 0;
  if (!Number.isFinite(traceStartSec) || traceStartSec < 0) throw new LoadPlanError(`traceStartSec must be >= 0, got ${traceStartSec}`);
  const defaultTokens = opts.defaultTokensPerRequest ?? 600;
  if (series.length === 0) throw new LoadPlanError("no clients to replay");
  const traceSpanSec = (durationMs / 1000) * speedup;

  // Expected requests of the unthinned trace over the plan's span.
  let expected = 0;
  for (const s of series) expected += windowIntegral(s.requests, bucketSec, traceStartSec, traceStartSec + traceSpanSec);
  const traceRatePerSec = expected / (durationMs / 1000);
  const thinning = traceRatePerSec > maxRatePerSec ? maxRatePerSec / traceRatePerSec : 1;

  const rand = mulberry32(opts.seed ?? 1);
  const at: number[] = [];
  const cl: number[] = [];
  const tk: number[] = [];
  series.forEach((s, ci) => {
    let tTrace = traceStartSec;
    const end = traceStartSec + traceSpanSec;
    while (tTrace < end) {
      const w = Math.floor(tTrace / bucketSec);
      if (w >= s.requests.length) break;
      const windowEnd = Math.min((w + 1) * bucketSec, end);
      const ratePerTraceSec = (s.requests[w] / bucketSec) * thinning;
      if (ratePerTraceSec <= 0) {
        tTrace = windowEnd;
        continue;
      }
      // Memoryless arrivals: a draw that crosses the window end restarts at the next window's rate.
      const next = tTrace - Math.log(1 - rand()) / ratePerTraceSec;
      if (next >= windowEnd) {
        tTrace = windowEnd;
        continue;
      }
      tTrace = next;
      at.push(((tTrace - traceStartSec) / speedup) * 1000);
      cl.push(ci);
      const tpr = s.tokensPerRequest[w] > 0 ? s.tokensPerRequest[w] : defaultTokens;
      tk.push(Math.max(1, Math.round(tpr)));
    }
  });
  const order = Array.from(at.keys()).sort((a, b) => at[a] - at[b]);
  const plan: LoadPlan = {
    clients: series.map((s) => s.key),
    models: series.map((s) => s.model),
    atMs: Float64Array.from(order, (i) => at[i]),
    client: Uint32Array.from(order, (i) => cl[i]),
    tokens: Uint32Array.from(order, (i) => tk[i]),
    count: order.length,
    thinning,
    traceRatePerSec,
    speedup,
    durationMs,
    traceStartSec,
  };
  return plan;
}

/** Requests in [fromSec, toSec) of a per-window series, pro rata inside partial windows. */
export function windowIntegral(requests: Float64Array, bucketSec: number, fromSec: number, toSec: number): number {
  let sum = 0;
  for (let w = Math.floor(fromSec / bucketSec); w < requests.length && w * bucketSec < toSec; w++) {
    const a = Math.max(fromSec, w * bucketSec);
    const b = Math.min(toSec, (w + 1) * bucketSec);
    if (b > a) sum += (requests[w] * (b - a)) / bucketSec;
  }
  return sum;
}

/** The busiest `n` clients of the given models over [fromSec, toSec) (a fair, reproducible pick). */
export function busiestClients(series: ClientSeries[], n: number, fromSec: number, toSec: number, bucketSec = 600): ClientSeries[] {
  return series
    .map((s) => ({ s, v: windowIntegral(s.requests, bucketSec, fromSec, toSec) }))
    .filter((x) => x.v > 0)
    .sort((a, b) => b.v - a.v || a.s.key.localeCompare(b.s.key))
    .slice(0, n)
    .map((x) => x.s);
}
