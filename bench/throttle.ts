// Throttle benchmarks (npm run bench:throttle):
//  1. check() in process at 1M users with grants loaded: ThrottleClient (typed arrays) against a
//     Map-of-objects token bucket with the same rule (bench/throttle-peer.ts), same decisions
//     checked first; per-call ns p50/p99/p99.9 (hdr-histogram-js) and batch mean ns/op.
//  2. Grant propagation with a real nats-server: forecast tick published -> grant visible in a
//     gateway, p50/p99, for a one-user change and for a tick where every user changes.
//  3. Distribution choice: a starting gateway loading N grants from the grants stream (snapshot)
//     against the same N grants as KV entries read with a KV watch.
// Prints tables and writes bench/results/throttle.json (keys `check`, `propagation`, `load`).
// Run: node --import tsx --expose-gc bench/throttle.ts [users]   (default 1000000)
import * as hdr from "hdr-histogram-js";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { Kvm } from "@nats-io/kv";
import { jetstream } from "@nats-io/jetstream";
import { NatsServer } from "../src/nats/server.ts";
import { ThrottleClient } from "../src/throttle/client.ts";
import { GrantService } from "../src/throttle/service.ts";
import { computeGrants, planLimits, planOrder, type PlanLimit } from "../src/throttle/grants.ts";
import { GRANT_RECORD_BYTES, MessageKind, encodeGrantMessages, encodePoolsMessage, writeGrantRecord } from "../src/throttle/wire.ts";
import { decodeForecastMessage, encodeForecastMessages } from "../src/processor/forecasts.ts";
import { FORECAST_RECORD_BYTES } from "../src/engine/layout.ts";
import { userHash } from "../src/telemetry/hash.ts";
import { mulberry32 } from "../src/util/random.ts";
import { MapThrottle } from "./throttle-peer.ts";
import { writeBenchJson } from "./env.ts";

const USERS = Number(process.argv[2] ?? 1_000_000);
/** Sections to run (comma list of check, propagation, load); default all. */
const ONLY = new Set((process.env.BENCH_ONLY ?? "check,propagation,load").split(","));
const PARTITIONS = 8;
const BURST = 1.5;
const PLANS: Record<string, PlanLimit> = { default: { requestsPerSec: 20, tokensPerSec: 40_000 }, pro: { requestsPerSec: 200, tokensPerSec: 400_000 } };
const SAFE: Record<string, PlanLimit> = { default: { requestsPerSec: 2, tokensPerSec: 4_000 }, pro: { requestsPerSec: 20, tokensPerSec: 40_000 } };
const names = planOrder(PLANS);
const gc = (globalThis as { gc?: () => void }).gc ?? (() => {});

function pct(h: hdr.Histogram) {
  return { p50: h.getValueAtPercentile(50), p99: h.getValueAtPercentile(99), p999: h.getValueAtPercentile(99.9), max: h.maxValue };
}
function hist(max = 1e9) {
  return hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: max, numberOfSignificantValueDigits: 3 });
}

// ---------------------------------------------------------------------------------------------
// 1. check()

console.log(`building ${USERS} users' grants...`);
const rnd = mulberry32(7);
const keys: string[] = new Array(USERS);
const lo = new Uint32Array(USERS), hi = new Uint32Array(USERS);
const upper = new Float64Array(USERS);
const planIndex = new Uint8Array(USERS);
const poolIndex = new Uint16Array(USERS);
for (let i = 0; i < USERS; i++) {
  keys[i] = `user-${i.toString(36)}-${(i * 2654435761) >>> 0}`;
  const h = userHash(keys[i]);
  lo[i] = h.lo;
  hi[i] = h.hi;
  upper[i] = 0.5 + rnd() * 10;
  planIndex[i] = rnd() < 0.1 ? 1 : 0;
  poolIndex[i] = i % 2;
}
const grants = computeGrants(
  { count: USERS, userHashLo: lo, userHashHi: hi, upperReqPerSec: upper, planIndex, poolIndex },
  [{ capacityReqPerSec: USERS * 2 }, { capacityReqPerSec: USERS * 2 }],
  { plans: planLimits(names, PLANS), burstFactor: BURST, safe: planLimits(names, SAFE) },
);
/** Grant messages per partition (chunked snapshots), as a gateway receives them. */
function grantMessages(tickMs: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  const byPart: number[][] = Array.from({ length: PARTITIONS }, () => []);
  for (let i = 0; i < USERS; i++) byPart[lo[i] % PARTITIONS].push(i);
  for (let p = 0; p < PARTITIONS; p++) {
    const idx = byPart[p];
    const rec = new Uint8Array(idx.length * GRANT_RECORD_BYTES);
    const dv = new DataView(rec.buffer);
    idx.forEach((i, k) => writeGrantRecord(dv, k * GRANT_RECORD_BYTES, grants, i));
    out.push(...encodeGrantMessages(MessageKind.snapshot, p, PARTITIONS, tickMs, 3_600_000, rec, idx.length));
  }
  return out;
}

const clock = { t: Date.now() };
const fake = () => clock.t;
function makeClient(now: () => number): ThrottleClient {
  const c = new ThrottleClient({ plans: PLANS, safeLimits: SAFE, burstFactor: BURST, partitions: PARTITIONS, maxUsers: 2 * USERS, now });
  for (const m of grantMessages(now())) c.apply(m);
  // Pool 0 has spare, pool 1 is short: both branches of the rule are exercised.
  c.apply(encodePoolsMessage([
    { pool: 0, allocatedReqPerSec: 1, loadReqPerSec: 0.5, pressure: 0.5 },
    { pool: 1, allocatedReqPerSec: 1, loadReqPerSec: 1.3, pressure: 1.3 },
  ], now(), 3_600_000));
  return c;
}
function makePeer(now: () => number): MapThrottle {
  const p = new MapThrottle(names, planLimits(names, PLANS), planLimits(names, SAFE), BURST, PARTITIONS, (u) => userHash(u).lo % PARTITIONS, now);
  for (let i = 0; i < USERS; i++) {
    p.setGrant(keys[i], {
      u: grants.upperReqPerSec[i], g: grants.grantReqPerSec[i], p: grants.planReqPerSec[i], ut: grants.upperTokPerSec[i],
      gt: grants.grantTokPerSec[i], pt: grants.planTokPerSec[i], pool: grants.poolIndex[i], plan: grants.planIndex[i],
    });
  }
  p.leaseUntilMs.fill(now() + 3_600_000);
  p.pressure = Float32Array.of(0.5, 1.3);
  p.poolUntilMs = now() + 3_600_000;
  return p;
}

// A request sequence: 70 % of requests from a hot 1 % of users (bursty, so buckets empty and
// refuse), the rest uniform over all users; tokens per request 0..2000.
const OPS = 2_000_000;
const seqUser = new Int32Array(OPS);
const seqTokens = new Int32Array(OPS);
for (let i = 0; i < OPS; i++) {
  seqUser[i] = rnd() < 0.7 ? Math.floor(rnd() * Math.max(1, USERS / 100)) : Math.floor(rnd() * USERS);
  seqTokens[i] = Math.floor(rnd() * 2000);
}

// Same decisions first: both on the same input and the same (stepped) clock.
const agreement = !ONLY.has("check") ? undefined : (() => {
  const agreeClock = { t: clock.t };
  const nowA = () => agreeClock.t;
  const c = makeClient(nowA);
  const p = makePeer(nowA);
  const N = 300_000;
  let mismatches = 0, denied = 0;
  const reasons: Record<string, number> = {};
  for (let i = 0; i < N; i++) {
    agreeClock.t += 0.02; // 50k requests per simulated second
    const k = keys[seqUser[i]];
    const use = { requests: 1, tokens: seqTokens[i] };
    const a = c.check(k, use), b = p.check(k, use);
    if (a.allowed !== b.allowed || a.remaining !== b.remaining || a.limit !== b.limit || a.reason !== b.reason || a.retryAfterMs !== b.retryAfterMs || a.resetMs !== b.resetMs) {
      if (mismatches++ < 5) console.log("mismatch", i, k, a, b);
    }
    if (!a.allowed) denied++;
    reasons[a.reason] = (reasons[a.reason] ?? 0) + 1;
  }
  if (mismatches > 0) throw new Error(`ThrottleClient and the Map peer disagree on ${mismatches} of ${N} decisions`);
  console.log(`same decisions on ${N} checks (${denied} denied; reasons ${JSON.stringify(reasons)})`);
  return { checks: N, mismatches, denied, reasons };
})();

/** Per-call timing (hrtime around each call) and batch throughput. */
function timeChecks(name: string, check: (k: string, use: { requests: number; tokens: number }) => unknown) {
  const use = { requests: 1, tokens: 0 };
  // Warm-up (JIT) on the first part of the sequence.
  for (let i = 0; i < 200_000; i++) {
    use.tokens = seqTokens[i];
    check(keys[seqUser[i]], use);
  }
  gc();
  const h = hist();
  for (let i = 200_000; i < OPS; i++) {
    const k = keys[seqUser[i]];
    use.tokens = seqTokens[i];
    const t0 = process.hrtime.bigint();
    check(k, use);
    h.recordValue(Number(process.hrtime.bigint() - t0));
  }
  gc();
  const t0 = process.hrtime.bigint();
  const cpu0 = process.cpuUsage();
  for (let i = 0; i < OPS; i++) {
    use.tokens = seqTokens[i];
    check(keys[seqUser[i]], use);
  }
  const cpu = process.cpuUsage(cpu0);
  const meanNs = Number(process.hrtime.bigint() - t0) / OPS;
  // CPU time excludes the time this process waits for a core (the machine may be shared).
  const cpuNs = ((cpu.user + cpu.system) * 1000) / OPS;
  return { impl: name, ...pct(h), meanNsPerOp: Math.round(meanNs * 10) / 10, cpuNsPerOp: Math.round(cpuNs * 10) / 10 };
}

// Timer overhead: an empty timed region.
const timer = hist();
for (let i = 0; i < 1_000_000; i++) {
  const t0 = process.hrtime.bigint();
  timer.recordValue(Number(process.hrtime.bigint() - t0));
}
const timerOverhead = pct(timer);

const checkRows: ReturnType<typeof timeChecks>[] = [];
/** JS heap plus typed-array buffers, bytes (after a GC: the state a limiter holds). */
function heapBytes(): number {
  gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}
if (ONLY.has("check")) {
  {
  const mem0 = heapBytes();
  const c = makeClient(Date.now);
  gc();
  const memClient = heapBytes() - mem0;
  const row = timeChecks("ThrottleClient (typed arrays)", (k, u) => c.check(k, u));
  checkRows.push({ ...row, stateMiB: Math.round(memClient / 2 ** 20) } as never);
  }
  gc();
  {
  const mem0 = heapBytes();
  const p = makePeer(Date.now);
  gc();
  const memPeer = heapBytes() - mem0;
  const row = timeChecks("Map-of-objects peer", (k, u) => p.check(k, u));
  checkRows.push({ ...row, stateMiB: Math.round(memPeer / 2 ** 20) } as never);
  }
}
if (ONLY.has("check")) console.log(`\ncheck() at ${USERS} users with grants loaded (per-call ns include the timer; timer alone p50 ${timerOverhead.p50} / p99 ${timerOverhead.p99} ns)`);
if (ONLY.has("check")) console.table(checkRows);

// ---------------------------------------------------------------------------------------------
// 2. propagation and 3. load, with a real nats-server.

const server = await NatsServer.start();
const ncs: NatsConnection[] = [];
const conn = async () => {
  const nc = await connect({ servers: server.url, timeout: 60_000 });
  ncs.push(nc);
  return nc;
};

function forecastTick(users: number, partition: number, markerUpper: number, allChange: number, tickMs: number): Uint8Array[] {
  const rec = new Uint8Array(users * FORECAST_RECORD_BYTES);
  const dv = new DataView(rec.buffer);
  let k = 0;
  for (let i = 0; k < users && i < USERS; i++) {
    if (lo[i] % PARTITIONS !== partition) continue;
    const o = k * FORECAST_RECORD_BYTES;
    dv.setUint32(o, lo[i], true);
    dv.setUint32(o + 4, hi[i], true);
    const u = k === 0 ? markerUpper : upper[i] * allChange;
    dv.setFloat64(o + 8, u * 0.8, true);
    dv.setFloat64(o + 16, u, true);
    dv.setFloat64(o + 24, u * 0.5, true);
    k++;
  }
  return encodeForecastMessages(partition, tickMs, rec, k);
}
const markerIndex = (() => {
  for (let i = 0; i < USERS; i++) if (lo[i] % PARTITIONS === 0) return i;
  return 0;
})();

const propagation: Record<string, unknown>[] = [];
const svcNc = await conn();
const service = new GrantService({
  partitions: PARTITIONS, plans: PLANS, safeLimits: SAFE, grantTtlMs: 60_000, grantRefreshMs: 30_000, snapshotEveryTicks: 1_000_000,
  pools: () => [{ capacityReqPerSec: USERS * 2 }],
  // The marker user's grant must equal the forecast it was sent (how propagation is detected);
  // the exceedance feedback would correct it, so propagation is measured without it.
  feedback: { mode: "none" },
});
await service.start(svcNc);
const gw = new ThrottleClient({ plans: PLANS, safeLimits: SAFE, partitions: PARTITIONS, maxUsers: 2 * USERS });
await gw.start(await conn());
const pubNc = await conn();
for (const [label, users, allChange] of !ONLY.has("propagation") ? [] : [
  ["1k users/tick, one user changes", 1_000, false],
  ["10k users/tick, one user changes", 10_000, false],
  ["10k users/tick, every user changes", 10_000, true],
] as const) {
  const h = hist(60_000_000_000);
  const ITER = 200;
  let changeFactor = 1;
  for (let it = -10; it < ITER; it++) {
    // Moves of 50 % (the service sends changes above its 5 % delta tolerance); each case its own base.
    const marker = (allChange ? 10_000 : users / 10) * ((it & 1) === 0 ? 1 : 1.5);
    if (allChange) changeFactor = changeFactor === 1 ? 2 : 1;
    const msgs = forecastTick(users, 0, marker, changeFactor, Date.now());
    const seen = new Promise<void>((resolve, reject) => {
      const timeout = setTimeout(() => reject(new Error(`grant of the marker user not seen in 10 s (${label}, iteration ${it}): ${JSON.stringify(gw.grantOf(keys[markerIndex]))} ${JSON.stringify(service.stats())}`)), 10_000);
      gw.onApplied = () => {
        if (gw.grantOf(keys[markerIndex])?.upperReqPerSec === marker) {
          gw.onApplied = undefined;
          clearTimeout(timeout);
          resolve();
        }
      };
    });
    const t0 = process.hrtime.bigint();
    for (const m of msgs) pubNc.publish("foresight.forecasts.0", m);
    await seen;
    const dt = Number(process.hrtime.bigint() - t0);
    if (it >= 0) h.recordValue(dt);
  }
  const r = pct(h);
  propagation.push({ case: label, usersPerTick: users, ticks: ITER, p50Ms: r.p50 / 1e6, p99Ms: r.p99 / 1e6, maxMs: r.max / 1e6 });
}
console.log("\ngrant propagation: forecast tick published -> grant visible in a gateway (real nats-server)");
console.table(propagation);

// 3. Load at start: grants stream (snapshot of N users) vs KV (N keys, watch).
const load: Record<string, unknown>[] = [];
if (ONLY.has("load")) {
  const N = Math.min(100_000, USERS);
  const jsNc = await conn();
  // Snapshot: one service tick of N users in partition... spread over all partitions.
  const svc2 = new GrantService({ subjectPrefix: "loadbench", partitions: PARTITIONS, plans: PLANS, safeLimits: SAFE, snapshotEveryTicks: 1, pools: () => [{ capacityReqPerSec: N }] });
  await svc2.start(jsNc);
  for (let p = 0; p < PARTITIONS; p++) {
    const idx: number[] = [];
    for (let i = 0; i < N; i++) if (lo[i] % PARTITIONS === p) idx.push(i);
    const rec = new Uint8Array(idx.length * FORECAST_RECORD_BYTES);
    const dv = new DataView(rec.buffer);
    idx.forEach((i, k) => {
      dv.setUint32(k * 32, lo[i], true);
      dv.setUint32(k * 32 + 4, hi[i], true);
      dv.setFloat64(k * 32 + 16, upper[i], true);
    });
    const msgs = encodeForecastMessages(p, Date.now(), rec, idx.length);
    const chunks = msgs.map((m) => decodeForecastMessage(m));
    await svc2.tickPartition(p, chunks[0].tickTimeMs, chunks);
  }
  const runs = 5;
  const streamMs: number[] = [];
  for (let r = 0; r < runs; r++) {
    const c = new ThrottleClient({ subjectPrefix: "loadbench", plans: PLANS, safeLimits: SAFE, partitions: PARTITIONS, maxUsers: 2 * N });
    const t0 = performance.now();
    await c.start(await conn(), { loadTimeoutMs: 120_000 });
    streamMs.push(performance.now() - t0);
    if (c.stats().users !== N) throw new Error(`stream load: ${c.stats().users} users, expected ${N}`);
    await c.close();
  }
  // KV: the same N grants, one key per user (40-byte record values).
  const kv = await new Kvm(jetstream(jsNc, { timeout: 60_000 })).create("bench-grants", { history: 1 });
  const t0 = performance.now();
  const pending: Promise<unknown>[] = [];
  const rec = new Uint8Array(GRANT_RECORD_BYTES);
  const rdv = new DataView(rec.buffer);
  for (let i = 0; i < N; i++) {
    writeGrantRecord(rdv, 0, grants, i);
    pending.push(kv.put(hi[i].toString(16).padStart(8, "0") + lo[i].toString(16).padStart(8, "0"), rec.slice()));
    if (pending.length >= 2000) await Promise.all(pending.splice(0));
  }
  await Promise.all(pending);
  const kvWriteMs = performance.now() - t0;
  const kvMs: number[] = [];
  for (let r = 0; r < runs; r++) {
    const nc = await conn();
    const kv2 = await new Kvm(jetstream(nc, { timeout: 60_000 })).open("bench-grants");
    const c = new ThrottleClient({ subjectPrefix: "kvbench", plans: PLANS, safeLimits: SAFE, partitions: PARTITIONS, maxUsers: 2 * N });
    const t1 = performance.now();
    const w = await kv2.watch();
    let n = 0;
    for await (const e of w) {
      // Apply each entry as a one-record delta, as a KV-fed gateway would.
      const p = new DataView(e.value.buffer, e.value.byteOffset, e.value.byteLength).getUint32(0, true) % PARTITIONS;
      c.apply(encodeGrantMessages(MessageKind.delta, p, PARTITIONS, Date.now(), 60_000, e.value, 1)[0]);
      if (++n === N) break;
    }
    kvMs.push(performance.now() - t1);
    w.stop();
    if (c.stats().users !== N) throw new Error(`KV load: ${c.stats().users} users, expected ${N}`);
  }
  const med = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
  load.push({ case: `grants stream: last snapshot per partition (${N} users)`, users: N, medianMs: Math.round(med(streamMs)), runsMs: streamMs.map(Math.round) });
  load.push({ case: `KV bucket: watch of ${N} keys`, users: N, medianMs: Math.round(med(kvMs)), runsMs: kvMs.map(Math.round), writeAllMs: Math.round(kvWriteMs) });
  await svc2.stop();
}
console.log("\nstarting gateway: time to load the current grants");
console.table(load);

await gw.close();
await service.stop();
for (const nc of ncs) await nc.close();
await server.dispose();

writeBenchJson("bench/results/throttle.json", "npm run bench:throttle", {
  users: USERS,
  check: { agreement, timerOverheadNs: timerOverhead, rows: checkRows, targetP99Ns: 1000 },
  propagation: { rows: propagation, targetP99Ms: 50 },
  load: { rows: load },
});
console.log("\nwrote bench/results/throttle.json");
process.exit(0);
