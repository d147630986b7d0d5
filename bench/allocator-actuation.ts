// Actuation benchmark (npm run bench:allocator-actuation): decisions for N workloads arrive at an
// offered rate; two actuators turn them into scale-subresource patches against the Kubernetes API
// test server (in-process, every request delayed by --api-latency-ms like a real API server):
//   single-flight — the actuator (≤ 1 request chain in flight per object, newer decisions replace queued ones);
//   naive         — one GET + conditional PATCH per decision, as it arrives (409 → re-read and retry).
// Measured: decisions offered and absorbed, requests sent, 409s, most requests in flight per object,
// whether the final state equals the newest decision per object, and decision → visible at the API
// server, p50/p99 (hdr-histogram-js): a decision counts as visible at the first write that carries
// it or a newer decision of the same object (a coalesced decision is satisfied by its successor).
// Flags: --objects N (20) --rate R decisions/s (1000) --seconds S (1) --api-latency-ms L (5); --quick
// is the same run (the naive variant needs minutes for more decisions: that is the finding).
import * as hdr from "hdr-histogram-js";
import { KubeConfig } from "@kubernetes/client-node";
import { pino } from "pino";
import { KubeSim, type WriteRecord } from "../src/kube-sim/index.ts";
import { KubeClient } from "../src/allocator/kube/client.ts";
import { Actuator } from "../src/allocator/kube/actuator.ts";
import { ResourceVersionConflictError } from "../src/allocator/kube/errors.ts";
import { mulberry32 } from "../src/util/random.ts";
import { writeBenchJson } from "./env.ts";

const args = process.argv.slice(2);
const flag = (name: string, def: number) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : def;
};
const OBJECTS = flag("objects", 20);
const RATE = flag("rate", 1000);
const SECONDS = flag("seconds", 1);
const API_LATENCY_MS = flag("api-latency-ms", 5);
const NS = "bench";

interface Decision {
  object: number;
  seq: number;
  replicas: number;
  submittedMs: number;
}

/** The same decision stream for both variants: `count` decisions over random objects, replicas changing each time. */
function decisions(count: number): { object: number; replicas: number }[] {
  const rnd = mulberry32(42);
  const last = new Array(OBJECTS).fill(1);
  const out: { object: number; replicas: number }[] = [];
  for (let i = 0; i < count; i++) {
    const object = Math.floor(rnd() * OBJECTS);
    let replicas = 1 + Math.floor(rnd() * 50);
    if (replicas === last[object]) replicas = (replicas % 50) + 1;
    last[object] = replicas;
    out.push({ object, replicas });
  }
  return out;
}

interface Result {
  variant: string;
  decisionsOffered: number;
  offeredPerSec: number;
  absorbedPerSec: number;
  settleMs: number;
  requests: number;
  requestsPerDecision: number;
  conflicts409: number;
  maxInFlightPerObject: number;
  finalStateCorrect: boolean;
  visibleP50Ms: number;
  visibleP99Ms: number;
  visibleMaxMs: number;
}

async function run(variant: "single-flight" | "naive", stream: { object: number; replicas: number }[]): Promise<Result> {
  const pending: Decision[][] = Array.from({ length: OBJECTS }, () => []);
  const hist = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 600_000_000, numberOfSignificantValueDigits: 3 });
  // replicas value → newest seq submitted with it, per object (to map a write back to its decision)
  const seqOfValue: Map<number, number>[] = Array.from({ length: OBJECTS }, () => new Map());
  let visibleCount = 0;
  const onWrite = (w: WriteRecord) => {
    if (w.subresource !== "scale") return;
    const obj = Number(w.name.slice(1));
    const seq = seqOfValue[obj].get(w.object.spec.replicas as number);
    if (seq === undefined) return;
    const q = pending[obj];
    while (q.length && q[0].seq <= seq) {
      const d = q.shift()!;
      hist.recordValue(Math.max(1, Math.round((w.timeMs - d.submittedMs) * 1000)));
      visibleCount++;
    }
  };
  const sim = new KubeSim({ onWrite, managePods: false });
  await sim.start();
  for (let i = 0; i < OBJECTS; i++) {
    sim.create({ apiVersion: "apps/v1", kind: "Deployment", metadata: { name: `w${i}`, namespace: NS }, spec: { replicas: 1, selector: { matchLabels: { app: `w${i}` } }, template: { metadata: { labels: { app: `w${i}` } }, spec: { containers: [{ name: "s", image: "x" }] } } } });
  }
  if (API_LATENCY_MS > 0) sim.inject({ times: Infinity, delayMs: API_LATENCY_MS });
  const kc = new KubeConfig();
  kc.loadFromOptions(sim.kubeConfigOptions());
  const client = new KubeClient(kc);
  const log = pino({ level: "silent" });
  const actuator = new Actuator({ client, log, events: false });
  actuator.setTargets(Array.from({ length: OBJECTS }, (_, i) => ({ pool: `p${i}`, mode: "scale" as const, kind: "Deployment" as const, namespace: NS, name: `w${i}` })));
  const inflight = new Set<Promise<void>>();
  let conflicts = 0;
  const naive = async (obj: number, replicas: number) => {
    for (let i = 0; i < 20; i++) {
      const s = await client.getScale("Deployment", NS, `w${obj}`);
      if (s.replicas === replicas) return;
      try {
        await client.patchScale("Deployment", NS, `w${obj}`, replicas, s.resourceVersion);
        return;
      } catch (err) {
        if (!(err instanceof ResourceVersionConflictError)) throw err;
        conflicts++;
      }
    }
  };
  const intervalMs = 1000 / RATE;
  const t0 = performance.now();
  let seq = 0;
  // Offer decisions on schedule; submit those that are due in batches (timers are coarse).
  while (seq < stream.length) {
    const now = performance.now();
    const due = Math.min(stream.length, Math.floor((now - t0) / intervalMs) + 1);
    for (; seq < due; seq++) {
      const { object, replicas } = stream[seq];
      const d: Decision = { object, seq, replicas, submittedMs: performance.now() };
      seqOfValue[object].set(replicas, seq);
      pending[object].push(d);
      if (variant === "single-flight") {
        actuator.submit({ pool: `p${object}`, replicas, predictiveReplicas: replicas, reactiveReplicas: 1, reason: "bench", direction: "none" });
      } else {
        const p = naive(object, replicas).finally(() => inflight.delete(p));
        inflight.add(p);
      }
    }
    await new Promise((r) => setTimeout(r, 1));
  }
  const offeredMs = performance.now() - t0;
  if (variant === "single-flight") await actuator.idle();
  else while (inflight.size) await Promise.all([...inflight]);
  const settleMs = performance.now() - t0;
  // Final state: each object shows its newest decision?
  const newest = new Map<number, number>();
  for (const d of stream) newest.set(d.object, d.replicas);
  let correct = true;
  for (const [obj, r] of newest) if (sim.get("apps", "deployments", NS, `w${obj}`)!.spec.replicas !== r) correct = false;
  if (variant === "single-flight") conflicts = sim.audit.filter((a) => a.code === 409).length;
  const res: Result = {
    variant,
    decisionsOffered: stream.length,
    offeredPerSec: Math.round(stream.length / (offeredMs / 1000)),
    absorbedPerSec: Math.round(stream.length / (settleMs / 1000)),
    settleMs: Math.round(settleMs),
    requests: sim.audit.length,
    requestsPerDecision: Math.round((sim.audit.length / stream.length) * 1000) / 1000,
    conflicts409: conflicts,
    maxInFlightPerObject: sim.maxConcurrentPerObject,
    finalStateCorrect: correct,
    visibleP50Ms: hist.getValueAtPercentile(50) / 1000,
    visibleP99Ms: hist.getValueAtPercentile(99) / 1000,
    visibleMaxMs: hist.maxValue / 1000,
  };
  if (visibleCount !== stream.length) throw new Error(`${variant}: ${stream.length - visibleCount} decisions never became visible`);
  await actuator.stop();
  await sim.stop();
  return res;
}

const stream = decisions(Math.round(RATE * SECONDS));
// Same input, same expected outcome: check both variants end on the newest decision before timing.
const warm = decisions(200);
for (const v of ["single-flight", "naive"] as const) {
  const r = await run(v, warm);
  if (!r.finalStateCorrect) console.warn(`warm-up: ${v} did not end on the newest decisions (stale writes overtook newer ones)`);
}
const results = [await run("single-flight", stream), await run("naive", stream)];
console.log(`\nActuation: ${OBJECTS} objects, ${RATE} decisions/s offered for ${SECONDS} s, API latency ${API_LATENCY_MS} ms per request\n`);
const cols: (keyof Result)[] = ["variant", "decisionsOffered", "absorbedPerSec", "settleMs", "requests", "requestsPerDecision", "conflicts409", "maxInFlightPerObject", "finalStateCorrect", "visibleP50Ms", "visibleP99Ms"];
console.log(cols.join("\t"));
for (const r of results) console.log(cols.map((c) => String(r[c])).join("\t"));
const [sf, nv] = results;
const ratios = {
  requestsNaiveOverSingleFlight: Math.round((nv.requests / sf.requests) * 100) / 100,
  p99NaiveOverSingleFlight: Math.round((nv.visibleP99Ms / sf.visibleP99Ms) * 100) / 100,
};
console.log(`\nnaive / single-flight: requests ×${ratios.requestsNaiveOverSingleFlight}, p99 visible ×${ratios.p99NaiveOverSingleFlight}`);
writeBenchJson(new URL("./results/allocator-actuation.json", import.meta.url).pathname, `npm run bench:allocator-actuation${args.length ? " -- " + args.join(" ") : ""}`, {
  settings: { objects: OBJECTS, offeredRatePerSec: RATE, seconds: SECONDS, apiLatencyMs: API_LATENCY_MS, server: "src/kube-sim in the same process, real client-node over HTTP" },
  results,
  ratios,
});
