import { suite } from "uvu";
import * as assert from "uvu/assert";
import { setTimeout as delay } from "node:timers/promises";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import { NatsServer } from "../../src/nats/server.ts";
import { EventField } from "../../src/wire/layout.ts";
import { userHash, userHashHex } from "../../src/telemetry/hash.ts";
import { InvalidEventError, readRecord } from "../../src/telemetry/event.ts";
import { decodeFrame, partitionOf } from "../../src/telemetry/frame.ts";
import { ensureTelemetryStream, DEFAULT_TELEMETRY_STREAM } from "../../src/telemetry/stream.ts";
import { UserDirectory } from "../../src/telemetry/directory.ts";
import {
  FlushTimeoutError,
  PublisherClosedError,
  PublisherConfigError,
  TelemetryPublisher,
} from "../../src/telemetry/publisher.ts";

/** Every record stored in the telemetry stream, with the subject and Msg-Id of its frame. */
async function readStream(nc: NatsConnection, stream = DEFAULT_TELEMETRY_STREAM) {
  const jsm = await jetstreamManager(nc);
  const info = await jsm.streams.info(stream);
  const out: { subject: string; msgId: string; records: Uint8Array; count: number }[] = [];
  for (let seq = info.state.first_seq; seq <= info.state.last_seq; seq++) {
    const m = await jsm.streams.getMessage(stream, { seq });
    if (!m) continue;
    const d = decodeFrame(m.data);
    out.push({ subject: m.subject, msgId: m.header?.get("Nats-Msg-Id") ?? "", records: d.records, count: d.count });
  }
  return out;
}

/** The `bytes` field of every stored record (tests use it as a unique event id). */
function storedIds(frames: Awaited<ReturnType<typeof readStream>>): number[] {
  const ids: number[] = [];
  for (const f of frames) for (let i = 0; i < f.count; i++) ids.push(readRecord(f.records, i).bytes);
  return ids;
}

function clientOpts(srv: NatsServer) {
  return { servers: srv.url, maxReconnectAttempts: -1, reconnectTimeWait: 50, timeout: 2_000 };
}

const t = suite("TelemetryPublisher");

t("publishes frames per partition; every record lands on userHash.lo % P with a stable Msg-Id", async () => {
  const srv = await NatsServer.start();
  const nc = await connect(clientOpts(srv));
  try {
    await ensureTelemetryStream(nc);
    const pub = new TelemetryPublisher(nc, { partitions: 4, publisherId: "pubA", maxEventsPerFrame: 100 });
    const users = Array.from({ length: 37 }, (_, i) => `acct-${i}`);
    const n = 2_345;
    for (let i = 0; i < n; i++) {
      pub.record({ user: users[i % users.length], timeMs: 1_000 + i, bytes: i, inputTokens: i % 7, route: "/r" });
    }
    await pub.flush(10_000);
    const s = pub.stats();
    assert.is(s.recordedEvents, n);
    assert.is(s.ackedEvents, n);
    assert.is(s.bufferedEvents, 0);
    assert.is(s.droppedEvents, 0);
    const frames = await readStream(nc);
    assert.is(frames.length, s.ackedFrames);
    for (const f of frames) {
      assert.match(f.msgId, /^pubA\.[0-3]\.\d+$/);
      assert.ok(f.count <= 100);
      const p = Number(f.subject.split(".")[2]);
      assert.is(f.subject, `foresight.telemetry.${p}`);
      assert.is(f.msgId.split(".")[1], String(p));
      for (let i = 0; i < f.count; i++) assert.is(partitionOf(readRecord(f.records, i).userHashLo, 4), p);
    }
    const ids = storedIds(frames).sort((a, b) => a - b);
    assert.equal(ids, Array.from({ length: n }, (_, i) => i));
    // Field content survives: check one record fully.
    const rec = frames.flatMap((f) => Array.from({ length: f.count }, (_, i) => readRecord(f.records, i))).find((r) => r.bytes === 40)!;
    const h = userHash(users[40 % 37]);
    assert.equal([rec.userHashLo, rec.userHashHi, rec.timeMs, rec.inputTokens], [h.lo, h.hi, 1_040, 40 % 7]);
    await pub.close();
  } finally {
    await nc.close();
    await srv.dispose();
  }
});

t("server restarted mid-stream: nothing lost, nothing stored twice", async () => {
  const srv = await NatsServer.start();
  const nc = await connect(clientOpts(srv));
  try {
    await ensureTelemetryStream(nc);
    const pub = new TelemetryPublisher(nc, {
      partitions: 3,
      maxEventsPerFrame: 64,
      flushIntervalMs: 20,
      ackTimeoutMs: 1_000,
      retryMinMs: 50,
      retryMaxMs: 400,
    });
    let id = 0;
    const burst = (k: number) => {
      for (let i = 0; i < k; i++, id++) pub.record({ user: `u${id % 11}`, bytes: id });
    };
    burst(1_000);
    // Crash the server in the same tick: the frames just sealed cannot have been acked, so the
    // outage must show as retries (same Msg-Id), and the stream must still hold each event once.
    let restarted = false;
    const restart = srv
      .kill()
      .then(() => srv.restart())
      .then(() => (restarted = true));
    // Keep producing while the server is down and coming back (paces the producer, not a wait).
    while (!restarted) {
      burst(50);
      await delay(10);
    }
    await restart;
    burst(1_000);
    await pub.flush(30_000);
    const s = pub.stats();
    assert.is(s.droppedEvents, 0);
    assert.is(s.ackedEvents, id);
    assert.ok(s.retries > 0, "the outage forced retries");
    const ids = storedIds(await readStream(nc)).sort((a, b) => a - b);
    assert.is(ids.length, id, "stored exactly once each");
    assert.equal(ids, Array.from({ length: id }, (_, i) => i));
    await pub.close();
  } finally {
    await nc.close();
    await srv.dispose();
  }
});

t("while disconnected nothing is sent (the client would buffer it without bound); all goes out on reconnect", async () => {
  const srv = await NatsServer.start();
  const nc = await connect(clientOpts(srv));
  try {
    await ensureTelemetryStream(nc);
    const pub = new TelemetryPublisher(nc, { partitions: 2, flushIntervalMs: 10, retryMinMs: 10, retryMaxMs: 20, ackTimeoutMs: 500 });
    for (let i = 0; i < 100; i++) pub.record({ user: `u${i % 3}`, bytes: i });
    await pub.flush(5_000);
    await srv.stop();
    const deadline = Date.now() + 5_000;
    while (pub.stats().connected && Date.now() < deadline) await delay(5); // no awaitable hook: poll
    assert.is(pub.stats().connected, false);
    const attempts = pub.stats().publishAttempts;
    // Record across ~10 flush intervals: frames are sealed and queued, none is sent.
    for (let k = 0; k < 10; k++) {
      for (let i = 0; i < 20; i++) pub.record({ user: `u${i % 3}`, bytes: 100 + k * 20 + i });
      await delay(10);
    }
    assert.is(pub.stats().publishAttempts, attempts);
    assert.ok(pub.stats().queuedFrames > 0);
    await srv.restart();
    await pub.flush(15_000);
    const s = pub.stats();
    assert.is(s.connected, true);
    assert.is(s.ackedEvents, 300);
    assert.is(s.droppedEvents, 0);
    const ids = storedIds(await readStream(nc)).sort((a, b) => a - b);
    assert.equal(ids, Array.from({ length: 300 }, (_, i) => i));
    await pub.close();
  } finally {
    await nc.close();
    await srv.dispose();
  }
});

t("a frame re-sent with the same Msg-Id is stored once (dedup is what makes retries safe)", async () => {
  const srv = await NatsServer.start();
  const nc = await connect(clientOpts(srv));
  try {
    await ensureTelemetryStream(nc);
    // Two instances with the same id produce the same msgIDs: exactly what a retry sends.
    for (let round = 0; round < 2; round++) {
      const pub = new TelemetryPublisher(nc, { partitions: 1, publisherId: "same", maxEventsPerFrame: 10 });
      for (let i = 0; i < 25; i++) pub.record({ user: "u", bytes: i });
      await pub.close(10_000);
      assert.is(pub.stats().duplicateFrames, round === 0 ? 0 : 3);
    }
    const frames = await readStream(nc);
    assert.is(frames.length, 3);
    assert.is(storedIds(frames).length, 25);
  } finally {
    await nc.close();
    await srv.dispose();
  }
});

t("buffer bound: never more than maxBufferedEvents held; the oldest unsent are dropped and counted", async () => {
  const srv = await NatsServer.start();
  const nc = await connect(clientOpts(srv));
  try {
    // No stream yet: every publish fails, frames pile up.
    const max = 100;
    const pub = new TelemetryPublisher(nc, {
      partitions: 2,
      maxEventsPerFrame: 10,
      maxInFlight: 2,
      maxBufferedEvents: max,
      ackTimeoutMs: 500,
      retryMinMs: 20,
      retryMaxMs: 100,
    });
    const n = 1_000;
    let peak = 0;
    for (let i = 0; i < n; i++) {
      pub.record({ user: `u${i % 5}`, bytes: i });
      peak = Math.max(peak, pub.stats().bufferedEvents);
    }
    const s = pub.stats();
    assert.is(peak, max);
    assert.is(s.bufferedEvents, max);
    assert.is(s.droppedEvents, n - max);
    assert.is(s.recordedEvents, n);
    // Now the stream appears: the held events go through, the dropped ones never do.
    await ensureTelemetryStream(nc);
    await pub.flush(15_000);
    const after = pub.stats();
    assert.is(after.ackedEvents, max);
    const ids = new Set(storedIds(await readStream(nc)));
    assert.is(ids.size, max);
    // The newest events were kept (only frames already in flight are older than them).
    for (let i = n - 50; i < n; i++) assert.ok(ids.has(i), `newest event ${i} kept`);
    assert.ok(!ids.has(500), "a middle event, queued and unsent, was dropped");
    await pub.close();
  } finally {
    await nc.close();
    await srv.dispose();
  }
});

t("close() times out when JetStream never answers: the rest is abandoned and counted", async () => {
  const srv = await NatsServer.start();
  const nc = await connect(clientOpts(srv));
  try {
    const pub = new TelemetryPublisher(nc, { partitions: 1, ackTimeoutMs: 200, retryMinMs: 20, retryMaxMs: 50 });
    for (let i = 0; i < 30; i++) pub.record({ user: "x" });
    try {
      await pub.close(300);
      assert.unreachable("close should time out without a stream");
    } catch (err) {
      assert.instance(err, FlushTimeoutError);
    }
    const s = pub.stats();
    assert.is(s.droppedEvents, 30);
    assert.is(s.bufferedEvents, 0);
    assert.throws(() => pub.record({ user: "x" }), (e: unknown) => e instanceof PublisherClosedError);
  } finally {
    await nc.close();
    await srv.dispose();
  }
});

t("bad events and bad options are rejected with the field named; nothing else is lost", async () => {
  const srv = await NatsServer.start();
  const nc = await connect(clientOpts(srv));
  try {
    await ensureTelemetryStream(nc);
    const pub = new TelemetryPublisher(nc, { partitions: 2 });
    pub.record({ user: "ok", bytes: 1 });
    for (const [bad, field] of [
      [{ user: "" }, "user"],
      [{ user: "a", inputTokens: -1 }, "inputTokens"],
      [{ user: "a", status: 1e6 }, "status"],
      [{ user: "a", timeMs: Number.POSITIVE_INFINITY }, "timeMs"],
      [{ user: "a", latencyMs: "5" }, "latencyMs"],
    ] as const) {
      assert.throws(() => pub.record(bad as never), (e: unknown) => e instanceof InvalidEventError && e.field === field);
    }
    pub.record({ user: "ok", bytes: 2 });
    await pub.flush(5_000);
    assert.is(pub.stats().recordedEvents, 2);
    assert.equal(storedIds(await readStream(nc)).sort(), [1, 2]);
    await pub.close();
    assert.throws(
      () => new TelemetryPublisher(nc, { partitions: 2, maxInFlight: 4, maxEventsPerFrame: 10, maxBufferedEvents: 60 }),
      (e: unknown) => e instanceof PublisherConfigError && e.option === "maxBufferedEvents",
    );
    assert.throws(() => new TelemetryPublisher(nc, { partitions: 0 }), (e: unknown) => e instanceof PublisherConfigError);
    assert.throws(() => new TelemetryPublisher(nc, { publisherId: "a.b" }), (e: unknown) => e instanceof PublisherConfigError);
  } finally {
    await nc.close();
    await srv.dispose();
  }
});

t("user directory: written once per user with segment/plan, bounded pending writes, readable by hash", async () => {
  const srv = await NatsServer.start();
  const nc = await connect(clientOpts(srv));
  try {
    await ensureTelemetryStream(nc);
    const dir = await UserDirectory.open(nc);
    const pub = new TelemetryPublisher(nc, { directory: dir, maxPendingDirectoryWrites: 2 });
    for (let i = 0; i < 5; i++) pub.record({ user: `cust-${i}`, segment: "enterprise", plan: i % 2 ? "pro" : "free", timeMs: 5_000 + i });
    let s = pub.stats();
    assert.is(s.directoryOverflow, 3, "only 2 writes may be pending; the rest wait for a later event");
    await pub.flush(5_000);
    assert.is(pub.stats().directoryWrites, 2);
    // Later events of the overflowed users write them; known users are not written again.
    for (let round = 1; round <= 2; round++) {
      for (let i = 0; i < 5; i++) pub.record({ user: `cust-${i}`, segment: "enterprise", plan: i % 2 ? "pro" : "free", timeMs: 1_000 * (5 + round) + i });
      await pub.flush(5_000);
      s = pub.stats();
      // Round 1: cust-2 and cust-3 written, cust-4 overflows again; round 2: cust-4 written.
      assert.equal([s.directoryWrites, s.directoryOverflow], round === 1 ? [4, 4] : [5, 4]);
    }
    assert.is(s.directoryErrors, 0);
    const hex = userHashHex(userHash("cust-3"));
    assert.equal(await dir.lookup(hex), { user: "cust-3", segment: "enterprise", plan: "pro", firstSeenMs: 6_003 });
    assert.is(await dir.name(hex), "cust-3");
    assert.is(await dir.name("00000000000000aa"), "00000000000000aa");
    assert.is(await dir.lookup("00000000000000aa"), null);
    // A second publisher (another gateway) finds the users already there.
    const pub2 = new TelemetryPublisher(nc, { directory: dir });
    pub2.record({ user: "cust-3", plan: "changed" });
    await pub2.close();
    assert.is(pub2.stats().directoryWrites, 0);
    assert.is((await dir.lookup(hex))!.plan, "pro", "first writer wins");
    await pub.close();
  } finally {
    await nc.close();
    await srv.dispose();
  }
});

t("flush interval seals partial frames without an explicit flush", async () => {
  const srv = await NatsServer.start();
  const nc = await connect(clientOpts(srv));
  try {
    await ensureTelemetryStream(nc);
    const pub = new TelemetryPublisher(nc, { partitions: 2, flushIntervalMs: 30 });
    pub.record({ user: "a", bytes: 7 });
    const deadline = Date.now() + 5_000;
    // No event marks "acked by the timer" from outside: poll the counter with a deadline.
    while (pub.stats().ackedEvents < 1 && Date.now() < deadline) await delay(10);
    assert.is(pub.stats().ackedEvents, 1);
    assert.is(pub.stats().ackedFrames, 1);
    await pub.close();
  } finally {
    await nc.close();
    await srv.dispose();
  }
});

t.run();

// Keep the record offsets honest: tests above read `bytes` as the event id.
assert.is(EventField.bytes, 40);
