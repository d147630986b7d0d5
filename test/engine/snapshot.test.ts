// Snapshot/restore: format checks, clear errors, and determinism (restore then continue gives
// exactly what never stopping gives).
import { test } from "uvu";
import * as assert from "uvu/assert";
import { Engine, type EngineOptions, type EventInput, SnapshotError } from "../../src/engine/index.ts";
import { EPOCH0, assertSameEngines, rng, users, zipf } from "./_util.ts";

function makeStream(seed: number, n: number, start: number): { batches: EventInput[][]; ticks: number[] } {
  const rand = rng(seed);
  const ids = users(2000, "snap-");
  const pick = zipf(ids.length, 1.05, rand);
  const batches: EventInput[][] = [];
  const ticks: number[] = [];
  let now = start;
  for (let b = 0; b < n; b++) {
    const evs: EventInput[] = [];
    for (let i = 0; i < 800; i++) {
      now += 15;
      evs.push({ userHash: ids[pick()], timeMs: now - rand() * 8000, inputTokens: (rand() * 900) | 0, outputTokens: (rand() * 90) | 0, ipHash: (rand() * 40) >>> 0, uaHash: (rand() * 3) >>> 0, routeHash: (rand() * 1e9) >>> 0, status: rand() < 0.02 ? 502 : 200 });
    }
    batches.push(evs);
    ticks.push(now);
  }
  return { batches, ticks };
}

const OPTS: EngineOptions = { capacityUsers: 700, ingressCapacity: 1024, debug: true, expireAfterBuckets: 30 };

test("restore then continue == never stopping (WASM), state bytes included", async () => {
  const { batches, ticks } = makeStream(5, 60, EPOCH0 + 7 * 3600_000);
  const straight = await Engine.create(OPTS);
  const first = await Engine.create(OPTS);
  for (let i = 0; i < 30; i++) {
    for (const e of [straight, first]) {
      e.ingest(batches[i]);
      e.tick(ticks[i]);
    }
  }
  const snap = first.snapshot();
  const resumed = await Engine.create(OPTS);
  resumed.restore(snap);
  assert.equal(resumed.stats(), straight.stats());
  for (let i = 30; i < 60; i++) {
    for (const e of [straight, resumed]) {
      e.ingest(batches[i]);
      e.tick(ticks[i]);
    }
  }
  assertSameEngines(straight, resumed, "resumed vs straight");
  assert.ok(straight.stats().evictions > 0, "the run evicted users");
});

test("a snapshot is the params + globals + index + slots, not the ingress or output buffers", async () => {
  const e = await Engine.create(OPTS);
  const info = e.memoryInfo();
  const snap = e.snapshot();
  assert.is(snap.byteLength, 16 + info.stateBytes);
  assert.ok(info.stateBytes >= OPTS.capacityUsers! * info.slotBytes && info.stateBytes < OPTS.capacityUsers! * (info.slotBytes + 16) + 64 * 1024);
});

test("incompatible or damaged snapshots are refused with SnapshotError and leave the engine untouched", async () => {
  const a = await Engine.create(OPTS);
  a.ingest([{ userHash: users(1)[0], timeMs: EPOCH0 + 1000 }]);
  const snap = a.snapshot();
  const before = a.stats();
  const cases: [string, Uint8Array, RegExp][] = [
    ["short", snap.subarray(0, 100), /too short/],
    ["magic", (() => { const s = snap.slice(); s[0] ^= 0xff; return s; })(), /bad magic/],
    ["version", (() => { const s = snap.slice(); s[4] = 9; return s; })(), /format version 9/],
    // A snapshot of the previous slot layout (v5: f32 profile, count ring and pending forecasts).
    ["layout", (() => { const s = snap.slice(); new DataView(s.buffer).setFloat64(16, 5, true); return s; })(), /parameter version = 5, this engine has 7/],
    ["truncated", snap.subarray(0, snap.length - 8), /state bytes/],
    ["globals", (() => { const s = snap.slice(); new DataView(s.buffer).setFloat64(16 + 192 + 2 * 8, 1e9, true); return s; })(), /inconsistent/],
  ];
  for (const [what, bytes, re] of cases) {
    try {
      a.restore(bytes);
      assert.unreachable(`${what} accepted`);
    } catch (err) {
      assert.instance(err, SnapshotError, what);
      assert.match((err as Error).message, re, what);
      assert.is((err as Error).name, "SnapshotError");
    }
  }
  // A different bucket grid (same state size) is refused, naming the parameter.
  const otherWidth = await Engine.create({ ...OPTS, bucketWidthMs: (OPTS.bucketWidthMs ?? 60_000) / 2 });
  assert.throws(() => otherWidth.restore(snap), (err: Error) => err instanceof SnapshotError && /parameter bucketWidthMs/.test(err.message));
  const otherCap = await Engine.create({ ...OPTS, capacityUsers: 701 });
  assert.throws(() => otherCap.restore(snap), (err: Error) => err instanceof SnapshotError && /incompatible capacity/.test(err.message));
  assert.equal(a.stats(), before);
});

test("a snapshot restores into an engine with other live parameters, which keeps its own", async () => {
  const base = await Engine.create(OPTS);
  const events: EventInput[] = users(50).flatMap((u, i) => [0, 1, 2].map((k) => ({ userHash: u, timeMs: EPOCH0 + k * 70_000 + i * 10 })));
  base.ingest(events);
  base.tick(EPOCH0 + 400_000);
  const changes: EngineOptions = { alpha: 0.3, horizonBuckets: 2, upperQuantile: 0.9 };
  // Live reconfiguration: a new engine with the changed live options takes the state over.
  const moved = await base.reconfigured(changes);
  moved.restore(base.snapshot());
  assert.equal(moved.stats(), base.stats());
  assert.is(moved.options.alpha, 0.3);
  // Reference: an engine created with those options from the start, fed the same state.
  const fresh = await Engine.create({ ...OPTS, ...changes });
  fresh.restore(base.snapshot());
  const later: EventInput[] = users(50).map((u, i) => ({ userHash: u, timeMs: EPOCH0 + 430_000 + i }));
  for (const e of [moved, fresh, base]) {
    e.ingest(later);
    e.tick(EPOCH0 + 600_000);
  }
  assert.equal(moved.forecasts(), fresh.forecasts());
  // The new parameters are really in effect: the forecasts differ from the unchanged engine's.
  assert.not.equal(moved.forecasts(), base.forecasts());
  // Options that shape the state cannot change on a running engine.
  await base.reconfigured({ seasonPoints: 24 }).then(
    () => assert.unreachable("seasonPoints change accepted"),
    (err: Error) => assert.match(err.message, /seasonPoints cannot change on a running engine/),
  );
});

test.run();
