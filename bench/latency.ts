// One latency table for every hop of the system (`npm run bench:latency`), measured in one run at
// a stated load, percentiles from hdr-histogram-js:
//   1. record() → event applied in the engine            (publisher → JetStream → processor → WASM)
//   2. bucket close (tick) → forecast message received   (processor tick → NATS → subscriber)
//   3. forecast tick → grant visible at a gateway         (grant service → NATS → ThrottleClient)
//   4. ThrottleClient.check()                             (in process)
//   5. Envoy RLS ShouldRateLimit round trip               (grpc-js client → RlsServer, real socket)
//   6. allocator decision → patch visible at the API server (actuator → client-node → kube-sim)
// Prints the table and writes bench/results/latency.json.
import * as hdr from "hdr-histogram-js";
import { writeBenchJson } from "./env.ts";

/** One hop's histogram, in microseconds. */
export interface Hop {
  name: string;
  what: string;
  hist: hdr.Histogram;
}

export function newHop(name: string, what: string): Hop {
  return { name, what, hist: hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 120_000_000, numberOfSignificantValueDigits: 3 }) };
}

export function hopRow(h: Hop): Record<string, number | string> {
  const p = (q: number) => h.hist.getValueAtPercentile(q) / 1000;
  return { hop: h.name, what: h.what, count: h.hist.totalCount, p50Ms: p(50), p90Ms: p(90), p99Ms: p(99), p999Ms: p(99.9), maxMs: h.hist.maxValue / 1000 };
}

export function printTable(rows: Record<string, number | string>[]): void {
  const f = (v: number) => (v < 0.01 ? v.toFixed(4) : v < 1 ? v.toFixed(3) : v < 100 ? v.toFixed(2) : v.toFixed(0));
  const header = ["hop", "count", "p50 ms", "p90 ms", "p99 ms", "p99.9 ms", "max ms"];
  const body = rows.map((r) => [String(r.hop), Number(r.count).toLocaleString("en-US"), f(Number(r.p50Ms)), f(Number(r.p90Ms)), f(Number(r.p99Ms)), f(Number(r.p999Ms)), f(Number(r.maxMs))]);
  const all = [header, ...body];
  const w = header.map((_, c) => Math.max(...all.map((r) => r[c].length)));
  for (const [i, r] of all.entries()) {
    console.log(r.map((v, c) => (c === 0 ? v.padEnd(w[c]) : v.padStart(w[c]))).join("  "));
    if (i === 0) console.log(w.map((x) => "-".repeat(x)).join("  "));
  }
}

export { writeBenchJson };
