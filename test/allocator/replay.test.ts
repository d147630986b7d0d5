// A real ServeGen series (../shared/data/servegen_client_rate_10min.csv.gz, pool m-mid: all its
// clients) through the real engine (WASM, Holt-Winters, 10-minute buckets) and the live policy:
// three days of decisions every 15 s. Bounds hold, the allocation never drops below the reactive
// HPA floor or the users active now, no scale-down follows a scale-up inside the stabilization
// window, and no forecast-driven scale-up reverses a scale-down inside it (only the safety floor
// may, when the forecast missed a step).
import { test } from "uvu";
import * as assert from "uvu/assert";
import { existsSync } from "node:fs";
import { aggregateDemand, newPoolDemand, PoolMembership } from "../../src/allocator/demand.ts";
import { HpaRecommender } from "../../src/allocator/hpa.ts";
import { ClusterPolicy, POOL_POLICY_DEFAULTS, type PoolDecision, type PoolPolicyConfig } from "../../src/allocator/policy.ts";
import { normalQuantile } from "../../src/engine/options.ts";
import { replayThroughEngine } from "../../src/forecast/engine-replay.ts";
import { DEFAULT_TRACE_PATH, loadRateTrace } from "../../src/forecast/trace.ts";

const BUCKET_SEC = 600;
const DAY = 144;
const TICK_MS = 15_000;
const Q = 0.95;

test("a real pool's days through engine forecasts and the policy: bounds, floor, no flapping", async () => {
  assert.ok(existsSync(DEFAULT_TRACE_PATH), `the real trace ${DEFAULT_TRACE_PATH} is missing`);
  const series = await loadRateTrace(DEFAULT_TRACE_PATH, { filter: (k) => k.startsWith("m-mid:") });
  assert.ok(series.length > 50, `m-mid has ${series.length} clients`);
  const fc = (await replayThroughEngine(series, { engine: "wasm", horizons: [1, 2], quantile: Q }))["hw-engine"].byKey;
  const N = series.length;
  const membership = new PoolMembership(N, 1);
  membership.poolOf.fill(0);
  // R as the replay issue defines it: median per-second demand of days 0–6 / 20.
  const total = new Float64Array(14 * DAY);
  for (const s of series) for (let t = 0; t < Math.min(total.length, s.requests.length); t++) total[t] += s.requests[t];
  const sorted = [...total.subarray(0, 7 * DAY)].sort((a, b) => a - b);
  const R = sorted[Math.floor(sorted.length / 2)] / BUCKET_SEC / 20;
  // maxReplicas a little above the peak need: the forecast bound with headroom reaches it at peaks.
  const peakNeed = Math.ceil(Math.max(...total.subarray(7 * DAY, 10 * DAY)) / BUCKET_SEC / R);
  const pool: PoolPolicyConfig = {
    ...POOL_POLICY_DEFAULTS,
    name: "m-mid",
    costModel: { requestsPerSecPerReplica: R, cpuPerReplicaMillicores: 1000, memoryPerReplicaMiB: 1024 },
    minReplicas: 2,
    maxReplicas: Math.ceil(peakNeed * 1.3),
    targetUtilization: 1,
    podStartDelaySec: 120,
  };
  const policy = new ClusterPolicy([pool], { maxReplicasTotal: 10_000, maxCpuMillicores: 1e9, maxMemoryMiB: 1e9 });
  const hpaAlone = new HpaRecommender({ capacityPerReplicaPerSec: R, targetUtilization: 0.7, minReplicas: 2, maxReplicas: pool.maxReplicas, initialReplicas: 2 });
  const f = { count: N, meanPerSec: new Float64Array(N), upperPerSec: new Float64Array(N), observedPerSec: new Float64Array(N) };
  const fAhead = { count: N, meanPerSec: new Float64Array(N), upperPerSec: new Float64Array(N), observedPerSec: new Float64Array(N) };
  const demand = newPoolDemand(1, false), demandAhead = newPoolDemand(1, false);
  const z = normalQuantile(Q), poolZ = normalQuantile(pool.upperQuantile!);
  const decisions: PoolDecision[] = [];
  const hpaReplicas: number[] = [];
  const W = pool.stabilizationWindowSec * 1000;
  for (let now = 7 * DAY * BUCKET_SEC * 1000; now < 10 * DAY * BUCKET_SEC * 1000; now += TICK_MS) {
    const k = Math.floor(now / 1000 / BUCKET_SEC);
    // Per user: the forecast of this window (made at the last close) and of the next, as req/s;
    // observed = the last closed window's rate (what the engine reports for the user).
    for (let i = 0; i < N; i++) {
      const p = fc.get(series[i].key)!;
      f.meanPerSec[i] = p.preds[0][k] / BUCKET_SEC;
      f.upperPerSec[i] = p.uppers![0][k] / BUCKET_SEC;
      f.observedPerSec[i] = series[i].requests[k - 1] / BUCKET_SEC;
      fAhead.meanPerSec[i] = p.preds[1][k + 1] / BUCKET_SEC;
      fAhead.upperPerSec[i] = p.uppers![1][k + 1] / BUCKET_SEC;
    }
    aggregateDemand(f, membership, z, demand);
    aggregateDemand(fAhead, membership, z, demandAhead);
    const bound = (d: typeof demand) => d.meanPerSec[0] + poolZ * Math.sqrt(d.variance[0]);
    const actual = total[k] / BUCKET_SEC;
    const [d] = policy.decide(now, [{ upperRequestsPerSec: bound(demand), aheadUpperRequestsPerSec: Math.max(bound(demand), bound(demandAhead)), observedRequestsPerSec: actual, activeRequestsPerSec: demand.observedPerSec[0] }]);
    decisions.push(d);
    hpaAlone.observe(now, actual);
    hpaReplicas.push(hpaAlone.recommend(now).replicas);
  }
  assert.is(decisions.length, 3 * DAY * 40);
  let atMax = 0, flapsUpDown = 0, flapsDownUp = 0, hpaDownUp = 0, ups = 0, downs = 0;
  let lastUp = -Infinity, lastDown = -Infinity, hLastDown = -Infinity, hPrev = 2;
  decisions.forEach((d, i) => {
    assert.ok(d.replicas >= pool.minReplicas && d.replicas <= pool.maxReplicas, `replicas ${d.replicas} outside [${pool.minReplicas}, ${pool.maxReplicas}] at ${d.timeMs}`);
    assert.ok(d.replicas >= d.reactiveReplicas, `replicas ${d.replicas} below the HPA floor ${d.reactiveReplicas} at ${d.timeMs}`);
    assert.ok(d.replicas >= d.activeReplicas, `replicas ${d.replicas} below the active users' need ${d.activeReplicas} at ${d.timeMs}`);
    // The floor is exactly what an HPA alone would run.
    assert.is(d.reactiveReplicas, hpaReplicas[i], `floor differs from the HPA alone at ${d.timeMs}`);
    if (d.replicas === pool.maxReplicas) atMax++;
    if (d.direction === "up") {
      ups++;
      if (d.timeMs - lastDown < W) {
        flapsDownUp++;
        // Safety beats stability: only the reactive floor or the users active now may reverse a
        // recent scale-down (a forecast miss); a forecast-driven decision never does.
        assert.ok(d.reason === "up: reactive floor" || d.reason === "up: active users", `forecast-driven scale-up ${d.timeMs - lastDown} ms after a scale-down: ${d.reason}`);
        assert.ok(d.replicas === Math.max(d.reactiveReplicas, d.activeReplicas), "a reversal goes exactly to the floor, no further");
      }
      lastUp = d.timeMs;
    } else if (d.direction === "down") {
      downs++;
      if (d.timeMs - lastUp < W) flapsUpDown++;
      lastDown = d.timeMs;
    }
    if (hpaReplicas[i] > hPrev && d.timeMs - hLastDown < W) hpaDownUp++;
    if (hpaReplicas[i] < hPrev) hLastDown = d.timeMs;
    hPrev = hpaReplicas[i];
  });
  console.log(`  m-mid days 7-9: ${ups} up, ${downs} down, ${atMax} decisions at max ${pool.maxReplicas}; reversals down-then-up ${flapsDownUp} (HPA alone ${hpaDownUp}), up-then-down ${flapsUpDown}`);
  assert.ok(atMax > 0, "the peak should reach maxReplicas (bound exercised)");
  assert.ok(ups > 10 && downs > 10, `the pool should move both ways (${ups} up, ${downs} down)`);
  assert.is(flapsUpDown, 0, "a scale-down inside the stabilization window after a scale-up");
  // Reversals forced by the floor are rare: at most one per day over these three days.
  assert.ok(flapsDownUp <= 3, `${flapsDownUp} floor-forced down-then-up reversals in 3 days`);
});

test.run();
