/**
 * Engine benchmark (npm run bench:engine): ingest ns/event for (a) the WASM engine fed from
 * JS-filled buffers, (b) the TypeScript reference, (c) an idiomatic Map-of-objects peer
 * (bench/engine-peer.ts), all on the same Zipf-skewed event records over 1M distinct users;
 * tick time for 100k and 1M active users; bytes of state per user; peak RSS. Ingest is timed
 * twice per implementation: a first pass in which users enter the table, then the same events
 * again with later times (steady state, the headline figure). Before timing, the
 * three implementations must agree on every user's features (fails loudly otherwise).
 * Prints a table and writes bench/results/engine.json. Env: BENCH_EVENTS (default 4 000 000).
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { join } from "node:path";
import { Engine, type EngineOptions } from "../src/engine/index.ts";
import { EVENT_RECORD_BYTES, EventField as EV } from "../src/engine/layout.ts";
import { packageRoot } from "../src/engine/wasm.ts";
import { userHash } from "../src/telemetry/hash.ts";
import { MapPeer } from "./engine-peer.ts";
import { mulberry32 } from "../src/util/random.ts";

const N_USERS = Number(process.env.BENCH_USERS ?? 1_000_000);
const N_EVENTS = Number(process.env.BENCH_EVENTS ?? 4_000_000);
const BATCH = 4096;
const WIDTH = 60_000;
const LATENESS = 10_000;
const EVENTS_PER_SEC = 20_000; // event-time rate of the synthetic stream
const T0 = Date.UTC(2025, 0, 6, 9);
const gc = (globalThis as { gc?: () => void }).gc ?? (() => {});

const rng = mulberry32;

/** Event records: users Zipf(1.0) over nUsers distinct user hashes, event time advancing. */
function generate(nEvents: number, nUsers: number, seed: number): Uint8Array {
  const rand = rng(seed);
  const lo = new Uint32Array(nUsers), hi = new Uint32Array(nUsers);
  for (let i = 0; i < nUsers; i++) {
    const h = userHash(`bench-user-${i}`);
    lo[i] = h.lo;
    hi[i] = h.hi;
  }
  const cdf = new Float64Array(nUsers);
  let acc = 0;
  for (let i = 0; i < nUsers; i++) cdf[i] = acc += 1 / (i + 1);
  const buf = new ArrayBuffer(nEvents * EVENT_RECORD_BYTES);
  const dv = new DataView(buf);
  let now = T0;
  for (let i = 0; i < nEvents; i++) {
    const x = rand() * acc;
    let a = 0, b = nUsers - 1;
    while (a < b) {
      const m = (a + b) >> 1;
      if (cdf[m] < x) a = m + 1;
      else b = m;
    }
    now += 1000 / EVENTS_PER_SEC;
    const p = i * EVENT_RECORD_BYTES;
    dv.setUint32(p + EV.userHashLo, lo[a], true);
    dv.setUint32(p + EV.userHashHi, hi[a], true);
    dv.setFloat64(p + EV.timeMs, rand() < 0.1 ? now - rand() * 8000 : now - rand() * 500, true);
    dv.setInt32(p + EV.inputTokens, (rand() * 4000) | 0, true);
    dv.setInt32(p + EV.outputTokens, (rand() * 600) | 0, true);
    dv.setUint32(p + EV.routeHash, ((rand() * 16) | 0) * 0x9e3779b1, true);
    dv.setUint32(p + EV.ipHash, (((rand() * 8) | 0) + a * 31) * 0x85ebca6b, true);
    dv.setUint32(p + EV.uaHash, ((rand() * 3) | 0) * 0xc2b2ae35 + 1, true);
    dv.setInt32(p + EV.latencyMs, (rand() * 900) | 0, true);
    dv.setInt32(p + EV.bytes, (rand() * 20000) | 0, true);
    dv.setUint16(p + EV.status, rand() < 0.01 ? 503 : 200, true);
    dv.setUint16(p + EV.flags, rand() < 0.02 ? 1 : 0, true);
  }
  return new Uint8Array(buf);
}

const timeOf = (bytes: Uint8Array, i: number) =>
  new DataView(bytes.buffer, bytes.byteOffset + i * EVENT_RECORD_BYTES + EV.timeMs, 8).getFloat64(0, true);

interface Impl {
  name: string;
  /** Copies records [from, from+n) in and applies them; returns ns spent in (copy, apply). */
  ingest(bytes: Uint8Array, from: number, n: number): [number, number];
  tick(now: number): void;
}

function engineImpl(e: Engine, name: string): Impl {
  return {
    name,
    ingest(bytes, from, n) {
      const t0 = process.hrtime.bigint();
      const ib = e.ingressBuffer();
      ib.bytes.set(bytes.subarray(from * EVENT_RECORD_BYTES, (from + n) * EVENT_RECORD_BYTES));
      const t1 = process.hrtime.bigint();
      e.ingestFilled(n);
      const t2 = process.hrtime.bigint();
      return [Number(t1 - t0), Number(t2 - t1)];
    },
    tick: (now) => void e.tick(now),
  };
}

function peerImpl(p: MapPeer): Impl {
  return {
    name: "JS Map-of-objects peer",
    ingest(bytes, from, n) {
      const t0 = process.hrtime.bigint();
      p.ingest(new DataView(bytes.buffer, bytes.byteOffset + from * EVENT_RECORD_BYTES, n * EVENT_RECORD_BYTES), n);
      return [0, Number(process.hrtime.bigint() - t0)];
    },
    tick: (now) => p.tick(now),
  };
}

const OPTS: EngineOptions = { capacityUsers: 1 << 20, bucketWidthMs: WIDTH, allowedLatenessMs: LATENESS, ingressCapacity: 8192, wasmPath: process.env.BENCH_WASM };

/** Feeds all records in batches, ticking every 5 s of event time (ticks not timed). */
function run(impl: Impl, bytes: Uint8Array): { nsPerEvent: number; copyNsPerEvent: number; applyNsPerEvent: number } {
  const n = bytes.byteLength / EVENT_RECORD_BYTES;
  let copy = 0, apply = 0;
  let nextTick = timeOf(bytes, 0) + 5000;
  for (let i = 0; i < n; i += BATCH) {
    const k = Math.min(BATCH, n - i);
    const [c, a] = impl.ingest(bytes, i, k);
    copy += c;
    apply += a;
    const t = timeOf(bytes, i + k - 1);
    if (t >= nextTick) {
      impl.tick(t);
      nextTick = t + 5000;
    }
  }
  return { nsPerEvent: (copy + apply) / n, copyNsPerEvent: copy / n, applyNsPerEvent: apply / n };
}

/** (a), (b), (c) must produce the same per-user features before anything is timed. */
async function checkAgreement(): Promise<number> {
  const bytes = generate(300_000, 30_000, 7);
  const opts = { ...OPTS, capacityUsers: 1 << 15 };
  const w = await Engine.create(opts);
  const r = Engine.createReference(opts);
  const p = new MapPeer(opts.capacityUsers!, WIDTH, LATENESS);
  const n = 300_000;
  let compared = 0;
  let lastClosed = -1;
  const seen = new Map<number, [number, number]>();
  const dv = new DataView(bytes.buffer);
  for (let i = 0; i < n; i++) seen.set(dv.getUint32(i * 48, true) * 7 + dv.getUint32(i * 48 + 4, true), [dv.getUint32(i * 48, true), dv.getUint32(i * 48 + 4, true)]);
  const compareAll = () => {
    const closed = w.stats().closedBucket;
    if (closed === lastClosed) return;
    lastClosed = closed;
    for (const [lo, hi] of seen.values()) {
      const a = w.userFeatures({ lo, hi }), b = r.userFeatures({ lo, hi }), c = p.features(lo, hi, closed - 1);
      if (!a && !b && !c) continue;
      if (!a || !b || !c) throw new Error(`agreement: user ${hi}:${lo} tracked by ${[a, b, c].map((x) => (x ? 1 : 0)).join("")}`);
      for (const k of Object.keys(a) as (keyof typeof a)[]) {
        const x = a[k], y = b[k], z = c[k];
        const ok = (u: number, v: number) => u === v || Math.abs(u - v) <= 1e-9 * Math.max(Math.abs(u), Math.abs(v));
        if (!ok(x, y) || !ok(x, z)) throw new Error(`agreement: user ${hi}:${lo} bucket ${closed - 1} ${k}: wasm ${x}, reference ${y}, peer ${z}`);
      }
      compared++;
    }
  };
  let nextTick = timeOf(bytes, 0) + 5000;
  for (let i = 0; i < n; i += BATCH) {
    const k = Math.min(BATCH, n - i);
    const chunk = bytes.subarray(i * 48, (i + k) * 48);
    w.ingestRecords(chunk);
    r.ingestRecords(chunk);
    p.ingest(new DataView(chunk.buffer, chunk.byteOffset, chunk.byteLength), k);
    const t = timeOf(bytes, i + k - 1);
    if (t >= nextTick) {
      w.tick(t);
      r.tick(t);
      p.tick(t);
      compareAll();
      nextTick = t + 5000;
    }
  }
  const sw = w.stats();
  if (sw.eventsApplied !== p.applied || sw.late !== p.late || sw.early !== p.early || sw.invalid !== p.invalid)
    throw new Error(`agreement: counters differ: ${JSON.stringify(sw)} vs peer ${p.applied}/${p.late}/${p.early}/${p.invalid}`);
  if (JSON.stringify(sw) !== JSON.stringify(r.stats())) throw new Error("agreement: wasm and reference stats differ");
  if (compared < 10_000) throw new Error(`agreement: only ${compared} user-buckets compared`);
  return compared;
}

/** Median tick time (ms) closing one bucket over `users` active users (release WASM). */
async function tickTime(users: number, reps: number, makeEngine: () => Promise<Engine>): Promise<number> {
  const e = await makeEngine();
  const cap = e.ingressCapacity;
  let t = T0;
  for (let i = 0; i < users; i += cap) {
    const n = Math.min(cap, users - i);
    const { view } = e.ingressBuffer();
    for (let k = 0; k < n; k++) {
      const h = userHash(`tick-user-${i + k}`);
      view.setUint32(k * 48, h.lo, true);
      view.setUint32(k * 48 + 4, h.hi, true);
      view.setFloat64(k * 48 + 8, t + (k % 1000), true);
      for (let f = 16; f < 48; f += 4) view.setUint32(k * 48 + f, 0, true);
    }
    e.ingestFilled(n);
  }
  if (e.stats().usersTracked !== users) throw new Error(`tick bench: ${e.stats().usersTracked} users tracked, wanted ${users}`);
  const times: number[] = [];
  for (let r = 0; r < reps; r++) {
    t += WIDTH;
    const t0 = process.hrtime.bigint();
    const out = e.tick(t + LATENESS);
    times.push(Number(process.hrtime.bigint() - t0) / 1e6);
    if (out !== users) throw new Error(`tick bench: ${out} records`);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}

async function main(): Promise<void> {
  const started = Date.now();
  console.log(`engine bench: ${N_EVENTS.toLocaleString()} events over ${N_USERS.toLocaleString()} distinct users (Zipf 1.0), batches of ${BATCH}, ${cpus().length} cores (${cpus()[0]?.model ?? "?"}), load average ${loadavg()[0].toFixed(1)}`);
  const compared = await checkAgreement();
  console.log(`agreement check: wasm, reference and Map peer agree on ${compared.toLocaleString()} user-bucket feature sets`);
  type R = { nsPerEvent: number; eventsPerSec: number; copyNsPerEvent: number; applyNsPerEvent: number };
  type Res = Record<string, R & { firstPass: R }>;
  const makers: [string, () => Promise<Impl>][] = [
    ["wasm", async () => engineImpl(await Engine.create(OPTS), "WASM engine (release)")],
    ["reference", async () => engineImpl(Engine.createReference(OPTS), "TS reference")],
    ["peer", async () => peerImpl(new MapPeer(OPTS.capacityUsers!, WIDTH, LATENESS))],
  ];
  /** Times every implementation on nEvents events over nUsers users: a first pass, then the same again later. */
  const ingestBench = async (nUsers: number, nEvents: number, quick = false): Promise<{ results: Res; distinct: number }> => {
    const bytes = generate(nEvents, nUsers, 1);
    const distinct = new Set<number>();
    const dv = new DataView(bytes.buffer);
    for (let i = 0; i < nEvents; i++) distinct.add(dv.getUint32(i * 48, true));
    // Second pass: the same users and order, event time continuing after the first pass.
    const bytes2 = bytes.slice();
    const dv2 = new DataView(bytes2.buffer);
    const span = timeOf(bytes, nEvents - 1) - timeOf(bytes, 0) + 1000;
    for (let i = 0; i < nEvents; i++) dv2.setFloat64(i * 48 + EV.timeMs, dv2.getFloat64(i * 48 + EV.timeMs, true) + span, true);
    const results: Res = {};
    for (const [key, make] of quick ? makers.slice(0, 1) : makers) {
      // Warm-up on a prefix with a fresh instance (JIT), then the timed runs on another fresh one.
      if (!quick) run(await make(), bytes.subarray(0, Math.min(nEvents, 400_000) * EVENT_RECORD_BYTES));
      gc();
      const impl = await make();
      const first = run(impl, bytes); // users enter the table (insert-heavy)
      const r = run(impl, bytes2); // the same users again (steady state)
      results[key] = { ...r, eventsPerSec: 1e9 / r.nsPerEvent, firstPass: { ...first, eventsPerSec: 1e9 / first.nsPerEvent } };
      console.log(`  ${nUsers.toLocaleString()} users, ${impl.name}: ${r.nsPerEvent.toFixed(1)} ns/event steady (apply ${r.applyNsPerEvent.toFixed(1)}), ${first.nsPerEvent.toFixed(1)} ns/event first pass`);
      gc();
    }
    return { results, distinct: distinct.size };
  };
  if (process.env.BENCH_QUICK) {
    // Development aid: only the WASM ingest figures.
    await ingestBench(N_USERS, N_EVENTS, true);
    return;
  }
  const { results, distinct } = await ingestBench(N_USERS, N_EVENTS);
  const hot = await ingestBench(10_000, Math.min(N_EVENTS, 2_000_000));
  let bytesPerUser = 0, slotBytes = 0;
  {
    const e = await Engine.create(OPTS);
    const m = e.memoryInfo();
    bytesPerUser = m.bytesPerUser;
    slotBytes = m.slotBytes;
  }
  gc();
  const tick100k = await tickTime(100_000, 5, () => Engine.create(OPTS));
  gc();
  const tick1m = await tickTime(1_000_000, 5, () => Engine.create(OPTS));
  gc();
  const tickRef100k = await tickTime(100_000, 3, async () => Engine.createReference(OPTS));
  gc();
  const rssMiB = process.resourceUsage().maxRSS / 1024;
  const speedup = results.peer.nsPerEvent / results.wasm.nsPerEvent;

  const rows: [string, string, string][] = [
    ["(a) WASM ingest, copy + apply, batches of 4096", `${results.wasm.nsPerEvent.toFixed(1)} ns/event`, `${(results.wasm.eventsPerSec / 1e6).toFixed(1)} M events/s; target <= 25 ns`],
    ["    of which copy into linear memory / apply", `${results.wasm.copyNsPerEvent.toFixed(1)} / ${results.wasm.applyNsPerEvent.toFixed(1)} ns`, ""],
    ["(b) TS reference ingest", `${results.reference.nsPerEvent.toFixed(1)} ns/event`, `${(results.reference.eventsPerSec / 1e6).toFixed(1)} M events/s`],
    ["(c) JS Map-of-objects peer ingest", `${results.peer.nsPerEvent.toFixed(1)} ns/event`, `${(results.peer.eventsPerSec / 1e6).toFixed(1)} M events/s`],
    ["WASM speed-up over the Map peer", `${speedup.toFixed(1)}x`, "target >= 8x"],
    ["first pass (users entering): WASM / ref / peer", `${results.wasm.firstPass.nsPerEvent.toFixed(0)} / ${results.reference.firstPass.nsPerEvent.toFixed(0)} / ${results.peer.firstPass.nsPerEvent.toFixed(0)} ns`, `speed-up ${(results.peer.firstPass.nsPerEvent / results.wasm.firstPass.nsPerEvent).toFixed(1)}x`],
    ["hot set, 10k users: WASM / ref / peer (steady)", `${hot.results.wasm.nsPerEvent.toFixed(1)} / ${hot.results.reference.nsPerEvent.toFixed(1)} / ${hot.results.peer.nsPerEvent.toFixed(1)} ns`, `speed-up ${(hot.results.peer.nsPerEvent / hot.results.wasm.nsPerEvent).toFixed(1)}x`],
    ["WASM tick, 100k active users (1 bucket)", `${tick100k.toFixed(1)} ms`, ""],
    ["WASM tick, 1M active users (1 bucket)", `${tick1m.toFixed(1)} ms`, "target <= 150 ms"],
    ["TS reference tick, 100k active users", `${tickRef100k.toFixed(1)} ms`, ""],
    ["state per user (slot + index + output)", `${bytesPerUser.toFixed(1)} B`, `slot ${slotBytes} B; target <= 1024 B`],
    ["peak RSS (whole bench process)", `${rssMiB.toFixed(0)} MiB`, ""],
  ];
  const w0 = Math.max(...rows.map((r) => r[0].length)), w1 = Math.max(...rows.map((r) => r[1].length));
  console.log("\n" + rows.map(([a, b, c]) => `${a.padEnd(w0)}  ${b.padStart(w1)}  ${c}`).join("\n"));
  const json = {
    date: new Date().toISOString(), node: process.version, cpus: cpus().length, cpuModel: cpus()[0]?.model,
    events: N_EVENTS, distinctUsersUniverse: N_USERS, distinctUsersInStream: distinct, zipfExponent: 1.0, batch: BATCH,
    agreementUserBuckets: compared, ingest: results, wasmSpeedupOverPeer: speedup,
    hotSet: { users: 10_000, events: Math.min(N_EVENTS, 2_000_000), distinctUsersInStream: hot.distinct, ingest: hot.results },
    tickMs: { wasm100k: tick100k, wasm1M: tick1m, reference100k: tickRef100k }, bytesPerUser, slotBytes,
    peakRssMiB: rssMiB, seconds: (Date.now() - started) / 1000, loadAverageAtEnd: loadavg()[0],
    targets: { wasmNsPerEvent: 25, speedup: 8, tick1MMs: 150, bytesPerUser: 1024 },
  };
  const dir = join(packageRoot(), "bench", "results");
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "engine.json"), JSON.stringify(json, null, 2) + "\n");
  console.log(`\nwrote bench/results/engine.json (${json.seconds.toFixed(0)} s)`);
}

await main();
