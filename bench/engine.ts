/**
 * Engine benchmark (npm run bench:engine), on the configuration `foresight serve` runs (the
 * config defaults, i.e. forecastModel "ensemble": the headline rows) and on forecastModel "hw"
 * (a second set): ingest ns/event for (a) the WASM engine fed from JS-filled buffers, (b) the
 * TypeScript reference, (c) an idiomatic Map-of-objects peer (bench/engine-peer.ts), all on the
 * same Zipf-skewed event records over 1M distinct users; tick time for 100k and 1M active users
 * (a bucket in which every user had an event, and an idle bucket); memoryInfo() per
 * configuration; peak RSS. Ingest is timed twice per implementation: a first pass in which users
 * enter the table, then the same events again with later times (steady state, the headline).
 * Agreement is checked on the timed input itself: after the timed runs, a sample of the stream's
 * users is compared across WASM, reference and peer (features), and WASM against the reference
 * (every forecast record of the last tick); the 100k-user tick engines are compared likewise.
 * Nothing is written unless they agree. Prints a table and writes bench/results/engine.json,
 * with the figures of bench/results/engine-baseline.json (the same bench on the code before
 * issue 12) beside them. Env: BENCH_EVENTS (default 4 000 000), BENCH_USERS (1 000 000),
 * BENCH_TICK_USERS (100000,1000000), BENCH_SAVE_BASELINE=1 (write engine-baseline.json instead),
 * BENCH_BEFORE_WASM=<path> (the release build of the code before issue 12: its WASM ingest and
 * ticks are measured in the same run, next to this build's, for the before/after table; its
 * ingest is also timed in passes alternating with this build's, on two engines holding the same
 * users, so the no-regression check does not depend on the machine's drift between minutes),
 * BENCH_QUICK=1 (development aid: WASM figures of the served config only, nothing written).
 */
import { existsSync, readFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { join } from "node:path";
import { Engine, type EngineOptions } from "../src/engine/index.ts";
import { DEFAULT_CONFIG } from "../src/config/schema.ts";
import { engineOptionsFromConfig } from "../src/processor/engine-adapter.ts";
import { writeBenchJson } from "./env.ts";
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

/** Process CPU time (user + system) since `from`, ns. */
const cpuNsSince = (from: NodeJS.CpuUsage) => {
  const d = process.cpuUsage(from);
  return (d.user + d.system) * 1000;
};

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
  /** Copies records [from, from+n) in and applies them; returns ns spent in (copy, apply) and the process CPU ns of both. */
  ingest(bytes: Uint8Array, from: number, n: number): [number, number, number];
  tick(now: number): void;
}

function engineImpl(e: Engine, name: string): Impl {
  return {
    name,
    ingest(bytes, from, n) {
      const c0 = process.cpuUsage();
      const t0 = process.hrtime.bigint();
      const ib = e.ingressBuffer();
      ib.bytes.set(bytes.subarray(from * EVENT_RECORD_BYTES, (from + n) * EVENT_RECORD_BYTES));
      const t1 = process.hrtime.bigint();
      e.ingestFilled(n);
      const t2 = process.hrtime.bigint();
      return [Number(t1 - t0), Number(t2 - t1), cpuNsSince(c0)];
    },
    tick: (now) => void e.tick(now),
  };
}

function peerImpl(p: MapPeer): Impl {
  return {
    name: "JS Map-of-objects peer",
    ingest(bytes, from, n) {
      const c0 = process.cpuUsage();
      const t0 = process.hrtime.bigint();
      p.ingest(new DataView(bytes.buffer, bytes.byteOffset + from * EVENT_RECORD_BYTES, n * EVENT_RECORD_BYTES), n);
      return [0, Number(process.hrtime.bigint() - t0), cpuNsSince(c0)];
    },
    tick: (now) => p.tick(now),
  };
}

/** What `foresight serve` builds from the config defaults (src/processor/engine-adapter.ts), for 2^20 users. */
const SERVED: EngineOptions = { ...engineOptionsFromConfig(DEFAULT_CONFIG.engine), capacityUsers: 1 << 20, wasmPath: process.env.BENCH_WASM };
/** The same with Holt-Winters alone. */
const HW: EngineOptions = { ...SERVED, forecastModel: "hw" };
if (SERVED.bucketWidthMs !== WIDTH || SERVED.allowedLatenessMs !== LATENESS) throw new Error("bench: the config's bucket width / lateness changed; update WIDTH and LATENESS");

/** Feeds all records in batches, ticking every 5 s of event time (ticks not timed). */
function run(impl: Impl, bytes: Uint8Array): { nsPerEvent: number; copyNsPerEvent: number; applyNsPerEvent: number; cpuNsPerEvent: number } {
  const n = bytes.byteLength / EVENT_RECORD_BYTES;
  let copy = 0, apply = 0, cpu = 0;
  let nextTick = timeOf(bytes, 0) + 5000;
  for (let i = 0; i < n; i += BATCH) {
    const k = Math.min(BATCH, n - i);
    const [c, a, u] = impl.ingest(bytes, i, k);
    copy += c;
    apply += a;
    cpu += u;
    const t = timeOf(bytes, i + k - 1);
    if (t >= nextTick) {
      impl.tick(t);
      nextTick = t + 5000;
    }
  }
  return { nsPerEvent: (copy + apply) / n, copyNsPerEvent: copy / n, applyNsPerEvent: apply / n, cpuNsPerEvent: cpu / n };
}

const close = (u: number, v: number) => u === v || Math.abs(u - v) <= 1e-9 * Math.max(Math.abs(u), Math.abs(v));

/**
 * Agreement on the timed input: the users in `sample` have the same last-closed-bucket features
 * in the WASM engine, the reference and the peer, and the two engines' last tick wrote the same
 * forecast records (every one of them). Returns the user feature sets compared.
 */
function checkAgreement(w: Engine, r: Engine, p: MapPeer | undefined, sample: [number, number][]): number {
  const closed = w.stats().closedBucket;
  let compared = 0;
  for (const [lo, hi] of sample) {
    const a = w.userFeatures({ lo, hi }), b = r.userFeatures({ lo, hi }), c = p ? p.features(lo, hi, closed - 1) : a;
    if (!a && !b && !c) continue;
    if (!a || !b || !c) throw new Error(`agreement: user ${hi}:${lo} tracked by ${[a, b, c].map((x) => (x ? 1 : 0)).join("")}`);
    for (const k of Object.keys(a) as (keyof typeof a)[]) {
      const x = a[k], y = b[k], z = c[k];
      if (!close(x, y) || !close(x, z)) throw new Error(`agreement: user ${hi}:${lo} bucket ${closed - 1} ${k}: wasm ${x}, reference ${y}, peer ${z}`);
    }
    compared++;
  }
  const sw = w.stats(), sr = r.stats();
  if (JSON.stringify(sw) !== JSON.stringify(sr)) throw new Error(`agreement: wasm and reference stats differ: ${JSON.stringify(sw)} vs ${JSON.stringify(sr)}`);
  if (p && (sw.eventsApplied !== p.applied || sw.late !== p.late || sw.early !== p.early || sw.invalid !== p.invalid))
    throw new Error(`agreement: counters differ: ${JSON.stringify(sw)} vs peer ${p.applied}/${p.late}/${p.early}/${p.invalid}`);
  const fw = w.forecastView(), fr = r.forecastView();
  if (fw.count !== fr.count) throw new Error(`agreement: ${fw.count} forecast records from wasm, ${fr.count} from the reference`);
  for (let i = 0; i < fw.count; i++) {
    if (fw.u32[i * 8] !== fr.u32[i * 8] || fw.u32[i * 8 + 1] !== fr.u32[i * 8 + 1]) throw new Error(`agreement: forecast record ${i} is for another user`);
    for (let f = 1; f < 4; f++)
      if (!close(fw.f64[i * 4 + f], fr.f64[i * 4 + f])) throw new Error(`agreement: forecast record ${i} field ${f}: wasm ${fw.f64[i * 4 + f]}, reference ${fr.f64[i * 4 + f]}`);
  }
  return compared;
}

interface TickResult {
  /** Events each user sends in every bucket with events (the population's rate). */
  eventsPerUser: number;
  /** Median ms of ticks closing a bucket in which every user had events (the headline). */
  busyMs: number;
  /** Median ms of ticks closing a bucket without events. */
  idleMs: number;
  /** The same as process CPU time (robust against other processes on the machine). */
  busyCpuMs: number;
  idleCpuMs: number;
  busyAllMs: number[];
  idleAllMs: number[];
  /** Share of the busy ticks' bucket closes that ran LSTM-lite's GRU (dense tier); 0 with "hw". */
  denseShare: number;
  /** Threads that ran the ticks. */
  threads: number;
  engine: Engine;
}

/**
 * Populations of the tick bench. Buckets with events alternate with idle ones, so a user's LSTM
 * level settles near half of log1p(events per bucket): with 4 events per busy bucket it stays
 * above the default tier threshold (log1p(1)), so every user runs the GRU (the dense worst case);
 * with 1 event it falls below after the first idle bucket (the sparse tier).
 */
const TICK_DENSE_EVENTS = 4;
const TICK_SPARSE_EVENTS = 1;
/**
 * Untimed reps before the timed ones. A user's level starts at log1p of its first bucket's count
 * (0.69 for 1 event) and moves 5 % of the way per bucket, so the sparse population needs about 19
 * busy/idle pairs to settle below log1p(0.5); the dense one stays dense from the start.
 */
const TICK_DENSE_WARM_REPS = 1;
/**
 * Timed reps of this build's tick (the headline rows; their median is the figure, every rep is in
 * the JSON): 9, since the machine's speed drifts by up to 1.5x from one second to the next and a
 * median of 5 moved with it (reps 144-191 ms in one run).
 */
const TICK_REPS = 9;
const TICK_SPARSE_WARM_REPS = 24;

/**
 * Tick time over `users` active users: each rep first gives every user `eventsPerUser` events in
 * the next bucket (not timed), then times the tick that closes it (busy), then times the tick
 * closing the following, empty bucket (idle). `warmReps` untimed reps first (they settle the users'
 * tier), then medians of `reps`.
 */
async function tickTime(users: number, reps: number, makeEngine: () => Promise<Engine>, eventsPerUser = TICK_DENSE_EVENTS, warmReps = TICK_DENSE_WARM_REPS): Promise<TickResult> {
  const e = await makeEngine();
  const cap = e.ingressCapacity;
  const hashes = new Uint32Array(users * 2);
  for (let i = 0; i < users; i++) {
    const h = userHash(`tick-user-${i}`);
    hashes[2 * i] = h.lo;
    hashes[2 * i + 1] = h.hi;
  }
  let t = T0;
  const fill = (bucketStart: number) => {
    const total = users * eventsPerUser;
    for (let i = 0; i < total; i += cap) {
      const n = Math.min(cap, total - i);
      const { view } = e.ingressBuffer();
      for (let k = 0; k < n; k++) {
        // Event j of the bucket goes to user j mod users (each user's events spread over the bucket).
        const j = i + k, u = j % users;
        view.setUint32(k * 48, hashes[2 * u], true);
        view.setUint32(k * 48 + 4, hashes[2 * u + 1], true);
        view.setFloat64(k * 48 + 8, bucketStart + (u % 1000) + Math.floor(j / users) * 10_000, true);
        for (let f = 16; f < 48; f += 4) view.setUint32(k * 48 + f, 0, true);
      }
      if (e.ingestFilled(n) !== n) throw new Error("tick bench: events not applied");
    }
  };
  const busy: number[] = [], idle: number[] = [], busyCpu: number[] = [], idleCpu: number[] = [];
  let denseCloses = 0, closes = 0;
  const timed = (now: number, wall: number[], cpu: number[], keep: boolean) => {
    const c0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    const out = e.tick(now);
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    if (keep) {
      wall.push(ms);
      cpu.push(cpuNsSince(c0) / 1e6);
    }
    if (out !== users) throw new Error(`tick bench: ${out} records`);
  };
  for (let r = 0; r < warmReps + reps; r++) {
    const keep = r >= warmReps;
    fill(t);
    if (e.stats().usersTracked !== users) throw new Error(`tick bench: ${e.stats().usersTracked} users tracked, wanted ${users}`);
    timed(t + WIDTH + LATENESS, busy, busyCpu, keep); // closes bucket [t, t + W) with events from every user
    if (keep) {
      const tiers = e.lstmTierStats();
      denseCloses += tiers.denseCloses;
      closes += tiers.closes;
    }
    timed(t + 2 * WIDTH + LATENESS, idle, idleCpu, keep); // closes [t + W, t + 2W): no events
    t += 2 * WIDTH;
  }
  const med = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];
  const threads = e.tickThreads;
  // The tick threads stop here; the engine stays readable (agreement checks) on this thread.
  await e.close();
  return {
    eventsPerUser, busyMs: med(busy), idleMs: med(idle), busyCpuMs: med(busyCpu), idleCpuMs: med(idleCpu), busyAllMs: busy, idleAllMs: idle,
    denseShare: closes ? denseCloses / closes : 0, engine: e, threads,
  };
}

type IngestFigures = { nsPerEvent: number; eventsPerSec: number; copyNsPerEvent: number; applyNsPerEvent: number; cpuNsPerEvent: number };
type IngestResults = Record<string, IngestFigures & { firstPass: IngestFigures }>;

/**
 * Times every implementation on nEvents events over nUsers users (a first pass, then the same
 * again later), then checks agreement on that input. `which` limits the implementations.
 */
async function ingestBench(opts: EngineOptions, nUsers: number, nEvents: number, which: ("wasm" | "reference" | "peer")[]): Promise<{ results: IngestResults; distinct: number; agreedUsers: number }> {
  const makers: Record<string, () => Promise<[Impl, Engine | MapPeer]>> = {
    wasm: async () => { const e = await Engine.create(opts); return [engineImpl(e, "WASM engine (release)"), e]; },
    reference: async () => { const e = Engine.createReference(opts); return [engineImpl(e, "TS reference"), e]; },
    peer: async () => { const p = new MapPeer(opts.capacityUsers!, WIDTH, LATENESS); return [peerImpl(p), p]; },
  };
  const bytes = generate(nEvents, nUsers, 1);
  const distinct = new Map<number, [number, number]>();
  const dv = new DataView(bytes.buffer);
  for (let i = 0; i < nEvents; i++) distinct.set(dv.getUint32(i * 48, true), [dv.getUint32(i * 48, true), dv.getUint32(i * 48 + 4, true)]);
  // Second pass: the same users and order, event time continuing after the first pass.
  const bytes2 = bytes.slice();
  const dv2 = new DataView(bytes2.buffer);
  const span = timeOf(bytes, nEvents - 1) - timeOf(bytes, 0) + 1000;
  for (let i = 0; i < nEvents; i++) dv2.setFloat64(i * 48 + EV.timeMs, dv2.getFloat64(i * 48 + EV.timeMs, true) + span, true);
  const results: IngestResults = {};
  const kept: Record<string, Engine | MapPeer> = {};
  for (const key of which) {
    // Warm-up on a prefix with a fresh instance (JIT), then the timed runs on another fresh one.
    const [warmImpl, warm] = await makers[key]();
    run(warmImpl, bytes.subarray(0, Math.min(nEvents, 400_000) * EVENT_RECORD_BYTES));
    if (warm instanceof Engine) await warm.close();
    gc();
    const [impl, inst] = await makers[key]();
    const first = run(impl, bytes); // users enter the table (insert-heavy)
    const r = run(impl, bytes2); // the same users again (steady state)
    kept[key] = inst;
    results[key] = { ...r, eventsPerSec: 1e9 / r.nsPerEvent, firstPass: { ...first, eventsPerSec: 1e9 / first.nsPerEvent } };
    console.log(`  ${nUsers.toLocaleString()} users, ${opts.forecastModel}, ${impl.name}: ${r.nsPerEvent.toFixed(1)} ns/event steady (apply ${r.applyNsPerEvent.toFixed(1)}; CPU ${r.cpuNsPerEvent.toFixed(1)}), ${first.nsPerEvent.toFixed(1)} ns/event first pass; load ${loadavg()[0].toFixed(1)}`);
    gc();
  }
  let agreedUsers = 0;
  if (kept.wasm && kept.reference) {
    // Every 50th distinct user of the timed stream (hot and cold users alike), at least 20k when there are.
    const all = [...distinct.values()];
    const stride = Math.max(1, Math.floor(all.length / 20_000));
    const sample = all.filter((_, i) => i % stride === 0);
    agreedUsers = checkAgreement(kept.wasm as Engine, kept.reference as Engine, kept.peer as MapPeer | undefined, sample);
    console.log(`  agreement on the timed input: ${agreedUsers.toLocaleString()} sampled users' features (wasm${kept.peer ? ", reference, peer" : ", reference"}) and all ${(kept.wasm as Engine).forecastView().count.toLocaleString()} forecast records (wasm, reference) agree`);
  }
  for (const inst of Object.values(kept)) if (inst instanceof Engine) await inst.close();
  return { results, distinct: distinct.size, agreedUsers };
}

/**
 * The build before and this one on the same ingest, alternating pass by pass (before, this, before,
 * this, ...) on two engines that hold the same users: the machine's speed drifts by tens of percent
 * over minutes here, so two separate runs a minute apart can differ by more than the builds do.
 * Each steady pass continues the event time of the previous one. Medians of `reps` passes each.
 */
async function interleavedIngest(beforeOpts: EngineOptions, opts: EngineOptions, nUsers: number, nEvents: number, reps: number): Promise<{ beforeNs: number[]; afterNs: number[]; beforeMedianNs: number; afterMedianNs: number }> {
  const bytes = generate(nEvents, nUsers, 1);
  const span = timeOf(bytes, nEvents - 1) - timeOf(bytes, 0) + 1000;
  const shifted = (k: number) => {
    const b = bytes.slice();
    const dv = new DataView(b.buffer);
    for (let i = 0; i < nEvents; i++) dv.setFloat64(i * 48 + EV.timeMs, dv.getFloat64(i * 48 + EV.timeMs, true) + k * span, true);
    return b;
  };
  const engines = [await Engine.create(beforeOpts), await Engine.create({ ...opts, tickThreads: 1 })];
  const impls = engines.map((e, i) => engineImpl(e, i === 0 ? "before" : "this build"));
  for (const impl of impls) run(impl, bytes); // users enter both tables
  const ns: number[][] = [[], []];
  for (let r = 0; r < reps; r++) {
    const b = shifted(r + 1);
    for (let i = 0; i < 2; i++) ns[i].push(run(impls[i], b).nsPerEvent);
  }
  for (const e of engines) await e.close();
  const med = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];
  console.log(`  ingest, 1M users, interleaved passes: before ${ns[0].map((x) => x.toFixed(1)).join(", ")} ns/event; this build ${ns[1].map((x) => x.toFixed(1)).join(", ")} ns/event`);
  return { beforeNs: ns[0], afterNs: ns[1], beforeMedianNs: med(ns[0]), afterMedianNs: med(ns[1]) };
}

interface ConfigFigures {
  forecastModel: string;
  /** The same WASM figures for the build in BENCH_BEFORE_WASM (the code before issue 12), measured next to them in this run. */
  before?: { wasmPath: string; memoryInfo: ReturnType<Engine["memoryInfo"]>; tick: Record<string, Omit<TickResult, "engine">>; tickSparse?: Record<string, Omit<TickResult, "engine">>; ingest1M: IngestResults; ingestInterleaved?: Awaited<ReturnType<typeof interleavedIngest>> };
  memoryInfo: ReturnType<Engine["memoryInfo"]>;
  tick: Record<string, Omit<TickResult, "engine">>;
  /** The same ticks on one thread (when the configuration has tick threads). */
  tickOneThread?: Record<string, Omit<TickResult, "engine">>;
  /** Ensemble only: the same ticks over users below the tier threshold (TICK_SPARSE_EVENTS per busy bucket). */
  tickSparse?: Record<string, Omit<TickResult, "engine">>;
  referenceTick100k?: { busyMs: number; idleMs: number; agreedForecastRecords: number };
  ingest1M: IngestResults;
  ingestAgreedUsers: number;
  distinctUsersInStream: number;
  hotSet?: { users: number; events: number; distinctUsersInStream: number; ingest: IngestResults };
}

async function memoryInfoOf(opts: EngineOptions): Promise<ReturnType<Engine["memoryInfo"]>> {
  const e = await Engine.create(opts);
  const m = e.memoryInfo();
  await e.close();
  return m;
}

async function configFigures(opts: EngineOptions, full: boolean, beforeWasm?: string): Promise<ConfigFigures> {
  const label = opts.forecastModel!;
  // The build before has no tick threads.
  const beforeOpts: EngineOptions | undefined = beforeWasm ? { ...opts, wasmPath: beforeWasm, tickThreads: 1 } : undefined;
  let before: ConfigFigures["before"];
  if (beforeOpts) {
    console.log(`  before (${beforeWasm}):`);
    const bi = await ingestBench(beforeOpts, N_USERS, N_EVENTS, ["wasm"]);
    before = { wasmPath: beforeWasm!, memoryInfo: await memoryInfoOf(beforeOpts), tick: {}, ingest1M: bi.results };
    gc();
  }
  const ing = await ingestBench(opts, N_USERS, N_EVENTS, full ? ["wasm", "reference", "peer"] : ["wasm"]);
  if (beforeOpts && before) {
    gc();
    before.ingestInterleaved = await interleavedIngest(beforeOpts, opts, N_USERS, N_EVENTS, 5);
    gc();
  }
  const hot = full ? await ingestBench(opts, 10_000, Math.min(N_EVENTS, 2_000_000), ["wasm", "reference", "peer"]) : undefined;
  const memoryInfo = await memoryInfoOf(opts);
  gc();
  const tick: ConfigFigures["tick"] = {};
  let tickSparse: ConfigFigures["tickSparse"];
  let tickOneThread: ConfigFigures["tickOneThread"];
  let referenceTick100k: ConfigFigures["referenceTick100k"];
  for (const users of TICK_USERS) {
    if (beforeOpts && before) {
      // The build before, right before this one on the same users (the machine's load drifts).
      const { engine: _old, ...b } = await tickTime(users, 5, () => Engine.create(beforeOpts));
      before.tick[String(users)] = b;
      console.log(`  tick ${label} BEFORE, ${users.toLocaleString()} users: ${b.busyMs.toFixed(1)} ms closing a bucket with events (CPU ${b.busyCpuMs.toFixed(1)}), ${b.idleMs.toFixed(1)} ms idle (CPU ${b.idleCpuMs.toFixed(1)}); load ${loadavg()[0].toFixed(1)}`);
      gc();
      if (label === "ensemble") {
        // The sparse population on the build before (which has no tiers: every user runs the GRU).
        const { engine: _olds, ...bs } = await tickTime(users, 5, () => Engine.create(beforeOpts), TICK_SPARSE_EVENTS, TICK_SPARSE_WARM_REPS);
        (before.tickSparse ??= {})[String(users)] = bs;
        console.log(`  tick ${label} BEFORE, ${users.toLocaleString()} users of the sparse population: ${bs.busyMs.toFixed(1)} ms (CPU ${bs.busyCpuMs.toFixed(1)})`);
        gc();
      }
    }
    if ((opts.tickThreads ?? 1) > 1) {
      // This build on one thread: what the tick threads add, on the same users.
      const one = await tickTime(users, 5, () => Engine.create({ ...opts, tickThreads: 1 }));
      const { engine: _one, ...oneRest } = one;
      (tickOneThread ??= {})[String(users)] = oneRest;
      console.log(`  tick ${label}, ${users.toLocaleString()} users, one thread: ${one.busyMs.toFixed(1)} ms closing a bucket with events (CPU ${one.busyCpuMs.toFixed(1)}), ${one.idleMs.toFixed(1)} ms idle; load ${loadavg()[0].toFixed(1)}`);
      gc();
    }
    const w = await tickTime(users, TICK_REPS, () => Engine.create(opts));
    const { engine: we, ...rest } = w;
    tick[String(users)] = rest;
    // The population must be what the row says: with the ensemble, every busy close ran the GRU.
    if (label === "ensemble" && w.denseShare !== 1) throw new Error(`tick bench: dense population, but ${(100 * w.denseShare).toFixed(1)} % of closes ran the GRU`);
    console.log(`  tick ${label}, ${users.toLocaleString()} users, ${w.eventsPerUser} events each: ${w.busyMs.toFixed(1)} ms closing a bucket with events (CPU ${w.busyCpuMs.toFixed(1)}; ${w.busyAllMs.map((x) => x.toFixed(0)).join(", ")}), ${w.idleMs.toFixed(1)} ms an idle bucket (CPU ${w.idleCpuMs.toFixed(1)}); load ${loadavg()[0].toFixed(1)}`);
    if (label === "ensemble") {
      gc();
      const sp = await tickTime(users, 5, () => Engine.create(opts), TICK_SPARSE_EVENTS, TICK_SPARSE_WARM_REPS);
      const { engine: _se, ...spRest } = sp;
      if (sp.denseShare !== 0) throw new Error(`tick bench: sparse population, but ${(100 * sp.denseShare).toFixed(1)} % of closes ran the GRU`);
      (tickSparse ??= {})[String(users)] = spRest;
      console.log(`  tick ${label}, ${users.toLocaleString()} sparse-tier users, ${sp.eventsPerUser} event each: ${sp.busyMs.toFixed(1)} ms closing a bucket with events (CPU ${sp.busyCpuMs.toFixed(1)}), ${sp.idleMs.toFixed(1)} ms idle (CPU ${sp.idleCpuMs.toFixed(1)}); load ${loadavg()[0].toFixed(1)}`);
    }
    if (full && users === 100_000) {
      // The reference on the same input; its output must equal the WASM engine's.
      const r = await tickTime(users, 3, async () => Engine.createReference(opts));
      // Same users and times, but 5 vs 3 reps: compare with a WASM engine that ran 3 reps too.
      const w3 = await tickTime(users, 3, () => Engine.create(opts));
      checkAgreement(w3.engine, r.engine, undefined, []);
      referenceTick100k = { busyMs: r.busyMs, idleMs: r.idleMs, agreedForecastRecords: r.engine.forecastView().count };
      console.log(`  reference tick ${label}, 100,000 users: ${r.busyMs.toFixed(1)} / ${r.idleMs.toFixed(1)} ms; its ${users.toLocaleString()} forecast records equal the WASM engine's`);
    }
    gc();
  }
  return {
    forecastModel: label, before, memoryInfo, tick, tickOneThread, tickSparse, referenceTick100k, ingest1M: ing.results, ingestAgreedUsers: ing.agreedUsers,
    distinctUsersInStream: ing.distinct,
    hotSet: hot ? { users: 10_000, events: Math.min(N_EVENTS, 2_000_000), distinctUsersInStream: hot.distinct, ingest: hot.results } : undefined,
  };
}

const TICK_USERS = (process.env.BENCH_TICK_USERS ?? "100000,1000000").split(",").map(Number);

async function main(): Promise<void> {
  const started = Date.now();
  console.log(`engine bench: ${N_EVENTS.toLocaleString()} events over ${N_USERS.toLocaleString()} distinct users (Zipf 1.0), batches of ${BATCH}, ${cpus().length} cores (${cpus()[0]?.model ?? "?"}), load average ${loadavg()[0].toFixed(1)}`);
  console.log(`served configuration (config defaults): ${JSON.stringify({ ...SERVED, wasmPath: undefined })}`);
  if (process.env.BENCH_QUICK) {
    // Development aid: WASM figures of the served config only; nothing written.
    await configFigures(SERVED, false);
    return;
  }
  const beforeWasm = process.env.BENCH_BEFORE_WASM;
  const served = await configFigures(SERVED, true, beforeWasm);
  const hw = await configFigures(HW, false, beforeWasm);
  const rssMiB = process.resourceUsage().maxRSS / 1024;
  const s = served.ingest1M;
  const speedup = s.peer.nsPerEvent / s.wasm.nsPerEvent;
  const hot = served.hotSet!.ingest;
  const rows: [string, string, string][] = [
    ["served config (forecastModel \"ensemble\")", "", ""],
    ["(a) WASM ingest, 1M users, copy + apply, batches of 4096", `${s.wasm.nsPerEvent.toFixed(1)} ns/event`, `${(s.wasm.eventsPerSec / 1e6).toFixed(1)} M events/s; CPU ${s.wasm.cpuNsPerEvent.toFixed(1)} ns; target <= 25 ns`],
    ["    of which copy into linear memory / apply", `${s.wasm.copyNsPerEvent.toFixed(1)} / ${s.wasm.applyNsPerEvent.toFixed(1)} ns`, ""],
    ["(b) TS reference ingest", `${s.reference.nsPerEvent.toFixed(1)} ns/event`, `${(s.reference.eventsPerSec / 1e6).toFixed(1)} M events/s`],
    ["(c) JS Map-of-objects peer ingest", `${s.peer.nsPerEvent.toFixed(1)} ns/event`, `${(s.peer.eventsPerSec / 1e6).toFixed(1)} M events/s; CPU ${s.peer.cpuNsPerEvent.toFixed(1)} ns`],
    ["WASM speed-up over the Map peer", `${speedup.toFixed(1)}x`, `CPU time ${(s.peer.cpuNsPerEvent / s.wasm.cpuNsPerEvent).toFixed(1)}x; target >= 8x`],
    ["first pass (users entering): WASM / ref / peer", `${s.wasm.firstPass.nsPerEvent.toFixed(0)} / ${s.reference.firstPass.nsPerEvent.toFixed(0)} / ${s.peer.firstPass.nsPerEvent.toFixed(0)} ns`, `speed-up ${(s.peer.firstPass.nsPerEvent / s.wasm.firstPass.nsPerEvent).toFixed(1)}x`],
    ["hot set, 10k users: WASM / ref / peer (steady)", `${hot.wasm.nsPerEvent.toFixed(1)} / ${hot.reference.nsPerEvent.toFixed(1)} / ${hot.peer.nsPerEvent.toFixed(1)} ns`, `speed-up ${(hot.peer.nsPerEvent / hot.wasm.nsPerEvent).toFixed(1)}x`],
  ];
  for (const [label, f] of [["served", served], ["hw", hw]] as const) {
    if (label === "hw") {
      rows.push(["forecastModel \"hw\" (Holt-Winters alone)", "", ""]);
      rows.push(["WASM ingest, 1M users", `${f.ingest1M.wasm.nsPerEvent.toFixed(1)} ns/event`, ""]);
    }
    for (const u of TICK_USERS)
      rows.push([`WASM tick, ${u.toLocaleString()} active users${label === "served" ? " (dense tier)" : ""} (bucket with events / idle)`, `${f.tick[u].busyMs.toFixed(1)} / ${f.tick[u].idleMs.toFixed(1)} ms`, `CPU ${f.tick[u].busyCpuMs.toFixed(1)} / ${f.tick[u].idleCpuMs.toFixed(1)} ms${u === 1_000_000 ? "; target <= 150 ms" : ""}`]);
    if (f.tickOneThread)
      for (const u of TICK_USERS)
        rows.push([`  the same on one thread (tickThreads 1)`, `${f.tickOneThread[u].busyMs.toFixed(1)} / ${f.tickOneThread[u].idleMs.toFixed(1)} ms`, `${f.tick[u].threads} threads: ${(f.tickOneThread[u].busyMs / f.tick[u].busyMs).toFixed(2)}x faster`]);
    if (f.tickSparse)
      for (const u of TICK_USERS)
        rows.push([`WASM tick, ${u.toLocaleString()} sparse-tier users (bucket with events / idle)`, `${f.tickSparse[u].busyMs.toFixed(1)} / ${f.tickSparse[u].idleMs.toFixed(1)} ms`, `CPU ${f.tickSparse[u].busyCpuMs.toFixed(1)} / ${f.tickSparse[u].idleCpuMs.toFixed(1)} ms`]);
    if (f.referenceTick100k) rows.push(["TS reference tick, 100k active users", `${f.referenceTick100k.busyMs.toFixed(1)} / ${f.referenceTick100k.idleMs.toFixed(1)} ms`, ""]);
    rows.push(["state per user (slot + index + output)", `${f.memoryInfo.bytesPerUser.toFixed(1)} B`, `slot ${f.memoryInfo.slotBytes} B; target <= 1024 B`]);
  }
  rows.push(["peak RSS (whole bench process)", `${rssMiB.toFixed(0)} MiB`, ""]);
  const w0 = Math.max(...rows.map((r) => r[0].length)), w1 = Math.max(...rows.map((r) => r[1].length));
  console.log("\n" + rows.map(([a, b, c]) => `${a.padEnd(w0)}  ${b.padStart(w1)}  ${c}`).join("\n"));

  const headline = {
    tick100kMs: served.tick["100000"]?.busyMs, tick100kIdleMs: served.tick["100000"]?.idleMs,
    tick1MMs: served.tick["1000000"]?.busyMs, tick1MIdleMs: served.tick["1000000"]?.idleMs,
    tick100kCpuMs: served.tick["100000"]?.busyCpuMs, tick1MCpuMs: served.tick["1000000"]?.busyCpuMs,
    tick1MSparseMs: served.tickSparse?.["1000000"]?.busyMs, tick1MSparseCpuMs: served.tickSparse?.["1000000"]?.busyCpuMs,
    tick100kSparseCpuMs: served.tickSparse?.["100000"]?.busyCpuMs,
    tick100kOneThreadMs: served.tickOneThread?.["100000"]?.busyMs, tick1MOneThreadMs: served.tickOneThread?.["1000000"]?.busyMs,
    tickThreads: served.tick["1000000"]?.threads ?? served.tick["100000"]?.threads,
    ingestCpuNsPerEvent: s.wasm.cpuNsPerEvent,
    bytesPerUser: served.memoryInfo.bytesPerUser, slotBytes: served.memoryInfo.slotBytes,
    ingestNsPerEvent: s.wasm.nsPerEvent, speedupOverPeer: speedup,
  };
  const body = {
    events: N_EVENTS, distinctUsersUniverse: N_USERS, zipfExponent: 1.0, batch: BATCH,
    servedOptions: { ...SERVED, wasmPath: undefined }, headline, served, hw,
    peakRssMiB: rssMiB, seconds: (Date.now() - started) / 1000,
    targets: { wasmNsPerEvent: 25, speedup: 8, tick1MMs: 150, bytesPerUser: 1024 },
  };
  const dir = join(packageRoot(), "bench", "results");
  // The command as run: the BENCH_* settings in effect, then the script.
  const settings = Object.entries(process.env).filter(([k]) => k.startsWith("BENCH_")).map(([k, v]) => `${k}=${v}`);
  const command = [...settings, "npm run bench:engine"].join(" ");
  if (process.env.BENCH_SAVE_BASELINE) {
    writeBenchJson(join(dir, "engine-baseline.json"), `${command} (BENCH_SAVE_BASELINE=1, on the code before issue 12)`, body);
    console.log(`\nwrote bench/results/engine-baseline.json`);
    return;
  }
  const basePath = join(dir, "engine-baseline.json");
  const headlineOf = (f: ConfigFigures["before"], ingestPeer: number) => f && ({
    tick100kMs: f.tick["100000"]?.busyMs, tick100kIdleMs: f.tick["100000"]?.idleMs,
    tick1MMs: f.tick["1000000"]?.busyMs, tick1MIdleMs: f.tick["1000000"]?.idleMs,
    tick100kCpuMs: f.tick["100000"]?.busyCpuMs, tick1MCpuMs: f.tick["1000000"]?.busyCpuMs,
    tick1MSparseMs: f.tickSparse?.["1000000"]?.busyMs, tick1MSparseCpuMs: f.tickSparse?.["1000000"]?.busyCpuMs,
    tick100kSparseCpuMs: f.tickSparse?.["100000"]?.busyCpuMs,
    ingestCpuNsPerEvent: f.ingest1M.wasm.cpuNsPerEvent,
    bytesPerUser: f.memoryInfo.bytesPerUser, slotBytes: f.memoryInfo.slotBytes,
    ingestNsPerEvent: f.ingest1M.wasm.nsPerEvent, speedupOverPeer: ingestPeer / f.ingest1M.wasm.nsPerEvent,
  });
  // The build before measured in this run (BENCH_BEFORE_WASM) if given, else the committed baseline run.
  const base = served.before
    ? { env: { date: `this run, ${served.before.wasmPath}` }, headline: headlineOf(served.before, s.peer.nsPerEvent)! }
    : existsSync(basePath) ? (JSON.parse(readFileSync(basePath, "utf8")) as { env: { date: string }; headline: typeof headline }) : undefined;
  let beforeAfter: unknown;
  if (base) {
    const b = base.headline;
    const t: [string, number | undefined, number | undefined][] = [
      ["tick, 100k users, bucket with events (ms)", b.tick100kMs, headline.tick100kMs],
      ["tick, 100k users, idle bucket (ms)", b.tick100kIdleMs, headline.tick100kIdleMs],
      ["tick, 1M users, bucket with events (ms)", b.tick1MMs, headline.tick1MMs],
      ["tick, 1M users, idle bucket (ms)", b.tick1MIdleMs, headline.tick1MIdleMs],
      ["tick, 100k users, bucket with events, CPU (ms)", b.tick100kCpuMs, headline.tick100kCpuMs],
      ["tick, 1M users, bucket with events, CPU (ms)", b.tick1MCpuMs, headline.tick1MCpuMs],
      ["tick, 1M sparse-population users (ms)", b.tick1MSparseMs, headline.tick1MSparseMs],
      ["tick, 1M sparse-population users, CPU (ms)", b.tick1MSparseCpuMs, headline.tick1MSparseCpuMs],
      ["state per user (B)", b.bytesPerUser, headline.bytesPerUser],
      ["ingest, 1M Zipf users (ns/event)", b.ingestNsPerEvent, headline.ingestNsPerEvent],
      ["ingest, 1M Zipf users, CPU (ns/event)", b.ingestCpuNsPerEvent, headline.ingestCpuNsPerEvent],
      ["speed-up over the Map peer", b.speedupOverPeer, headline.speedupOverPeer],
    ];
    console.log(`\nserved configuration, before (${base.env.date}) / after:`);
    const v0 = Math.max(...t.map((r) => r[0].length));
    for (const [k, x, y] of t) console.log(`  ${k.padEnd(v0)}  ${x?.toFixed(1).padStart(8)}  ${y?.toFixed(1).padStart(8)}`);
    const il = served.before?.ingestInterleaved;
    if (il) console.log(`  ingest, 1M Zipf users, interleaved passes, median (ns/event)  ${il.beforeMedianNs.toFixed(1).padStart(8)}  ${il.afterMedianNs.toFixed(1).padStart(8)}`);
    beforeAfter = { baselineDate: base.env.date, before: b, after: headline, ingestInterleaved: il };
  }
  writeBenchJson(join(dir, "engine.json"), command, { ...body, beforeAfter });
  console.log(`\nwrote bench/results/engine.json (${body.seconds.toFixed(0)} s)`);
}

await main();
