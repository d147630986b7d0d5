// The replay end to end on a slice of the real trace: exact per-window counts, determinism (same
// seed → same figures, another seed → other figures), and the policy code is the live modules'.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { rmSync } from "node:fs";
import { HpaRecommender } from "../../src/allocator/hpa.ts";
import { POOL_POLICY_DEFAULTS, PoolPolicy } from "../../src/allocator/policy.ts";
import { normalQuantile } from "../../src/engine/options.ts";
import { aggregateDemand, poolUpperBound } from "../../src/allocator/demand.ts";
import { UserAllocations } from "../../src/allocator/users.ts";
import { computeGrants, enforcedRate, poolPressure, refillBucket } from "../../src/throttle/grants.ts";
import { FixedWindowLimiter } from "../../src/envoy/fixed-window.ts";
import {
  DEFAULT_PARAMS, LIVE_MODULES, POLICY_SOURCES, ReplayDataError, ReplayOptionError, loadPoolTraces, refillGaps, replaySummary, runReplay, windowArrivals,
  type ReplayParams,
} from "../../src/replay/index.ts";
import { makeSlice } from "./_slice.ts";

const slice = await makeSlice(["m-large:0", "m-large:1", "m-large:3", "m-large:7", "m-small:39", "m-small:11", "m-small:35"], 3);

const PARAMS: ReplayParams = {
  ...DEFAULT_PARAMS, historyDays: 2, selectionDays: 1, firstScoredDay: 2, scoredDays: 1, hpaTargets: [0.6, 0.7, 0.8], foresightQuantiles: [0.9],
  foresightHeadrooms: [0, 0.3], foresightFloorTargets: [0.7, 1], oracleFactors: [0.9, 1],
};

test("arrivals: exactly the window's requests fall in it, in whole and block draws", async () => {
  const [p] = await loadPoolTraces(slice.path, ["m-small"]);
  const C = p.clientIds.length;
  const out = new Float64Array(C * 600);
  for (const maxDraws of [1e9, 50]) {
    for (let w = 0; w < 40; w++) {
      windowArrivals(p, w, 7, out, undefined, undefined, maxDraws);
      for (let c = 0; c < C; c++) {
        let s = 0;
        for (let i = 0; i < 600; i++) s += out[c * 600 + i];
        assert.is(s, p.requests[c * p.windows + w], `client ${c} window ${w} maxDraws ${maxDraws}`);
      }
    }
  }
  // Same stream seed, same seconds; another seed moves them.
  const a = new Float64Array(C * 600);
  const b = new Float64Array(C * 600);
  windowArrivals(p, 3, 1, a);
  windowArrivals(p, 3, 1, b);
  assert.equal(Array.from(a), Array.from(b));
  windowArrivals(p, 3, 2, b);
  assert.not.equal(Array.from(a), Array.from(b));
});

test("gaps: a window with almost no pool traffic is refilled from the day before", async () => {
  const [p] = await loadPoolTraces(slice.path, ["m-large"]);
  const w = 144 + 10;
  for (let c = 0; c < p.clientIds.length; c++) p.requests[c * p.windows + w] = 0;
  const n = refillGaps(p, 0.05);
  assert.ok(n >= 1);
  assert.is(p.gap[w], 1);
  assert.is(p.refilledFrom[w], w - 144);
  for (let c = 0; c < p.clientIds.length; c++) assert.is(p.requests[c * p.windows + w], p.requests[c * p.windows + w - 144]);
});

async function rejection(f: () => Promise<unknown>): Promise<unknown> {
  try {
    await f();
  } catch (e) {
    return e;
  }
  return undefined;
}

test("bad input: missing model and bad options are named", async () => {
  const a = await rejection(() => loadPoolTraces(slice.path, ["no-such-model"]));
  assert.ok(a instanceof ReplayDataError && /no-such-model/.test(a.message), String(a));
  const b = await rejection(() => runReplay({ data: slice.path, pools: ["m-small"], params: { ...PARAMS, firstScoredDay: 1 }, modules: LIVE_MODULES }));
  assert.ok(b instanceof ReplayOptionError && /firstScoredDay/.test(b.message), String(b));
});

const strip = (r: Awaited<ReturnType<typeof runReplay>>) => {
  const s = replaySummary(r) as Record<string, unknown>;
  delete s.wallSec;
  return JSON.stringify(s);
};

test("determinism: same seed → same figures; another seed → other figures", async () => {
  const run = (seed: number, pools = ["m-large", "m-small"]) => runReplay({ data: slice.path, pools, params: { ...PARAMS, seed }, modules: LIVE_MODULES });
  const a = await run(1);
  const b = await run(1);
  const c = await run(2);
  assert.is(strip(a), strip(b));
  assert.is.not(strip(a), strip(c));
  // Figures are real: requests scored equal the trace's requests of the scored day.
  const [large] = await loadPoolTraces(slice.path, ["m-large"]);
  let want = 0;
  for (let cl = 0; cl < large.clientIds.length; cl++) for (let w = 288; w < 432; w++) want += large.requests[cl * large.windows + w];
  const hpaRow = a.perPool[0].rows.find((r) => r.name === "hpa-0.7")!;
  assert.is(hpaRow.summary.requests, want);
  assert.ok(hpaRow.summary.slo > 0.5 && hpaRow.summary.slo <= 1);
  assert.is(a.perPool.length, 2);
  assert.ok(a.overall.frontiers.hpa.length === 3 && a.overall.frontiers.foresight.length === 4 && a.overall.frontiers.oracle.length === 2);
});

test("policy modules are the live ones", () => {
  assert.is(POLICY_SOURCES.HpaRecommender, HpaRecommender);
  assert.is(POLICY_SOURCES.PoolPolicy, PoolPolicy);
  assert.is(POLICY_SOURCES.aggregateDemand, aggregateDemand);
  assert.is(POLICY_SOURCES.poolUpperBound, poolUpperBound);
  assert.is(POLICY_SOURCES.UserAllocations, UserAllocations);
  assert.is(POLICY_SOURCES.computeGrants, computeGrants);
  assert.is(POLICY_SOURCES.poolPressure, poolPressure);
  assert.is(POLICY_SOURCES.enforcedRate, enforcedRate);
  assert.is(POLICY_SOURCES.refillBucket, refillBucket);
  assert.is(POLICY_SOURCES.FixedWindowLimiter, FixedWindowLimiter);
  // The adapter's decisions are the module's own on the same inputs.
  const viaReplay = LIVE_MODULES.hpa({ replicaRatePerSec: 10, targetUtilization: 0.7, initialReplicas: 5 });
  const direct = new HpaRecommender({ capacityPerReplicaPerSec: 10, targetUtilization: 0.7, initialReplicas: 5 });
  let existing = 5;
  for (let t = 0; t < 900; t++) {
    const rate = 30 + 40 * Math.sin(t / 50) ** 2;
    viaReplay.observe((t + 1) * 1000, rate);
    direct.observe((t + 1) * 1000, rate);
    if (t % 15 === 14) {
      const a = viaReplay.recommend((t + 1) * 1000, existing);
      const b = direct.recommend((t + 1) * 1000, undefined, existing).replicas;
      assert.is(a, b);
      existing = a;
    }
  }
});

test("fixed window: the live limiter's counting, per-second batches admitted as per-request checks would", () => {
  const fw = LIVE_MODULES.fixedWindow({ quotaPerWindow: Float64Array.from([10, 100]), windowSec: 60 });
  const adm = new Float64Array(2);
  const got: number[][] = [];
  for (const [t, a, b] of [[0, 4, 50], [1, 4, 30], [2, 4, 30], [59, 1, 1], [60, 7, 0], [61, 5, 0]]) {
    fw.admit(t, Float64Array.from([a, b]), adm, 0, 0);
    got.push([adm[0], adm[1]]);
  }
  // User 0: 4 + 4 + 2 of its 10, then nothing until the window turns at 60 s; 7 + 3 in the next.
  // User 1: 50 + 30 + 20 of its 100.
  assert.equal(got, [[4, 50], [4, 30], [2, 20], [0, 0], [7, 0], [3, 0]]);
});

test("Foresight's decisions are the live PoolPolicy's on the same inputs", () => {
  const n = 3;
  const users = { count: n, meanPerSec: Float64Array.from([10, 20, 5]), upperPerSec: Float64Array.from([14, 30, 9]), observedPerSec: Float64Array.from([9, 22, 4]) };
  const viaReplay = LIVE_MODULES.foresight({ replicaRatePerSec: 5, settings: { headroom: 0.2, quantile: 0.9, floorTarget: 0.7 }, startDelaySec: 120, decisionSec: 15, initialReplicas: 4, userAllocation: true });
  const direct = new PoolPolicy(
    { ...POOL_POLICY_DEFAULTS, name: "x", costModel: { requestsPerSecPerReplica: 5, cpuPerReplicaMillicores: 1000, memoryPerReplicaMiB: 1024 }, maxReplicas: 10_000, headroom: 0.2, podStartDelaySec: 120, decisionIntervalMs: 15_000 },
    4,
  );
  let existing = 4;
  for (let t = 0; t < 600; t++) {
    const rate = 30 + 20 * Math.sin(t / 40);
    viaReplay.observe((t + 1) * 1000, rate);
    direct.observe((t + 1) * 1000, rate);
    if (t % 15 === 14) {
      users.meanPerSec[1] = 20 + (t % 60);
      users.upperPerSec[1] = 30 + (t % 60);
      const a = viaReplay.decide((t + 1) * 1000, users, existing);
      // The pool bound the replay sizes from: Σμ + z·√Σσ² with σ = (upper − mean) / z.
      const z = normalQuantile(0.9);
      let m = 0, v = 0;
      for (let i = 0; i < n; i++) (m += users.meanPerSec[i]), (v += ((users.upperPerSec[i] - users.meanPerSec[i]) / z) ** 2);
      const b = direct.decide((t + 1) * 1000, { upperRequestsPerSec: m + z * Math.sqrt(v), currentReplicas: existing });
      direct.settle(b.replicas);
      assert.is(a.replicas, b.replicas);
      assert.is(a.predictiveReplicas, b.predictiveReplicas);
      assert.is(a.reactiveReplicas, b.reactiveReplicas);
      assert.ok(a.userAllocPerSec && a.userAllocPerSec.length === n);
      existing = a.replicas;
    }
  }
});

test.after(() => rmSync(slice.dir, { recursive: true, force: true }));
test.run();
