// Required resources, the cluster budget, the per-pool policy's safeguards and per-user shares,
// on hand-computed cases.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { shareBudget } from "../../src/allocator/budget.ts";
import { PoolMembership } from "../../src/allocator/demand.ts";
import { ClusterPolicy, POOL_POLICY_DEFAULTS, PoolPolicy, type PoolPolicyConfig } from "../../src/allocator/policy.ts";
import { bitsQuantity, calculateRequiredResources, EGRESS_BANDWIDTH_ANNOTATION, INGRESS_BANDWIDTH_ANNOTATION, pickHorizon, requiredHorizonSec } from "../../src/allocator/resources.ts";
import { UserAllocations, sortedClaims, waterLevel, waterLevelOfGroups } from "../../src/allocator/users.ts";
import { validateConfig } from "../../src/config/index.ts";

const S = 1000;
const cfg = (over: Partial<PoolPolicyConfig> = {}): PoolPolicyConfig => ({
  ...POOL_POLICY_DEFAULTS,
  name: "p",
  costModel: { requestsPerSecPerReplica: 10, cpuPerReplicaMillicores: 500, memoryPerReplicaMiB: 256 },
  ...over,
});

test("resources: replicas = ceil(demand × (1 + headroom) / (capacity × target)), tokens constrain too", () => {
  const pool = { costModel: { requestsPerSecPerReplica: 10, tokensPerSecPerReplica: 1000, cpuPerReplicaMillicores: 500, memoryPerReplicaMiB: 256 }, targetUtilization: 0.8, headroom: 0.1 };
  // 80 req/s × 1.1 / 8 = 11 exactly (no float residue adds a 12th).
  let r = calculateRequiredResources({ requestsPerSec: 80 }, pool);
  assert.is(r.replicas, 11);
  assert.is(r.replicasByTokens, 0);
  assert.is(r.totalCpuMillicores, 11 * 500);
  assert.is(r.totalMemoryMiB, 11 * 256);
  // tokens 20 000/s × 1.1 / 800 = 27.5 → 28 > 11.
  r = calculateRequiredResources({ requestsPerSec: 80, tokensPerSec: 20_000 }, pool);
  assert.is(r.replicasByTokens, 28);
  assert.is(r.replicas, 28);
  // tokens from tokensPerRequest when the demand has requests only: 80 × 300 = 24 000 → 24 000 × 1.1 / 800 = 33.
  r = calculateRequiredResources({ requestsPerSec: 80 }, { ...pool, costModel: { ...pool.costModel, tokensPerRequest: 300 } });
  assert.is(r.replicas, 33);
  assert.is(calculateRequiredResources({ requestsPerSec: 0 }, pool).replicas, 0);
  assert.throws(() => calculateRequiredResources({ requestsPerSec: NaN }, pool), /requestsPerSec/);
});

test("resources: bandwidth annotations fixed or derived from a replica's rate", () => {
  const base = { costModel: { requestsPerSecPerReplica: 100, cpuPerReplicaMillicores: 1, memoryPerReplicaMiB: 1 }, targetUtilization: 1, headroom: 0.25 };
  let r = calculateRequiredResources({ requestsPerSec: 1 }, { ...base, bandwidth: { ingress: "10M", egress: "1G" } });
  assert.equal(r.annotations, { [INGRESS_BANDWIDTH_ANNOTATION]: "10M", [EGRESS_BANDWIDTH_ANNOTATION]: "1G" });
  // 100 req/s × 1.25 × 10 000 B × 8 = 10 Mbit/s; egress 125 req/s × 1 MB × 8 = 1 Gbit/s.
  r = calculateRequiredResources({ requestsPerSec: 1 }, { ...base, bandwidth: { ingressBytesPerRequest: 10_000, egressBytesPerRequest: 1_000_000 } });
  assert.equal(r.annotations, { [INGRESS_BANDWIDTH_ANNOTATION]: "10M", [EGRESS_BANDWIDTH_ANNOTATION]: "1000M" });
  assert.equal(calculateRequiredResources({ requestsPerSec: 1 }, base).annotations, {});
  assert.is(bitsQuantity(9_999), "9999");
  assert.is(bitsQuantity(25_000_000_000), "25G");
});

test("resources: the sizing horizon covers pod start plus one decision", () => {
  assert.is(requiredHorizonSec(30, 15_000), 45);
  assert.is(pickHorizon([60, 300, 600], 45), 0);
  assert.is(pickHorizon([600, 60, 300], 120), 2);
  assert.is(pickHorizon([60, 300], 900), 1);
  assert.throws(() => pickHorizon([], 1), /no forecast horizons/);
});

test("config pools satisfy the policy's config type", () => {
  const c = validateConfig({ pools: [{ name: "chat", workload: { name: "chat" }, costModel: { requestsPerSecPerReplica: 5 } }] });
  const p = new PoolPolicy(c.pools[0]);
  assert.is(p.replicas, 1);
  // The policy defaults are the schema's.
  const { name: _n, workload: _w, costModel: _c, match: _m, mode: _mo, bandwidth: _b, ...rest } = c.pools[0];
  assert.equal(rest, { ...POOL_POLICY_DEFAULTS });
});

test("budget: minimums first, then priority, then max-min fair by dominant share", () => {
  const budget = { maxReplicasTotal: 10, maxCpuMillicores: 100_000, maxMemoryMiB: 1e9 };
  // Everything fits: granted as wanted.
  let g = shareBudget([{ priority: 0, minReplicas: 1, wantReplicas: 3, cpuPerReplicaMillicores: 1, memoryPerReplicaMiB: 1 }], budget);
  assert.equal(g.replicas, [3]);
  // High priority takes what it wants (6), the two low ones share the remaining 4 fairly (2 + 2 after min 1 each).
  g = shareBudget(
    [
      { priority: 0, minReplicas: 1, wantReplicas: 8, cpuPerReplicaMillicores: 1, memoryPerReplicaMiB: 1 },
      { priority: 5, minReplicas: 1, wantReplicas: 6, cpuPerReplicaMillicores: 1, memoryPerReplicaMiB: 1 },
      { priority: 0, minReplicas: 1, wantReplicas: 8, cpuPerReplicaMillicores: 1, memoryPerReplicaMiB: 1 },
    ],
    budget,
  );
  assert.equal(g.replicas, [2, 6, 2]);
  assert.equal(g.limited, [true, false, true]);
  assert.is(g.replicasTotal, 10);
  // Water-filling: a pool wanting little gets all of it; the rest split evenly.
  g = shareBudget(
    [
      { priority: 0, minReplicas: 0, wantReplicas: 1, cpuPerReplicaMillicores: 1, memoryPerReplicaMiB: 1 },
      { priority: 0, minReplicas: 0, wantReplicas: 9, cpuPerReplicaMillicores: 1, memoryPerReplicaMiB: 1 },
      { priority: 0, minReplicas: 0, wantReplicas: 9, cpuPerReplicaMillicores: 1, memoryPerReplicaMiB: 1 },
    ],
    budget,
  );
  assert.equal(g.replicas, [1, 5, 4]);
  // CPU is the dominant resource: a 4-CPU replica pool counts 4× per replica; CPU budget 12 cores.
  g = shareBudget(
    [
      { priority: 0, minReplicas: 0, wantReplicas: 10, cpuPerReplicaMillicores: 4000, memoryPerReplicaMiB: 1 },
      { priority: 0, minReplicas: 0, wantReplicas: 10, cpuPerReplicaMillicores: 1000, memoryPerReplicaMiB: 1 },
    ],
    { maxReplicasTotal: 100, maxCpuMillicores: 12_000, maxMemoryMiB: 1e9 },
  );
  // Dominant (CPU) shares rise together: pool 1 reaches 4 replicas (1/3 of the CPU) when pool 0 takes its first
  // (1/3); pool 0's second would exceed the budget, so pool 1 takes the rest (work-conserving): [1, 8].
  assert.equal(g.replicas, [1, 8]);
  assert.ok(g.cpuMillicores <= 12_000);
});

test("policy: scale up at once to max(predictive, reactive, active)", () => {
  const p = new PoolPolicy(cfg({ maxReplicas: 100 }));
  // upper 80 req/s → 80 × 1.1 / (10 × 0.8) = 11.
  let d = p.decide(0, { upperRequestsPerSec: 80, observedRequestsPerSec: 10 });
  assert.is(d.predictiveReplicas, 11);
  assert.is(d.replicas, 11);
  assert.is(d.direction, "up");
  assert.is(d.reason, "up: predictive");
  p.settle(d.replicas);
  // Forecast misses a step: observed 200 req/s. Active need ceil(200 / 8) = 25; the HPA from 1 replica
  // can only go to max(1+4, 2) = 5 in this sync; the active floor wins.
  d = p.decide(15 * S, { upperRequestsPerSec: 80, observedRequestsPerSec: 200 });
  assert.is(d.activeReplicas, 25);
  assert.is(d.replicas, 25);
  assert.is(d.reason, "up: active users");
  assert.ok(d.replicas >= d.reactiveReplicas);
});

test("policy: scale down only after the stabilization window, by at most a step", () => {
  const p = new PoolPolicy(cfg({ maxReplicas: 100, scaleDownMaxStepReplicas: 4, stabilizationWindowSec: 60 }), 1);
  let d = p.decide(0, { upperRequestsPerSec: 160, observedRequestsPerSec: 100 }); // 160 × 1.1 / 8 = 22
  assert.is(d.replicas, 22);
  p.settle(22);
  const seen: number[] = [];
  for (let t = 15; t <= 150; t += 15) {
    d = p.decide(t * S, { upperRequestsPerSec: 8, observedRequestsPerSec: 1 }); // wants 2
    p.settle(d.replicas);
    seen.push(d.replicas);
    if (t < 60) assert.is(d.reason, "hold: stabilization", `t=${t}`);
  }
  // Held until the 22 left the 60 s window (t = 60: sample at 0 is not after the cutoff), then −4 per decision
  // until the reactive floor: the modelled HPA went 1 → 5 (rate limit) → 8 (mean of 100 and 1 req/s over
  // its 60 s window: ceil(50.5 / 7)) and its own 300 s window holds it there.
  // It lands inside the tolerance band above that floor: ceil(8 × 1.1) = 9.
  assert.equal(seen, [22, 22, 22, 18, 14, 10, 9, 9, 9, 9]);
  assert.is(d.reactiveReplicas, 8);
});

test("policy: a scale-down is held when the forecast over the window ahead needs the replicas", () => {
  const p = new PoolPolicy(cfg({ maxReplicas: 100, stabilizationWindowSec: 30 }), 20);
  // Now 8 req/s (wants 2), but the window ahead needs 120 req/s × 1.1 / 8 = 17 → down only to ceil(17 × 1.1) = 19.
  let d = p.decide(0, { upperRequestsPerSec: 8, aheadUpperRequestsPerSec: 120, observedRequestsPerSec: 0 });
  assert.is(d.reason, "down: stabilized");
  assert.is(d.replicas, 19);
  p.settle(19);
  d = p.decide(15 * S, { upperRequestsPerSec: 8, aheadUpperRequestsPerSec: 160, observedRequestsPerSec: 0 });
  assert.is(d.replicas, 19);
  assert.is(d.reason, "hold: forecast rises within the window");
});

test("policy: tolerance band, bounds, incomplete demand holds", () => {
  const p = new PoolPolicy(cfg({ maxReplicas: 12, minReplicas: 2, stabilizationWindowSec: 0 }), 10);
  // wants 11 (+10 %) while the floor is below current: hold.
  let d = p.decide(0, { upperRequestsPerSec: 80, observedRequestsPerSec: 0 });
  assert.is(d.replicas, 10);
  assert.is(d.reason, "hold: tolerance");
  // wants 1000 → max 12.
  d = p.decide(15 * S, { upperRequestsPerSec: 1000, observedRequestsPerSec: 0 });
  assert.is(d.replicas, 12);
  p.settle(12);
  // Incomplete demand: never scale down on it.
  d = p.decide(30 * S, { upperRequestsPerSec: 0, observedRequestsPerSec: 0, incomplete: true });
  assert.is(d.replicas, 12);
  assert.is(d.reason, "hold: incomplete demand");
  // Current outside the bounds (someone edited the workload): brought back inside.
  d = p.decide(45 * S, { upperRequestsPerSec: 0, observedRequestsPerSec: 0, currentReplicas: 40 });
  assert.is(d.replicas, 12);
  assert.is(d.direction, "down");
});

test("cluster policy: budget cuts the lower priority and the pool remembers the granted count", () => {
  const c = new ClusterPolicy(
    [cfg({ name: "hi", priority: 10, maxReplicas: 50 }), cfg({ name: "lo", maxReplicas: 50 })],
    { maxReplicasTotal: 20, maxCpuMillicores: 1e9, maxMemoryMiB: 1e9 },
  );
  const ds = c.decide(0, [{ upperRequestsPerSec: 80, observedRequestsPerSec: 0 }, { upperRequestsPerSec: 160, observedRequestsPerSec: 0 }]);
  assert.equal(ds.map((d) => d.replicas), [11, 9]);
  assert.equal(ds.map((d) => d.budgetLimited), [false, true]);
  assert.match(ds[1].reason, /cut by cluster budget/);
  assert.is(c.pools[1].replicas, 9);
  assert.is(c.indexOf("lo"), 1);
});

test("cluster policy: reconfigure keeps unchanged pools, carries a changed pool's replicas and stabilization window, adds and removes by name", () => {
  const budget = { maxReplicasTotal: 100, maxCpuMillicores: 1e9, maxMemoryMiB: 1e9 };
  const c = new ClusterPolicy([cfg({ name: "a", maxReplicas: 50, stabilizationWindowSec: 60 }), cfg({ name: "b", maxReplicas: 50 })], budget);
  const high = { upperRequestsPerSec: 160, observedRequestsPerSec: 0 }; // wants 22
  const low = { upperRequestsPerSec: 8, observedRequestsPerSec: 0 }; // wants 2 (the HPA floor stays at 1)
  assert.equal(c.decide(0, [high, high]).map((d) => d.replicas), [22, 22]);
  const unchanged = c.pools[1];
  // a: a new tolerance (a changed pool); b: the same settings; c: new; the order changes.
  const change = c.reconfigure([cfg({ name: "c", maxReplicas: 50 }), cfg({ name: "a", maxReplicas: 50, stabilizationWindowSec: 60, tolerance: 0 }), cfg({ name: "b", maxReplicas: 50 })], budget, (n) => (n === "c" ? 7 : undefined));
  assert.equal(change, { added: ["c"], changed: ["a"], removed: [] });
  assert.equal([c.indexOf("c"), c.indexOf("a"), c.indexOf("b")], [0, 1, 2]);
  assert.is(c.pools[2], unchanged, "an unchanged pool keeps its state");
  assert.is(c.pools[1].replicas, 22, "a changed pool keeps its replicas");
  assert.is(c.pools[0].replicas, 7, "an added pool starts at the replicas given for it");
  // a's stabilization history came along: 30 s later its scale-down is still held.
  const held = c.decide(30 * S, [low, low, low]);
  assert.is(held[1].replicas, 22);
  assert.is(held[1].reason, "hold: stabilization");
  // A lowered maxReplicas applies at the next decision, stabilization or not.
  const removed = c.reconfigure([cfg({ name: "a", maxReplicas: 10, stabilizationWindowSec: 60 })], { ...budget, maxReplicasTotal: 9 });
  assert.equal(removed, { added: [], changed: ["a"], removed: ["c", "b"] });
  const [d] = c.decide(31 * S, [low]);
  assert.is(d.replicas, 9, "bounded by the new maxReplicas, then cut by the new budget");
  assert.is(d.budgetLimited, true);
  // A refused config changes nothing.
  assert.throws(() => c.reconfigure([cfg({ name: "a", minReplicas: 5, maxReplicas: 2 })], budget), /minReplicas <= maxReplicas/);
  assert.is(c.pools[0].config.maxReplicas, 10);
  assert.is(c.budget.maxReplicasTotal, 9);
});

test("users: spare shared in proportion; short pool water-filled; deallocation safeguard", () => {
  const mb = new PoolMembership(4, 2);
  mb.set(0, 0);
  mb.set(1, 0);
  mb.set(2, 1);
  mb.set(3, 1);
  const f = { count: 4, meanPerSec: new Float64Array(4), upperPerSec: Float64Array.from([10, 30, 2, 50]), observedPerSec: new Float64Array(4) };
  const a = new UserAllocations(4, { maxDecreaseFraction: 0.5 });
  // Pool 0: capacity 80 ≥ claims 40 → ×2. Pool 1: capacity 22 < 52 → level 20: user 2 gets 2, user 3 gets 20.
  let s = a.allocateAll(f, mb, [80, 22]);
  assert.equal([...s.short], [0, 1]);
  assert.ok(Math.abs(s.levelPerSec[1] - 20) < 1e-9);
  assert.equal([...a.allocatedPerSec].map((x) => Math.round(x * 1e6) / 1e6), [20, 60, 2, 20]);
  assert.is(s.allocations, 4);
  // Capacity of pool 0 drops to 40: requirements 10 and 30, but a user loses at most half per decision.
  s = a.allocateAll(f, mb, [40, 22]);
  assert.equal([...a.allocatedPerSec].slice(0, 2), [10, 30]);
  s = a.allocateAll({ ...f, upperPerSec: Float64Array.from([1, 1, 2, 50]) }, mb, [2, 22]);
  assert.equal([...a.allocatedPerSec].slice(0, 2), [5, 15]);
  assert.is(s.deallocations, 2);
  // The seed's one-user shape.
  const r = a.allocateResources(0, 100);
  assert.equal({ ...r }, { user: 0, current: 5, required: 100, delta: 95, action: "allocate", allocated: 100 });
  const down = a.allocateResources(0, 10);
  assert.equal([down.action, down.allocated, down.delta], ["deallocate", 50, -90]);
  assert.is(a.allocateResources(0, 10, true).allocated, 10);
});

test("users: split users claim w·upper in each pool", () => {
  const mb = new PoolMembership(2, 2);
  mb.setShares(0, [{ pool: 0, weight: 1 }, { pool: 1, weight: 3 }]);
  mb.set(1, 1);
  const f = { count: 2, meanPerSec: new Float64Array(2), upperPerSec: Float64Array.from([40, 30]), observedPerSec: new Float64Array(2) };
  const a = new UserAllocations(2);
  const s = a.allocateAll(f, mb, [20, 60]);
  assert.equal([...s.claimsPerSec], [10, 60]);
  // Pool 0 ×2 → 20; pool 1 exactly covered → 30: user 0 gets 20 + 30 = 50.
  assert.equal([...a.allocatedPerSec], [50, 30]);
  assert.equal([...s.allocatedPerSec], [20, 30 + 30]);
});

test("users: a short pool's shares sum to its capacity and nobody above the level is favoured", () => {
  const N = 5000;
  const mb = new PoolMembership(N, 3);
  const f = { count: N, meanPerSec: new Float64Array(N), upperPerSec: new Float64Array(N), observedPerSec: new Float64Array(N) };
  let seed = 12345;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
  for (let i = 0; i < N; i++) {
    f.upperPerSec[i] = Math.exp(4 * rnd());
    if (i % 10 === 0) mb.setShares(i, [{ pool: i % 3, weight: 1 }, { pool: (i + 1) % 3, weight: 2 }]);
    else mb.set(i, i % 3);
  }
  const a = new UserAllocations(N);
  const s = a.allocateAll(f, mb, [1000, 5000, 1e9]);
  assert.equal([...s.short], [1, 1, 0]);
  for (const p of [0, 1]) {
    // Σ min(claim, level) over the pool's claims equals its capacity.
    let sum = 0;
    for (let i = 0; i < N; i++) for (const sh of mb.sharesOf(i)) if (sh.pool === p) sum += Math.min(sh.weight * f.upperPerSec[i], s.levelPerSec[p]);
    assert.ok(Math.abs(sum - [1000, 5000][p]) < 1e-6 * sum, `pool ${p}: ${sum}`);
    assert.ok(Math.abs(s.allocatedPerSec[p] - [1000, 5000][p]) < 1e-6 * sum, `pool ${p} allocated ${s.allocatedPerSec[p]}`);
  }
});

test("waterLevel: exact against a sorted reference, including the slow-converging case", () => {
  const byScan = (c: Float64Array, cap: number) => {
    const g = Float64Array.from(c).sort();
    let left = cap;
    for (let j = 0; j < g.length; j++) {
      if (g[j] * (g.length - j) >= left) return left / (g.length - j);
      left -= g[j];
    }
    return Infinity;
  };
  let seed = 99;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
  for (let k = 0; k < 50; k++) {
    const c = Float64Array.from({ length: 1 + Math.floor(rnd() * 300) }, () => Math.exp(6 * rnd()));
    const total = c.reduce((a, b) => a + b, 0);
    const cap = total * (0.05 + 0.9 * rnd());
    const L = waterLevel(c, cap);
    assert.ok(Math.abs(L - byScan(c, cap)) <= 1e-9 * L, `case ${k}`);
    assert.ok(Math.abs(c.reduce((a, x) => a + Math.min(x, L), 0) - cap) <= 1e-9 * cap);
  }
  // Claims 2^j: each pass satisfies one more claim, so the fixed point takes ~n passes: the sorted fallback finishes it.
  const geo = Float64Array.from({ length: 60 }, (_, j) => 2 ** j);
  const cap = geo.reduce((a, b) => a + b, 0) * 0.5;
  assert.ok(Math.abs(waterLevel(geo, cap) - byScan(geo, cap)) <= 1e-9 * cap);
  assert.is(waterLevel(Float64Array.from([5, 5, 5]), 6), 2);
});

test("waterLevelOfGroups: the same level as waterLevel over the union, the groups never merged", () => {
  let seed = 7;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
  for (let k = 0; k < 50; k++) {
    const groups = Array.from({ length: 1 + Math.floor(rnd() * 8) }, () => Float64Array.from({ length: Math.floor(rnd() * 200) }, () => Math.exp(6 * rnd())));
    const all = Float64Array.from(groups.flatMap((g) => [...g]));
    if (all.length === 0) continue;
    const total = all.reduce((a, b) => a + b, 0);
    const cap = total * (0.05 + 0.9 * rnd());
    const want = waterLevel(all, cap);
    const got = waterLevelOfGroups(groups.map(sortedClaims), cap);
    assert.ok(Math.abs(got - want) <= 1e-9 * want, `case ${k}: ${got} vs ${want}`);
  }
  const geo = Float64Array.from({ length: 60 }, (_, j) => 2 ** j);
  const cap = geo.reduce((a, b) => a + b, 0) * 0.5;
  assert.ok(Math.abs(waterLevelOfGroups([sortedClaims(geo.subarray(0, 30)), sortedClaims(geo.subarray(30))], cap) - waterLevel(geo, cap)) <= 1e-9 * cap);
  assert.is(waterLevelOfGroups([sortedClaims(Float64Array.from([5])), sortedClaims(Float64Array.from([5, 5]))], 6), 2);
  assert.is(waterLevelOfGroups([], 6), 0);
});

test.run();
