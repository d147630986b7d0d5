// Publisher bench: the SDK (`TelemetryPublisher`) against its peer, plain `js.publish` of each
// batch of events as JSON (what a gateway author writes without the SDK, following
// docs/wire-format.md: group by the documented partition, one awaited publish per batch), on the
// same synthetic events and the same local nats-server. Both write to streams of their own; the
// stored messages of each timed run are read back and decoded, and every user's request and
// token totals must equal the input's before any figure is reported. Frame codec costs (binary
// vs JSON) are timed alongside. Batch latencies (a batch of events handed over → every one
// acknowledged by JetStream) are hdr-histogram-js percentiles.
// Prints a table and writes bench/results/publisher.json.
// Run: npm run bench:publisher [-- events]   (default 500000)
import * as hdr from "hdr-histogram-js";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { jetstream, jetstreamManager, type JetStreamClient } from "@nats-io/jetstream";
import { NatsServer } from "../src/nats/server.ts";
import {
  FRAME_HEADER_BYTES,
  FRAME_RECORD_BYTES,
  SynthTelemetry,
  TelemetryPublisher,
  decodeFrame,
  encodeEvents,
  ensureTelemetryStream,
  partitionOf,
  readRecord,
  telemetrySubject,
  userHash,
  userHashHex,
  type TelemetryEvent,
} from "../src/telemetry/index.ts";
import { writeBenchJson } from "./env.ts";

const N = Number(process.argv[2] ?? 500_000);
const USERS = 10_000;
const P = 8;
/** Events per batch: the SDK's frame size, and the peer's batch per partition. */
const BATCH = 1024;
/** Batches timed one by one for the latency percentiles, per implementation. */
const LATENCY_BATCHES = 400;

const events: TelemetryEvent[] = new SynthTelemetry({ users: USERS, seed: 1 }).events(N);
for (const e of events) e.sourceIp = `10.0.${(e.bytes ?? 0) % 256}.1`;

interface Totals {
  requests: number;
  inputTokens: number;
  outputTokens: number;
}

/** Per-user totals of events, keyed by the user hash in hex (what a stored record carries). */
function inputTotals(list: TelemetryEvent[]): Map<string, Totals> {
  const out = new Map<string, Totals>();
  for (const e of list) {
    const k = userHashHex(userHash(e.user));
    const t = out.get(k) ?? { requests: 0, inputTokens: 0, outputTokens: 0 };
    t.requests++;
    t.inputTokens += Math.trunc(e.inputTokens ?? 0);
    t.outputTokens += Math.trunc(e.outputTokens ?? 0);
    out.set(k, t);
  }
  return out;
}

/** Reads every message of a stream back, decodes it (binary or JSON) and totals per user. */
async function storedTotals(nc: NatsConnection, stream: string): Promise<{ totals: Map<string, Totals>; messages: number; events: number }> {
  const jsm = await jetstreamManager(nc);
  const last = (await jsm.streams.info(stream)).state.last_seq;
  const totals = new Map<string, Totals>();
  let events = 0;
  for (let seq = 1; seq <= last; seq++) {
    const m = await jsm.streams.getMessage(stream, { seq });
    if (!m) throw new Error(`${stream}: message ${seq} missing`);
    const f = decodeFrame(m.data);
    for (let i = 0; i < f.count; i++) {
      const r = readRecord(f.records, i);
      const k = userHashHex({ lo: r.userHashLo, hi: r.userHashHi });
      const t = totals.get(k) ?? { requests: 0, inputTokens: 0, outputTokens: 0 };
      t.requests++;
      t.inputTokens += r.inputTokens;
      t.outputTokens += r.outputTokens;
      totals.set(k, t);
    }
    events += f.count;
  }
  return { totals, messages: last, events };
}

/** Number of users whose totals differ (missing on either side counts). */
function mismatches(want: Map<string, Totals>, got: Map<string, Totals>): number {
  let bad = 0;
  for (const [k, w] of want) {
    const g = got.get(k);
    if (!g || g.requests !== w.requests || g.inputTokens !== w.inputTokens || g.outputTokens !== w.outputTokens) bad++;
  }
  for (const k of got.keys()) if (!want.has(k)) bad++;
  return bad;
}

/** The JSON event a gateway author writes from a TelemetryEvent (docs/wire-format.md, JSON frames). */
function jsonEvent(e: TelemetryEvent): Record<string, unknown> {
  const { timeMs, ...rest } = e;
  return { ...rest, time: timeMs };
}

// ---- The peer: plain js.publish, one awaited publish per batch of a partition ------------------

/** Publishes `list` the plain way; returns the number of messages sent. */
async function plainPublish(js: JetStreamClient, prefix: string, list: TelemetryEvent[]): Promise<number> {
  const pending: Record<string, unknown>[][] = Array.from({ length: P }, () => []);
  let messages = 0;
  for (const e of list) {
    const p = partitionOf(userHash(e.user).lo, P);
    const batch = pending[p];
    batch.push(jsonEvent(e));
    if (batch.length === BATCH) {
      await js.publish(telemetrySubject(prefix, p), JSON.stringify(batch));
      messages++;
      batch.length = 0;
    }
  }
  for (let p = 0; p < P; p++) {
    if (pending[p].length === 0) continue;
    await js.publish(telemetrySubject(prefix, p), JSON.stringify(pending[p]));
    messages++;
  }
  return messages;
}

// ---- Frame codec (no server) --------------------------------------------------------------------

interface CodecRow {
  case: string;
  events: number;
  ms: number;
  eventsPerSec: number;
  bytesPerEvent: number;
}
const rate = (count: number, ms: number) => Math.round((count / ms) * 1000);
const codec: Record<string, CodecRow> = {};
const frames = Math.floor(N / BATCH);
{
  const t0 = performance.now();
  for (let f = 0; f < frames; f++) encodeEvents(events.slice(f * BATCH, (f + 1) * BATCH));
  const ms = performance.now() - t0;
  codec.encodeBinary = { case: "encodeEvents, binary frame (no caches)", events: frames * BATCH, ms, eventsPerSec: rate(frames * BATCH, ms), bytesPerEvent: FRAME_RECORD_BYTES + FRAME_HEADER_BYTES / BATCH };
}
{
  const bin = encodeEvents(events.slice(0, BATCH));
  const t0 = performance.now();
  let count = 0;
  for (let f = 0; f < frames; f++) count += decodeFrame(bin).count;
  const ms = performance.now() - t0;
  codec.decodeBinary = { case: "decodeFrame, binary (zero-copy)", events: count, ms, eventsPerSec: rate(count, ms), bytesPerEvent: bin.length / BATCH };
}
{
  const json = new TextEncoder().encode(JSON.stringify(events.slice(0, BATCH).map(jsonEvent)));
  const jsonFrames = Math.max(1, Math.floor(frames / 10));
  const t0 = performance.now();
  let count = 0;
  for (let f = 0; f < jsonFrames; f++) count += decodeFrame(json).count;
  const ms = performance.now() - t0;
  codec.decodeJson = { case: "decodeFrame, JSON (zod-validated)", events: count, ms, eventsPerSec: rate(count, ms), bytesPerEvent: Math.round(json.length / BATCH) };
}

// ---- End to end against nats-server --------------------------------------------------------------

interface EndToEnd {
  events: number;
  messages: number;
  ms: number;
  eventsPerSec: number;
  /** Stored bytes per event (message payloads only). */
  bytesPerEvent: number;
  /** Users whose stored totals differ from the input's (must be 0). */
  usersMismatched: number;
}
interface LatencySummary {
  batches: number;
  eventsPerBatch: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
}

function summarise(h: hdr.Histogram, batches: number): LatencySummary {
  // Recorded in µs; reported in ms with 3 decimals.
  const ms = (us: number) => Math.round(us) / 1000;
  return {
    batches,
    eventsPerBatch: BATCH,
    p50Ms: ms(h.getValueAtPercentile(50)),
    p90Ms: ms(h.getValueAtPercentile(90)),
    p99Ms: ms(h.getValueAtPercentile(99)),
    maxMs: ms(h.maxValue),
  };
}
const newHist = () => hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 3 });

const want = inputTotals(events);
const srv = await NatsServer.start();
const nc = await connect({ servers: srv.url });
const endToEnd: Record<string, EndToEnd & { recordOnlyMs?: number; recordOnlyEventsPerSec?: number }> = {};
const latency: Record<string, LatencySummary> = {};
let sdkStats: unknown;
try {
  const js = jetstream(nc);
  for (const prefix of ["sdk", "peer", "sdklat", "peerlat"]) {
    await ensureTelemetryStream(nc, { subjectPrefix: prefix, streamName: `BENCH_${prefix.toUpperCase()}` });
  }
  const jsm = await jetstreamManager(nc);
  const storedBytes = async (stream: string) => (await jsm.streams.info(stream)).state.bytes;

  // SDK: record() every event (chunked so publishing proceeds in between), then flush.
  {
    const pub = new TelemetryPublisher(nc, { subjectPrefix: "sdk", partitions: P, maxEventsPerFrame: BATCH });
    let recordMs = 0;
    const chunk = 10_000;
    const t0 = performance.now();
    for (let i = 0; i < N; i += chunk) {
      const s = performance.now();
      const end = Math.min(N, i + chunk);
      for (let j = i; j < end; j++) pub.record(events[j]);
      recordMs += performance.now() - s;
      await new Promise((r) => setImmediate(r));
    }
    await pub.flush(300_000);
    const ms = performance.now() - t0;
    sdkStats = pub.stats();
    await pub.close();
    const back = await storedTotals(nc, "BENCH_SDK");
    endToEnd.sdk = {
      events: back.events, messages: back.messages, ms, eventsPerSec: rate(N, ms), bytesPerEvent: (await storedBytes("BENCH_SDK")) / N,
      usersMismatched: mismatches(want, back.totals), recordOnlyMs: recordMs, recordOnlyEventsPerSec: rate(N, recordMs),
    };
  }
  // Peer: plain js.publish per batch.
  {
    const t0 = performance.now();
    await plainPublish(js, "peer", events);
    const ms = performance.now() - t0;
    const back = await storedTotals(nc, "BENCH_PEER");
    endToEnd.peer = {
      events: back.events, messages: back.messages, ms, eventsPerSec: rate(N, ms), bytesPerEvent: (await storedBytes("BENCH_PEER")) / N,
      usersMismatched: mismatches(want, back.totals),
    };
  }
  for (const [name, r] of Object.entries(endToEnd)) {
    if (r.usersMismatched !== 0 || r.events !== N) {
      throw new Error(`bench check failed: ${name} stored ${r.events} of ${N} events, ${r.usersMismatched} users' totals differ from the input`);
    }
  }

  // Batch latency: a batch of BATCH consecutive events handed over → all acknowledged.
  {
    const pub = new TelemetryPublisher(nc, { subjectPrefix: "sdklat", partitions: P, maxEventsPerFrame: BATCH });
    const h = newHist();
    for (let b = 0; b < LATENCY_BATCHES; b++) {
      const from = (b * BATCH) % (N - BATCH);
      const t0 = performance.now();
      for (let j = from; j < from + BATCH; j++) pub.record(events[j]);
      await pub.flush(60_000);
      h.recordValue(Math.max(1, Math.round((performance.now() - t0) * 1000)));
    }
    await pub.close();
    latency.sdk = summarise(h, LATENCY_BATCHES);
  }
  {
    const h = newHist();
    for (let b = 0; b < LATENCY_BATCHES; b++) {
      const from = (b * BATCH) % (N - BATCH);
      const t0 = performance.now();
      await plainPublish(js, "peerlat", events.slice(from, from + BATCH));
      h.recordValue(Math.max(1, Math.round((performance.now() - t0) * 1000)));
    }
    latency.peer = summarise(h, LATENCY_BATCHES);
  }
} finally {
  await nc.close();
  await srv.dispose();
}

const m = (x: number) => (x >= 1e6 ? `${(x / 1e6).toFixed(2)} M` : `${(x / 1e3).toFixed(1)} k`);
console.log(`\nPublisher bench: ${N} synthetic events, ${USERS} Zipf users, ${P} partitions, batches of ${BATCH}; node ${process.version}`);
console.log("check: stored messages of both timed runs decoded; every user's request and token totals equal the input's\n");
console.log("| case | events/s | bytes/event |\n|---|---:|---:|");
console.log(`| SDK record() alone (synchronous) | ${m(endToEnd.sdk.recordOnlyEventsPerSec!)} | ${FRAME_RECORD_BYTES} |`);
console.log(`| SDK record() → binary frames → JetStream acked | ${m(endToEnd.sdk.eventsPerSec)} | ${endToEnd.sdk.bytesPerEvent.toFixed(1)} stored |`);
console.log(`| peer: JSON batch per partition, awaited js.publish | ${m(endToEnd.peer.eventsPerSec)} | ${endToEnd.peer.bytesPerEvent.toFixed(1)} stored |`);
for (const r of Object.values(codec)) console.log(`| ${r.case} | ${m(r.eventsPerSec)} | ${r.bytesPerEvent.toFixed(2)} |`);
console.log(`\nbatch of ${BATCH} events → all acked (${LATENCY_BATCHES} batches each), ms\n`);
console.log("| implementation | p50 | p90 | p99 | max |\n|---|---:|---:|---:|---:|");
for (const [name, l] of Object.entries(latency)) console.log(`| ${name} | ${l.p50Ms} | ${l.p90Ms} | ${l.p99Ms} | ${l.maxMs} |`);

const out = new URL("./results/publisher.json", import.meta.url).pathname;
writeBenchJson(out, `npm run bench:publisher${process.argv[2] ? ` -- ${process.argv[2]}` : ""}`, {
  events: N,
  users: USERS,
  partitions: P,
  batchEvents: BATCH,
  check: "stored messages of both timed runs decoded; per-user request and token totals equal the input's",
  endToEnd,
  batchLatency: latency,
  codec,
  sdkStats,
});
console.log(`\nwrote ${out}`);
