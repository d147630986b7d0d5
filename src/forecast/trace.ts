/**
 * Loads ServeGen-style per-client rate traces (`model,client_id,t_start_s,requests,iat_cv,...`,
 * gzipped or plain) into one dense series per client, streaming line by line so the 5.6 MB file
 * never sits in memory as text.
 */
import { createReadStream } from "node:fs";
import { createGunzip } from "node:zlib";
import { createInterface } from "node:readline";
import { ForecastOptionError, TraceFormatError } from "./errors.ts";

/** Width of one trace window in seconds (the ServeGen files use 600 s). */
export const DEFAULT_BUCKET_SEC = 600;
/** Default location of the real trace, relative to the repository root. */
export const DEFAULT_TRACE_PATH = "../shared/data/servegen_client_rate_10min.csv.gz";
/** Default location of the per-client token statistics (tokens per request feature). */
export const DEFAULT_TOKENS_PATH = "../shared/data/servegen_client_tokens_6h.csv.gz";

/** One client's dense series: index i is the window starting at `i * bucketSec`. */
export interface ClientSeries {
  /** `model:client_id`, the key used by `--clients`. */
  key: string;
  model: string;
  clientId: number;
  /** Requests per window. */
  requests: Float64Array;
  /** Inter-arrival coefficient of variation per window (burstiness; 0 when the window is empty). */
  iatCv: Float64Array;
  /** Mean tokens (input + output) per request, per window (filled from the 6 h file; 0 = unknown). */
  tokensPerRequest: Float64Array;
  /** Sum of `requests`. */
  totalRequests: number;
}

async function* lines(path: string): AsyncGenerator<string> {
  const raw = createReadStream(path);
  const input = path.endsWith(".gz") ? raw.pipe(createGunzip()) : raw;
  raw.on("error", (err) => input.emit("error", err));
  const rl = createInterface({ input, crlfDelay: Infinity });
  try {
    for await (const line of rl) yield line;
  } catch (err) {
    throw new TraceFormatError(`cannot read ${path}: ${(err as Error).message}`, { cause: err });
  }
}

const REQUIRED = ["model", "client_id", "t_start_s", "requests"] as const;

/**
 * Reads a per-window rate trace into dense series (missing windows count as 0 requests).
 * `filter` (optional) decides by key before a client's rows are kept, so slices load fast.
 */
export async function loadRateTrace(
  path: string,
  opts: { bucketSec?: number; filter?: (key: string) => boolean } = {},
): Promise<ClientSeries[]> {
  const bucketSec = opts.bucketSec ?? DEFAULT_BUCKET_SEC;
  const rows = new Map<string, { model: string; id: number; t: number[]; r: number[]; cv: number[] }>();
  let header: string[] | null = null;
  let col: Record<string, number> = {};
  let lineNo = 0;
  for await (const line of lines(path)) {
    lineNo++;
    if (line.length === 0) continue;
    const f = line.split(",");
    if (!header) {
      header = f;
      col = Object.fromEntries(f.map((n, i) => [n.trim(), i]));
      for (const name of REQUIRED)
        if (col[name] === undefined) throw new TraceFormatError(`${path}: header lacks column "${name}" (has ${f.join(",")})`);
      continue;
    }
    const model = f[col.model];
    const id = Number(f[col.client_id]);
    const t = Number(f[col.t_start_s]);
    const r = Number(f[col.requests]);
    if (!model || !Number.isInteger(id) || !Number.isFinite(t) || t < 0 || !Number.isFinite(r) || r < 0)
      throw new TraceFormatError(`${path}:${lineNo}: bad row ${JSON.stringify(line)} (need model, integer client_id, t_start_s >= 0, requests >= 0)`);
    const key = `${model}:${id}`;
    if (opts.filter && !opts.filter(key)) continue;
    let e = rows.get(key);
    if (!e) rows.set(key, (e = { model, id, t: [], r: [], cv: [] }));
    e.t.push(t);
    e.r.push(r);
    const cv = col.iat_cv === undefined ? NaN : Number(f[col.iat_cv]);
    e.cv.push(Number.isFinite(cv) && f[col.iat_cv] !== "" ? cv : 0);
  }
  if (!header) throw new TraceFormatError(`${path}: empty file`);
  const out: ClientSeries[] = [];
  for (const [key, e] of rows) {
    let maxIdx = 0;
    for (const t of e.t) maxIdx = Math.max(maxIdx, Math.floor(t / bucketSec));
    const n = maxIdx + 1;
    const requests = new Float64Array(n);
    const iatCv = new Float64Array(n);
    let total = 0;
    for (let i = 0; i < e.t.length; i++) {
      const k = Math.floor(e.t[i] / bucketSec);
      requests[k] += e.r[i];
      iatCv[k] = e.cv[i];
      total += e.r[i];
    }
    out.push({ key, model: e.model, clientId: e.id, requests, iatCv, tokensPerRequest: new Float64Array(n), totalRequests: total });
  }
  return out;
}

/**
 * Fills `tokensPerRequest` from a `model,client_id,t_start_s,field,mean,...` token file: the sum of
 * the mean input and output tokens of the coarse window that contains each bucket. Clients absent
 * from the file keep 0 (unknown). A missing file is not an error: the feature is optional.
 */
export async function attachTokenStats(series: ClientSeries[], path: string, bucketSec = DEFAULT_BUCKET_SEC): Promise<number> {
  const byKey = new Map(series.map((s) => [s.key, s]));
  const perWindow = new Map<string, Map<number, number>>();
  let header: Record<string, number> | null = null;
  let lineNo = 0;
  for await (const line of lines(path)) {
    lineNo++;
    if (!line) continue;
    const f = line.split(",");
    if (!header) {
      header = Object.fromEntries(f.map((n, i) => [n.trim(), i]));
      if (header.field === undefined || header.mean === undefined) throw new TraceFormatError(`${path}: header lacks field/mean`);
      continue;
    }
    const key = `${f[header.model]}:${f[header.client_id]}`;
    if (!byKey.has(key)) continue;
    const field = f[header.field];
    if (field !== "input_tokens" && field !== "output_tokens") continue;
    const t = Number(f[header.t_start_s]);
    const mean = Number(f[header.mean]);
    if (!Number.isFinite(t) || !Number.isFinite(mean)) throw new TraceFormatError(`${path}:${lineNo}: bad row`);
    let m = perWindow.get(key);
    if (!m) perWindow.set(key, (m = new Map()));
    m.set(t, (m.get(t) ?? 0) + mean);
  }
  let filled = 0;
  for (const [key, m] of perWindow) {
    const s = byKey.get(key)!;
    const starts = [...m.keys()].sort((a, b) => a - b);
    for (let i = 0; i < s.requests.length; i++) {
      const tSec = i * bucketSec;
      let v = 0;
      for (const st of starts) if (st <= tSec) v = m.get(st)!;
      s.tokensPerRequest[i] = v;
    }
    filled++;
  }
  return filled;
}

/**
 * Parses a `--clients` value: "all" (null) or a comma list of `model:client_id` keys.
 */
export function parseClientList(value: string | undefined): string[] | null {
  if (!value || value === "all") return null;
  const keys = value.split(",").map((s) => s.trim()).filter(Boolean);
  for (const k of keys) if (!/^[^:,]+:\d+$/.test(k)) throw new ForecastOptionError(`--clients: "${k}" is not model:client_id (e.g. m-large:0)`);
  return keys;
}
