// Pipeline benchmark (`npm run bench:pipeline`): events/s and MB/s from the publisher through
// JetStream into the engines, against bare JetStream consumption of the same frames.
//
//  1. check: the processor's per-user totals equal what was published (before any timing);
//  2. prefilled stream, frames of 64 / 256 / 1,024 events: bare consume (ordered consumers, no
//     processing) vs the processor (decode + stage + WASM engine), same frames, same process;
//  3. live, one process: TelemetryPublisher.record() at full speed while the processor consumes
//     (sustained end-to-end rate), then paced at 50 % and 90 % of it with latency from record()
//     to the event applied in the engine (hdr-histogram-js);
//  4. live, two processes: the processor as `foresight serve` in a child process, the publisher
//     here; the rate is read from the child's /metrics.
// Prints a table and writes bench/results/pipeline.json. Bounded: ~2-4 min on 2 cores.
import { spawn } from "node:child_process";
import { writeFileSync, mkdtempSync, rmSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { DeliverPolicy, jetstream, jetstreamManager, type JetStreamClient } from "@nats-io/jetstream";
import * as hdr from "hdr-histogram-js";
import { NatsServer } from "../src/nats/server.ts";
import { writeBenchJson } from "./env.ts";
import { EVENT_RECORD_BYTES } from "../src/wire/layout.ts";
import { userHash } from "../src/telemetry/hash.ts";
import { encodeFrame, partitionOf } from "../src/telemetry/frame.ts";
import { writeRecord } from "../src/telemetry/event.ts";
import { TelemetryPublisher } from "../src/telemetry/publisher.ts";
import { ForesightConfigSchema } from "../src/config/index.ts";
import { createLogger } from "../src/obs/logger.ts";
import {
  Processor,
  createWasmEngineFactory,
  ensureStreams,
  processorNames,
  type ProcessorNames,
  type WasmPartitionEngine,
} from "../src/processor/index.ts";

const root = fileURLToPath(new URL("..", import.meta.url));
/** Events per prefilled case. */
const CASE_EVENTS = Number(process.env.BENCH_EVENTS ?? 2_000_000);
/** Frame sizes (events per frame). */
const FRAME_SIZES = [64, 256, 1024];
/** Partitions. */
const P = Number(process.env.BENCH_PARTITIONS ?? 4);
/** Distinct users. */
const USERS = 10_000;
/** Seconds per live run. */
const LIVE_SEC = Number(process.env.BENCH_LIVE_SEC ?? 5);
// One-minute buckets and a minute of lateness: events stamped "now" are never late during a run.
const ENGINE = { bucketWidthMs: 60_000, allowedLatenessMs: 60_000, capacityUsers: 4 * USERS };
const engineFactory = createWasmEngineFactory(ForesightConfigSchema.parse({ engine: ENGINE }).engine);
const silent = createLogger({ level: "silent" });
const MB = 1024 * 1024;

interface User {
  key: string;
  lo: number;
  hi: number;
  partition: number;
}
const users: User[] = Array.from({ length: USERS }, (_, i) => {
  const key = `bench-user-${i}`;
  const h = userHash(key);
  return { key, lo: h.lo, hi: h.hi, partition: partitionOf(h.lo, P) };
});

/** Deterministic frames of `perFrame` events per partition; per-user request totals. */
function buildFrames(events: number, perFrame: number, t0: number): { frames: { p: number; bytes: Uint8Array }[]; requests: Map<number, number>; bytes: number } {
  const open = Array.from({ length: P }, () => ({ rec: new Uint8Array(perFrame * EVENT_RECORD_BYTES), n: 0 }));
  const frames: { p: number; bytes: Uint8Array }[] = [];
  const requests = new Map<number, number>();
  let seed = 12345;
  let bytes = 0;
  for (let i = 0; i < events; i++) {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    const ui = seed % USERS;
    const u = users[ui];
    requests.set(ui, (requests.get(ui) ?? 0) + 1);
    const o = open[u.partition];
    writeRecord(new DataView(o.rec.buffer), o.n * EVENT_RECORD_BYTES, {
      userHashLo: u.lo, userHashHi: u.hi, timeMs: t0 + (i % 900), inputTokens: 100 + (i % 50), outputTokens: 20 + (i % 30),
      routeHash: 1 + (i & 3), ipHash: 1 + (i & 7), uaHash: 1, latencyMs: 30, bytes: 600, status: 200, flags: 0,
    });
    if (++o.n === perFrame) {
      const f = encodeFrame(o.rec, o.n);
      frames.push({ p: u.partition, bytes: f });
      bytes += f.length;
      o.n = 0;
    }
  }
  for (const [p, o] of open.entries()) {
    if (o.n === 0) continue;
    const f = encodeFrame(o.rec, o.n);
    frames.push({ p, bytes: f });
    bytes += f.length;
  }
  return { frames, requests, bytes };
}

async function publishAll(js: JetStreamClient, names: ProcessorNames, frames: { p: number; bytes: Uint8Array }[]): Promise<number> {
  const t0 = performance.now();
  let inflight: Promise<unknown>[] = [];
  for (const f of frames) {
    inflight.push(js.publish(names.telemetrySubject(f.p), f.bytes, { timeout: 30_000 }));
    if (inflight.length >= 256) {
      await Promise.all(inflight);
      inflight = [];
    }
  }
  await Promise.all(inflight);
  return (performance.now() - t0) / 1000;
}

/** Bare consumption: one ordered consumer per partition, messages counted, nothing decoded. */
async function bareConsume(nc: NatsConnection, names: ProcessorNames, frames: number): Promise<{ sec: number; bytes: number }> {
  const js = jetstream(nc);
  let got = 0;
  let bytes = 0;
  let first = 0;
  let done!: () => void;
  const finished = new Promise<void>((r) => (done = r));
  const all = [];
  for (let p = 0; p < P; p++) {
    const c = await js.consumers.get(names.telemetryStream, { filter_subjects: names.telemetrySubject(p), deliver_policy: DeliverPolicy.All });
    all.push(
      await c.consume({
        max_messages: 512,
        callback: (m) => {
          if (got === 0) first = performance.now();
          bytes += m.data.length;
          if (++got === frames) done();
        },
      }),
    );
  }
  await finished;
  const sec = (performance.now() - first) / 1000;
  for (const m of all) m.stop();
  return { sec, bytes };
}

/** Starts an in-process processor; `applied` counts events that reached the engines. */
async function startProcessor(url: string, prefix: string, onApplied?: (p: number, records: Uint8Array, n: number) => void, run = ""): Promise<Processor> {
  return Processor.start({
    nats: { servers: [url] }, prefix, partitions: P,
    // A fresh checkpoint bucket per run, so a repeated run starts from the stream's beginning.
    names: run ? { checkpointBucket: `${prefix}-checkpoints-${run}`, leaseBucket: `${prefix}-leases-${run}` } : undefined, engineFactory, capacityUsers: ENGINE.capacityUsers,
    tickIntervalMs: 1000, checkpointIntervalMs: 600_000, leaseTtlMs: 30_000, httpPort: -1, log: silent, onApplied,
  });
}

function appliedInEngines(proc: Processor): number {
  let n = 0;
  for (let p = 0; p < P; p++) n += proc.worker(p)?.engine.stats().eventsApplied ?? 0;
  return n;
}

async function until(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`bench: timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const minuteStart = () => Math.floor(Date.now() / 60_000) * 60_000;
const results: Record<string, unknown> = { date: new Date().toISOString(), node: process.version, loadAvgAtStart: loadavg(), cpus: cpus().length, cpuModel: cpus()[0]?.model, partitions: P, users: USERS, caseEvents: CASE_EVENTS };
const rows: Record<string, string | number>[] = [];

const srv = await NatsServer.start();
const nc = await connect({ servers: srv.url });
const jsm = await jetstreamManager(nc);
const js = jetstream(nc);
const benchStart = Date.now();
try {
  // 1. Same result: per-user totals in the engines equal what was published.
  {
    const names = processorNames("bcheck");
    await ensureStreams(jsm, names);
    const t0 = minuteStart() + 1;
    const set = buildFrames(50_000, 256, t0);
    await publishAll(js, names, set.frames);
    const proc = await startProcessor(srv.url, "bcheck");
    await until(() => appliedInEngines(proc) >= 50_000, 60_000, "check run");
    let mismatches = 0;
    for (let p = 0; p < P; p++) {
      const live = proc.worker(p)!.engine as WasmPartitionEngine;
      // Close the one bucket on a copy (restored snapshot), so the live engine is untouched.
      const copy = (await engineFactory(p, Math.ceil(ENGINE.capacityUsers / P))) as WasmPartitionEngine;
      copy.restore(live.snapshot());
      copy.tick(t0 - 1 + 60_000 + ENGINE.allowedLatenessMs + 1);
      for (const [ui, want] of set.requests) {
        if (users[ui].partition !== p) continue;
        const f = copy.engine.userFeatures(users[ui]);
        if (!f || f.requests !== want) mismatches++;
      }
    }
    await proc.stop();
    if (mismatches) throw new Error(`bench check failed: ${mismatches} users' totals differ from what was published`);
    console.log(`check: per-user totals of ${set.requests.size} users equal what was published`);
    results.check = { users: set.requests.size, events: 50_000, mismatches };
  }

  // 2. Prefilled stream: bare consume vs processor, per frame size.
  const prefilled: Record<string, unknown>[] = [];
  for (const F of FRAME_SIZES) {
    const prefix = `bpre${F}`;
    const names = processorNames(prefix);
    await ensureStreams(jsm, names, { telemetryMaxBytes: -1 });
    const set = buildFrames(CASE_EVENTS, F, minuteStart() + 1);
    const pubSec = await publishAll(js, names, set.frames);
    // The server's read speed varies with what it did just before (writing, caching), so bare
    // consume and the processor alternate twice and the best of each is kept.
    const bareRuns: { sec: number; bytes: number }[] = [];
    const procRuns: number[] = [];
    let engineApplied = 0;
    for (let rep = 0; rep < 2; rep++) {
      bareRuns.push(await bareConsume(nc, names, set.frames.length));
      let first = 0;
      let applied = 0;
      const proc = await startProcessor(srv.url, prefix, (_p, _r, n) => {
        if (applied === 0) first = performance.now();
        applied += n;
      }, `r${rep}`);
      await until(() => applied >= CASE_EVENTS, 120_000, `processor on ${F}-event frames`);
      procRuns.push((performance.now() - first) / 1000);
      engineApplied = appliedInEngines(proc);
      await proc.stop();
    }
    const bare = bareRuns.reduce((a, b) => (b.sec < a.sec ? b : a));
    const procSec = Math.min(...procRuns);
    await jsm.streams.delete(names.telemetryStream);
    const row = {
      framesOf: F,
      frames: set.frames.length,
      publishEventsPerSec: Math.round(CASE_EVENTS / pubSec),
      bareMsgsPerSec: Math.round(set.frames.length / bare.sec),
      bareEventsPerSec: Math.round(CASE_EVENTS / bare.sec),
      bareMBPerSec: +(bare.bytes / MB / bare.sec).toFixed(1),
      processorEventsPerSec: Math.round(CASE_EVENTS / procSec),
      processorMBPerSec: +(set.bytes / MB / procSec).toFixed(1),
      processorVsBare: +(bare.sec / procSec).toFixed(2),
      engineAppliedFraction: +(engineApplied / CASE_EVENTS).toFixed(4),
      bareRunsSec: bareRuns.map((r) => +r.sec.toFixed(3)),
      processorRunsSec: procRuns.map((x) => +x.toFixed(3)),
    };
    prefilled.push(row);
    rows.push({ case: `prefilled, ${F}/frame: bare consume`, "events/s": row.bareEventsPerSec, "MB/s": row.bareMBPerSec, note: `${row.bareMsgsPerSec} msgs/s` });
    rows.push({ case: `prefilled, ${F}/frame: processor`, "events/s": row.processorEventsPerSec, "MB/s": row.processorMBPerSec, note: `${Math.round(row.processorVsBare * 100)} % of bare; applied ${row.engineAppliedFraction}` });
    console.log(JSON.stringify(row));
  }
  results.prefilled = prefilled;

  // 3. Live, one process: publisher and processor in this process, the server in its own.
  const live: Record<string, unknown>[] = [];
  const liveRun = async (label: string, prefix: string, targetPerSec: number, external?: () => Promise<number>) => {
    const names = processorNames(prefix);
    await ensureStreams(jsm, names, { telemetryMaxBytes: -1 });
    const hist = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 600_000, numberOfSignificantValueDigits: 3 });
    let applied = 0;
    let measuring = false;
    const proc = external
      ? undefined
      : await startProcessor(srv.url, prefix, (_p, records, n) => {
          applied += n;
          if (!measuring) return;
          const now = Date.now();
          const dv = new DataView(records.buffer, records.byteOffset, records.byteLength);
          for (let i = 0; i < n; i += 16) hist.recordValue(Math.max(1, now - dv.getFloat64(i * EVENT_RECORD_BYTES + 8, true)));
        });
    const pub = new TelemetryPublisher(nc, { subjectPrefix: prefix, partitions: P, maxEventsPerFrame: 1024, flushIntervalMs: 10, maxInFlight: 64, maxBufferedEvents: 4_000_000 });
    const ev = users.map((u) => ({ user: u.key, inputTokens: 100, outputTokens: 20, route: "/v1/chat/completions", status: 200 }));
    let recorded = 0;
    const startedAt = performance.now();
    const warmupMs = 1000;
    let appliedAtWarm = 0;
    let externalAtWarm = 0;
    let warmAt = 0;
    const endAt = startedAt + warmupMs + LIVE_SEC * 1000;
    let seed = 99;
    for (;;) {
      const now = performance.now();
      if (now >= endAt) break;
      if (!measuring && now - startedAt >= warmupMs) {
        measuring = true;
        warmAt = now;
        appliedAtWarm = applied;
        if (external) externalAtWarm = await external();
      }
      // Pace in slices: record what the target rate allows so far, then yield to I/O.
      const due = Number.isFinite(targetPerSec) ? Math.min(Math.floor(((now - startedAt) / 1000) * targetPerSec) - recorded, 20_000) : 4096;
      for (let k = 0; k < due; k++) {
        seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
        pub.record(ev[seed % USERS]);
      }
      recorded += Math.max(0, due);
      await new Promise((r) => setImmediate(r));
    }
    const sec = (performance.now() - warmAt) / 1000;
    const appliedInWindow = external ? (await external()) - externalAtWarm : applied - appliedAtWarm;
    const stats = pub.stats();
    await pub.close(30_000).catch(() => undefined);
    await proc?.stop();
    await jsm.streams.delete(names.telemetryStream);
    const row = {
      run: label,
      targetPerSec: Number.isFinite(targetPerSec) ? Math.round(targetPerSec) : "max",
      recordedPerSec: Math.round(recorded / ((endAt - startedAt) / 1000)),
      appliedPerSec: Math.round(appliedInWindow / sec),
      droppedEvents: stats.droppedEvents,
      latencyMs: external ? undefined : { p50: hist.getValueAtPercentile(50), p99: hist.getValueAtPercentile(99), p999: hist.getValueAtPercentile(99.9), samples: hist.totalCount },
    };
    live.push(row);
    rows.push({
      case: label,
      "events/s": row.appliedPerSec,
      "MB/s": +((row.appliedPerSec * EVENT_RECORD_BYTES) / MB).toFixed(1),
      note: row.latencyMs ? `latency p50/p99/p99.9 ${row.latencyMs.p50}/${row.latencyMs.p99}/${row.latencyMs.p999} ms; dropped ${row.droppedEvents}` : `dropped ${row.droppedEvents}`,
    });
    console.log(JSON.stringify(row));
    return row;
  };
  const max = await liveRun("live 1 process: max", "blmax", Infinity);
  const maxRate = Math.min(max.appliedPerSec, max.recordedPerSec);
  await liveRun("live 1 process: 50 % of max", "bl50", 0.5 * maxRate);
  await liveRun("live 1 process: 90 % of max", "bl90", 0.9 * maxRate);

  // 4. Live, two processes: `foresight serve` in a child, the publisher here.
  {
    const dir = mkdtempSync(join(tmpdir(), "foresight-bench-"));
    const cfg = join(dir, "bench.yaml");
    writeFileSync(cfg, `engine:\n  bucketWidthMs: 60000\n  allowedLatenessMs: 60000\n  capacityUsers: ${ENGINE.capacityUsers}\nschedule:\n  tickIntervalMs: 1000\n  checkpointIntervalMs: 600000\nhttp:\n  host: 127.0.0.1\nlog:\n  level: warn\n`);
    const child = spawn(process.execPath, ["--import", "tsx", "src/cli/main.ts", "serve", "--config", cfg, "--servers", srv.url, "--prefix", "bl2p", "--partitions", String(P), "--http-port", "0", "--log-level", "info", "--no-kv"], { cwd: root, stdio: ["ignore", "pipe", "inherit"] });
    try {
      const port = await new Promise<number>((resolve, reject) => {
        let buf = "";
        child.stdout!.on("data", (d) => {
          buf += d;
          const m = /"httpPort":(\d+),[^\n]*"processor started"/.exec(buf) ?? /"processor started"[^\n]*"httpPort":(\d+)/.exec(buf);
          if (m) resolve(Number(m[1]));
        });
        child.on("exit", (c) => reject(new Error(`serve exited ${c}`)));
      });
      const eventsIn = async () => {
        const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
        return [...text.matchAll(/^foresight_events_in_total\{partition="\d+"\} (\d+)/gm)].reduce((s, m) => s + Number(m[1]), 0);
      };
      await liveRun("live 2 processes: max", "bl2p", Infinity, eventsIn);
    } finally {
      child.kill("SIGTERM");
      await new Promise((r) => child.once("exit", r));
      rmSync(dir, { recursive: true, force: true });
    }
  }
  results.live = live;
  results.seconds = (Date.now() - benchStart) / 1000;
} finally {
  await nc.close();
  await srv.dispose();
}

console.log("\nPipeline: publisher → JetStream (nats-server 2.9, file storage) → processor → WASM engines");
console.table(rows);
writeBenchJson(join(root, "bench", "results", "pipeline.json"), "npm run bench:pipeline", { ...results, rows });
console.log(`wrote bench/results/pipeline.json (${results.seconds} s)`);
