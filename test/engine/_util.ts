// Shared helpers of the engine tests (not a test file itself).
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { gunzipSync } from "node:zlib";
import { Engine, type EngineOptions, type EventInput } from "../../src/engine/index.ts";
import { EVENT_RECORD_BYTES, EventField as EV } from "../../src/engine/layout.ts";
import { userHash } from "../../src/telemetry/hash.ts";
import { mulberry32 } from "../../src/util/random.ts";

/** Deterministic PRNG (mulberry32). */
export const rng = mulberry32;

/** Zipf(s) sampler over 0..n-1 (inverse CDF by binary search). */
export function zipf(n: number, s: number, rand: () => number): () => number {
  const cdf = new Float64Array(n);
  let acc = 0;
  for (let i = 0; i < n; i++) cdf[i] = acc += 1 / Math.pow(i + 1, s);
  for (let i = 0; i < n; i++) cdf[i] /= acc;
  return () => {
    const u = rand();
    let lo = 0, hi = n - 1;
    while (lo < hi) {
      const m = (lo + hi) >> 1;
      if (cdf[m] < u) lo = m + 1;
      else hi = m;
    }
    return lo;
  };
}

/** User hashes of user-0..user-(n-1), from src/telemetry/hash.ts. */
export function users(n: number, prefix = "user-"): { lo: number; hi: number }[] {
  return Array.from({ length: n }, (_, i) => userHash(prefix + i));
}

/** A WASM (debug) engine and a reference engine with the same options. */
export async function pair(options: EngineOptions): Promise<[Engine, Engine]> {
  return [await Engine.create({ debug: true, ...options }), Engine.createReference(options)];
}

export function relClose(a: number, b: number, tol = 1e-9): boolean {
  if (Object.is(a, b)) return true;
  return Math.abs(a - b) <= tol * Math.max(Math.abs(a), Math.abs(b), 1e-300);
}

/** Asserts both engines report the same stats, forecasts, per-user features and state bytes. */
export function assertSameEngines(a: Engine, b: Engine, what: string, checkState = true): void {
  assert.deepEqual(a.stats(), b.stats(), `${what}: stats`);
  const fa = a.forecasts();
  const fb = b.forecasts();
  assert.equal(fa.length, fb.length, `${what}: forecast count`);
  for (let i = 0; i < fa.length; i++) {
    const x = fa[i], y = fb[i];
    assert.deepEqual(x.userHash, y.userHash, `${what}: record ${i} user`);
    for (const k of ["ratePerSec", "upperPerSec", "observedPerSec"] as const)
      assert.ok(relClose(x[k], y[k]) && Number.isFinite(x[k]), `${what}: record ${i} ${k} ${x[k]} vs ${y[k]}`);
    const ua = a.userFeatures(x.userHash)!, ub = b.userFeatures(y.userHash)!;
    for (const k of Object.keys(ua) as (keyof typeof ua)[])
      assert.ok(relClose(ua[k], ub[k]), `${what}: user ${i} feature ${k} ${ua[k]} vs ${ub[k]}`);
  }
  if (checkState) {
    const sa = a.snapshot(), sb = b.snapshot();
    assert.equal(sa.length, sb.length, `${what}: state size`);
    const diff = sa.findIndex((v, i) => v !== sb[i]);
    assert.equal(diff, -1, `${what}: state differs first at byte ${diff}`);
  }
}

/** Writes events into a byte array of 48-byte records (the wire/ingress layout). */
export function encodeEvents(events: readonly EventInput[]): Uint8Array {
  const buf = new ArrayBuffer(events.length * EVENT_RECORD_BYTES);
  const dv = new DataView(buf);
  events.forEach((e, i) => {
    const p = i * EVENT_RECORD_BYTES;
    dv.setUint32(p + EV.userHashLo, e.userHash.lo, true);
    dv.setUint32(p + EV.userHashHi, e.userHash.hi, true);
    dv.setFloat64(p + EV.timeMs, e.timeMs, true);
    dv.setInt32(p + EV.inputTokens, e.inputTokens ?? 0, true);
    dv.setInt32(p + EV.outputTokens, e.outputTokens ?? 0, true);
    dv.setUint32(p + EV.routeHash, e.routeHash ?? 0, true);
    dv.setUint32(p + EV.ipHash, e.ipHash ?? 0, true);
    dv.setUint32(p + EV.uaHash, e.uaHash ?? 0, true);
    dv.setInt32(p + EV.latencyMs, e.latencyMs ?? 0, true);
    dv.setInt32(p + EV.bytes, e.bytes ?? 0, true);
    dv.setUint16(p + EV.status, e.status ?? 0, true);
    dv.setUint16(p + EV.flags, e.flags ?? 0, true);
  });
  return new Uint8Array(buf);
}

export const DAY_MS = 86_400_000;
/** A UTC midnight used as t = 0 of traces. */
export const EPOCH0 = Date.UTC(2025, 0, 6);

/** Per-window request counts of a few ServeGen clients (model m-large) over the first `days` days. */
export function servegenSlice(clients: number[], days: number): Map<number, number[]> {
  const text = gunzipSync(readFileSync("/work/shared/data/servegen_client_rate_10min.csv.gz")).toString("utf8");
  const want = new Set(clients);
  const out = new Map<number, number[]>();
  const maxT = days * 86400;
  let pos = text.indexOf("\n") + 1;
  while (pos < text.length) {
    const nl = text.indexOf("\n", pos);
    const end = nl < 0 ? text.length : nl;
    if (text.startsWith("m-large,", pos)) {
      const cols = text.slice(pos, end).split(",", 4);
      const id = Number(cols[1]);
      const t = Number(cols[2]);
      if (want.has(id) && t < maxT) {
        let a = out.get(id);
        if (!a) out.set(id, (a = []));
        a[t / 600] = Number(cols[3]);
      }
    } else if (out.size === want.size && out.size > 0) break;
    pos = end + 1;
  }
  return out;
}
