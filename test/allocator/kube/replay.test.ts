// Replays one week of a real ServeGen series (m-small: per-client request counts per 10 minutes)
// through the pure policy and the actuator against the Kubernetes API test server: bounds
// respected, no flapping (no scale-down inside the stabilization window after a scale-up),
// patches coalesced, the reactive floor never undercut, and a shadow pool patches nothing.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { readFileSync } from "node:fs";
import { gunzipSync } from "node:zlib";
import { ClusterPolicy, POOL_POLICY_DEFAULTS, type PoolPolicyConfig } from "../../../src/allocator/policy.ts";
import { aggregateDemand, PoolMembership } from "../../../src/allocator/demand.ts";
import { NS, deployment, rig, target } from "./support.ts";

const DATA = new URL("../../../../shared/data/servegen_client_rate_10min.csv.gz", import.meta.url).pathname;
const MODEL = "m-small";
const WINDOW_SEC = 600;
const WEEK_WINDOWS = 7 * 144;
const DAY_WINDOWS = 144;
const Z = 1.645;

/** rates[client][window], requests/s, for the first two weeks of one model. */
function load(): number[][] {
  const text = gunzipSync(readFileSync(DATA)).toString("utf8");
  const byClient = new Map<string, number[]>();
  for (const line of text.split("\n")) {
    if (!line.startsWith(MODEL + ",")) continue;
    const [, client, t, req] = line.split(",");
    const w = Number(t) / WINDOW_SEC;
    let a = byClient.get(client);
    if (!a) byClient.set(client, (a = []));
    a[w] = Number(req) / WINDOW_SEC;
  }
  return [...byClient.values()].map((a) => Array.from({ length: a.length }, (_, i) => a[i] ?? 0));
}

test("a real week through policy + actuator: bounds, no flapping, coalesced patches, shadow patches nothing", async () => {
  const rates = load();
  const users = rates.length;
  assert.ok(users > 10, `${users} clients`);
  const total = (w: number) => rates.reduce((s, r) => s + (r[w] ?? 0), 0);
  // Replay the second week (the first one is the seasonal forecaster's history).
  const start = WEEK_WINDOWS;
  let peak = 0;
  for (let w = start; w < start + WEEK_WINDOWS; w++) peak = Math.max(peak, total(w));
  const perReplica = peak / 12; // the week's peak needs about 12-15 replicas
  const base: PoolPolicyConfig = {
    ...POOL_POLICY_DEFAULTS, name: "chat", costModel: { requestsPerSecPerReplica: perReplica, cpuPerReplicaMillicores: 500, memoryPerReplicaMiB: 512 },
    minReplicas: 2, maxReplicas: 20, decisionIntervalMs: WINDOW_SEC * 1000, stabilizationWindowSec: 3 * WINDOW_SEC, podStartDelaySec: 60,
    reactive: { targetUtilization: 0.7, metricWindowSec: WINDOW_SEC },
  };
  const policy = new ClusterPolicy([base, { ...base, name: "shadowed" }], { maxCpuMillicores: 1e6, maxMemoryMiB: 1e7, maxReplicasTotal: 1000 });
  const r = await rig({ targets: [target("chat", "scale"), target("shadowed", "shadow")] });
  const writes: { tMs: number; replicas: number }[] = [];
  try {
    r.sim.create(deployment("chat", { replicas: 2 }), { manager: "foresight" });
    r.sim.create(deployment("shadowed", { replicas: 2 }));
    // Per-client seasonal-naive forecast (same window yesterday), σ from its recent absolute errors.
    const m = new PoolMembership(users * 2, 2);
    for (let u = 0; u < users; u++) {
      m.set(u, 0);
      m.set(users + u, 1);
    }
    const errEw = new Float64Array(users);
    const mean = new Float64Array(users * 2), upper = new Float64Array(users * 2), obs = new Float64Array(users * 2);
    const series: { w: number; replicas: number; reactive: number; predictive: number; actual: number }[] = [];
    let lastWriteCount = 0;
    for (let w = start; w < start + WEEK_WINDOWS; w++) {
      const nowMs = w * WINDOW_SEC * 1000;
      for (let u = 0; u < users; u++) {
        const f = rates[u][w + 1 - DAY_WINDOWS]; // forecast for the next window
        errEw[u] = 0.9 * errEw[u] + 0.1 * Math.abs(rates[u][w] - rates[u][w - DAY_WINDOWS]);
        const sigma = errEw[u] * 1.25; // mean absolute error → σ for a normal error
        mean[u] = mean[users + u] = f;
        upper[u] = upper[users + u] = f + Z * sigma;
        obs[u] = obs[users + u] = rates[u][w];
      }
      const demand = aggregateDemand({ count: users * 2, meanPerSec: mean, upperPerSec: upper, observedPerSec: obs }, m, Z);
      const decisions = policy.decideFromDemand(nowMs, demand, Z);
      const d = decisions[0];
      series.push({ w, replicas: d.replicas, reactive: d.reactiveReplicas, predictive: d.predictiveReplicas, actual: total(w + 1) });
      for (const x of decisions) {
        r.actuator.submit({ pool: x.pool, replicas: x.replicas, predictiveReplicas: x.predictiveReplicas, reactiveReplicas: x.reactiveReplicas, cpuMillicores: x.cpuMillicores, memoryMiB: x.memoryMiB, reason: x.reason, direction: x.direction });
      }
      // The API server is reached once an hour of decisions: queued decisions coalesce meanwhile.
      if ((w - start) % 6 === 5) {
        await r.actuator.idle();
        for (const wr of r.sim.writes.slice(lastWriteCount)) if (wr.name === "chat" && wr.subresource === "scale") writes.push({ tMs: nowMs, replicas: wr.object.spec.replicas });
        lastWriteCount = r.sim.writes.length;
      }
    }
    await r.actuator.idle();
    // Bounds, and never below the reactive floor.
    for (const s of series) {
      assert.ok(s.replicas >= base.minReplicas && s.replicas <= base.maxReplicas, `window ${s.w}: ${s.replicas} replicas out of bounds`);
      assert.ok(s.replicas >= s.reactive, `window ${s.w}: ${s.replicas} below the reactive floor ${s.reactive}`);
    }
    // No flapping: no scale-down within the stabilization window after a scale-up.
    const windowMs = base.stabilizationWindowSec * 1000;
    let lastUpMs = -Infinity;
    for (let i = 1; i < series.length; i++) {
      const tMs = series[i].w * WINDOW_SEC * 1000;
      if (series[i].replicas > series[i - 1].replicas) lastUpMs = tMs;
      if (series[i].replicas < series[i - 1].replicas) assert.ok(tMs - lastUpMs >= windowMs, `window ${series[i].w}: scale-down ${tMs - lastUpMs} ms after a scale-up`);
    }
    // Coalesced: fewer scale patches than decided changes; the cluster ends on the last decision.
    const changes = series.filter((s, i) => i > 0 && s.replicas !== series[i - 1].replicas).length;
    const scalePatches = r.sim.audit.filter((a) => a.name === "chat" && a.subresource === "scale" && a.verb === "patch").length;
    assert.ok(changes > 10, `${changes} changes in the week`);
    assert.ok(scalePatches < changes, `${scalePatches} patches for ${changes} changes`);
    assert.is(r.sim.get("apps", "deployments", NS, "chat")!.spec.replicas, series.at(-1)!.replicas);
    assert.ok(writes.every((x) => x.replicas >= base.minReplicas && x.replicas <= base.maxReplicas));
    assert.is(r.actuator.queueStats.maxInFlightPerKey, 1);
    // Shadow: nothing patched for that pool, ever.
    assert.is(r.sim.audit.filter((a) => a.name === "shadowed" && a.verb !== "get").length, 0);
    assert.is(r.sim.get("apps", "deployments", NS, "shadowed")!.spec.replicas, 2);
    // The week against the reactive floor alone (printed for docs/allocator-kube.md).
    const cap = (n: number) => n * perReplica;
    const short = (pick: (s: (typeof series)[number]) => number) => series.filter((s) => s.actual > cap(pick(s))).length;
    const hours = (pick: (s: (typeof series)[number]) => number) => Math.round(series.reduce((a, s) => a + pick(s), 0) / 6);
    console.log(JSON.stringify({
      pool: `${MODEL} (${users} clients), week 2 of ServeGen, 10-min decisions`,
      windows: series.length, changes, scalePatches, queueReplaced: r.actuator.queueStats.replaced,
      foresight: { replicaHours: hours((s) => s.replicas), windowsShort: short((s) => s.replicas) },
      reactiveFloorAlone: { replicaHours: hours((s) => s.reactive), windowsShort: short((s) => s.reactive) },
      daily: Array.from({ length: 7 }, (_, day) => {
        const d = series.slice(day * 144, day * 144 + 144);
        return { day: day + 1, foresightMax: Math.max(...d.map((s) => s.replicas)), reactiveMax: Math.max(...d.map((s) => s.reactive)), foresightMin: Math.min(...d.map((s) => s.replicas)), reactiveMin: Math.min(...d.map((s) => s.reactive)) };
      }),
    }));
  } finally {
    await r.close();
  }
});

test.run();
