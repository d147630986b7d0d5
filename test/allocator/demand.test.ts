// Pool membership rules and demand aggregation, against per-user sums computed by hand.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { aggregateDemand, combineUpper, mergePoolDemand, DemandInputError, NO_POOL, PoolMatcher, PoolMembership, poolTokenUpperBound, poolUpperBound, type PoolMatchRules } from "../../src/allocator/demand.ts";

const rules = (name: string, m: Partial<PoolMatchRules["match"]>): PoolMatchRules => ({
  name,
  match: { routes: [], models: [], plans: [], segments: [], users: [], default: false, ...m },
});

const pools = [
  rules("chat", { models: ["m-large"], routes: ["/v1/chat"] }),
  rules("embed", { routes: ["/v1/embed"], plans: ["batch"] }),
  rules("rest", { default: true, segments: ["internal"], users: ["vip-1"] }),
];

test("matcher: explicit user, route mix split, plan, segment, default", () => {
  const m = new PoolMatcher(pools);
  assert.equal(m.resolve({ key: "vip-1", plan: "batch" }), [{ pool: 2, weight: 1 }]);
  assert.equal(m.resolve({ key: "u", routeMix: { "/v1/chat/completions": 30, "/v1/embed": 10 } }), [{ pool: 0, weight: 30 }, { pool: 1, weight: 10 }]);
  assert.equal(m.resolve({ key: "u", routeMix: new Map([["m-large", 5]]) }), [{ pool: 0, weight: 1 * 5 }]);
  // A route no pool claims goes to the default pool.
  assert.equal(m.resolve({ key: "u", routeMix: { "/v1/chat": 3, "/health": 1 } }), [{ pool: 0, weight: 3 }, { pool: 2, weight: 1 }]);
  assert.equal(m.resolve({ key: "u", plan: "batch" }), [{ pool: 1, weight: 1 }]);
  assert.equal(m.resolve({ key: "u", segment: "internal" }), [{ pool: 2, weight: 1 }]);
  assert.equal(m.resolve({ key: "u" }), [{ pool: 2, weight: 1 }]);
  assert.equal(new PoolMatcher(pools.slice(0, 2)).resolve({ key: "u" }), []);
  assert.is(m.poolOfRoute("/v1/embed/x"), 1);
  assert.is(m.poolOfRoute("/other"), NO_POOL);
  assert.throws(() => new PoolMatcher([rules("a", { plans: ["x"] }), rules("b", { plans: ["x"] })]), /plans entry "x" is claimed by pools "a" and "b"/);
  // Longest route prefix wins.
  const nested = new PoolMatcher([rules("a", { routes: ["/v1"] }), rules("b", { routes: ["/v1/chat"] })]);
  assert.is(nested.poolOfRoute("/v1/chat/x"), 1);
  assert.is(nested.poolOfRoute("/v1/other"), 0);
});

test("membership: split rows normalised, merged, re-set, compacted", () => {
  const mb = new PoolMembership(10, 3);
  mb.setShares(0, [{ pool: 0, weight: 3 }, { pool: 1, weight: 1 }]);
  assert.equal(mb.sharesOf(0), [{ pool: 0, weight: 0.75 }, { pool: 1, weight: 0.25 }]);
  mb.setShares(1, [{ pool: 2, weight: 1 }, { pool: 2, weight: 4 }]);
  assert.is(mb.poolOf[1], 2);
  assert.is(mb.splitUsers, 1);
  // Many re-sets force compaction; the live rows survive it.
  for (let k = 0; k < 500; k++) mb.setShares(2, [{ pool: 0, weight: 1 }, { pool: 2, weight: k + 1 }]);
  assert.equal(mb.sharesOf(0), [{ pool: 0, weight: 0.75 }, { pool: 1, weight: 0.25 }]);
  assert.equal(mb.sharesOf(2), [{ pool: 0, weight: 1 / 501 }, { pool: 2, weight: 500 / 501 }]);
  assert.is(mb.splitUsers, 2);
  mb.set(0, NO_POOL);
  assert.is(mb.splitUsers, 1);
  assert.equal(mb.sharesOf(0), []);
  assert.throws(() => mb.set(10, 0), (e: Error) => e instanceof DemandInputError && /user slot 10/.test(e.message));
  assert.throws(() => mb.set(0, 3), /pool index 3/);
});

test("aggregation: per-pool sums equal hand sums; split users add w·μ and w²σ²", () => {
  const z = 2;
  // user: mean, upper (σ = (u − μ)/2), observed
  const users = [
    [10, 14, 9], // pool 0, σ 2
    [5, 11, 0], // pool 0, σ 3
    [20, 20, 25], // pool 1, σ 0
    [8, 16, 4], // split 0.5/0.5, σ 4
    [100, 200, 50], // no pool
  ];
  const f = {
    count: users.length,
    meanPerSec: Float64Array.from(users.map((u) => u[0])),
    upperPerSec: Float64Array.from(users.map((u) => u[1])),
    observedPerSec: Float64Array.from(users.map((u) => u[2])),
    tokensPerRequest: Float64Array.from([100, 100, 10, 50, 1]),
  };
  const mb = new PoolMembership(8, 2);
  mb.set(0, 0);
  mb.set(1, 0);
  mb.set(2, 1);
  mb.setShares(3, [{ pool: 0, weight: 1 }, { pool: 1, weight: 1 }]);
  const d = aggregateDemand(f, mb, z);
  assert.equal([...d.meanPerSec], [10 + 5 + 4, 20 + 4]);
  assert.equal([...d.variance], [4 + 9 + 0.25 * 16, 0 + 0.25 * 16]);
  assert.equal([...d.upperSumPerSec], [14 + 11 + 8, 20 + 8]);
  assert.equal([...d.observedPerSec], [9 + 0 + 2, 25 + 2]);
  assert.equal([...d.activeUsers], [2, 2]);
  assert.equal([...d.tokens!.meanPerSec], [1000 + 500 + 200, 200 + 200]);
  assert.equal([...d.tokens!.variance], [4 * 1e4 + 9 * 1e4 + 0.25 * 16 * 2500, 0.25 * 16 * 2500]);
  // Bounds: variance = Σμ + z√Σσ²; sum = Σupper; blend in between.
  assert.is(poolUpperBound(d, 0, { method: "variance", z }), 19 + 2 * Math.sqrt(17));
  assert.is(poolUpperBound(d, 0, { method: "sum", z }), 33);
  assert.is(poolUpperBound(d, 0, { method: "blend", z, blendWeight: 0.25 }), 0.25 * (19 + 2 * Math.sqrt(17)) + 0.75 * 33);
  assert.is(poolTokenUpperBound(d, 1, { method: "sum", z }), 200 + 400);
  assert.is(combineUpper(1, 4, 9, { method: "variance", z: 1.5 }), 4);
  // The output is reused: a second aggregation into it gives the same sums (it is zeroed first).
  const again = aggregateDemand(f, mb, z, d);
  assert.is(again, d);
  assert.equal([...d.meanPerSec], [19, 24]);
  assert.throws(() => aggregateDemand({ ...f, count: 9 }, mb, z), /9 users/);
  assert.throws(() => aggregateDemand(f, mb, 0), /z must be > 0/);
});

test("partitions' partial demands merge to the whole", () => {
  const N = 1000;
  const f = { count: N, meanPerSec: new Float64Array(N), upperPerSec: new Float64Array(N), observedPerSec: new Float64Array(N) };
  for (let i = 0; i < N; i++) {
    f.meanPerSec[i] = (i % 7) + 0.5;
    f.upperPerSec[i] = f.meanPerSec[i] * 1.5;
    f.observedPerSec[i] = i % 3;
  }
  const all = new PoolMembership(N, 3);
  for (let i = 0; i < N; i++) all.set(i, i % 3);
  // Two partitions: even and odd users.
  const parts = [0, 1].map((r) => {
    const m = new PoolMembership(N, 3);
    for (let i = r; i < N; i += 2) m.set(i, i % 3);
    return aggregateDemand(f, m, 1.5);
  });
  const whole = aggregateDemand(f, all, 1.5);
  const merged = mergePoolDemand(parts);
  for (const k of ["meanPerSec", "variance", "upperSumPerSec", "observedPerSec", "activeUsers"] as const)
    for (let p = 0; p < 3; p++) assert.ok(Math.abs(merged[k][p] - whole[k][p]) < 1e-9 * Math.max(1, whole[k][p]), `${k}[${p}]`);
  assert.throws(() => mergePoolDemand([parts[0], aggregateDemand(f, new PoolMembership(N, 2), 1.5)]), /2 pools, expected 3/);
});

test("variance bound of N alike users grows as √N, the naive sum as N", () => {
  const N = 10_000;
  const f = { count: N, meanPerSec: new Float64Array(N).fill(1), upperPerSec: new Float64Array(N).fill(2), observedPerSec: new Float64Array(N) };
  const mb = new PoolMembership(N, 1);
  mb.poolOf.fill(0);
  const d = aggregateDemand(f, mb, 1);
  assert.is(poolUpperBound(d, 0, { method: "sum", z: 1 }), 2 * N);
  assert.ok(Math.abs(poolUpperBound(d, 0, { method: "variance", z: 1 }) - (N + Math.sqrt(N))) < 1e-6);
});

test.run();
