// WASM engine (debug build) vs the TypeScript reference on identical inputs: every tick's
// forecast records, every user's features and the whole state region must agree.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { type EngineOptions, type EventInput } from "../../src/engine/index.ts";
import { EventFlag } from "../../src/engine/layout.ts";
import { DAY_MS, EPOCH0, assertSameEngines, encodeEvents, pair, rng, servegenSlice, users, zipf } from "./_util.ts";

interface StreamSpec {
  seed: number;
  users: number;
  events: number;
  /** Events per second of arrival (processing) time. */
  rate: number;
  tickEveryMs: number;
  options: EngineOptions;
  expectEvictions?: boolean;
  expectExpirations?: boolean;
}

/** Generates a stream with in-order, out-of-order, late, early and invalid events, ticking as it goes. */
async function runRandom(spec: StreamSpec): Promise<void> {
  const [w, r] = await pair(spec.options);
  const rand = rng(spec.seed);
  const pick = zipf(spec.users, 1.1, rand);
  const ids = users(spec.users, `s${spec.seed}-`);
  const width = spec.options.bucketWidthMs ?? 60_000;
  const lateness = spec.options.allowedLatenessMs ?? 10_000;
  let now = EPOCH0 + 3 * 3600_000 + 12_345;
  let nextTick = now + spec.tickEveryMs;
  const batch: EventInput[] = [];
  let ticks = 0;
  // What the stream must produce: a tick to nowMs closes up to floor((now - lateness) / width);
  // buckets beyond maxCatchUpBuckets in one tick are skipped and counted.
  const maxCatchUp = spec.options.maxCatchUpBuckets ?? Math.floor(DAY_MS / width);
  let expectedSkipped = 0;
  const tickBoth = (nowMs: number) => {
    const closed = w.stats().closedBucket;
    const target = Math.max(0, Math.floor((nowMs - lateness) / width));
    if (target - closed > maxCatchUp) expectedSkipped += target - closed - maxCatchUp;
    const n = w.tick(nowMs);
    assert.is(n, r.tick(nowMs));
    return n;
  };
  const flush = () => {
    const useRecords = rand() < 0.5;
    const bytes = encodeEvents(batch);
    const aw = useRecords ? w.ingestRecords(bytes) : w.ingest(batch);
    const ar = r.ingest(batch);
    assert.is(aw, ar, "applied per batch");
    batch.length = 0;
  };
  for (let i = 0; i < spec.events; i++) {
    now += (-Math.log(1 - rand()) * 1000) / spec.rate;
    const u = rand();
    let t = now - rand() * 2000; // small network delay
    if (u < 0.05) t = now - lateness - width * (1 + rand() * 3); // late
    else if (u < 0.08) t = now + width * (3 + rand() * 10); // early
    else if (u < 0.25) t = now - rand() * lateness; // out of order within lateness
    const e: EventInput = {
      userHash: ids[pick()],
      timeMs: t,
      inputTokens: Math.floor(rand() * 4000),
      outputTokens: Math.floor(rand() * 800),
      routeHash: rand() < 0.1 ? 0 : (rand() * 2 ** 32) >>> 0,
      ipHash: rand() < 0.1 ? 0 : (Math.floor(rand() * 6) * 0x9e3779b1) >>> 0,
      uaHash: (Math.floor(rand() * 3) * 0x85ebca6b) >>> 0,
      latencyMs: Math.floor(rand() * 500),
      bytes: Math.floor(rand() * 10000),
      status: rand() < 0.03 ? 503 : 200,
      flags: (rand() < 0.05 ? EventFlag.throttled : 0) | (rand() < 0.02 ? EventFlag.error : 0),
    };
    const v = rand();
    if (v < 0.004) e.userHash = { lo: 0, hi: 0 };
    else if (v < 0.008) e.timeMs = NaN;
    else if (v < 0.01) e.inputTokens = -5;
    else if (v < 0.012) e.latencyMs = -1;
    else if (v < 0.013) e.timeMs = Infinity;
    else if (v < 0.014) e.timeMs = -3;
    batch.push(e);
    if (batch.length >= 1000 || now >= nextTick) flush();
    if (now >= nextTick) {
      tickBoth(now);
      nextTick += spec.tickEveryMs;
      if (++ticks % 7 === 0) assertSameEngines(w, r, `tick ${ticks}`, ticks % 21 === 0);
    }
  }
  flush();
  tickBoth(now + width);
  // A pause of 12 buckets without ticks: the next tick catches up (capped by maxCatchUpBuckets).
  tickBoth(now + 13 * width);
  assertSameEngines(w, r, "end");
  const s = w.stats();
  assert.ok(s.late > 0 && s.early > 0 && s.invalid > 0 && s.bucketsClosed > 5, `stream exercised every path: ${JSON.stringify(s)}`);
  assert.is(s.skippedBuckets, expectedSkipped, "skipped buckets: exactly those beyond the catch-up cap");
  if (spec.options.maxCatchUpBuckets !== undefined && spec.options.maxCatchUpBuckets < 12) assert.ok(s.skippedBuckets > 0, "the pause exceeded the catch-up cap");
  if (spec.expectEvictions) assert.ok(s.evictions > 0, "evictions happened");
  if (spec.expectExpirations) assert.ok(s.expirations > 0, "expirations happened");
  if (process.env.ENGINE_TEST_VERBOSE) console.log(s);
}

test("random Zipf stream, defaults with eviction pressure (capacity < users)", async () => {
  await runRandom({ seed: 1, users: 3000, events: 60_000, rate: 40, tickEveryMs: 5000, expectEvictions: true,
    options: { capacityUsers: 1000, ingressCapacity: 512 } });
});

test("random stream, 1 s buckets, 3 s lateness (R = 5), 144 season points, expiry and catch-up cap", async () => {
  await runRandom({ seed: 2, users: 500, events: 40_000, rate: 200, tickEveryMs: 700, expectEvictions: true, expectExpirations: true,
    options: { capacityUsers: 400, bucketWidthMs: 1000, allowedLatenessMs: 3000, seasonPoints: 144,
      horizonBuckets: 30, expireAfterBuckets: 20, maxCatchUpBuckets: 3, upperQuantile: 0.99 } });
});

test("random stream, 10 min buckets, no lateness (R = 2)", async () => {
  await runRandom({ seed: 3, users: 200, events: 30_000, rate: 2, tickEveryMs: 120_000,
    options: { capacityUsers: 256, bucketWidthMs: 600_000, allowedLatenessMs: 0, seasonPoints: 24 } });
});

test("real series: ServeGen m-large clients, 3 days of 10-min counts through ingestCounts", async () => {
  const series = servegenSlice([0, 1, 4, 5, 7, 10], 3);
  assert.is(series.size, 6);
  const ids = [...series.keys()];
  const hashes = users(ids.length, "servegen-m-large-");
  const [w, r] = await pair({ capacityUsers: 64, bucketWidthMs: 600_000, allowedLatenessMs: 0, seasonPoints: 144, horizonBuckets: 1 });
  const windows = 432;
  let covered = 0, n = 0, absErr = 0, absNaive = 0;
  const lastForecast = new Map<number, { rate: number; upper: number }>();
  for (let k = 0; k < windows; k++) {
    const recs = ids.map((id, i) => ({ userHash: hashes[i], timeMs: EPOCH0 + k * 600_000 + 1, requests: series.get(id)![k] ?? 0, inputTokens: 100 * (series.get(id)![k] ?? 0) }));
    assert.is(w.ingestCounts(recs), r.ingestCounts(recs));
    const now = EPOCH0 + (k + 1) * 600_000;
    assert.is(w.tick(now), r.tick(now));
    if (k % 24 === 0) assertSameEngines(w, r, `window ${k}`, k % 144 === 0);
    // Accuracy bookkeeping on days 2-3 for the horizon-1 forecast made one window earlier.
    const out = w.forecasts();
    out.forEach((f, i) => {
      const prev = lastForecast.get(i);
      const y = (series.get(ids[i])![k] ?? 0) / 600;
      if (prev && k >= 144) {
        n++;
        if (y <= prev.upper) covered++;
        absErr += Math.abs(prev.rate - y);
        absNaive += Math.abs((series.get(ids[i])![k - 1] ?? 0) / 600 - y);
      }
      assert.ok(f.ratePerSec >= 0 && f.upperPerSec >= f.ratePerSec, "forecast >= 0 and upper >= rate");
      assert.ok(Math.abs(f.observedPerSec - y) < 1e-12, "observed = the window just closed");
      lastForecast.set(i, { rate: f.ratePerSec, upper: f.upperPerSec });
    });
  }
  assertSameEngines(w, r, "end");
  const s = w.stats();
  assert.is(s.countsApplied, windows * ids.length);
  assert.is(s.late + s.early + s.invalid, 0);
  // Sanity of the model on real data (not a benchmark): the 95% upper bound covers most
  // windows and the one-step forecast is in the same league as the naive last value.
  const coverage = covered / n;
  assert.ok(coverage > 0.75, `upper-bound coverage ${coverage.toFixed(3)}`);
  assert.ok(absErr < 1.5 * absNaive, `HW MAE ${(absErr / n).toFixed(4)} vs naive ${(absNaive / n).toFixed(4)}`);
  console.log(`  servegen slice: coverage ${(coverage * 100).toFixed(1)}%, MAE HW ${(absErr / n).toFixed(4)} vs naive ${(absNaive / n).toFixed(4)} req/s`);
});

test("real series as events: ServeGen m-large clients 1, 4, 10, one day, synthesized per request", async () => {
  const series = servegenSlice([1, 4, 10], 1);
  const ids = [...series.keys()];
  const hashes = users(ids.length, "servegen-events-");
  const [w, r] = await pair({ capacityUsers: 16, bucketWidthMs: 60_000, allowedLatenessMs: 20_000, ingressCapacity: 4096 });
  const rand = rng(42);
  let total = 0;
  for (let k = 0; k < 144; k++) {
    // The window's requests at uniform random times (sorted, then 10% nudged out of order).
    const evs: EventInput[] = [];
    ids.forEach((id, i) => {
      const n = series.get(id)![k] ?? 0;
      for (let j = 0; j < n; j++)
        evs.push({ userHash: hashes[i], timeMs: EPOCH0 + k * 600_000 + rand() * 600_000, inputTokens: 200 + ((rand() * 800) | 0),
          outputTokens: (rand() * 300) | 0, ipHash: ((i * 7 + ((rand() * 5) | 0)) * 0x9e3779b1) >>> 0, uaHash: (i + 1) * 0x85ebca6b >>> 0,
          routeHash: ((rand() * 3) | 0) + 1, status: rand() < 0.01 ? 500 : 200 });
    });
    evs.sort((a, b) => a.timeMs - b.timeMs);
    const arrival = evs.map((e) => e.timeMs); // arrival order = request time order
    for (const e of evs) if (rand() < 0.1) e.timeMs -= rand() * 15_000; // 10% reported with an earlier time
    total += evs.length;
    // Feed minute by minute of arrival, ticking after each minute as a processor would.
    let from = 0;
    for (let m = 1; m <= 10; m++) {
      const until = EPOCH0 + k * 600_000 + m * 60_000;
      let to = from;
      while (to < evs.length && arrival[to] < until) to++;
      const part = evs.slice(from, to);
      from = to;
      assert.is(w.ingest(part), r.ingest(part));
      assert.is(w.tick(until), r.tick(until));
    }
    if (k % 36 === 35) assertSameEngines(w, r, `window ${k}`, true);
  }
  assertSameEngines(w, r, "end");
  const s = w.stats();
  assert.ok(total > 10_000, `${total} events`);
  assert.is(s.eventsApplied + s.late + s.early + s.invalid, total);
  assert.ok(s.eventsApplied > 0.99 * total, `applied ${s.eventsApplied} of ${total}`);
});

test("prefetch hints go stale inside a group (evictions reuse slots mid-group): still identical", async () => {
  const [w, r] = await pair({ capacityUsers: 2 });
  const [a, b, c, d] = users(4, "hint-");
  const t = EPOCH0 + 3_600_000;
  // One batch, one prefetch group: every hint taken before the group is applied is wrong by the time it is used.
  const evs: EventInput[] = [a, b, c, a, d, b, c, a, a, d, c, b].map((u, i) => ({ userHash: u, timeMs: t + i * 1000, inputTokens: i, ipHash: i + 1 }));
  assert.is(w.ingest(evs), r.ingest(evs));
  assert.is(w.tick(t + 120_000), r.tick(t + 120_000));
  assertSameEngines(w, r, "stale hints");
  assert.is(w.stats().evictions, 9); // a,b | c>a a>b d>c b>a c>d a>b (a) d>c c>a b>d
});

test("a WASM snapshot restored into the reference continues identically (and vice versa)", async () => {
  const opts: EngineOptions = { capacityUsers: 300, ingressCapacity: 256 };
  const [w, r] = await pair(opts);
  const rand = rng(9);
  const ids = users(400, "x-");
  let now = EPOCH0 + DAY_MS / 3;
  const step = (engines: typeof w[]) => {
    const evs: EventInput[] = [];
    for (let i = 0; i < 2000; i++) evs.push({ userHash: ids[Math.floor(rand() * ids.length)], timeMs: now - rand() * 9000, inputTokens: 10, ipHash: (rand() * 50) >>> 0 });
    now += 20_000;
    for (const e of engines) e.ingest(evs);
    for (const e of engines) e.tick(now);
  };
  for (let i = 0; i < 10; i++) step([w, r]);
  r.restore(w.snapshot());
  w.restore(r.snapshot());
  for (let i = 0; i < 10; i++) step([w, r]);
  assertSameEngines(w, r, "after cross-restore");
});

test.run();
