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
import { fileURLToPath } from "node:url";
import { join } from "node:path";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { Worker } from "node:worker_threads";
import { connect } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import { KubeConfig } from "@kubernetes/client-node";
import { writeBenchJson } from "./env.ts";
import { NatsServer } from "../src/nats/server.ts";
import { TelemetryPublisher, DEFAULT_FLUSH_INTERVAL_MS } from "../src/telemetry/publisher.ts";
import { userHash } from "../src/telemetry/hash.ts";
import { EVENT_RECORD_BYTES, FORECAST_RECORD_BYTES } from "../src/wire/layout.ts";
import { ForesightConfigSchema, DEFAULT_CONFIG } from "../src/config/index.ts";
import { createLogger } from "../src/obs/logger.ts";
import { Processor, createWasmEngineFactory, ensureStreams, processorNames } from "../src/processor/index.ts";
import { decodeForecastMessage, type ForecastMessage } from "../src/processor/forecasts.ts";
import { GrantService } from "../src/throttle/service.ts";
import { ThrottleClient } from "../src/throttle/client.ts";
import { computeGrants, planLimits, planOrder, type GrantInputs, type PlanLimit } from "../src/throttle/grants.ts";
import { GRANT_RECORD_BYTES, MessageKind, encodeGrantMessages, writeGrantRecord } from "../src/throttle/wire.ts";
import { RlsServer, RlsCode } from "../src/envoy/server.ts";
import { createRlsClient, shouldRateLimit, type RlsRequest } from "../src/envoy/client.ts";
import { DescriptorMapping } from "../src/envoy/mapping.ts";
import { mappingFromConfig } from "../src/envoy/config.ts";
import { KubeSim, type WriteRecord } from "../src/kube-sim/index.ts";
import { KubeClient } from "../src/allocator/kube/client.ts";
import { Actuator } from "../src/allocator/kube/actuator.ts";

/** One hop's histogram, in nanoseconds (check() is sub-microsecond; the other hops are ms). */
export interface Hop {
  name: string;
  what: string;
  hist: hdr.Histogram;
}

export function newHop(name: string, what: string): Hop {
  return { name, what, hist: hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 600_000_000_000, numberOfSignificantValueDigits: 3 }) };
}

export function hopRow(h: Hop): Record<string, number | string> {
  const p = (q: number) => h.hist.getValueAtPercentile(q) / 1e6;
  return { hop: h.name, what: h.what, count: h.hist.totalCount, p50Ms: p(50), p90Ms: p(90), p99Ms: p(99), p999Ms: p(99.9), maxMs: h.hist.maxValue / 1e6 };
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

// ---------------------------------------------------------------------------------------------
// Settings: the load of each hop (stated in the table header and the JSON).

const root = fileURLToPath(new URL("..", import.meta.url));
/** Measured seconds (after the warm-up); BENCH_SECONDS=8 for a quick check. */
const SECONDS = Number(process.env.BENCH_SECONDS ?? 60);
const WARMUP_SEC = 3;
const P = 4;
const USERS = 10_000;
/** Telemetry events recorded per second (well under the pipeline's saturation, see bench:pipeline). */
const EVENTS_PER_SEC = Number(process.env.BENCH_EVENTS_PER_SEC ?? 20_000);
/** The publisher's flush interval: the default a gateway runs with. */
const FLUSH_MS = Number(process.env.BENCH_FLUSH_MS ?? DEFAULT_FLUSH_INTERVAL_MS);
const TICK_MS = 1000;
/** In-process check() calls per second, each timed alone. */
const CHECKS_PER_SEC = Number(process.env.BENCH_CHECKS_PER_SEC ?? 20_000);
/** Envoy RLS calls per second, open loop. */
const RLS_PER_SEC = Number(process.env.BENCH_RLS_PER_SEC ?? 2_000);
/** Allocator decisions per second over POOLS workloads. */
const POOLS = 10;
const DECISIONS_PER_SEC = 20;
// One-second buckets so every tick closes a bucket; a second of lateness for events stamped "now".
const ENGINE = { bucketWidthMs: 1000, allowedLatenessMs: 1000, capacityUsers: 4 * USERS };
const PLANS: Record<string, PlanLimit> = { default: { requestsPerSec: 20, tokensPerSec: 40_000 }, pro: { requestsPerSec: 200, tokensPerSec: 400_000 } };
const SAFE: Record<string, PlanLimit> = { default: { requestsPerSec: 2, tokensPerSec: 4_000 }, pro: { requestsPerSec: 20, tokensPerSec: 40_000 } };
const PREFIX = "lat";
const silent = createLogger({ level: "silent" });
/** Wall clock with sub-millisecond resolution (same origin as Date.now). */
const nowMs = () => performance.timeOrigin + performance.now();

class BenchCheckError extends Error {
  override name = "BenchCheckError";
}
function fail(message: string): never {
  throw new BenchCheckError(`bench:latency check failed: ${message}`);
}
/** Problems found inside callbacks (a throw there would not reach the run); checked after the run. */
const problems: string[] = [];
async function until(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) fail(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const users = Array.from({ length: USERS }, (_, i) => {
  const key = `lat-user-${i}`;
  return { key, ...userHash(key) };
});
const userIndex = new Map<number, number>();
for (const [i, u] of users.entries()) {
  if (userIndex.has(u.lo)) fail(`two bench users share hash word ${u.lo}; pick other keys`);
  userIndex.set(u.lo, i);
}
/** The allocator's per-user allocation the grant service uses: half the forecast upper bound (explicit, so the check can recompute grants). */
const allocationOf = (_p: number, inp: GrantInputs) => inp.upperReqPerSec.map((u) => u / 2);
const grantSettings = { plans: planLimits(planOrder(PLANS), PLANS), burstFactor: 1.5, safe: planLimits(planOrder(PLANS), SAFE) };

const hops = {
  record: newHop("1 record() → applied in engine", "TelemetryPublisher.record() (event time, sub-ms clock) to the processor's onApplied for the frame holding it"),
  forecast: newHop("2 tick → forecast received", "processor tick (forecast header tickTimeMs) to a subscriber of <prefix>.forecasts.* receiving the message (1 ms clock)"),
  grant: newHop("3 tick → grant at gateway", "processor tick (tickTimeMs, carried into the grant delta) to the grant delta applied in a ThrottleClient (1 ms clock); includes hop 2"),
  check: newHop("4 ThrottleClient.check()", "one check() call in process, grants loaded, timed alone with process.hrtime.bigint() (includes the timer's own cost)"),
  rls: newHop("5 Envoy RLS round trip", "ShouldRateLimit from its scheduled send time (open loop) to the grpc-js client's callback, RlsServer over loopback TCP with the ThrottleClient"),
  actuation: newHop("6 decision → patch at API server", "Actuator.submit() to the scale write accepted by the Kubernetes API test server (client-node over HTTP; coalesced decisions count at the write that carries a newer one)"),
};
const checks: Record<string, unknown> = {};

// ---------------------------------------------------------------------------------------------
// Check before timing: the RLS answer equals ThrottleClient.check() for the same requests. Two
// gateways with the same grants and a frozen clock; one behind the RLS server, one called directly.

async function checkRlsAgreement(): Promise<void> {
  const t0 = Date.now();
  const mk = () => new ThrottleClient({ plans: PLANS, safeLimits: SAFE, partitions: P, now: () => t0, demandReportIntervalMs: 3_600_000 });
  const viaRls = mk(), direct = mk();
  const sample = users.slice(0, 40);
  for (let p = 0; p < P; p++) {
    const mine = sample.filter((u) => u.lo % P === p);
    const inp: GrantInputs = {
      count: mine.length, userHashLo: Uint32Array.from(mine, (u) => u.lo), userHashHi: Uint32Array.from(mine, (u) => u.hi),
      upperReqPerSec: Float64Array.from(mine, (_, k) => 1 + k), planIndex: new Uint8Array(mine.length), poolIndex: new Uint16Array(mine.length),
    };
    const t = computeGrants(inp, [{ capacityReqPerSec: 100 }], grantSettings);
    const rec = new Uint8Array(Math.max(1, t.count) * GRANT_RECORD_BYTES);
    for (let k = 0; k < t.count; k++) writeGrantRecord(new DataView(rec.buffer), k * GRANT_RECORD_BYTES, t, k);
    for (const m of encodeGrantMessages(MessageKind.delta, p, P, t0, 60_000, rec, t.count)) {
      viaRls.apply(m);
      direct.apply(m);
    }
  }
  const mappingOpts = mappingFromConfig(DEFAULT_CONFIG);
  const mapping = new DescriptorMapping(mappingOpts);
  const server = await RlsServer.start({ host: "127.0.0.1", domain: "foresight", limiter: viaRls, mapping: mappingOpts });
  const client = createRlsClient(`127.0.0.1:${server.port}`);
  let allowed = 0, denied = 0;
  try {
    // 20 requests per user against a frozen clock: buckets drain, so both answers occur.
    for (let i = 0; i < sample.length * 20; i++) {
      const req: RlsRequest = { domain: "foresight", descriptors: [{ entries: [{ key: "user_id", value: sample[i % sample.length].key }] }] };
      const res = await shouldRateLimit(client, req);
      const c = mapping.map(req, "foresight")[0].check!;
      const d = direct.check(c.user, c.use, c.plan);
      const want = d.allowed ? RlsCode.OK : RlsCode.OVER_LIMIT;
      if ((res.overall_code ?? 0) !== want || (res.statuses[0]?.limit_remaining ?? 0) !== Math.floor(d.remaining)) {
        fail(`RLS answer ${JSON.stringify(res.statuses[0])} differs from check() ${JSON.stringify(d)} for ${c.user}`);
      }
      if (d.allowed) allowed++;
      else denied++;
    }
  } finally {
    client.close();
    await server.shutdown();
  }
  if (!allowed || !denied) fail(`RLS check saw ${allowed} allowed and ${denied} denied; expected both`);
  checks.rlsEqualsCheck = { requests: allowed + denied, allowed, denied };
  console.log(`check: ${allowed + denied} RLS answers equal ThrottleClient.check() (${allowed} allowed, ${denied} over limit)`);
}

// ---------------------------------------------------------------------------------------------
// The run.

const benchStart = Date.now();
await checkRlsAgreement();
// What the timer alone adds to a hop-4 sample: two hrtime.bigint() calls around nothing.
const timerOverheadNs = (() => {
  const h = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 1e9, numberOfSignificantValueDigits: 3 });
  for (let i = 0; i < 100_000; i++) {
    const t0 = process.hrtime.bigint();
    h.recordValue(Math.max(1, Number(process.hrtime.bigint() - t0)));
  }
  return { p50: h.getValueAtPercentile(50), p99: h.getValueAtPercentile(99) };
})();
checks.timerOverheadNs = timerOverheadNs;

const srv = await NatsServer.start();
const conns = await Promise.all([0, 1, 2, 3].map(() => connect({ servers: srv.url })));
const [pubNc, subNc, svcNc, gwNc] = conns;
let proc: Processor | undefined;
let rls: RlsServer | undefined;
let sim: KubeSim | undefined;
let actuator: Actuator | undefined;
let service: GrantService | undefined;
let gw: ThrottleClient | undefined;
let rlsWorkerRef: Worker | undefined;
let failed: unknown;
// The measured window, wall-clock ms: a sample counts when its start instant falls inside it,
// however late it completes (a slow completion after the run still counts).
let warmAtMs = Infinity;
let endAtMs = Infinity;
const inWindow = (startMs: number) => startMs >= warmAtMs && startMs < endAtMs;
try {
  const names = processorNames(PREFIX);
  await ensureStreams(await jetstreamManager(pubNc), names, { telemetryMaxBytes: -1 });

  // Hop 1: per-user applied counts (checked against what was published) and record → applied.
  const published = new Uint32Array(USERS), applied = new Uint32Array(USERS);
  let appliedTotal = 0, unknownUsers = 0;
  proc = await Processor.start({
    nats: { servers: [srv.url] }, prefix: PREFIX, partitions: P, capacityUsers: ENGINE.capacityUsers,
    engineFactory: createWasmEngineFactory(ForesightConfigSchema.parse({ engine: ENGINE }).engine),
    tickIntervalMs: TICK_MS, checkpointIntervalMs: 600_000, leaseTtlMs: 30_000, httpPort: -1, log: silent,
    onApplied: (_p, records, n) => {
      const now = nowMs();
      const dv = new DataView(records.buffer, records.byteOffset, records.byteLength);
      for (let i = 0; i < n; i++) {
        const o = i * EVENT_RECORD_BYTES;
        const ui = userIndex.get(dv.getUint32(o, true));
        if (ui === undefined) unknownUsers++;
        else applied[ui]++;
        const t = dv.getFloat64(o + 8, true);
        if (inWindow(t)) hops.record.hist.recordValue(Math.max(1, Math.round((now - t) * 1e6)));
      }
      appliedTotal += n;
    },
  });

  // Hop 2: forecasts as any subscriber sees them; the last ticks are kept for the grant check.
  const forecastTicks = new Map<string, ForecastMessage[]>();
  let forecastMessages = 0, forecastRecords = 0, forecastForeign = 0;
  subNc.subscribe(`${PREFIX}.forecasts.*`, {
    callback: (err, m) => {
      if (err) return;
      const now = Date.now();
      const f = decodeForecastMessage(m.data);
      if (inWindow(f.tickTimeMs)) hops.forecast.hist.recordValue(Math.max(1, (now - f.tickTimeMs) * 1e6));
      if (m.subject !== `${PREFIX}.forecasts.${f.partition}`) problems.push(`forecast of partition ${f.partition} on ${m.subject}`);
      const dv = new DataView(f.records.buffer, f.records.byteOffset, f.records.byteLength);
      for (let k = 0; k < f.count; k++) {
        const lo = dv.getUint32(k * FORECAST_RECORD_BYTES, true);
        if (!userIndex.has(lo) || lo % P !== f.partition) forecastForeign++;
      }
      forecastMessages++;
      forecastRecords += f.count;
      const key = `${f.partition}:${f.tickTimeMs}`;
      const list = forecastTicks.get(key) ?? [];
      list[f.chunkIndex] = { ...f, records: f.records.slice() };
      forecastTicks.set(key, list);
      if (forecastTicks.size > 8 * P) forecastTicks.delete(forecastTicks.keys().next().value!);
    },
  });

  // Hop 3: the grant service on the real forecasts; a gateway follows the grants stream.
  service = new GrantService({
    subjectPrefix: PREFIX, partitions: P, plans: PLANS, safeLimits: SAFE, snapshotEveryTicks: 10,
    // Every change is sent, so a gateway's grants equal the last tick's computation exactly.
    deltaTolerance: 0, allocationOf,
    // Grants must equal computeGrants on the tick's forecasts (checked), so the exceedance feedback
    // (which corrects some users' bounds; its own tests cover it) is off here.
    feedback: { mode: "none" }, pools: () => [{ capacityReqPerSec: 2 * EVENTS_PER_SEC }],
  });
  await service.start(svcNc);
  gw = new ThrottleClient({ subjectPrefix: PREFIX, plans: PLANS, safeLimits: SAFE, partitions: P });
  await gw.start(gwNc, { loadTimeoutMs: 30_000 });
  const g = gw;
  let grantsChecked = 0, grantTicksChecked = 0;
  g.onApplied = (msg) => {
    if (msg.kind !== MessageKind.delta || msg.count === 0) return;
    const now = Date.now();
    if (inWindow(msg.tickTimeMs)) hops.grant.hist.recordValue(Math.max(1, (now - msg.tickTimeMs) * 1e6));
    // Check (a few ticks per partition, after the last chunk): every user of the tick holds the grant computeGrants gives for it.
    if (grantTicksChecked >= 3 * P || msg.chunkIndex !== msg.chunkCount - 1) return;
    const chunks = forecastTicks.get(`${msg.partition}:${msg.tickTimeMs}`);
    if (!chunks || chunks.filter(Boolean).length !== chunks[0]?.chunkCount) return;
    let n = 0;
    for (const c of chunks) n += c.count;
    const inp: GrantInputs = { count: n, userHashLo: new Uint32Array(n), userHashHi: new Uint32Array(n), upperReqPerSec: new Float64Array(n), planIndex: new Uint8Array(n), poolIndex: new Uint16Array(n) };
    let i = 0;
    for (const c of chunks) {
      const dv = new DataView(c.records.buffer, c.records.byteOffset, c.records.byteLength);
      for (let k = 0; k < c.count; k++, i++) {
        inp.userHashLo[i] = dv.getUint32(k * FORECAST_RECORD_BYTES, true);
        inp.userHashHi[i] = dv.getUint32(k * FORECAST_RECORD_BYTES + 4, true);
        const u = dv.getFloat64(k * FORECAST_RECORD_BYTES + 16, true);
        inp.upperReqPerSec[i] = u >= 0 && Number.isFinite(u) ? u : 0;
      }
    }
    inp.allocReqPerSec = allocationOf(msg.partition, inp);
    const t = computeGrants(inp, [{ capacityReqPerSec: 2 * EVENTS_PER_SEC }], grantSettings);
    for (let k = 0; k < n; k++) {
      const have = g.grantOf(users[userIndex.get(t.userHashLo[k])!].key);
      const want = { upperReqPerSec: t.upperReqPerSec[k], grantReqPerSec: t.grantReqPerSec[k], planReqPerSec: t.planReqPerSec[k], allocReqPerSec: t.allocReqPerSec[k] };
      if (!have || Object.entries(want).some(([f, v]) => have[f as keyof typeof want] !== v)) {
        problems.push(`gateway grant ${JSON.stringify(have)} differs from the computed ${JSON.stringify(want)} (partition ${msg.partition}, tick ${msg.tickTimeMs})`);
        return;
      }
      grantsChecked++;
    }
    if (n > 0) grantTicksChecked++;
  };

  // Hop 5: the RLS server in front of the same gateway.
  const mappingOpts = mappingFromConfig(DEFAULT_CONFIG);
  rls = await RlsServer.start({ host: "127.0.0.1", domain: "foresight", limiter: g, mapping: mappingOpts });
  // Envoy's calls come from a worker thread (bench/latency-rls-worker.ts), as from another process.
  // Workers do not inherit the tsx loader from --import: register it, then load the TS module.
  const workerSrc = `import("tsx/esm/api").then((m) => { m.register(); return import(${JSON.stringify(new URL("./latency-rls-worker.ts", import.meta.url).href)}); })`;
  const rlsWorker = new Worker(workerSrc, { eval: true, workerData: { port: rls.port, ratePerSec: RLS_PER_SEC, userKeys: users.map((u) => u.key) } });
  rlsWorkerRef = rlsWorker;
  const rlsResult = new Promise<{ latenciesNs: number[]; sent: number; done: number; errors: number; overLimit: number }>((resolve, reject) => {
    rlsWorker.once("message", resolve);
    rlsWorker.once("error", reject);
  });

  // Hop 6: the actuator against the Kubernetes API test server.
  const pendingDecisions: { seq: number; submittedMs: number }[][] = Array.from({ length: POOLS }, () => []);
  const seqOfValue: Map<number, number>[] = Array.from({ length: POOLS }, () => new Map());
  let decisionsVisible = 0, decisionsMeasured = 0;
  sim = new KubeSim({
    managePods: false,
    onWrite: (w: WriteRecord) => {
      if (w.subresource !== "scale") return;
      const obj = Number(w.name.slice(1));
      const seq = seqOfValue[obj].get(w.object.spec.replicas as number);
      if (seq === undefined) return;
      const q = pendingDecisions[obj];
      while (q.length && q[0].seq <= seq) {
        const d = q.shift()!;
        decisionsVisible++;
        if (inWindow(d.submittedMs + performance.timeOrigin)) {
          hops.actuation.hist.recordValue(Math.max(1, Math.round((w.timeMs - d.submittedMs) * 1e6)));
          decisionsMeasured++;
        }
      }
    },
  });
  await sim.start();
  for (let i = 0; i < POOLS; i++) {
    sim.create({ apiVersion: "apps/v1", kind: "Deployment", metadata: { name: `w${i}`, namespace: "bench" }, spec: { replicas: 1, selector: { matchLabels: { app: `w${i}` } }, template: { metadata: { labels: { app: `w${i}` } }, spec: { containers: [{ name: "s", image: "x" }] } } } });
  }
  const kc = new KubeConfig();
  kc.loadFromOptions(sim.kubeConfigOptions());
  actuator = new Actuator({ client: new KubeClient(kc), log: createLogger({ level: "silent" }), events: false });
  actuator.setTargets(Array.from({ length: POOLS }, (_, i) => ({ pool: `p${i}`, mode: "scale" as const, kind: "Deployment" as const, namespace: "bench", name: `w${i}` })));
  const lastReplicas = new Array(POOLS).fill(1);

  // One pacer drives every load on its own schedule; it yields to I/O between slices.
  const pub = new TelemetryPublisher(pubNc, { subjectPrefix: PREFIX, partitions: P, flushIntervalMs: FLUSH_MS });
  // Event-loop delay over the run: every hop shares this one loop, so its delay is in every figure.
  const loopDelay = monitorEventLoopDelay({ resolution: 10 });
  loopDelay.enable();
  const startedAt = performance.now();
  const endAt = startedAt + (WARMUP_SEC + SECONDS) * 1000;
  let recorded = 0, checked = 0, decided = 0, seed = 99;
  const rnd = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0);
  const use = { requests: 1, tokens: 120 };
  let checkAllowed = 0;
  for (;;) {
    const now = performance.now();
    if (now >= endAt) break;
    if (warmAtMs === Infinity && now - startedAt >= WARMUP_SEC * 1000) {
      if (appliedTotal === 0) fail(`no event applied in the ${WARMUP_SEC} s warm-up (is the WASM engine built? npm run build:wasm)`);
      warmAtMs = nowMs();
      rlsWorker.postMessage("warm");
    }
    const sec = (now - startedAt) / 1000;
    // 1. Telemetry: events of this slice carry the time they were recorded (sub-ms).
    const dueEvents = Math.floor(sec * EVENTS_PER_SEC) - recorded;
    for (let k = 0; k < dueEvents; k++) {
      const ui = rnd() % USERS;
      pub.record({ user: users[ui].key, inputTokens: 100, outputTokens: 20, route: "/v1/chat/completions", status: 200, timeMs: nowMs() });
      published[ui]++;
    }
    recorded += Math.max(0, dueEvents);
    // 4. check(): each call timed alone.
    const dueChecks = Math.floor(sec * CHECKS_PER_SEC) - checked;
    for (let k = 0; k < dueChecks; k++) {
      const key = users[rnd() % USERS].key;
      const t0 = process.hrtime.bigint();
      const d = g.check(key, use);
      const dt = Number(process.hrtime.bigint() - t0);
      if (d.allowed) checkAllowed++;
      if (warmAtMs !== Infinity) hops.check.hist.recordValue(Math.max(1, dt));
    }
    checked += Math.max(0, dueChecks);
    // 6. Allocator decisions, round robin over the pools, replicas changing each time.
    const dueDecisions = Math.floor(sec * DECISIONS_PER_SEC);
    for (; decided < dueDecisions; decided++) {
      const obj = decided % POOLS;
      let replicas = 1 + (rnd() % 50);
      if (replicas === lastReplicas[obj]) replicas = (replicas % 50) + 1;
      lastReplicas[obj] = replicas;
      seqOfValue[obj].set(replicas, decided);
      pendingDecisions[obj].push({ seq: decided, submittedMs: performance.now() });
      actuator.submit({ pool: `p${obj}`, replicas, predictiveReplicas: replicas, reactiveReplicas: 1, reason: "bench", direction: "none" });
    }
    // 1 ms slices: the pacer leaves the CPU to nats-server and the I/O in between.
    await new Promise((r) => setTimeout(r, 1));
  }
  endAtMs = nowMs();
  rlsWorker.postMessage("stop");
  loopDelay.disable();
  const runSec = (performance.now() - startedAt) / 1000;

  // Checks after the run.
  await pub.flush(60_000);
  const stats = pub.stats();
  await until(() => appliedTotal >= recorded - stats.droppedEvents, 60_000, `${recorded} events applied (have ${appliedTotal})`);
  await pub.close(10_000);
  let userMismatches = 0;
  for (let i = 0; i < USERS; i++) if (published[i] !== applied[i]) userMismatches++;
  if (stats.droppedEvents || userMismatches || unknownUsers || appliedTotal !== recorded) {
    fail(`events: ${recorded} recorded, ${appliedTotal} applied, ${stats.droppedEvents} dropped by the publisher, ${userMismatches} users' counts differ, ${unknownUsers} unknown users`);
  }
  checks.eventsAppliedEqualPublished = { events: recorded, users: USERS, mismatchedUsers: 0 };
  if (forecastForeign) fail(`${forecastForeign} forecast records for users not published on that partition`);
  if (forecastRecords === 0) fail("no forecast records received");
  checks.forecasts = { messages: forecastMessages, records: forecastRecords, foreignRecords: 0 };
  if (grantTicksChecked === 0) fail("no grant tick could be checked against computeGrants");
  checks.grantsEqualComputed = { ticks: grantTicksChecked, grants: grantsChecked };
  const rlsRun = await rlsResult;
  for (const ns of rlsRun.latenciesNs) hops.rls.hist.recordValue(ns);
  if (rlsRun.done !== rlsRun.sent) fail(`${rlsRun.sent - rlsRun.done} of ${rlsRun.sent} RLS calls never answered`);
  if (rlsRun.errors > rlsRun.sent / 1000) fail(`${rlsRun.errors} of ${rlsRun.sent} RLS calls failed`);
  const rlsSent = rlsRun.sent, rlsErrors = rlsRun.errors, rlsOverLimit = rlsRun.overLimit;
  await actuator.idle();
  for (let i = 0; i < POOLS; i++) {
    const have = sim.get("apps", "deployments", "bench", `w${i}`)!.spec.replicas;
    if (have !== lastReplicas[i]) fail(`deployment w${i} has ${have} replicas, the last decision was ${lastReplicas[i]}`);
  }
  if (decisionsVisible !== decided) fail(`${decided - decisionsVisible} of ${decided} decisions never became visible`);
  // Let the last ticks of the window reach the gateway before reading the counts.
  await new Promise((r) => setTimeout(r, 2 * TICK_MS));
  if (problems.length) fail(`${problems.length} problems in callbacks, first: ${problems[0]}`);
  checks.patchedEqualsDecision = { decisions: decided, workloads: POOLS };
  console.log(`checks: events per user, forecast users, ${grantsChecked} grants over ${grantTicksChecked} ticks, ${POOLS} workloads' replicas: all equal`);

  const load = {
    record: `${EVENTS_PER_SEC} events/s over ${USERS} users, ${P} partitions, publisher flushIntervalMs ${FLUSH_MS}, frames ≤ 1024 events (defaults)`,
    forecast: `tickIntervalMs ${TICK_MS}, bucketWidthMs ${ENGINE.bucketWidthMs}, ~${USERS} users forecast per tick`,
    grant: `grant service on the live forecasts (deltaTolerance 0, snapshot every 10 ticks), one gateway`,
    check: `${CHECKS_PER_SEC} calls/s on the same gateway (random users of ${USERS})`,
    rls: `${RLS_PER_SEC} calls/s open loop, one grpc-js channel from a worker thread (Envoy\'s side), one descriptor per call`,
    actuation: `${DECISIONS_PER_SEC} decisions/s over ${POOLS} Deployments, API server in process without added latency`,
  };
  const rows = Object.values(hops).map(hopRow);
  console.log(`\nLatency of every hop, one run of ${SECONDS} s measured (after ${WARMUP_SEC} s warm-up), all hops concurrently in one process with nats-server 2.9:`);
  for (const [k, v] of Object.entries(load)) console.log(`  ${k}: ${v}`);
  console.log(`  (hop 4 samples include the timer: alone p50 ${timerOverheadNs.p50} ns, p99 ${timerOverheadNs.p99} ns)\n`);
  printTable(rows);
  const extra = { eventLoopDelayMs: { p50: loopDelay.percentile(50) / 1e6, p99: loopDelay.percentile(99) / 1e6, max: loopDelay.max / 1e6 }, checkAllowed, checkCalls: checked, rlsSent, rlsErrors, rlsOverLimit, decisions: decided, decisionsMeasured, runSec: Math.round(runSec * 10) / 10, totalSec: Math.round((Date.now() - benchStart) / 100) / 10 };
  console.log(`\n${JSON.stringify(extra)}`);
  // Every hop but 5's client shares the main loop: when it lags, the figures are queueing behind it.
  const saturated = extra.eventLoopDelayMs.p99 > 100;
  if (saturated) console.warn(`warning: the event loop lagged (p99 ${extra.eventLoopDelayMs.p99.toFixed(0)} ms): the figures include queueing behind it; run on a quiet machine or lower BENCH_RLS_PER_SEC / BENCH_EVENTS_PER_SEC`);
  writeBenchJson(join(root, "bench", "results", "latency.json"), `${SECONDS !== 60 ? `BENCH_SECONDS=${SECONDS} ` : ""}npm run bench:latency`, {
    settings: { seconds: SECONDS, warmupSec: WARMUP_SEC, partitions: P, users: USERS, eventsPerSec: EVENTS_PER_SEC, flushIntervalMs: FLUSH_MS, tickIntervalMs: TICK_MS, checksPerSec: CHECKS_PER_SEC, rlsPerSec: RLS_PER_SEC, decisionsPerSec: DECISIONS_PER_SEC, pools: POOLS, engine: ENGINE },
    concurrently: "all six loads run at once in one Node process: one pacer on the main event loop drives hops 1, 4 and 6 (and the processor, grant service, gateway, RLS server and API server live there); the RLS client runs in a worker thread; nats-server is a child process",
    load,
    checks,
    rows,
    counts: extra,
    saturated,
  });
  console.log("wrote bench/results/latency.json");
} catch (err) {
  failed = err;
} finally {
  await rlsWorkerRef?.terminate();
  await actuator?.stop().catch(() => undefined);
  await sim?.stop().catch(() => undefined);
  await rls?.shutdown().catch(() => undefined);
  await gw?.close().catch(() => undefined);
  await service?.stop().catch(() => undefined);
  await proc?.stop().catch(() => undefined);
  for (const nc of conns) await nc.close().catch(() => undefined);
  await srv.dispose();
}
if (failed) {
  console.error(failed instanceof BenchCheckError ? failed.message : failed);
  process.exit(1);
}
process.exit(0);
