// The facade: options validation, the three ingest paths, forecasts and their zero-copy view,
// stats, implementation swap (WASM / REFERENCE factories), module lookup.
import { test } from "uvu";
import * as assert from "uvu/assert";
import {
  Engine, EngineInputError, EngineLoadError, EngineOptionsError, REFERENCE, WASM, resolveEngineOptions,
} from "../../src/engine/index.ts";
import { EVENT_RECORD_BYTES, FORECAST_RECORD_BYTES } from "../../src/engine/layout.ts";
import { packageRoot } from "../../src/engine/wasm.ts";
import { indexEntriesFor } from "../../src/engine/regions.ts";
import { DEFAULT_CONFIG } from "../../src/config/schema.ts";
import { engineOptionsFromConfig } from "../../src/processor/engine-adapter.ts";
import * as pkg from "../../src/index.ts";
import { EPOCH0, encodeEvents, users } from "./_util.ts";

test("options: defaults, derived scalars, one clear error per bad option", () => {
  const o = resolveEngineOptions();
  assert.is(o.capacityUsers, 262_144);
  assert.is(o.bucketWidthMs, 60_000);
  assert.is(o.allowedLatenessMs, 10_000);
  assert.is(o.seasonPoints, 48);
  assert.is(o.horizonBuckets, 5);
  assert.is(o.upperQuantile, 0.95);
  assert.is(o.ingressCapacity, 8192);
  assert.is(o.ringBuckets, 3);
  assert.is(o.periodBuckets, 1440);
  assert.ok(Math.abs(o.z - 1.6448536269514722) < 1e-8, `z ${o.z}`);
  assert.ok(Math.abs(resolveEngineOptions({ upperQuantile: 0.99 }).z - 2.3263478740408408) < 1e-8);
  const bad: [object, RegExp][] = [
    [{ capacityUsers: 0 }, /capacityUsers = 0/],
    [{ capacityUsers: 2 ** 23 }, /capacityUsers/],
    [{ bucketWidthMs: 999 }, /bucketWidthMs = 999/],
    [{ bucketWidthMs: 7000 }, /must divide a day/],
    [{ bucketWidthMs: 1000, allowedLatenessMs: 7000 }, /ring buckets/],
    [{ seasonPoints: 12 }, /seasonPoints/],
    [{ bucketWidthMs: 600_000, seasonPoints: 145 }, /seasonPoints/],
    [{ upperQuantile: 0.5 }, /upperQuantile/],
    [{ alpha: 0 }, /alpha = 0/],
    [{ alpha: 0.5, alphaMax: 0.4 }, /alphaMax/],
    [{ phi: 1.1 }, /phi/],
    [{ horizonBuckets: 0 }, /horizonBuckets/],
    [{ expireAfterBuckets: -1 }, /expireAfterBuckets/],
    [{ maxCatchUpBuckets: 0 }, /maxCatchUpBuckets/],
    [{ ingressCapacity: 0 }, /ingressCapacity/],
  ];
  for (const [opts, re] of bad) {
    try {
      resolveEngineOptions(opts);
      assert.unreachable(JSON.stringify(opts));
    } catch (err) {
      assert.instance(err, EngineOptionsError);
      assert.is((err as Error).name, "EngineOptionsError");
      assert.match((err as Error).message, re);
    }
  }
});

test("Engine.create rejects bad options before loading, and a missing module with EngineLoadError", async () => {
  try {
    await Engine.create({ bucketWidthMs: 12 });
    assert.unreachable();
  } catch (err) {
    assert.instance(err, EngineOptionsError);
  }
  try {
    await Engine.create({ wasmPath: "/nonexistent/engine.wasm" });
    assert.unreachable();
  } catch (err) {
    assert.instance(err, EngineLoadError);
    assert.match((err as Error).message, /build:wasm/);
  }
  assert.ok(packageRoot().endsWith("/main") || packageRoot().length > 1);
});

test("WASM and REFERENCE factories give engines with the same interface and results", async () => {
  const ids = users(50, "fac-");
  const evs = ids.flatMap((u, i) => Array.from({ length: 1 + (i % 5) }, (_, k) => ({ userHash: u, timeMs: EPOCH0 + 1000 * k + i, inputTokens: 10 + k })));
  const results = [];
  for (const f of [WASM, REFERENCE]) {
    const e = await f.create({ capacityUsers: 64, ingressCapacity: 16 });
    assert.is(e.kind, f.name);
    assert.is(e.ingest(evs), evs.length, "chunked by ingress capacity");
    assert.is(e.tick(EPOCH0 + 70_000 + 10_000), 50);
    results.push(e.forecasts());
  }
  assert.equal(results[0], results[1]);
});

test("ingestRecords copies wire records in chunks; ingressBuffer/ingestFilled is zero-copy; forecastView", async () => {
  const e = await Engine.create({ debug: true, capacityUsers: 128, ingressCapacity: 100 });
  const ids = users(120, "rec-");
  const evs = ids.flatMap((u) => [0, 1, 2].map((k) => ({ userHash: u, timeMs: EPOCH0 + k * 1000, inputTokens: 7 })));
  const bytes = encodeEvents(evs);
  assert.is(e.ingestRecords(bytes, 250), 250);
  assert.is(e.ingestRecords(bytes.subarray(250 * EVENT_RECORD_BYTES)), evs.length - 250);
  assert.throws(() => e.ingestRecords(bytes, evs.length + 1), (err: Error) => err instanceof EngineInputError);
  const ib = e.ingressBuffer();
  assert.is(ib.capacity, 100);
  assert.is(ib.bytes.byteLength, 100 * EVENT_RECORD_BYTES);
  ib.bytes.set(encodeEvents([{ userHash: ids[0], timeMs: EPOCH0 + 5000, inputTokens: 1 }]));
  assert.is(e.ingestFilled(1), 1);
  assert.throws(() => e.ingestFilled(101), (err: Error) => err instanceof EngineInputError);
  assert.is(e.stats().eventsApplied, evs.length + 1);
  assert.is(e.tick(EPOCH0 + 60_000 + 10_000), 120);
  const v = e.forecastView();
  assert.is(v.count, 120);
  assert.is(v.u32.length, (120 * FORECAST_RECORD_BYTES) / 4);
  const objs = e.forecasts();
  for (let i = 0; i < v.count; i++) {
    assert.is(v.u32[i * 8], objs[i].userHash.lo);
    assert.is(v.f64[i * 4 + 3], objs[i].observedPerSec);
  }
  const first = objs.find((f) => f.userHash.lo === ids[0].lo)!;
  assert.is(first.observedPerSec, 4 / 60);
  assert.ok(first.upperPerSec >= first.ratePerSec);
  assert.equal(e.userFeatures(ids[0])!.requests, 4);
  assert.equal(e.userFeatures(ids[0])!.inputTokens, 22);
  assert.is(e.userFeatures({ lo: 123, hi: 456 }), undefined);
  const uf = e.userForecast(ids[0])!;
  assert.is(uf.ratePerSec, first.ratePerSec);
  assert.throws(() => e.tick(NaN), (err: Error) => err instanceof EngineInputError);
});

test("stats are numbers; memoryInfo stays within 1 KiB per user at defaults", async () => {
  const e = await Engine.create({ capacityUsers: 1024 });
  const s = e.stats();
  for (const [k, v] of Object.entries(s)) assert.type(v, "number", k);
  const m = e.memoryInfo();
  // 704 B up to layout v4; v5's cumulative totals (24 B) need more than the 13 spare bytes: 768 B;
  // v7 stores the time-of-day profile (24 x u16) and the season (P x i16) in 16 bits: 576 B.
  assert.is(m.slotBytes, 576);
  assert.ok(m.bytesPerUser <= 1024, `${m.bytesPerUser} bytes per user`);
});

test("the served configuration (forecastModel ensemble, P = 48, R = 3) stays within 1 KiB per user at 2^20 users", async () => {
  // The options `foresight serve` builds from the config defaults; a small power-of-two capacity
  // has the same per-user index share (16 B) as 2^20, without a 1 GiB allocation per engine.
  const served = engineOptionsFromConfig(DEFAULT_CONFIG.engine);
  assert.is(served.forecastModel, "ensemble");
  assert.is(indexEntriesFor(1 << 20) * 8 / (1 << 20), 16);
  for (const e of [await Engine.create({ ...served, capacityUsers: 1 << 12 }), Engine.createReference({ ...served, capacityUsers: 1 << 12 })]) {
    const m = e.memoryInfo();
    assert.is(m.ringBuckets, 3);
    // Layout v7: header and ring cells 432, time-of-day 48, season 96, LSTM-lite and ensemble 384.
    assert.is(m.slotExtOffset, 576, e.kind);
    assert.is(m.slotBytes, 960, e.kind);
    assert.is(m.bytesPerUser, 960 + 16 + FORECAST_RECORD_BYTES);
    assert.ok(m.bytesPerUser <= 1024, `${e.kind}: ${m.bytesPerUser} bytes per user`);
  }
});

test("the package entry exports the engine facade", () => {
  assert.is(pkg.Engine, Engine);
  assert.is(typeof pkg.REFERENCE.create, "function");
});

test.run();
