// The HPA v2 model on hand-computed cases (Kubernetes docs' algorithm and default behavior).
import { test } from "uvu";
import * as assert from "uvu/assert";
import { HPA_DEFAULTS, HpaOptionError, HpaRecommender, RateWindow } from "../../src/allocator/hpa.ts";

const S = 1000;

test("defaults are the Kubernetes ones", () => {
  assert.is(HPA_DEFAULTS.tolerance, 0.1);
  assert.is(HPA_DEFAULTS.scaleUp.stabilizationWindowSec, 0);
  assert.is(HPA_DEFAULTS.scaleDown.stabilizationWindowSec, 300);
  assert.equal(HPA_DEFAULTS.scaleUp.policies.map((p) => [p.type, p.value, p.periodSec]), [["Pods", 4, 15], ["Percent", 100, 15]]);
  assert.equal(HPA_DEFAULTS.scaleDown.policies.map((p) => [p.type, p.value, p.periodSec]), [["Percent", 100, 15]]);
  assert.is(HPA_DEFAULTS.syncPeriodMs, 15_000);
  assert.is(HPA_DEFAULTS.metricWindowMs, 60_000);
});

test("desired = ceil(demand / (R × target)); within tolerance keeps current", () => {
  // R = 10/s, target 0.5 → 5/s per pod. 4 pods, demand 21/s: ratio 21/20 = 1.05 ≤ 1.1 → keep 4.
  const h = new HpaRecommender({ capacityPerReplicaPerSec: 10, targetUtilization: 0.5, initialReplicas: 4 });
  let r = h.recommend(0, 21);
  assert.is(r.replicas, 4);
  assert.is(r.limitedBy, "tolerance");
  assert.is(r.utilization, 21 / 40);
  // demand 23/s: ratio 1.15 → ceil(23/5) = 5.
  r = h.recommend(15 * S, 23);
  assert.is(r.desiredReplicas, 5);
  assert.is(r.replicas, 5);
  assert.is(r.limitedBy, "none");
});

test("scale-up limited to max(+4 pods, +100 %) per 15 s", () => {
  // 2 pods, demand needs 20: limit max(2+4, 2×2) = 6.
  const h = new HpaRecommender({ capacityPerReplicaPerSec: 1, targetUtilization: 1, initialReplicas: 2 });
  let r = h.recommend(0, 20);
  assert.is(r.desiredReplicas, 20);
  assert.is(r.replicas, 6);
  assert.is(r.limitedBy, "scaleUpRate");
  // 15 s later the period of the first event has passed (event at t=0 is not after cutoff 0): from 6: max(10, 12) = 12.
  r = h.recommend(15 * S, 20);
  assert.is(r.replicas, 12);
  // Then 12 → max(16, 24) → 20 (desired).
  r = h.recommend(30 * S, 20);
  assert.is(r.replicas, 20);
  assert.is(r.limitedBy, "none");
});

test("scale-up inside one period counts the pods already added in it", () => {
  // Sync every 5 s: at t=0 2→6; at t=5 the period started at 2 (6 − 4 added), limit max(2+4, 4) = 6: no change.
  const h = new HpaRecommender({ capacityPerReplicaPerSec: 1, targetUtilization: 1, initialReplicas: 2 });
  assert.is(h.recommend(0, 30).replicas, 6);
  const r = h.recommend(5 * S, 30);
  assert.is(r.replicas, 6);
  assert.is(r.limitedBy, "scaleUpRate");
  // At t = 15 s the t=0 event left the period: 6 → max(10, 12) = 12.
  assert.is(h.recommend(15 * S, 30).replicas, 12);
});

test("scale-down waits for the highest recommendation of the last 300 s", () => {
  const h = new HpaRecommender({ capacityPerReplicaPerSec: 1, targetUtilization: 1, initialReplicas: 10 });
  assert.is(h.recommend(0, 10).replicas, 10); // ratio 1: tolerance
  // Demand drops to 3: raw 3, but the window holds 10 (t=0) → stay 10.
  let r = h.recommend(15 * S, 3);
  assert.is(r.desiredReplicas, 3);
  assert.is(r.replicas, 10);
  assert.is(r.limitedBy, "scaleDownStabilization");
  // Demand 5 at 60 s (raw 5). At 300 s the t=0 sample (10) is out (cutoff 0 is not after 0): max(3, 5, 3...) = 5.
  h.recommend(60 * S, 5);
  for (let t = 75; t < 300; t += 15) assert.is(h.recommend(t * S, 3).replicas, 10, `t=${t}`);
  r = h.recommend(300 * S, 3);
  assert.is(r.replicas, 5);
  // At 360 s the 5 left: down to 3 (−100 % per 15 s allows it).
  r = h.recommend(360 * S, 3);
  assert.is(r.replicas, 3);
});

test("min and max replicas bound the result; out-of-bounds current is brought inside first", () => {
  const h = new HpaRecommender({ capacityPerReplicaPerSec: 1, targetUtilization: 1, minReplicas: 2, maxReplicas: 5, initialReplicas: 9 });
  let r = h.recommend(0, 100);
  assert.is(r.replicas, 5);
  assert.is(r.limitedBy, "maxReplicas");
  r = h.recommend(15 * S, 100);
  assert.is(r.replicas, 5);
  assert.is(r.limitedBy, "maxReplicas");
  const low = new HpaRecommender({ capacityPerReplicaPerSec: 1, targetUtilization: 1, minReplicas: 2, maxReplicas: 5, initialReplicas: 2 });
  // zero demand: raw 0; the window holds only it; min 2 wins.
  r = low.recommend(0, 0);
  assert.is(r.replicas, 2);
});

test("starting pods count as idle: the ratio divides demand over every existing pod", () => {
  // 8 existing pods (4 ready, 4 starting), demand 8/s, R = 2/s, target 0.5 → per-pod target 1/s.
  // ratio = 8 / (1 × 8) = 1 → tolerance, keep 8 (counting only ready pods would say 2.0 → 8 too; use 6/s):
  // demand 6: ratio 6/8 = 0.75 → desired ceil(6/1) = 6, held at 8 by the down window.
  const h = new HpaRecommender({ capacityPerReplicaPerSec: 2, targetUtilization: 0.5, initialReplicas: 8 });
  const r = h.recommend(0, 6);
  assert.is(r.utilization, 6 / 16);
  assert.is(r.desiredReplicas, 6);
  assert.is(r.replicas, 6); // no earlier recommendation in the window, -100 % allowed
});

test("metric is the mean of the samples of the last 60 s", () => {
  const h = new HpaRecommender({ capacityPerReplicaPerSec: 1, targetUtilization: 1, initialReplicas: 1 });
  for (let t = 1; t <= 120; t++) h.observe(t * S, t <= 60 ? 100 : 10);
  // Time moves forward: ask at 90 s (samples 31..90) before 120 s (61..120).
  assert.is(h.meanDemand(90 * S), (30 * 100 + 30 * 10) / 60);
  assert.is(h.meanDemand(120 * S), 10);
  const w = new RateWindow(8);
  for (let t = 0; t < 20; t++) w.push(t, t);
  assert.is(w.size, 8);
  assert.is(w.mean(19, 3), (17 + 18 + 19) / 3);
});

test("Min and Disabled select policies", () => {
  const min = new HpaRecommender({
    capacityPerReplicaPerSec: 1, targetUtilization: 1, initialReplicas: 2,
    scaleUp: { stabilizationWindowSec: 0, selectPolicy: "Min", policies: [{ type: "Pods", value: 4, periodSec: 15 }, { type: "Percent", value: 100, periodSec: 15 }] },
  });
  assert.is(min.recommend(0, 50).replicas, 4); // min(2+4, 2×2)
  const off = new HpaRecommender({
    capacityPerReplicaPerSec: 1, targetUtilization: 1, initialReplicas: 3,
    scaleDown: { stabilizationWindowSec: 0, selectPolicy: "Disabled", policies: [] },
  });
  assert.is(off.recommend(0, 0).replicas, 3);
});

test("bad options name the option", () => {
  assert.throws(() => new HpaRecommender({ capacityPerReplicaPerSec: 0 }), (e: Error) => e instanceof HpaOptionError && /capacityPerReplicaPerSec/.test(e.message));
  assert.throws(() => new HpaRecommender({ capacityPerReplicaPerSec: 1, targetUtilization: 1.5 }), /targetUtilization/);
  assert.throws(() => new HpaRecommender({ capacityPerReplicaPerSec: 1, minReplicas: 5, maxReplicas: 2 }), /maxReplicas/);
  assert.throws(() => new HpaRecommender({ capacityPerReplicaPerSec: 1 }).recommend(0, -1), /observed rate/);
});

test.run();
