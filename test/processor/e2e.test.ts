// The processor in-process against a real nats-server: publish → forecasts, bad frames
// dead-lettered beside applied good frames, the HTTP surface, a final checkpoint on stop, and a
// server restart while publishing and processing (nothing lost, duplicates removed).
import { test } from "uvu";
import * as assert from "uvu/assert";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { NatsServer } from "../../src/nats/server.ts";
import { createLogger } from "../../src/obs/logger.ts";
import { encodeFrame, DEAD_LETTER_REASON_HEADER } from "../../src/telemetry/frame.ts";
import { EVENT_RECORD_BYTES } from "../../src/wire/layout.ts";
import { writeRecord } from "../../src/telemetry/event.ts";
import {
  Processor,
  createWasmEngineFactory,
  decodeForecastMessage,
  forecastRecords,
  processorNames,
  ensureStreams,
  CheckpointStore,
  DEAD_LETTER_SEQ_HEADER,
  type ForecastMessageRecord,
} from "../../src/processor/index.ts";
import { buildFrames, lastSeqs, makeUsers, publishFrames, waitFor } from "./support.ts";

const T0 = 1_700_000_000_000; // fixed event time origin: ticks are driven by the test's clock
const engineFactory = createWasmEngineFactory({ bucketWidthMs: 1000, allowedLatenessMs: 2000, capacityUsers: 1024 });
const quiet = createLogger({ level: process.env.FORESIGHT_TEST_LOG === "1" ? "debug" : "silent" });

let srv: NatsServer;
test.before(async () => {
  srv = await NatsServer.start();
});
test.after(async () => {
  await srv.dispose();
});

/** Waits until every partition's worker applied the stream up to its last sequence. */
async function caughtUp(proc: Processor, nc: NatsConnection, partitions: number): Promise<void> {
  const jsm = await jetstreamManager(nc);
  const want = await lastSeqs(jsm, proc.names, partitions);
  await waitFor("processor to catch up", () =>
    want.every((seq, p) => {
      const w = proc.worker(p);
      return w !== undefined && w.lastAppliedSeq >= seq;
    }),
  );
}

function appliedEvents(proc: Processor, partitions: number): number {
  let n = 0;
  for (let p = 0; p < partitions; p++) n += proc.worker(p)?.engine.stats().eventsApplied ?? 0;
  return n;
}

test("publish → forecasts: each user's observed rate and a sensible forecast arrive per partition", async () => {
  const prefix = "e2e1";
  const P = 2;
  let now = T0;
  const nc = await connect({ servers: srv.url });
  const proc = await Processor.start({
    nats: { servers: [srv.url] },
    prefix,
    partitions: P,
    engineFactory,
    capacityUsers: 2048,
    tickIntervalMs: 100,
    checkpointIntervalMs: 60_000,
    leaseTtlMs: 3000,
    httpPort: -1,
    clock: () => now,
    log: quiet,
  });
  try {
    assert.equal(proc.ownedPartitions(), [0, 1]);
    // User i sends (i + 1) requests per second for 20 s. The test drives the tick clock along
    // with the data, as wall time would: before second s is published the clock stands at its
    // start plus the allowed lateness, so the engine accepts it and has closed the seconds before.
    const users = makeUsers(6, P, "rate");
    const js = jetstream(nc);
    const got = new Map<string, ForecastMessageRecord>();
    const ticked = new Map<number, Set<number>>(); // tick time -> partitions seen
    let waiter: { t: number; resolve: () => void } | undefined;
    // The callback only collects (an assertion thrown there could not fail the test); problems
    // are recorded and asserted in the test body below.
    const problems: string[] = [];
    let messages = 0;
    const sub = nc.subscribe(`${prefix}.forecasts.*`, {
      callback: (err, m) => {
        if (err) {
          problems.push(`subscription error: ${err.message}`);
          return;
        }
        messages++;
        let fm: ReturnType<typeof decodeForecastMessage>;
        try {
          fm = decodeForecastMessage(m.data);
        } catch (e) {
          problems.push(`${m.subject}: undecodable forecast message: ${(e as Error).message}`);
          return;
        }
        if (m.subject !== `${prefix}.forecasts.${fm.partition}`) problems.push(`partition ${fm.partition} published on ${m.subject}`);
        for (const r of forecastRecords(fm)) got.set(`${r.userHashHi}:${r.userHashLo}:${fm.tickTimeMs}`, r);
        if (fm.chunkIndex + 1 !== fm.chunkCount) return;
        const seen = ticked.get(fm.tickTimeMs) ?? new Set<number>();
        seen.add(fm.partition);
        ticked.set(fm.tickTimeMs, seen);
        if (waiter && waiter.t === fm.tickTimeMs && seen.size === P) waiter.resolve();
      },
    });
    const tickTo = (t: number) =>
      new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no tick at ${t}`)), 10_000);
        waiter = { t, resolve: () => (clearTimeout(timer), resolve()) };
        now = t;
      });
    const rec = new Uint8Array(6 * EVENT_RECORD_BYTES);
    const view = new DataView(rec.buffer);
    let published = 0;
    for (let sec = 0; sec < 20; sec++) {
      await tickTo(T0 + sec * 1000 + 2000);
      for (const [i, u] of users.entries()) {
        for (let j = 0; j <= i; j++) {
          writeRecord(view, j * EVENT_RECORD_BYTES, {
            userHashLo: u.lo, userHashHi: u.hi, timeMs: T0 + sec * 1000 + Math.floor((j * 1000) / (i + 1)) + 1,
            inputTokens: 100, outputTokens: 50, routeHash: 1, ipHash: 2, uaHash: 3, latencyMs: 10, bytes: 100, status: 200, flags: 0,
          });
        }
        await js.publish(`${prefix}.telemetry.${u.partition}`, encodeFrame(rec, i + 1));
        published += i + 1;
      }
      await caughtUp(proc, nc, P);
    }
    assert.is(appliedEvents(proc, P), published);
    const tickAt = T0 + 20_000 + 2_000 + 1;
    await tickTo(tickAt); // closes the last second
    sub.unsubscribe();
    assert.equal(problems, [], "every forecast message decodes and arrives on its partition's subject");
    assert.ok(messages >= 21 * P, `a forecast message per partition per tick (${messages})`);
    for (const [i, u] of users.entries()) {
      const r = got.get(`${u.hi}:${u.lo}:${tickAt}`);
      assert.ok(r, `forecast for ${u.key}`);
      assert.is(r!.observedPerSec, i + 1, `${u.key} observed rate`);
      assert.ok(Number.isFinite(r!.ratePerSec) && Math.abs(r!.ratePerSec - (i + 1)) <= 0.5 * (i + 1), `${u.key} forecast ${r!.ratePerSec} near ${i + 1}`);
      assert.ok(r!.upperPerSec >= r!.ratePerSec, `${u.key} upper bound ${r!.upperPerSec} >= forecast ${r!.ratePerSec}`);
    }
  } finally {
    await proc.stop();
    await nc.close();
  }
});

test("bad frames are dead-lettered with their reason; the good frames beside them are applied; HTTP surface answers", async () => {
  const prefix = "e2e2";
  const P = 1;
  const nc = await connect({ servers: srv.url });
  const proc = await Processor.start({
    nats: { servers: [srv.url] }, prefix, partitions: P, engineFactory, capacityUsers: 1024,
    tickIntervalMs: 100, checkpointIntervalMs: 60_000, leaseTtlMs: 3000, httpPort: 0, httpHost: "127.0.0.1", clock: () => T0, log: quiet,
  });
  try {
    const users = makeUsers(10, P, "bad");
    const good = buildFrames(users, P, 300, 100, T0 + 1, 500);
    const js = jetstream(nc);
    const subj = `${prefix}.telemetry.0`;
    const truncated = good.frames[0].bytes.slice(0, good.frames[0].bytes.length - 5);
    const badMagic = good.frames[0].bytes.slice();
    badMagic[0] = 0x58;
    await js.publish(subj, good.frames[0].bytes);
    const badSeq1 = (await js.publish(subj, truncated)).seq;
    await js.publish(subj, good.frames[1].bytes);
    await js.publish(subj, badMagic);
    await js.publish(subj, new TextEncoder().encode('[{"user":"x","time":1,"inputTokens":-4}]'));
    await js.publish(subj, good.frames[2].bytes);
    await caughtUp(proc, nc, P);
    assert.is(appliedEvents(proc, P), 300, "all events of the three good frames applied");

    const jsm = await jetstreamManager(nc);
    await waitFor("3 dead letters", async () => (await jsm.streams.info(proc.names.deadLetterStream)).state.messages === 3);
    const reasons: string[] = [];
    const c = await js.consumers.get(proc.names.deadLetterStream);
    for (let i = 0; i < 3; i++) {
      const m = await c.next({ expires: 5000 });
      assert.ok(m);
      assert.is(m!.subject, `${prefix}.deadletter.0`);
      reasons.push(m!.headers!.get(DEAD_LETTER_REASON_HEADER));
      if (i === 0) assert.is(m!.headers!.get(DEAD_LETTER_SEQ_HEADER), String(badSeq1));
    }
    assert.equal(reasons, ["length_mismatch", "bad_magic", "json_invalid"]);

    const base = `http://127.0.0.1:${proc.httpPort}`;
    const metrics = await (await fetch(`${base}/metrics`)).text();
    assert.match(metrics, /foresight_bad_frames_total\{reason="length_mismatch"\} 1/);
    assert.match(metrics, /foresight_bad_frames_total\{reason="bad_magic"\} 1/);
    assert.match(metrics, /foresight_events_in_total\{partition="0"\} 300/);
    assert.match(metrics, /foresight_frames_in_total\{partition="0"\} 6/);
    assert.match(metrics, /foresight_tick_duration_seconds_count \d+/);
    const health = await fetch(`${base}/healthz`);
    assert.is(health.status, 200);
    const ready = await fetch(`${base}/readyz`);
    assert.is(ready.status, 200);
    assert.is(((await ready.json()) as { checks: { ownedPartitions: number } }).checks.ownedPartitions, 1);
  } finally {
    await proc.stop();
    await nc.close();
  }
});

test("stop writes a final checkpoint at the last applied sequence; a new processor resumes after it", async () => {
  const prefix = "e2e3";
  const P = 2;
  const nc = await connect({ servers: srv.url });
  const names = processorNames(prefix);
  const opts = {
    nats: { servers: [srv.url] }, prefix, partitions: P, engineFactory, capacityUsers: 2048,
    tickIntervalMs: 60_000, checkpointIntervalMs: 60_000, leaseTtlMs: 3000, httpPort: -1, clock: () => T0, log: quiet,
  };
  const users = makeUsers(50, P, "cp");
  const set = buildFrames(users, P, 2000, 100, T0 + 1, 900);
  const js = jetstream(nc);
  let proc = await Processor.start(opts);
  try {
    await publishFrames(js, names, set.frames, { to: 10 });
    await caughtUp(proc, nc, P);
    await proc.stop();
    const jsm = await jetstreamManager(nc);
    const want = await lastSeqs(jsm, names, P);
    const store = await CheckpointStore.open(nc, names);
    for (let p = 0; p < P; p++) assert.is((await store.load(p))?.lastSeq, want[p], `partition ${p} checkpointed at its last sequence`);
    await publishFrames(js, names, set.frames, { from: 10 });
    proc = await Processor.start(opts);
    await caughtUp(proc, nc, P);
    assert.is(appliedEvents(proc, P), 2000, "restored state plus the rest: every event exactly once");
  } finally {
    await proc.stop();
    await nc.close();
  }
});

test("server restart while publishing and processing: nothing lost, duplicates removed", async () => {
  const prefix = "e2e4";
  const P = 2;
  const names = processorNames(prefix);
  const nc = await connect({ servers: srv.url, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
  const jsm = await jetstreamManager(nc);
  await ensureStreams(jsm, names);
  const proc = await Processor.start({
    nats: { servers: [srv.url], reconnectTimeWaitMs: 100 }, prefix, partitions: P, engineFactory, capacityUsers: 2048,
    tickIntervalMs: 100, checkpointIntervalMs: 60_000, leaseTtlMs: 10_000, httpPort: -1, clock: () => T0, log: quiet,
  });
  try {
    const users = makeUsers(40, P, "rs");
    const set = buildFrames(users, P, 6000, 50, T0 + 1, 900);
    const js = jetstream(nc);
    const half = set.frames.length >> 1;
    await publishFrames(js, names, set.frames, { to: half, retry: true });
    // Restart while the second half is being published (retries reuse the same Nats-Msg-Id).
    const publishing = publishFrames(js, names, set.frames, { from: half, retry: true, window: 8 });
    await srv.restart();
    await publishing;
    // Republish a few frames whose first attempt surely landed: the duplicate window drops them.
    await publishFrames(js, names, set.frames, { from: 0, to: 5, retry: true });
    const info = await jsm.streams.info(names.telemetryStream);
    assert.is(info.state.messages, set.frames.length, "one stored message per frame");
    await caughtUp(proc, nc, P);
    assert.is(appliedEvents(proc, P), 6000);
  } finally {
    await proc.stop();
    await nc.close();
  }
});

test.run();
