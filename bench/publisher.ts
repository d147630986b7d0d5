// Publisher microbench: record() throughput (hot path into per-partition frame buffers), frame
// build and decode throughput (binary vs JSON), and end-to-end publish → JetStream ack throughput
// against a local nats-server. Prints a table and writes bench/results/publisher.json.
// Run: node --import tsx bench/publisher.ts [events]   (default 500000)
import { mkdirSync, writeFileSync } from "node:fs";
import { connect } from "@nats-io/transport-node";
import { NatsServer } from "../src/nats/server.ts";
import {
  SynthTelemetry,
  TelemetryPublisher,
  decodeFrame,
  encodeEvents,
  ensureTelemetryStream,
  FRAME_HEADER_BYTES,
  FRAME_RECORD_BYTES,
  type TelemetryEvent,
} from "../src/telemetry/index.ts";

const n = Number(process.argv[2] ?? 500_000);
const events: TelemetryEvent[] = new SynthTelemetry({ users: 10_000, seed: 1 }).events(n);
for (const e of events) e.sourceIp = `10.0.${(e.bytes ?? 0) % 256}.1`;

function rate(count: number, ms: number): number {
  return Math.round((count / ms) * 1000);
}

const rows: { case: string; events: number; ms: number; eventsPerSec: number; bytesPerEvent: number }[] = [];

// Binary and JSON frames of 1024 events: build and decode.
const frameEvents = 1024;
const frames = Math.floor(n / frameEvents);
{
  const t0 = performance.now();
  for (let f = 0; f < frames; f++) encodeEvents(events.slice(f * frameEvents, (f + 1) * frameEvents));
  const ms = performance.now() - t0;
  rows.push({ case: "encodeEvents (no caches)", events: frames * frameEvents, ms, eventsPerSec: rate(frames * frameEvents, ms), bytesPerEvent: FRAME_RECORD_BYTES + FRAME_HEADER_BYTES / frameEvents });
}
{
  const bin = encodeEvents(events.slice(0, frameEvents));
  const t0 = performance.now();
  let count = 0;
  for (let f = 0; f < frames; f++) count += decodeFrame(bin).count;
  const ms = performance.now() - t0;
  rows.push({ case: "decodeFrame binary (zero-copy)", events: count, ms, eventsPerSec: rate(count, ms), bytesPerEvent: bin.length / frameEvents });
}
{
  const json = new TextEncoder().encode(
    JSON.stringify(events.slice(0, frameEvents).map(({ timeMs, ...e }) => ({ ...e, time: timeMs }))),
  );
  const jsonFrames = Math.max(1, Math.floor(frames / 10));
  const t0 = performance.now();
  let count = 0;
  for (let f = 0; f < jsonFrames; f++) count += decodeFrame(json).count;
  const ms = performance.now() - t0;
  rows.push({ case: "decodeFrame JSON (zod)", events: count, ms, eventsPerSec: rate(count, ms), bytesPerEvent: Math.round(json.length / frameEvents) });
}

const srv = await NatsServer.start();
const nc = await connect({ servers: srv.url });
try {
  await ensureTelemetryStream(nc);
  // record() alone: time spent inside record() calls, chunked so publishing proceeds in between.
  const pub = new TelemetryPublisher(nc, { partitions: 8 });
  let recordMs = 0;
  const chunk = 10_000;
  const t0 = performance.now();
  for (let i = 0; i < n; i += chunk) {
    const s = performance.now();
    const end = Math.min(n, i + chunk);
    for (let j = i; j < end; j++) pub.record(events[j]);
    recordMs += performance.now() - s;
    await new Promise((r) => setImmediate(r));
  }
  await pub.flush(120_000);
  const totalMs = performance.now() - t0;
  const s = pub.stats();
  if (s.ackedEvents + s.droppedEvents !== n) throw new Error(`lost events: ${JSON.stringify(s)}`);
  rows.push({ case: "record() (hot path only)", events: n, ms: recordMs, eventsPerSec: rate(n, recordMs), bytesPerEvent: FRAME_RECORD_BYTES });
  rows.push({ case: "record() → JetStream acked (end to end)", events: s.ackedEvents, ms: totalMs, eventsPerSec: rate(s.ackedEvents, totalMs), bytesPerEvent: FRAME_RECORD_BYTES + FRAME_HEADER_BYTES / frameEvents });
  await pub.close();
  console.log(`publisher stats: ${JSON.stringify(s)}`);
} finally {
  await nc.close();
  await srv.dispose();
}

console.log(`\nPublisher bench, ${n} synthetic events (10 000 Zipf users), node ${process.version}\n`);
console.log("| case | events | ms | events/s | bytes/event |\n|---|---:|---:|---:|---:|");
for (const r of rows) {
  console.log(`| ${r.case} | ${r.events} | ${r.ms.toFixed(1)} | ${r.eventsPerSec.toLocaleString("en-US")} | ${r.bytesPerEvent.toFixed(2)} |`);
}
mkdirSync(new URL("./results/", import.meta.url), { recursive: true });
const out = new URL("./results/publisher.json", import.meta.url);
writeFileSync(out, JSON.stringify({ events: n, node: process.version, at: new Date().toISOString(), rows }, null, 2) + "\n");
console.log(`\nwrote ${out.pathname}`);
