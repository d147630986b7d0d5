// Known-value tests of the engine's semantics, run on both implementations (WASM debug build
// and TypeScript reference): features, event-time buckets and lateness, invalid input, LRU
// eviction, expiry, catch-up cap, Holt-Winters equations and adaptation, time-of-day profile,
// cumulative per-user totals.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { Engine, type EngineOptions, type EventInput } from "../../src/engine/index.ts";
import { EventFlag } from "../../src/engine/layout.ts";
import { normalQuantile, resolveEngineOptions } from "../../src/engine/options.ts";
import { EPOCH0, relClose, users } from "./_util.ts";
import { decI16, encI16 } from "../../src/engine/codec.ts";

const IMPLS: [string, (o: EngineOptions) => Promise<Engine>][] = [
  ["wasm", (o) => Engine.create({ debug: true, ...o })],
  ["reference", async (o) => Engine.createReference(o)],
];

const W = 60_000;
const L = 10_000;
const B0 = EPOCH0 / W + 600; // a bucket number (10:00 UTC)
const at = (bucket: number, offsetMs = 0) => bucket * W + offsetMs;

for (const [impl, make] of IMPLS) {
  const t = suite(impl);

  t("per-bucket features: count, tokens, distinct IPs/UAs, CV, errors, throttled, route histogram", async () => {
    const e = await make({ capacityUsers: 16 });
    const [u] = users(1);
    const ev = (off: number, extra: Partial<EventInput>): EventInput => ({ userHash: u, timeMs: at(B0, off), ...extra });
    e.ingest([
      ev(11_000, { inputTokens: 100, outputTokens: 10, ipHash: 1, uaHash: 7, routeHash: 8 + 1, status: 200 }),
      ev(12_000, { inputTokens: 200, outputTokens: 20, ipHash: 2, uaHash: 7, routeHash: 16 + 1, status: 500 }),
      ev(15_000, { inputTokens: 300, outputTokens: 30, ipHash: 3, uaHash: 9, routeHash: 2, flags: EventFlag.throttled }),
      ev(16_000, { inputTokens: 400, outputTokens: 40, ipHash: 3, uaHash: 9, routeHash: 0, flags: EventFlag.error | EventFlag.throttled }),
      ev(13_000, { inputTokens: 1, outputTokens: 1, ipHash: 0, uaHash: 0 }), // out of order: no gap
    ]);
    const slot = e.lookup(u);
    assert.ok(slot >= 0);
    assert.is(e.core.cellRouteBin(slot, B0, 1), 2);
    assert.is(e.core.cellRouteBin(slot, B0, 2), 1);
    assert.is(e.core.cellRouteBin(slot, B0, 0), 0);
    assert.is(e.core.cellRouteBin(slot, B0 + 1, 0), -1);
    e.tick(at(B0 + 1) + L); // closes B0
    const f = e.userFeatures(u)!;
    assert.is(f.requests, 5);
    assert.is(f.inputTokens, 1001);
    assert.is(f.outputTokens, 101);
    assert.ok(relClose(f.distinctIps, 128 * Math.log(128 / 125)), `ips ${f.distinctIps}`); // 3 bits set
    assert.ok(relClose(f.distinctUserAgents, 128 * Math.log(128 / 126)), `uas ${f.distinctUserAgents}`);
    // in-order gaps 1000, 3000, 1000 ms: mean 5000/3, population sd -> CV
    const m = 5000 / 3, v = (1e6 + 9e6 + 1e6) / 3 - m * m;
    assert.ok(relClose(f.interArrivalCv, Math.fround(Math.sqrt(v) / m)), `cv ${f.interArrivalCv}`);
    assert.is(f.errors, 2);
    assert.is(f.throttled, 2);
    const out = e.forecasts();
    assert.is(out.length, 1);
    assert.ok(relClose(out[0].observedPerSec, 5 / 60));
  });

  t("event time: first event sets the clock; late, early and out-of-order within the window", async () => {
    const e = await make({ capacityUsers: 16 }); // R = ceil(10/60) + 2 = 3
    assert.is(e.memoryInfo().ringBuckets, 3);
    const [u] = users(1);
    e.ingest([{ userHash: u, timeMs: at(B0, 5_000) }]); // closed = floor((t - 10 s) / 60 s) = B0 - 1
    assert.is(e.stats().closedBucket, B0 - 1);
    const applied = e.ingest([
      { userHash: u, timeMs: at(B0 - 2, 59_999) }, // late
      { userHash: u, timeMs: at(B0 + 2) }, // early: >= closed + R
      { userHash: u, timeMs: at(B0 + 1, 100) }, // accepted (last bucket of the window)
      { userHash: u, timeMs: at(B0 - 1, 30_000) }, // out of order, still open
      { userHash: u, timeMs: at(B0, 1_000) },
    ]);
    assert.is(applied, 3);
    const s = e.stats();
    assert.is(s.late, 1);
    assert.is(s.early, 1);
    assert.is(s.eventsApplied, 4);
    e.tick(at(B0) + L); // closes B0 - 1
    assert.is(e.userFeatures(u)!.requests, 1);
    e.tick(at(B0 + 1) + L); // closes B0
    assert.is(e.userFeatures(u)!.requests, 2);
    e.tick(at(B0 + 2) + L); // closes B0 + 1
    assert.is(e.userFeatures(u)!.requests, 1);
    e.tick(at(B0 + 3) + L); // an absent bucket is a zero count
    assert.is(e.userFeatures(u)!.requests, 0);
    assert.is(e.core.hwObservations(e.lookup(u)), 4);
    assert.is(e.stats().bucketsClosed, 4);
    e.ingest([{ userHash: u, timeMs: at(B0 + 2, 59_000) }]);
    assert.is(e.stats().late, 2, "buckets below the clock are closed for good");
  });

  t("tick before any event starts the clock; a new user is not fed zeros before its first bucket", async () => {
    const e = await make({ capacityUsers: 16 });
    const [a, b] = users(2);
    assert.is(e.tick(at(B0) + L), 0);
    assert.is(e.stats().closedBucket, B0);
    e.ingest([{ userHash: a, timeMs: at(B0, 1) }]);
    e.tick(at(B0 + 1) + L);
    e.ingest([{ userHash: b, timeMs: at(B0 + 2, 1), ipHash: 5 }]);
    const fresh = e.userFeatures(b)!; // nothing closed yet for b: all-zero features
    for (const [k, v] of Object.entries(fresh)) assert.is(v, 0, `new user's ${k}`);
    e.tick(at(B0 + 3) + L); // closes B0+1 (b not yet seen) and B0+2
    assert.is(e.core.hwObservations(e.lookup(a)), 3);
    assert.is(e.core.hwObservations(e.lookup(b)), 1);
    assert.is(e.core.hwLevel(e.lookup(b)), 1 / 60, "level = first observation");
  });

  t("invalid records are counted and skipped; the rest of the batch is applied", async () => {
    const e = await make({ capacityUsers: 16 });
    const [u, v] = users(2);
    const good = (x = 0): EventInput => ({ userHash: u, timeMs: at(B0, 20_000 + x), inputTokens: 5 });
    const applied = e.ingest([
      good(1),
      { userHash: { lo: 0, hi: 0 }, timeMs: at(B0) },
      { ...good(), timeMs: NaN },
      { ...good(), timeMs: Infinity },
      { ...good(), timeMs: -1 },
      { ...good(), inputTokens: -1 },
      { ...good(), outputTokens: -2 },
      { ...good(), latencyMs: -3 },
      { ...good(), bytes: -4 },
      { userHash: v, timeMs: at(B0, 30_000) },
      good(2),
    ]);
    assert.is(applied, 3);
    assert.is(e.stats().invalid, 8);
    assert.is(e.stats().usersTracked, 2);
    const c = e.ingestCounts([
      { userHash: u, timeMs: at(B0, 1), requests: 2.5 },
      { userHash: u, timeMs: at(B0, 1), requests: -1 },
      { userHash: u, timeMs: at(B0, 1), requests: 3, inputTokens: NaN },
      { userHash: { lo: 0, hi: 0 }, timeMs: at(B0, 1), requests: 3 },
      { userHash: u, timeMs: at(B0, 1), requests: 10, inputTokens: 7 },
    ]);
    assert.is(c, 1);
    assert.is(e.stats().invalid, 12);
    e.tick(at(B0 + 1) + L);
    const f = e.userFeatures(u)!;
    assert.is(f.requests, 12);
    assert.is(f.inputTokens, 17);
  });

  t("full table evicts the least recently seen user (recency at bucket resolution), counted", async () => {
    const e = await make({ capacityUsers: 4 });
    const [a, b, c, d, x, y, z] = users(7);
    e.ingest([a, b, c, d].map((u) => ({ userHash: u, timeMs: at(B0, 1000) })));
    e.ingest([{ userHash: a, timeMs: at(B0, 2000) }]); // same bucket: a is not moved to the front
    e.ingest([{ userHash: x, timeMs: at(B0, 3000) }]); // evicts a (the tail)
    assert.is(e.lookup(a), -1);
    assert.is(e.stats().evictions, 1);
    e.ingest([{ userHash: b, timeMs: at(B0 + 1, 10) }]); // b's last-seen bucket advances: moved to front
    e.ingest([{ userHash: y, timeMs: at(B0 + 1, 20) }]); // evicts c
    assert.is(e.lookup(c), -1);
    assert.ok(e.lookup(b) >= 0);
    e.ingest([{ userHash: z, timeMs: at(B0 + 1, 30) }]); // evicts d
    assert.is(e.lookup(d), -1);
    assert.is(e.stats().evictions, 3);
    assert.is(e.stats().usersTracked, 4);
    for (const u of [b, x, y, z]) assert.ok(e.lookup(u) >= 0);
    assert.is(e.tick(at(B0 + 2) + L), 4);
  });

  t("lazy promotion: flagged tail users go back to the front once; capacity 1 still evicts", async () => {
    const e = await make({ capacityUsers: 3 });
    const [a, b, c, d, x] = users(5);
    e.ingest([a, b, c].map((u) => ({ userHash: u, timeMs: at(B0, 1) }))); // list (front..tail): c b a
    e.ingest([{ userHash: a, timeMs: at(B0 + 1, 1) }, { userHash: b, timeMs: at(B0 + 1, 2) }]); // a, b flagged
    e.ingest([{ userHash: d, timeMs: at(B0 + 1, 3) }]); // a, b promoted; c (last seen B0) evicted
    assert.is(e.lookup(c), -1);
    for (const u of [a, b, d]) assert.ok(e.lookup(u) >= 0);
    const one = await make({ capacityUsers: 1 });
    one.ingest([{ userHash: a, timeMs: at(B0, 1) }, { userHash: a, timeMs: at(B0 + 1, 1) }, { userHash: x, timeMs: at(B0 + 1, 2) }]);
    assert.is(one.lookup(a), -1);
    assert.ok(one.lookup(x) >= 0);
    assert.is(one.stats().evictions, 1);
  });

  t("idle users expire at tick (counted) and their slots are reused", async () => {
    const e = await make({ capacityUsers: 8, expireAfterBuckets: 2 });
    const [a, b, c] = users(3);
    e.ingest([{ userHash: a, timeMs: at(B0, 1) }, { userHash: b, timeMs: at(B0, 2) }]);
    const slotA = e.lookup(a);
    e.tick(at(B0 + 1) + L);
    e.ingest([{ userHash: b, timeMs: at(B0 + 1, 5) }]);
    e.tick(at(B0 + 2) + L); // closed = B0 + 2: a idle for 2 closed buckets, not yet expired
    assert.ok(e.lookup(a) >= 0);
    assert.is(e.tick(at(B0 + 3) + L), 1); // closed = B0 + 3: a expires
    assert.is(e.lookup(a), -1);
    assert.is(e.stats().expirations, 1);
    e.ingest([{ userHash: c, timeMs: at(B0 + 3, 1) }]);
    assert.is(e.lookup(c), slotA, "freed slot reused");
    assert.is(e.stats().usersTracked, 2);
  });

  t("after a long gap a tick closes at most maxCatchUpBuckets buckets; the rest are skipped", async () => {
    const e = await make({ capacityUsers: 8, maxCatchUpBuckets: 10 });
    const [a] = users(1);
    e.ingest([{ userHash: a, timeMs: at(B0, 1) }]);
    e.tick(at(B0 + 100) + L);
    const s = e.stats();
    assert.is(s.closedBucket, B0 + 100);
    assert.is(s.bucketsClosed, 10);
    assert.is(s.skippedBuckets, B0 + 100 - (B0 - 1) - 10);
    assert.is(e.core.hwObservations(e.lookup(a)), 10);
  });

  t("Holt-Winters state follows the documented equations (independent scalar implementation)", async () => {
    const opts: EngineOptions = { capacityUsers: 4, bucketWidthMs: 600_000, allowedLatenessMs: 0, seasonPoints: 48, horizonBuckets: 3 };
    const e = await make(opts);
    const p = resolveEngineOptions(opts);
    const [u] = users(1);
    const Wb = 600_000, D = 144, P = 48;
    const c0 = EPOCH0 / Wb;
    const pos = (c: number) => {
      const x = ((c % D) * P) / D;
      const i0 = Math.floor(x);
      return { i0, i1: (i0 + 1) % P, f: x - i0 };
    };
    // The season is stored as a signed 16-bit float (layout v7): every store rounds through it.
    const q16 = (v: number) => decI16(encI16(v));
    const season = new Float64Array(P);
    let level = 0, trend = 0, n = 0, errVar = 0, smE = 0, smA = 0, alpha = Math.fround(p.alpha);
    const rand = Math.random;
    const ys: number[] = [];
    for (let k = 0; k < 400; k++) {
      const req = Math.round(300 + 200 * Math.sin((2 * Math.PI * k) / D) + (k > 250 ? 400 : 0) + 40 * rand());
      ys.push(req);
      e.ingestCounts([{ userHash: u, timeMs: c0 * Wb + k * Wb + 5, requests: req }]);
      e.tick(c0 * Wb + (k + 1) * Wb);
      const y = req / 600;
      if (n === 0) {
        level = y;
        trend = 0;
        n = 1;
      } else {
        const { i0, i1, f } = pos(c0 + k);
        const s0 = season[i0], s1 = season[i1];
        const err = y - (level + p.phi * trend + ((1 - f) * s0 + f * s1));
        const E = p.trackingSmoothing * err + (1 - p.trackingSmoothing) * smE;
        const M = p.trackingSmoothing * Math.abs(err) + (1 - p.trackingSmoothing) * smA;
        let a = alpha;
        if (M > 0 && Math.abs(E) > p.trackingThreshold * M) a = a + (p.alphaMax - a) * 0.5;
        else a = a + (p.alpha - a) * p.alphaDecay;
        level = level + p.phi * trend + a * err;
        trend = p.phi * trend + p.beta * err;
        season[i0] = q16(s0 + p.gamma * err * (1 - f));
        season[i1] = q16(s1 + p.gamma * err * f);
        errVar = Math.fround((1 - p.varianceSmoothing) * errVar + p.varianceSmoothing * err * err);
        smE = Math.fround(E);
        smA = Math.fround(M);
        alpha = Math.fround(a);
        n++;
      }
      const slot = e.lookup(u);
      assert.ok(relClose(e.core.hwLevel(slot), level), `k=${k} level ${e.core.hwLevel(slot)} vs ${level}`);
      assert.ok(relClose(e.core.hwTrend(slot), trend), `k=${k} trend`);
      assert.ok(relClose(e.core.hwAlpha(slot), alpha), `k=${k} alpha`);
      assert.ok(relClose(e.core.hwErrVar(slot), errVar), `k=${k} errVar`);
    }
    const slot = e.lookup(u);
    for (let i = 0; i < P; i++) assert.ok(relClose(e.core.hwSeason(slot, i), season[i]), `season ${i}`);
    for (const h of [1, 3, 7]) {
      let ps = 0, pp = 1;
      for (let k = 1; k <= h; k++) ps += pp *= p.phi;
      const { i0, i1, f } = pos(c0 + 399 + h);
      const point = level + ps * trend + ((1 - f) * season[i0] + f * season[i1]);
      const upper = point + normalQuantile(0.95) * Math.sqrt(errVar * (1 + p.alpha * p.alpha * (h - 1)));
      assert.ok(relClose(e.core.hwForecast(slot, h), Math.max(0, point)), `forecast h=${h}`);
      assert.ok(relClose(e.core.hwUpper(slot, h), Math.max(0, upper)), `upper h=${h}`);
    }
    const rec = e.forecasts()[0];
    assert.ok(relClose(rec.ratePerSec, e.core.hwForecast(slot, 3)), "tick output = horizon-3 forecast");
    assert.ok(relClose(rec.upperPerSec, e.core.hwUpper(slot, 3)));
    assert.ok(relClose(rec.observedPerSec, ys[399] / 600));
  });

  t("alpha rises after a regime change (Trigg-Leach) and decays back; the level catches up", async () => {
    const e = await make({ capacityUsers: 4, bucketWidthMs: 600_000, allowedLatenessMs: 0 });
    const [u] = users(1);
    const Wb = 600_000, c0 = EPOCH0 / Wb;
    let maxAlpha = 0, alphaBefore = 0, levelAfter5 = 0;
    for (let k = 0; k < 400; k++) {
      const req = k < 200 ? 600 + (k % 3) * 6 : 3000 + (k % 3) * 30; // 1 -> 5 req/s
      e.ingestCounts([{ userHash: u, timeMs: c0 * Wb + k * Wb, requests: req }]);
      e.tick(c0 * Wb + (k + 1) * Wb);
      const s = e.lookup(u);
      if (k === 199) alphaBefore = e.core.hwAlpha(s);
      if (k >= 200 && k < 220) maxAlpha = Math.max(maxAlpha, e.core.hwAlpha(s));
      if (k === 205) levelAfter5 = e.core.hwLevel(s) + e.core.hwSeason(s, 0) * 0;
    }
    const s = e.lookup(u);
    assert.ok(alphaBefore < 0.25, `alpha before ${alphaBefore}`);
    assert.ok(maxAlpha > 0.6, `alpha after the change ${maxAlpha}`);
    assert.ok(levelAfter5 > 3.5, `level 6 buckets after the change ${levelAfter5}`);
    assert.ok(e.core.hwAlpha(s) < 0.3, `alpha decayed back ${e.core.hwAlpha(s)}`);
    const f = e.forecasts()[0];
    assert.ok(Math.abs(f.ratePerSec - 5.05) < 0.5, `forecast ${f.ratePerSec}`);
  });

  t("the interpolated daily season is learned from day one, in phase, and beats a non-seasonal model 6 h ahead", async () => {
    // Adaptation off (alphaMax = alpha) and a slow level, so the season, not the level, carries the cycle.
    const mk = (gamma: number) => make({ capacityUsers: 4, bucketWidthMs: 600_000, allowedLatenessMs: 0, horizonBuckets: 36, alpha: 0.02, alphaMax: 0.02, beta: 0, gamma });
    const seasonal = await mk(0.1);
    const flat = await mk(0);
    const [u] = users(1);
    const Wb = 600_000, c0 = EPOCH0 / Wb, D = 144;
    const truth = (k: number) => 5 + 4 * Math.sin((2 * Math.PI * k) / D);
    let errS = 0, errF = 0;
    const predS: number[] = [], predF: number[] = [];
    for (let k = 0; k < 4 * D; k++) {
      const y = truth(k) + (k % 5 === 0 ? 1 : 0) - (k % 7 === 3 ? 0.5 : 0);
      for (const e of [seasonal, flat]) {
        e.ingestCounts([{ userHash: u, timeMs: c0 * Wb + k * Wb, requests: Math.round(y * 600) }]);
        e.tick(c0 * Wb + (k + 1) * Wb);
      }
      if (k >= 3 * D) {
        errS += Math.abs(predS[k] - truth(k));
        errF += Math.abs(predF[k] - truth(k));
      }
      predS[k + 36] = seasonal.forecasts()[0].ratePerSec;
      predF[k + 36] = flat.forecasts()[0].ratePerSec;
      assert.ok(Number.isFinite(predS[k + 36]) && predS[k + 36] >= 0, "finite, non-negative from the first bucket");
      if (k === 12) assert.ok(Math.abs(seasonal.core.hwSeason(seasonal.lookup(u), 2)) > 0, "season moving within hours");
    }
    // the learned profile has the shape and phase of the truth
    const s = seasonal.lookup(u);
    const prof = Array.from({ length: 48 }, (_, i) => seasonal.core.hwSeason(s, i));
    const ref = Array.from({ length: 48 }, (_, i) => Math.sin((2 * Math.PI * i) / 48));
    const mean = prof.reduce((a, b) => a + b) / 48;
    const dot = prof.reduce((a, v, i) => a + (v - mean) * ref[i], 0);
    const corr = dot / Math.sqrt(prof.reduce((a, v) => a + (v - mean) ** 2, 0) * ref.reduce((a, v) => a + v * v, 0));
    assert.ok(corr > 0.95, `season/truth correlation ${corr}`);
    assert.ok(errS < 0.5 * errF, `6-h-ahead MAE on day 4: seasonal ${errS / D} vs flat ${errF / D}`);
  });

  t("time-of-day profile: hourly EW rates only for the hours with traffic", async () => {
    const e = await make({ capacityUsers: 4, timeOfDayDayWeight: 0.5 });
    const [u] = users(1);
    const h3 = EPOCH0 / W + 3 * 60; // 03:00
    for (let k = 0; k < 60; k++) {
      e.ingestCounts([{ userHash: u, timeMs: (h3 + k) * W + 1, requests: 120 }]); // 2 req/s
      e.tick((h3 + k + 1) * W + L);
    }
    const s = e.lookup(u);
    const p = resolveEngineOptions({ timeOfDayDayWeight: 0.5 });
    // one full hour at 2 req/s moves the hour's rate to 2 * (1 - (1 - a)^60) = 2 * dayWeight
    assert.ok(Math.abs(e.core.todRate(s, 3) - 2 * 0.5) < 1e-5, `hour 3 ${e.core.todRate(s, 3)} (a = ${p.todAlpha})`);
    for (const h of [0, 2, 4, 12, 23]) assert.is(e.core.todRate(s, h), 0);
  });

  t("cumulative per-user totals across buckets: late, early and invalid not counted; skipped buckets kept", async () => {
    const opts = { capacityUsers: 16, maxCatchUpBuckets: 2 }; // R = 3
    const e = await make(opts);
    const [u, v] = users(2);
    const ev = (h: typeof u, b: number, inputTokens: number, outputTokens: number, off = 5_000): EventInput =>
      ({ userHash: h, timeMs: at(b, off), inputTokens, outputTokens });
    const applied = e.ingest([
      ev(u, B0, 10, 1, 20_000), // sets the clock: closed = B0, window B0..B0+2
      ev(u, B0 + 1, 20, 2),
      ev(u, B0 + 2, 40, 4),
      ev(v, B0 + 1, 1000, 100),
      ev(u, B0 + 3, 7, 7), // early
      ev(u, B0 + 1, -1, 3), // invalid: negative tokens
      { userHash: { lo: 0, hi: 0 }, timeMs: at(B0 + 1), inputTokens: 5 }, // invalid: hash 0
    ]);
    assert.is(applied, 4);
    assert.equal(e.userTotals(u), { requests: 3, inputTokens: 70, outputTokens: 7 }); // all buckets open
    assert.equal(e.userTotals(v), { requests: 1, inputTokens: 1000, outputTokens: 100 });
    e.tick(at(B0 + 2) + L); // closes B0, B0 + 1: folded into the slot, B0 + 2 still open
    assert.equal(e.userTotals(u), { requests: 3, inputTokens: 70, outputTokens: 7 });
    e.ingest([ev(u, B0 + 1, 1, 1), ev(u, B0 + 3, 80, 8), ev(u, B0 + 4, 160, 16)]); // the first is late
    e.ingestCounts([
      { userHash: u, timeMs: at(B0 + 4), requests: 5, inputTokens: 500, outputTokens: 50 },
      { userHash: u, timeMs: at(B0), requests: 9, inputTokens: 9, outputTokens: 9 }, // late
    ]);
    const want = { requests: 10, inputTokens: 810, outputTokens: 81 };
    assert.equal(e.userTotals(u), want);
    // A long gap: buckets B0 + 2 .. B0 + 7 are skipped (not closed), their events still count.
    e.tick(at(B0 + 10) + L);
    const st = e.stats();
    assert.is(st.skippedBuckets, 6);
    assert.is(st.invalid, 2);
    assert.is(st.early, 1);
    assert.is(st.late, 2);
    assert.equal(e.userTotals(u), want);
    assert.equal(e.userTotals(v), { requests: 1, inputTokens: 1000, outputTokens: 100 });
    assert.is(e.userTotals({ lo: 123, hi: 456 }), undefined);
    e.ingest([ev(u, B0 + 11, 1, 2)]); // open bucket after the gap
    assert.equal(e.userTotals(u), { requests: 11, inputTokens: 811, outputTokens: 83 });
    // The totals travel with a snapshot.
    const r = await make(opts);
    r.restore(e.snapshot());
    assert.equal(r.userTotals(u), { requests: 11, inputTokens: 811, outputTokens: 83 });
  });

  t.run();
}
