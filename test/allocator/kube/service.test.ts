// The allocator service against a real nats-server and the Kubernetes API test server: one leader,
// partials summed, missing partials held (never a scale-down on them), pool series exported, pool
// state published, leadership handed over on stop.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { KubeConfig } from "@kubernetes/client-node";
import { NatsServer } from "../../../src/nats/server.ts";
import { KubeSim } from "../../../src/kube-sim/index.ts";
import { AllocatorService, poolsStateSubject, type AllocatorPoolConfig, type PoolsState } from "../../../src/allocator/kube/service.ts";
import { demandSubject, encodeDemandPartial, DemandPartialBuilder, type DemandPartial } from "../../../src/allocator/kube/partials.ts";
import { aggregateDemand, PoolMembership } from "../../../src/allocator/demand.ts";
import { POOL_POLICY_DEFAULTS } from "../../../src/allocator/policy.ts";
import { FORECAST_RECORD_BYTES } from "../../../src/engine/layout.ts";
import { userHash } from "../../../src/telemetry/hash.ts";
import { NS, deployment, memoryLogger } from "./support.ts";

function pool(name: string, mode: AllocatorPoolConfig["mode"]): AllocatorPoolConfig {
  return {
    ...POOL_POLICY_DEFAULTS,
    name, mode,
    costModel: { requestsPerSecPerReplica: 10, cpuPerReplicaMillicores: 500, memoryPerReplicaMiB: 512 },
    minReplicas: 1, maxReplicas: 20, stabilizationWindowSec: 0, tolerance: 0, decisionIntervalMs: 3_600_000,
    workload: { kind: "Deployment", namespace: NS, name },
    match: { routes: [], models: [], plans: [], segments: [], users: [], default: name === "chat" },
  };
}

function partial(partition: number, tickTimeMs: number, mean: number[], observed = mean): DemandPartial {
  return { v: 1, partition, tickTimeMs, pools: ["chat", "batch"], meanPerSec: mean, variance: mean.map(() => 0), upperSumPerSec: mean, observedPerSec: observed, activeUsers: mean.map((m) => (m > 0 ? 1 : 0)), users: 1 };
}

let nats: NatsServer;
let sim: KubeSim;
let nc: NatsConnection;
test.before(async () => {
  nats = await NatsServer.start();
  sim = new KubeSim();
  await sim.start();
  sim.create(deployment("chat", { replicas: 1 }));
  sim.create(deployment("batch", { replicas: 1 }));
  nc = await connect({ servers: nats.url });
});
test.after(async () => {
  await nc.close();
  await sim.stop();
  await nats.dispose();
});

async function service(id: string, clock: () => number) {
  const kc = new KubeConfig();
  kc.loadFromOptions(sim.kubeConfigOptions());
  const { log, lines } = memoryLogger();
  const s = await AllocatorService.start({
    nats: { servers: [nats.url] }, prefix: "svc", partitions: 2, pools: [pool("chat", "scale"), pool("batch", "shadow")],
    cluster: { maxCpuMillicores: 64_000, maxMemoryMiB: 262_144, maxReplicasTotal: 100 }, kubeConfig: kc, processId: id,
    leaseTtlMs: 1500, staleAfterMs: 5_000, httpPort: 0, log, clock, horizonSec: 600, actuator: { events: false },
  });
  return { s, lines };
}

test("one leader sums the partials, scales, exports the series and publishes pool state; missing partials never scale down", async () => {
  let now = Date.now();
  const clock = () => now;
  const a = await service("alloc-a", clock);
  const b = await service("alloc-b", clock);
  try {
    assert.is([a.s.isLeader(), b.s.isLeader()].filter(Boolean).length, 1, "exactly one leader");
    const leader = a.s.isLeader() ? a.s : b.s;
    const follower = a.s.isLeader() ? b.s : a.s;
    const states: PoolsState[] = [];
    const sub = nc.subscribe(poolsStateSubject("svc"), { callback: (_e, m) => void states.push(JSON.parse(m.string())) });
    // Two partitions: chat gets 30 + 25 requests/s; batch 5 + 0.
    nc.publish(demandSubject("svc", 0), encodeDemandPartial(partial(0, now, [30, 5])));
    nc.publish(demandSubject("svc", 1), encodeDemandPartial(partial(1, now, [25, 0])));
    await nc.flush();
    await new Promise((r) => setTimeout(r, 100));
    assert.is((await follower.decideNow()), undefined, "the follower does not decide");
    // A new leader holds scale-downs for one stabilization window (0 s here).
    now += 1000;
    const d1 = (await leader.decideNow())!;
    const chat = d1.find((d) => d.pool === "chat")!;
    assert.is(chat.upperRequestsPerSec, 55);
    assert.is(chat.replicas, 8, "ceil(55 req/s × 1.1 headroom / (10 req/s × 0.8 utilization)) = ceil(7.56)");
    await leader.actuator.idle();
    assert.is(sim.get("apps", "deployments", NS, "chat")!.spec.replicas, chat.replicas);
    assert.is(sim.get("apps", "deployments", NS, "batch")!.spec.replicas, 1, "batch is in shadow mode");
    await nc.flush();
    await new Promise((r) => setTimeout(r, 100));
    const st = states.at(-1)!;
    assert.is(st.v, 1);
    assert.is(st.dataComplete, true);
    assert.is(st.pools[0].pool, "chat");
    assert.is(st.pools[0].loadRequestsPerSec, 55);
    assert.is(st.pools[0].replicasDecided, chat.replicas);
    const text = await leader.metrics.registry.metrics();
    assert.match(text, /foresight_pool_forecast_upper_requests_per_second\{pool="chat",horizon="600s"\} 55/);
    assert.match(text, /foresight_pool_replicas_decided\{pool="chat"\} 8/);
    assert.match(text, /foresight_pool_replicas_reactive_floor\{pool="chat"\} \d+/);
    const metricsRes = await fetch(`http://127.0.0.1:${leader.httpPort}/metrics`);
    assert.match(await metricsRes.text(), /foresight_allocator_leader 1/);

    // Partition 1 falls silent; partition 0's demand drops to 1 req/s. The held partial keeps
    // the sum up and the pool flagged: no scale-down.
    now += 6000;
    nc.publish(demandSubject("svc", 0), encodeDemandPartial(partial(0, now, [1, 0])));
    await nc.flush();
    await new Promise((r) => setTimeout(r, 100));
    const d2 = (await leader.decideNow())!;
    const chat2 = d2.find((d) => d.pool === "chat")!;
    assert.is(chat2.replicas, chat.replicas, "held, not scaled down");
    assert.is(chat2.reason, "hold: incomplete demand");
    assert.is(leader.state()!.dataComplete, false);
    assert.equal(leader.state()!.stalePartitions, [1]);
    // Partition 1 is back with a low value: the pool scales down (step-limited).
    nc.publish(demandSubject("svc", 1), encodeDemandPartial(partial(1, now, [1, 0])));
    await nc.flush();
    await new Promise((r) => setTimeout(r, 100));
    now += 1000;
    const d3 = (await leader.decideNow())!;
    assert.ok(d3[0].replicas < chat.replicas, `scaled down to ${d3[0].replicas}`);
    assert.is(d3[0].direction, "down");
    // Partials for other pools are refused and counted.
    nc.publish(demandSubject("svc", 0), encodeDemandPartial({ ...partial(0, now, [1]), pools: ["other"] }));
    nc.publish(demandSubject("svc", 0), new TextEncoder().encode("{nope"));
    await nc.flush();
    await new Promise((r) => setTimeout(r, 100));
    assert.is(leader.badPartials.get("pools"), 1);
    assert.is(leader.badPartials.get("json"), 1);
    sub.unsubscribe();
    // The leader stops and releases the lease: the other one takes over at its next round.
    await leader.stop();
    const t0 = Date.now();
    while (!follower.isLeader() && Date.now() - t0 < 5000) await new Promise((r) => setTimeout(r, 50));
    assert.ok(follower.isLeader(), "the follower took over");
  } finally {
    await a.s.stop();
    await b.s.stop();
  }
});

test("DemandPartialBuilder: the partial equals the policy's aggregation; explicit users by their telemetry hash", () => {
  const rules = [
    { name: "chat", match: { routes: [], models: [], plans: [], segments: [], users: [], default: true } },
    { name: "vip", match: { routes: [], models: [], plans: [], segments: [], users: ["user-7"], default: false } },
  ];
  const z = 1.645;
  const b = new DemandPartialBuilder(rules, z);
  const n = 20;
  const rec = new Uint8Array(n * FORECAST_RECORD_BYTES);
  const dv = new DataView(rec.buffer);
  const mean = new Float64Array(n), upper = new Float64Array(n), obs = new Float64Array(n);
  const m = new PoolMembership(n, 2);
  for (let i = 0; i < n; i++) {
    const h = userHash(`user-${i}`);
    mean[i] = i + 1;
    upper[i] = (i + 1) * 1.5;
    obs[i] = i % 3;
    dv.setUint32(i * 32, h.lo, true);
    dv.setUint32(i * 32 + 4, h.hi, true);
    dv.setFloat64(i * 32 + 8, mean[i], true);
    dv.setFloat64(i * 32 + 16, upper[i], true);
    dv.setFloat64(i * 32 + 24, obs[i], true);
    m.set(i, i === 7 ? 1 : 0);
  }
  const p = b.build(3, 1000, rec, n);
  const ref = aggregateDemand({ count: n, meanPerSec: mean, upperPerSec: upper, observedPerSec: obs }, m, z);
  assert.equal(p.meanPerSec, Array.from(ref.meanPerSec));
  assert.equal(p.variance, Array.from(ref.variance));
  assert.equal(p.observedPerSec, Array.from(ref.observedPerSec));
  assert.is(p.meanPerSec[1], 8, "user-7 alone in the vip pool");
  assert.is(p.partition, 3);
  assert.is(p.users, n);
});

test.run();
