// The replay's capacity, queue, HPA and oracle models on hand-computed cases.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { DEFAULT_PARAMS, FluidQueue, LIVE_MODULES, ReplicaSet, replayDemand } from "../../src/replay/index.ts";

test("queue: a burst is served over its second and the next two, the rest is dropped", () => {
  const q = new FluidQueue(2);
  q.step(40, 10); // s0: 10 of cohort 0
  assert.is(q.servedNow, 10);
  q.step(0, 10); // s1: 10 more
  q.step(0, 10); // s2: 10 more; cohort 0 closes with 30 of 40
  assert.is(q.closedArrivals, 40);
  assert.is(q.closedServed, 30);
  assert.is(q.closedFraction, 0.75);
  q.step(0, 10); // s3: nothing left (the 10 were dropped)
  assert.is(q.servedNow, 0);
  assert.is(q.backlog, 0);
});

test("queue: oldest cohort first", () => {
  const q = new FluidQueue(2);
  q.step(15, 10); // c0: 10 served, 5 left
  q.step(10, 10); // c0's 5 first, then 5 of c1
  assert.is(q.backlog, 5);
  q.step(0, 10); // c0 closes fully served; c1's last 5 served
  assert.is(q.closedArrivals, 15);
  assert.is(q.closedServed, 15);
  q.step(0, 10); // c1 closes fully served
  assert.is(q.closedArrivals, 10);
  assert.is(q.closedServed, 10);
});

test("queue: maxWait 0 serves only in the arrival second", () => {
  const q = new FluidQueue(0);
  q.step(25, 10);
  assert.is(q.closedArrivals, 25);
  assert.is(q.closedServed, 10);
});

test("replicas: scale-up ready after the delay, scale-down cancels pending first, all billed", () => {
  const r = new ReplicaSet(2);
  assert.is(r.set(5, 0, 120), 1);
  assert.is(r.existing, 5);
  r.advance(119);
  assert.is(r.ready, 2);
  assert.is(r.set(3, 10, 120), -1); // cancels 2 of the 3 pending
  assert.is(r.ready, 2);
  assert.is(r.starting, 1);
  assert.is(r.set(1, 20, 120), -1); // cancels the last pending, then one ready
  assert.is(r.ready, 1);
  assert.is(r.starting, 0);
  r.advance(1000);
  assert.is(r.ready, 1);
  assert.is(r.scaleUps, 1);
  assert.is(r.scaleDowns, 2);
});

test("static capacity with the queue: served within 2 s, no-queue figure", () => {
  const d = Float64Array.from([40, 0, 0, 0, 25, 5, 0, 0]);
  const { figures: f } = replayDemand(d, 10, { kind: "static", replicas: 1 }, DEFAULT_PARAMS, LIVE_MODULES, 1);
  assert.is(f.requests, 70);
  assert.is(f.served, 60); // 30 of the 40; all of 25 and 5
  assert.is(f.noQueueServed, 10 + 10 + 5); // min(a, 10) per second
  assert.is(f.replicaSec, 8);
  assert.is(f.overProvSec, 0 + 1 + 1 + 1 + 0 + 0.5 + 1 + 1);
});

test("HPA v2 (live module) on a step: 60 s mean, tolerance, pending replicas count, 120 s start", () => {
  const d = new Float64Array(800);
  for (let s = 0; s < 800; s++) d[s] = s < 600 ? 100 : 200;
  // R = 10/s, target 1.0: 10 replicas hold 100/s within tolerance.
  const { ready, existing, figures } = replayDemand(d, 10, { kind: "hpa", target: 1 }, DEFAULT_PARAMS, LIVE_MODULES, 10);
  // 615: mean(555..614) = 125 → ratio 1.25 → ceil(12.5) = 13; 630: 150 / (13 × 10) = 1.15 → 15;
  // 645: 175 / 150 = 1.17 → 18; 660: 200 / 180 = 1.11 → 20; 675: 200 / 200 → keep.
  assert.is(existing[614], 10);
  assert.is(existing[615], 13);
  assert.is(existing[630], 15);
  assert.is(existing[645], 18);
  assert.is(existing[660], 20);
  assert.is(existing[799], 20);
  assert.is(ready[734], 10);
  assert.is(ready[735], 13);
  assert.is(ready[750], 15);
  assert.is(ready[765], 18);
  assert.is(ready[780], 20);
  assert.is(figures.scaleUps, 4);
  assert.is(figures.scaleDowns, 0);
  // Before the step nothing is dropped; after it 100/s of excess for 135 s cannot all be served.
  assert.ok(figures.served < figures.requests);
});

test("oracle: sizes ahead for the peak 3-second mean it will see", () => {
  const d = new Float64Array(600);
  for (let s = 0; s < 600; s++) d[s] = s < 300 ? 100 : 300;
  const { ready, figures } = replayDemand(d, 10, { kind: "oracle", factor: 1 }, DEFAULT_PARAMS, LIVE_MODULES, 10);
  // t=165 looks at [285, 300): need(299) = (100 + 300 + 300) / 3 → 24 replicas at 285;
  // t=180 looks at [300, 315): 300/s → 30 replicas at 300.
  assert.is(ready[284], 10);
  assert.is(ready[285], 24);
  assert.is(ready[300], 30);
  assert.is(figures.served, figures.requests);
});

test.run();
