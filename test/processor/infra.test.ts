// Streams, leases, checkpoints and the HTTP surface against a real nats-server.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { connect } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { NatsServer } from "../../src/nats/server.ts";
import { processorNames } from "../../src/processor/names.ts";
import { ensureStreams } from "../../src/processor/streams.ts";
import { CheckpointStore, CheckpointCorruptError, decodeCheckpoint, encodeCheckpoint } from "../../src/processor/checkpoints.ts";
import { LeaseManager } from "../../src/processor/leases.ts";
import { decodeForecastMessage, encodeForecastMessages, forecastRecords, FORECAST_HEADER_BYTES } from "../../src/processor/forecasts.ts";
import { ObsServer, ProcessorMetrics } from "../../src/obs/index.ts";

let srv: NatsServer;
test.before(async () => {
  srv = await NatsServer.start();
});
test.after(async () => {
  await srv.dispose();
});

test("ensureStreams creates, is idempotent, and updates changed limits", async () => {
  const nc = await connect({ servers: srv.url });
  try {
    const jsm = await jetstreamManager(nc);
    const names = processorNames("infra1");
    const first = await ensureStreams(jsm, names, { telemetryMaxBytes: 1 << 30 });
    assert.equal(Object.values(first), ["created", "created", "created"]);
    const again = await ensureStreams(jsm, names, { telemetryMaxBytes: 1 << 30 });
    assert.equal(Object.values(again), ["unchanged", "unchanged", "unchanged"]);
    const changed = await ensureStreams(jsm, names, { telemetryMaxBytes: 1 << 29 });
    assert.is(changed[names.telemetryStream], "updated");
    const info = await jsm.streams.info(names.telemetryStream);
    assert.is(info.config.max_bytes, 1 << 29);
    assert.equal(info.config.subjects, ["infra1.telemetry.*"]);
    assert.is(info.config.storage, "file");
  } finally {
    await nc.close();
  }
});

test("checkpoints round-trip through the object store; corrupt ones are refused", async () => {
  const nc = await connect({ servers: srv.url });
  try {
    const store = await CheckpointStore.open(nc, processorNames("infra2"));
    assert.is(await store.load(3), null);
    const engineState = new Uint8Array(300_000).map((_, i) => i * 7);
    await store.save({ partition: 3, lastSeq: 42, timeMs: 1234, owner: "me", engineState });
    const cp = await store.load(3);
    assert.ok(cp);
    assert.is(cp!.lastSeq, 42);
    assert.is(cp!.owner, "me");
    assert.equal(cp!.engineState, engineState);
    const bytes = encodeCheckpoint({ partition: 1, lastSeq: 1, timeMs: 1, owner: "x", engineState: new Uint8Array(10) });
    assert.throws(() => decodeCheckpoint(bytes.subarray(0, bytes.length - 1)), (e: unknown) => e instanceof CheckpointCorruptError);
    bytes[0] ^= 0xff;
    assert.throws(() => decodeCheckpoint(bytes), (e: unknown) => e instanceof CheckpointCorruptError);
  } finally {
    await nc.close();
  }
});

test("a checkpoint read racing with writes that replace it returns a whole checkpoint, never hangs", async () => {
  // A write replaces the object and purges the chunks of the version being read; the object
  // store's own reader then waits for them forever (seen as a hung test). load() must notice
  // the newer version and read that one instead.
  const w = await connect({ servers: srv.url });
  const r = await connect({ servers: srv.url });
  const names = processorNames("infra-race");
  const state = (v: number) => new Uint8Array(2_000_000).map((_, i) => ((i * 31 + v) % 251) + 1);
  let stop = false;
  let writes: Promise<void> = Promise.resolve();
  try {
    const writer = await CheckpointStore.open(w, names);
    await writer.save({ partition: 0, lastSeq: 1, timeMs: 1, owner: "w", engineState: state(1) });
    let written = 1;
    writes = (async () => {
      for (let v = 2; !stop; v++) {
        await writer.save({ partition: 0, lastSeq: v, timeMs: v, owner: "w", engineState: state(v) });
        written = v;
      }
    })();
    const reader = await CheckpointStore.open(r, names);
    const seen = new Set<number>();
    for (let i = 0; i < 20; i++) {
      let timer: NodeJS.Timeout | undefined;
      const cp = await Promise.race([
        reader.load(0),
        new Promise<never>((_res, reject) => (timer = setTimeout(() => reject(new Error(`read ${i} did not finish within 15 s`)), 15_000))),
      ]).finally(() => clearTimeout(timer));
      assert.ok(cp, `read ${i}: a checkpoint`);
      assert.ok(cp!.lastSeq >= 1 && cp!.lastSeq <= written + 1, `read ${i}: a version that was written (${cp!.lastSeq})`);
      assert.ok(Buffer.from(cp!.engineState).equals(Buffer.from(state(cp!.lastSeq))), `read ${i}: the state of version ${cp!.lastSeq}, whole`);
      seen.add(cp!.lastSeq);
    }
    stop = true;
    await writes;
    assert.ok(seen.size > 1, "the reads overlapped several writes");
  } finally {
    stop = true;
    await writes.catch(() => {});
    await w.close();
    await r.close();
  }
});

test("checkpoints elide all-zero pages: a sparse engine state round-trips exactly at a fraction of its size", () => {
  // 10 MB + 123 bytes, zero but for a few scattered bytes and a non-zero tail (a partial page).
  const engineState = new Uint8Array(10_000_123);
  for (const at of [5, 4096, 4097, 3_000_000, 9_999_999]) engineState[at] = 0xab;
  engineState.fill(7, 10_000_100);
  const bytes = encodeCheckpoint({ partition: 0, lastSeq: 9, timeMs: 1, owner: "me", engineState });
  assert.ok(bytes.length < 40_000, `encoded ${bytes.length} bytes`);
  assert.equal(decodeCheckpoint(bytes).engineState, engineState);
  // A dense state is stored whole (plus its page map).
  const dense = new Uint8Array(50_000).map((_, i) => (i % 251) + 1);
  const denseBytes = encodeCheckpoint({ partition: 0, lastSeq: 1, timeMs: 1, owner: "me", engineState: dense });
  assert.ok(denseBytes.length > dense.length);
  assert.equal(decodeCheckpoint(denseBytes).engineState, dense);
  // A page map that promises more pages than the object holds is refused.
  assert.throws(() => decodeCheckpoint(bytes.subarray(0, bytes.length - 50)), (e: unknown) => e instanceof CheckpointCorruptError && /truncated/.test((e as Error).message));
});

test("leases: fair share, exclusive ownership, takeover after the TTL, release", async () => {
  const nc = await connect({ servers: srv.url });
  try {
    const names = processorNames("infra3");
    let now = 1_000_000;
    const clock = () => now;
    const a = await LeaseManager.open(nc, names, { processId: "a", partitions: 4, ttlMs: 1000, now: clock });
    const b = await LeaseManager.open(nc, names, { processId: "b", partitions: 4, ttlMs: 1000, now: clock });
    const ra = await a.round();
    assert.is(ra.acquired.length, 4, "alone, a takes all partitions");
    const rb = await b.round();
    assert.is(rb.acquired.length, 0, "b finds them all leased");
    assert.is(rb.liveMembers, 2);
    const ra2 = await a.round();
    assert.is(ra2.surplus.length, 2, "a sees two members and names two partitions as surplus");
    for (const p of ra2.surplus) await a.release(p);
    const rb2 = await b.round();
    assert.equal(rb2.acquired.sort(), ra2.surplus.sort());
    // a stops renewing (dies); after the TTL b takes a's partitions.
    now += 500;
    assert.is((await b.round()).acquired.length, 0, "a's leases have not expired yet");
    now += 1500;
    const rb4 = await b.round();
    assert.is(rb4.acquired.length, 2, "after the TTL b takes over");
    assert.equal(b.owned(), [0, 1, 2, 3]);
    // A renewal of b's was stored but its reply lost (a node failed mid-request): b's next
    // renewal carries a stale revision, yet the entry still names b, so b keeps the lease.
    const kv = await new Kvm(nc).open(names.leaseBucket);
    const e = await kv.get("partition.0");
    await kv.update("partition.0", e!.string(), e!.revision);
    assert.ok(await b.renew(0), "own stored write recognised");
    assert.equal(b.owned(), [0, 1, 2, 3]);
    // a wakes up: its renewals fail (revision moved), so it learns it lost them.
    const ra3 = await a.round();
    assert.is(ra3.lost.length, 2);
    assert.is(ra3.acquired.length, 0);
    assert.equal(a.owned(), []);
  } finally {
    await nc.close();
  }
});

test("forecast messages chunk under the max payload and decode back", () => {
  const count = 100;
  const records = new Uint8Array(count * 32);
  const dv = new DataView(records.buffer);
  for (let i = 0; i < count; i++) {
    dv.setUint32(i * 32, i + 1, true);
    dv.setFloat64(i * 32 + 8, i * 0.5, true);
  }
  const msgs = encodeForecastMessages(2, 5000, records, count, FORECAST_HEADER_BYTES + 32 * 30);
  assert.is(msgs.length, 4);
  const decoded = msgs.map(decodeForecastMessage);
  assert.equal(decoded.map((m) => m.count), [30, 30, 30, 10]);
  assert.ok(decoded.every((m) => m.partition === 2 && m.tickTimeMs === 5000 && m.chunkCount === 4 && m.totalCount === 100));
  const all = decoded.flatMap(forecastRecords);
  assert.is(all[99].userHashLo, 100);
  assert.is(all[99].ratePerSec, 49.5);
  assert.is(encodeForecastMessages(0, 1, new Uint8Array(0), 0).length, 1, "an empty tick still sends one message");
});

test("obs server: /metrics, /healthz, /readyz over HTTP", async () => {
  const metrics = new ProcessorMetrics();
  metrics.badFrames.inc({ reason: "bad_magic" });
  let ready = false;
  const http = new ObsServer({
    port: 0,
    host: "127.0.0.1",
    registry: metrics.registry,
    health: () => ({ ok: true, checks: { nats: true } }),
    ready: () => ({ ok: ready, checks: { restored: ready } }),
  });
  const port = await http.start();
  try {
    const m = await fetch(`http://127.0.0.1:${port}/metrics`);
    assert.is(m.status, 200);
    assert.match(await m.text(), /foresight_bad_frames_total\{reason="bad_magic"\} 1/);
    assert.is((await fetch(`http://127.0.0.1:${port}/healthz`)).status, 200);
    const r1 = await fetch(`http://127.0.0.1:${port}/readyz`);
    assert.is(r1.status, 503);
    assert.equal(await r1.json(), { ok: false, checks: { restored: false } });
    ready = true;
    assert.is((await fetch(`http://127.0.0.1:${port}/readyz`)).status, 200);
    assert.is((await fetch(`http://127.0.0.1:${port}/nope`)).status, 404);
  } finally {
    await http.stop();
  }
});

test.run();
