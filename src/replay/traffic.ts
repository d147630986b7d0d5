/**
 * Traffic of the replay: the ServeGen per-client 10-minute windows of one model (= one pool), with
 * recording gaps refilled, turned into per-second arrivals per client drawn from each window's
 * recorded inter-arrival fit (scipy's parameterisation: `gamma(a=shape)` / `weibull_min(c=shape)`),
 * the scale rescaled so that exactly the window's `requests` fall inside it. Every (client, window)
 * draws from its own seeded stream, so any window can be regenerated alone and runs repeat exactly.
 */
import { createReadStream } from "node:fs";
import { createGunzip } from "node:zlib";
import { createInterface } from "node:readline";
import { mulberry32 } from "../util/random.ts";
import { ReplayDataError } from "./errors.ts";

/** Inter-arrival distribution codes. */
export const IAT_NONE = 0;
export const IAT_GAMMA = 1;
export const IAT_WEIBULL = 2;

/** One pool (model): its clients and their windows, dense `[client * windows + window]`. */
export interface PoolTrace {
  model: string;
  /** Client ids, index = client index in the arrays below. */
  clientIds: number[];
  /** Windows per client (2016 = 14 days for the language models). */
  windows: number;
  /** Window width, s. */
  windowSec: number;
  /** Requests per (client, window). */
  requests: Float64Array;
  /** IAT_GAMMA / IAT_WEIBULL / IAT_NONE per (client, window). */
  dist: Uint8Array;
  /** Shape parameter per (client, window). */
  shape: Float64Array;
  /** Whole-pool recording gap per window (1 = gap, refilled, not scored). */
  gap: Uint8Array;
  /** For each gap window, the window it was refilled from (-1 when not a gap). */
  refilledFrom: Int32Array;
}

/** Reads the windows of the given models from a ServeGen rate file (`model,client_id,t_start_s,requests,iat_cv,iat_dist,iat_shape,iat_scale`). */
export async function loadPoolTraces(path: string, models: readonly string[], windowSec = 600): Promise<PoolTrace[]> {
  const rows = new Map<string, Map<number, { t: number[]; r: number[]; d: number[]; s: number[] }>>();
  for (const m of models) rows.set(m, new Map());
  const raw = createReadStream(path);
  const input = path.endsWith(".gz") ? raw.pipe(createGunzip()) : raw;
  raw.on("error", (err) => input.emit("error", err));
  const rl = createInterface({ input, crlfDelay: Infinity });
  let col: Record<string, number> | null = null;
  let lineNo = 0;
  try {
    for await (const line of rl) {
      lineNo++;
      if (!line) continue;
      const f = line.split(",");
      if (!col) {
        col = Object.fromEntries(f.map((n, i) => [n.trim(), i]));
        for (const need of ["model", "client_id", "t_start_s", "requests", "iat_dist", "iat_shape"])
          if (col[need] === undefined) throw new ReplayDataError(`${path}: header lacks column "${need}" (has ${line})`);
        continue;
      }
      const byClient = rows.get(f[col.model]);
      if (!byClient) continue;
      const id = Number(f[col.client_id]);
      const t = Number(f[col.t_start_s]);
      const r = Number(f[col.requests]);
      if (!Number.isInteger(id) || !Number.isFinite(t) || t < 0 || !Number.isFinite(r) || r < 0)
        throw new ReplayDataError(`${path}:${lineNo}: bad row ${JSON.stringify(line)}`);
      const distName = f[col.iat_dist];
      const d = distName === "Gamma" ? IAT_GAMMA : distName === "Weibull" ? IAT_WEIBULL : IAT_NONE;
      const s = Number(f[col.iat_shape]);
      if (r > 0 && (d === IAT_NONE || !(s > 0)))
        throw new ReplayDataError(`${path}:${lineNo}: ${r} requests but no usable inter-arrival fit (iat_dist "${distName}", iat_shape "${f[col.iat_shape]}")`);
      let e = byClient.get(id);
      if (!e) byClient.set(id, (e = { t: [], r: [], d: [], s: [] }));
      e.t.push(t);
      e.r.push(r);
      e.d.push(d);
      e.s.push(s);
    }
  } catch (err) {
    if (err instanceof ReplayDataError) throw err;
    throw new ReplayDataError(`cannot read ${path}: ${(err as Error).message}`, { cause: err });
  }
  const out: PoolTrace[] = [];
  for (const model of models) {
    const byClient = rows.get(model)!;
    if (byClient.size === 0) throw new ReplayDataError(`${path}: no rows for model "${model}"`);
    let maxT = 0;
    for (const e of byClient.values()) for (const t of e.t) maxT = Math.max(maxT, t);
    const windows = Math.floor(maxT / windowSec) + 1;
    const clientIds = [...byClient.keys()].sort((a, b) => a - b);
    const n = clientIds.length * windows;
    const requests = new Float64Array(n);
    const dist = new Uint8Array(n);
    const shape = new Float64Array(n);
    clientIds.forEach((id, c) => {
      const e = byClient.get(id)!;
      for (let i = 0; i < e.t.length; i++) {
        const k = c * windows + Math.floor(e.t[i] / windowSec);
        requests[k] = e.r[i];
        dist[k] = e.d[i];
        shape[k] = e.s[i];
      }
    });
    const p: PoolTrace = { model, clientIds, windows, windowSec, requests, dist, shape, gap: new Uint8Array(windows), refilledFrom: new Int32Array(windows).fill(-1) };
    out.push(p);
  }
  return out;
}

/** Requests of the whole pool per window. */
export function poolWindowTotals(p: PoolTrace): Float64Array {
  const tot = new Float64Array(p.windows);
  for (let c = 0; c < p.clientIds.length; c++) for (let w = 0; w < p.windows; w++) tot[w] += p.requests[c * p.windows + w];
  return tot;
}

/**
 * Marks recording gaps (windows whose pool total is below `fraction` of the pool's median window
 * total) and refills each from the same time of day on the nearest earlier non-gap day (all clients,
 * fits included). A gap with no earlier non-gap day is refilled from the nearest later one. Returns
 * the number of gap windows.
 */
export function refillGaps(p: PoolTrace, fraction = 0.05): number {
  const tot = poolWindowTotals(p);
  const sorted = Float64Array.from(tot).sort();
  const median = sorted[Math.floor(sorted.length / 2)];
  const perDay = Math.round(86400 / p.windowSec);
  let gaps = 0;
  for (let w = 0; w < p.windows; w++) if (tot[w] < fraction * median) (p.gap[w] = 1), gaps++;
  for (let w = 0; w < p.windows; w++) {
    if (!p.gap[w]) continue;
    let src = -1;
    for (let s = w - perDay; s >= 0 && src < 0; s -= perDay) if (!p.gap[s]) src = s;
    for (let s = w + perDay; s < p.windows && src < 0; s += perDay) if (!p.gap[s]) src = s;
    if (src < 0) continue; // no day to refill from: left as recorded
    p.refilledFrom[w] = src;
    for (let c = 0; c < p.clientIds.length; c++) {
      const k = c * p.windows;
      p.requests[k + w] = p.requests[k + src];
      p.dist[k + w] = p.dist[k + src];
      p.shape[k + w] = p.shape[k + src];
    }
  }
  return gaps;
}

/** Seed of one (pool, client, window) stream: a 32-bit mix, so neighbouring streams are unrelated. */
export function streamSeed(seed: number, model: string, clientId: number, window: number): number {
  let h = (seed ^ 0x9e3779b9) >>> 0;
  const mix = (v: number) => {
    h = Math.imul(h ^ (v >>> 0), 0x85ebca6b) >>> 0;
    h = (h ^ (h >>> 13)) >>> 0;
    h = Math.imul(h, 0xc2b2ae35) >>> 0;
    h = (h ^ (h >>> 16)) >>> 0;
  };
  for (let i = 0; i < model.length; i++) mix(model.charCodeAt(i));
  mix(clientId);
  mix(window);
  mix(0x51ed270b);
  return h;
}

/**
 * Seeded uniform, normal, Gamma and Weibull source over the project's mulberry32
 * (src/util/random.ts).
 */
export class Rng {
  /** Uniform in [0, 1). */
  readonly uniform: () => number;
  private spare = NaN;
  constructor(seed: number) {
    this.uniform = mulberry32(seed);
  }
  /** Standard normal (Box–Muller, second value kept). */
  normal(): number {
    const sp = this.spare;
    if (sp === sp) {
      this.spare = NaN;
      return sp;
    }
    const r = Math.sqrt(-2 * Math.log(1 - this.uniform()));
    const th = 2 * Math.PI * this.uniform();
    this.spare = r * Math.sin(th);
    return r * Math.cos(th);
  }
  /** Gamma(shape a, scale 1) (Marsaglia–Tsang; a < 1 through the a + 1 boost). */
  gamma(a: number): number {
    let boost = 1;
    if (a < 1) {
      boost = Math.pow(1 - this.uniform(), 1 / a);
      a += 1;
    }
    const d = a - 1 / 3;
    const c = 1 / Math.sqrt(9 * d);
    for (;;) {
      let x: number;
      let v: number;
      do {
        x = this.normal();
        v = 1 + c * x;
      } while (v <= 0);
      v = v * v * v;
      const u = this.uniform();
      const x2 = x * x;
      if (u < 1 - 0.0331 * x2 * x2) return d * v * boost;
      if (Math.log(u) < 0.5 * x2 + d * (1 - v + Math.log(v))) return d * v * boost;
    }
  }
  /** Weibull(shape c, scale 1), by inversion. */
  weibull(c: number): number {
    return Math.pow(-Math.log(1 - this.uniform()), 1 / c);
  }
}

/** log Γ(x) for x > 0 (Lanczos, g = 7, n = 9; |rel err| < 1e-13). */
export function logGamma(x: number): number {
  const g = [0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
    12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7];
  if (x < 0.5) return Math.log(Math.PI / Math.abs(Math.sin(Math.PI * x))) - logGamma(1 - x);
  x -= 1;
  let a = g[0];
  const t = x + 7.5;
  for (let i = 1; i < 9; i++) a += g[i] / (x + i);
  return 0.5 * Math.log(2 * Math.PI) + (x + 0.5) * Math.log(t) - t + Math.log(a);
}

/**
 * Gamma shape whose sum of B gaps matches the mean and variance of B Weibull(c) gaps (the block
 * draw below): mean m = Γ(1+1/c), variance v = Γ(1+2/c) − m², so per-gap shape m²/v and scale v/m.
 */
export function weibullGammaMatch(c: number): { shape: number; scale: number } {
  const m = Math.exp(logGamma(1 + 1 / c));
  const v = Math.exp(logGamma(1 + 2 / c)) - m * m;
  return { shape: (m * m) / v, scale: v / m };
}

/** Default most inter-arrival draws per (client, window); larger windows draw blocks of gaps. */
export const DEFAULT_MAX_DRAWS_PER_WINDOW = 1200;

/**
 * Adds one client's arrivals in one window to `out[offset + second]` (`windowSec` entries): n + 1
 * inter-arrival gaps are drawn at scale 1, then the scale is set so that the (n+1)-th arrival falls
 * exactly at the window's end, which puts exactly n arrivals inside; each is floored to its second.
 *
 * Above `maxDraws` requests in the window, gaps are drawn in blocks of B = ceil(n / maxDraws): a
 * block's length is the sum of B gaps, drawn exactly for Gamma (Gamma(B·a)) and as the
 * moment-matched Gamma for Weibull, and the B arrivals of a block are spread evenly inside it
 * (blocks last 0.5 s on average at the default, so per-second counts keep the burst structure).
 */
export function addWindowArrivals(
  n: number, dist: number, shape: number, seed: number, windowSec: number, out: Float64Array, offset: number,
  scratch: Float64Array, maxDraws = DEFAULT_MAX_DRAWS_PER_WINDOW,
): void {
  if (n <= 0) return;
  const rng = new Rng(seed);
  const B = n > maxDraws ? Math.ceil(n / maxDraws) : 1;
  // Blocks of B arrivals; the last block is partial. Gap n+1 closes the window.
  const blocks = Math.ceil(n / B);
  const m = blocks + 1;
  const s = scratch.length >= m ? scratch : new Float64Array(m);
  let sum = 0;
  if (dist !== IAT_GAMMA && dist !== IAT_WEIBULL) throw new ReplayDataError(`window with ${n} requests has no inter-arrival fit`);
  if (B === 1) {
    if (dist === IAT_WEIBULL) for (let i = 0; i < m; i++) s[i] = sum += rng.weibull(shape);
    else for (let i = 0; i < m; i++) s[i] = sum += rng.gamma(shape);
  } else {
    let a = shape;
    let scale = 1;
    if (dist === IAT_WEIBULL) ({ shape: a, scale } = weibullGammaMatch(shape));
    for (let j = 0; j < blocks; j++) {
      const inBlock = j === blocks - 1 ? n - B * j : B;
      s[j] = sum += scale * rng.gamma(a * inBlock);
    }
    s[blocks] = sum += dist === IAT_WEIBULL ? rng.weibull(shape) : rng.gamma(shape);
  }
  if (!(sum > 0)) {
    // Every gap underflowed to 0 (extreme shapes): all arrivals at the window start.
    out[offset] += n;
    return;
  }
  const k = windowSec / sum;
  const last = windowSec - 1;
  if (B === 1) {
    for (let i = 0; i < n; i++) {
      const sec = Math.floor(s[i] * k);
      out[offset + (sec > last ? last : sec)]++;
    }
    return;
  }
  let prev = 0;
  for (let j = 0; j < blocks; j++) {
    const inBlock = j === blocks - 1 ? n - B * j : B;
    const end = s[j] * k;
    const step = (end - prev) / inBlock;
    for (let i = 1; i <= inBlock; i++) {
      const sec = Math.floor(prev + step * i);
      out[offset + (sec > last ? last : sec)]++;
    }
    prev = end;
  }
}

/**
 * Per-second arrivals of every client of the pool in window `w`: `out[c * windowSec + second]`
 * (zeroed first). `totals[second]` gets the pool's sum when given.
 */
export function windowArrivals(p: PoolTrace, w: number, seed: number, out: Float64Array, totals?: Float64Array, scratch?: Float64Array, maxDraws = DEFAULT_MAX_DRAWS_PER_WINDOW): void {
  const W = p.windowSec;
  out.fill(0);
  const sc = scratch ?? new Float64Array(1024);
  let big = sc;
  for (let c = 0; c < p.clientIds.length; c++) {
    const k = c * p.windows + w;
    const n = p.requests[k];
    if (n <= 0) continue;
    if (big.length < Math.min(n, maxDraws) + 2) big = new Float64Array(Math.min(n, maxDraws) + 2);
    addWindowArrivals(n, p.dist[k], p.shape[k], streamSeed(seed, p.model, p.clientIds[c], w), W, out, c * W, big, maxDraws);
  }
  if (totals) {
    totals.fill(0, 0, W);
    for (let c = 0; c < p.clientIds.length; c++) for (let i = 0; i < W; i++) totals[i] += out[c * W + i];
  }
}
