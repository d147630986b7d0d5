// The hot path allocates nothing: the runtime stub's bump-allocator top and the memory size stay
// the same across a million events over a stable user set and the ticks between them, with
// Holt-Winters alone and with the ensemble `serve` runs (LSTM-lite with online training, every
// member, the combination). Also: a 2^21-user table initialises (memory sized once).
import { test } from "uvu";
import * as assert from "uvu/assert";
import { Engine } from "../../src/engine/index.ts";
import { EVENT_RECORD_BYTES, EventField as EV } from "../../src/engine/layout.ts";
import { EPOCH0, rng, users, zipf } from "./_util.ts";

for (const forecastModel of ["hw", "ensemble"] as const)
test(`1M events + ticks, forecastModel "${forecastModel}": heap top and memory pages unchanged (debug build)`, async () => {
  const e = await Engine.create({ debug: true, capacityUsers: 1 << 14, ingressCapacity: 8192, forecastModel, lstmTrainUsersPerBucket: 64 });
  const ids = users(10_000, "alloc-");
  const rand = rng(77);
  const pick = zipf(ids.length, 1.1, rand);
  const { bytes, capacity } = e.ingressBuffer();
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let now = EPOCH0 + 5 * 3600_000;
  const fill = () => {
    for (let i = 0; i < capacity; i++) {
      const p = i * EVENT_RECORD_BYTES;
      const u = ids[pick()];
      now += 2;
      dv.setUint32(p + EV.userHashLo, u.lo, true);
      dv.setUint32(p + EV.userHashHi, u.hi, true);
      dv.setFloat64(p + EV.timeMs, now - (i % 13) * 100, true);
      dv.setInt32(p + EV.inputTokens, i & 1023, true);
      dv.setInt32(p + EV.outputTokens, i & 255, true);
      dv.setUint32(p + EV.routeHash, (i * 2654435761) >>> 0, true);
      dv.setUint32(p + EV.ipHash, (i & 63) * 97, true);
      dv.setUint32(p + EV.uaHash, i & 7, true);
      dv.setUint16(p + EV.status, i % 50 === 0 ? 503 : 200, true);
      dv.setUint16(p + EV.flags, i % 40 === 0 ? 1 : 0, true);
    }
  };
  // Warm up: every user of the set gets a slot before the baseline is taken.
  for (let k = 0; k < 8; k++) {
    fill();
    e.ingestFilled(capacity);
  }
  e.tick(now);
  const heap0 = e.core.heapTop();
  const pages0 = e.core.memoryPages();
  const tracked0 = e.stats().usersTracked;
  let events = 0;
  let batches = 0;
  while (events < 1_000_000) {
    fill();
    events += e.ingestFilled(capacity);
    if (++batches % 16 === 0) e.tick(now);
  }
  e.tick(now + 120_000);
  assert.ok(events >= 1_000_000, `${events} applied`);
  assert.is(e.core.heapTop(), heap0, "bump allocator top moved: something allocated");
  assert.is(e.core.memoryPages(), pages0, "memory grew");
  assert.ok(e.stats().usersTracked >= tracked0 * 0.98, "stable user set");
  assert.ok(e.stats().ticks > 10);
  // The ticks closed buckets for every user (so the models ran), and with the ensemble the online
  // training took steps.
  assert.ok(e.stats().bucketsClosed >= 5, `buckets closed: ${e.stats().bucketsClosed}`);
  if (forecastModel === "ensemble") assert.ok(e.lstmTrainingStats().steps > 0, "LSTM-lite trained online");
});

test("the heapTop probe is stable and reads the stub's bump top below the engine's regions", async () => {
  // heapTop() allocates a 1-byte block and frees it; the stub runtime has no collector and only
  // reclaims the last block, so any allocation that happened in between (a `new`, a string, an
  // array) stays and moves the top. Two probes in a row agree.
  const e = await Engine.create({ debug: true, capacityUsers: 16 });
  const a = e.core.heapTop();
  assert.is(e.core.heapTop(), a);
  assert.ok(a > 0 && a < e.core.ingressPtr(), "the stub heap lives below the engine's regions");
});

test("capacity 2^21 initialises; memory is sized once and does not grow with users", async () => {
  const e = await Engine.create({ capacityUsers: 1 << 21 });
  const info = e.memoryInfo();
  assert.ok(info.memoryBytes >= (1 << 21) * info.slotBytes, `memory ${info.memoryBytes}`);
  const pages = e.core.memoryPages();
  const ids = users(5000, "big-");
  e.ingest(ids.map((u, i) => ({ userHash: u, timeMs: EPOCH0 + i })));
  assert.is(e.tick(EPOCH0 + 120_000), 5000);
  assert.is(e.stats().usersTracked, 5000);
  assert.is(e.core.memoryPages(), pages);
  assert.ok(e.lookup(ids[4999]) >= 0);
});

test.run();
