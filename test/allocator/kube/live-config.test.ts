// `foresight allocate` follows the config in KV live (runAllocator, the body of the command): a
// real nats-server holds the config bucket, the Kubernetes API test server holds the workloads
// (driven by client-node), partials are published as processors would. A new revision's bounds
// reach the workload without a restart; an invalid revision is refused and the running settings
// stay; a pool switched from shadow to scale starts being patched; a removed pool stops being
// acted on and its workload stays.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { KubeConfig } from "@kubernetes/client-node";
import { NatsServer } from "../../../src/nats/server.ts";
import { KubeSim } from "../../../src/kube-sim/index.ts";
import { ConfigStore, loadConfig } from "../../../src/config/index.ts";
import { demandSubject, encodeDemandPartial } from "../../../src/allocator/kube/partials.ts";
import type { PoolDecision } from "../../../src/allocator/policy.ts";
import { runAllocator, type RunningAllocator } from "../../../src/cli/commands/allocate-run.ts";
import { NS, deployment, memoryLogger } from "./support.ts";
import { waitFor } from "../../processor/support.ts";

const PREFIX = "live";
/** Demand per pool, requests/s: 100 wants ceil(100 × 1.1 / (10 × 0.8)) = 14 replicas, above every max below. */
const DEMAND_PER_SEC = 100;

function poolDoc(name: string, mode: string, maxReplicas: number, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    name, mode, minReplicas: 1, maxReplicas, stabilizationWindowSec: 0, tolerance: 0, decisionIntervalMs: 1000,
    costModel: { requestsPerSecPerReplica: 10, cpuPerReplicaMillicores: 100, memoryPerReplicaMiB: 128 },
    workload: { namespace: NS, name },
    match: { default: name === "chat" },
    ...extra,
  };
}

let nats: NatsServer;
let sim: KubeSim;
let nc: NatsConnection;
let store: ConfigStore;
let running: RunningAllocator | undefined;
let lines: Record<string, any>[] = [];
let decisions: PoolDecision[][] = [];
/** Pool names the test's "processor" publishes partials for (follows the config like serve does). */
let partialPools: string[] = [];
let publisher: NodeJS.Timeout | undefined;
/** A second allocator (standby), when a test starts one. */
let standby: RunningAllocator | undefined;

function replicasOf(name: string): number {
  return sim.get("apps", "deployments", NS, name)!.spec.replicas as number;
}

async function metric(name: string, labels: Record<string, string> = {}): Promise<number> {
  const m = await running!.service.metrics.registry.getSingleMetric(name)?.get();
  return m?.values.filter((v) => Object.entries(labels).every(([k, x]) => String(v.labels[k]) === x)).reduce((s, v) => s + v.value, 0) ?? 0;
}

/** Resolves with the first decision tick, after this call, that satisfies `pred`. */
async function nextDecision(what: string, pred: (d: PoolDecision[]) => boolean): Promise<PoolDecision[]> {
  const from = decisions.length;
  return waitFor(what, () => decisions.slice(from).find(pred), 15_000, 20);
}

/** Writes a config document (validated by the store, as `foresight config set` does). */
async function putConfig(pools: Record<string, unknown>[], extra: Record<string, unknown> = {}): Promise<number> {
  const current = (await store.getEntry())?.revision ?? 0; // the latest may be an invalid one
  return store.set({ pools, cluster: { maxReplicasTotal: 100, maxCpuMillicores: 100_000, maxMemoryMiB: 100_000 }, ...extra }, current);
}

test.before.each(async () => {
  nats = await NatsServer.start();
  sim = new KubeSim();
  await sim.start();
  sim.create(deployment("chat", { replicas: 2 }));
  sim.create(deployment("batch", { replicas: 1 }));
  nc = await connect({ servers: nats.url });
  store = await ConfigStore.open(nc);
  decisions = [];
  partialPools = [];
});

test.after.each(async () => {
  clearInterval(publisher);
  publisher = undefined;
  await running?.stop();
  running = undefined;
  await standby?.stop();
  standby = undefined;
  await nc.close();
  await sim.stop();
  await nats.dispose();
});

/** Starts the allocator on the config in KV (as `foresight allocate` with its default --kv) and a partial publisher. */
async function start(opts: { grants?: boolean; standby?: boolean } = {}): Promise<void> {
  const loaded = await loadConfig({ overrides: { nats: { connection: { servers: [nats.url] }, subjectPrefix: PREFIX, partitions: 1 } }, kv: { nc } });
  const kc = new KubeConfig();
  kc.loadFromOptions(sim.kubeConfigOptions());
  const mem = memoryLogger();
  const r = await runAllocator(loaded, {
    kubeConfig: kc, followKv: true, grants: opts.grants ?? false, log: mem.log,
    service: { processId: opts.standby ? "alloc-standby" : "alloc-live", leaseTtlMs: 1500, httpPort: -1, decisionIntervalMs: 100, actuator: { events: false }, onDecisions: (d) => void decisions.push(d.map((x) => ({ ...x }))) },
  });
  if (opts.standby) {
    standby = r;
    return;
  }
  running = r;
  lines = mem.lines;
  partialPools = loaded.config.pools.map((p) => p.name);
  const publish = () => {
    const n = partialPools.length;
    const partial = { v: 1, partition: 0, tickTimeMs: Date.now(), pools: partialPools, meanPerSec: Array(n).fill(DEMAND_PER_SEC), variance: Array(n).fill(0), upperSumPerSec: Array(n).fill(DEMAND_PER_SEC), observedPerSec: Array(n).fill(DEMAND_PER_SEC), activeUsers: Array(n).fill(10), users: 10 * n };
    nc.publish(demandSubject(PREFIX, 0), encodeDemandPartial(partial as never));
  };
  publish();
  publisher = setInterval(publish, 50);
}

test("a new revision lowering maxReplicas reaches the workload without a restart; an invalid one is refused and the running settings stay", async () => {
  await putConfig([poolDoc("chat", "scale", 8)]);
  await start();
  assert.ok(running!.service.isLeader(), "the only allocator leads");
  await waitFor("chat scaled to its maxReplicas 8", () => replicasOf("chat") === 8);
  const appliedBefore = await metric("foresight_config_applied_total");

  const revision = await putConfig([poolDoc("chat", "scale", 5)]);
  await waitFor("chat lowered to the new maxReplicas 5", () => replicasOf("chat") === 5);
  assert.is(running!.watcher!.revision, revision, "the watcher runs the new revision");
  assert.is(await metric("foresight_config_applied_total"), appliedBefore + 1, "one more revision applied");
  assert.ok(lines.some((l) => l.msg === "allocator settings applied" && l.changed?.includes("chat")), "the change is logged");

  // Invalid: maxReplicas 3 with a tolerance outside [0, 1]. Written past the store's validation,
  // as a hand-edited KV value would be. Applied by mistake, chat would go to 3.
  const bad = { pools: [poolDoc("chat", "scale", 3, { tolerance: 2 })], cluster: { maxReplicasTotal: 100, maxCpuMillicores: 100_000, maxMemoryMiB: 100_000 } };
  const badRevision = await store.kvBucket.put(store.key, JSON.stringify(bad));
  await waitFor("the invalid revision counted as rejected", async () => (await metric("foresight_config_rejected_total", { reason: "invalid_schema" })) === 1);
  assert.ok(lines.some((l) => l.revision === badRevision && /rejected, keeping revision/.test(l.msg)), "the refusal is logged");
  const after = await nextDecision("a decision after the refusal", () => true);
  assert.is(after[0].replicas, 5, "decisions still use maxReplicas 5");
  assert.is(after[0].predictiveReplicas, 5, "the predictive half is still bounded by 5");
  assert.is(running!.watcher!.revision, revision, "the running revision is unchanged");
  assert.is(await metric("foresight_config_applied_total"), appliedBefore + 1, "nothing applied");
  assert.is(replicasOf("chat"), 5);

  // Valid for the schema, refused by the allocator: no pools at all. The running pools stay.
  await putConfig([]);
  await waitFor("the allocator's refusal counted", async () => (await metric("foresight_config_apply_failures_total")) === 1);
  assert.ok(lines.some((l) => /config change handler failed/.test(l.msg) && /keeps its pools \(chat\)/.test(l.msg)), "the refusal says why");
  const kept = await nextDecision("a decision after the refused change", () => true);
  assert.equal(kept.map((d) => [d.pool, d.replicas]), [["chat", 5]]);

  // Raising minReplicas above what the demand wants: the workload follows it too.
  await putConfig([poolDoc("chat", "scale", 12, { minReplicas: 12 })]);
  await waitFor("chat raised to the new minReplicas 12", () => replicasOf("chat") === 12);
});

test("a pool switched from shadow to scale starts being patched; a removed pool stops being acted on and its workload stays", async () => {
  await putConfig([poolDoc("chat", "scale", 6), poolDoc("batch", "shadow", 4)]);
  await start();
  await waitFor("chat scaled", () => replicasOf("chat") === 6);
  const shadow = await nextDecision("a shadow decision for batch", (d) => d.some((x) => x.pool === "batch" && x.replicas === 4));
  assert.ok(shadow);
  await waitFor("a shadow actuation of batch", async () => (await metric("foresight_allocator_actuations_total", { pool: "batch", mode: "shadow", outcome: "shadow" })) > 0);
  assert.is(replicasOf("batch"), 1, "shadow changes nothing");

  await putConfig([poolDoc("chat", "scale", 6), poolDoc("batch", "scale", 4)]);
  await waitFor("batch patched to 4 once in scale mode", () => replicasOf("batch") === 4);
  assert.ok(lines.some((l) => l.msg === "allocator settings applied" && l.modes?.includes("batch: shadow -> scale")), "the mode change is logged");

  // Remove batch: the processors follow the same revision (the test's publisher here).
  await putConfig([poolDoc("chat", "scale", 6)]);
  partialPools = ["chat"];
  const onlyChat = await nextDecision("a decision without batch", (d) => d.length === 1 && d[0].pool === "chat");
  assert.is(onlyChat[0].replicas, 6);
  const writes = sim.writes.length;
  await nextDecision("two more ticks", () => true);
  await nextDecision("two more ticks", () => true);
  assert.ok(sim.writes.slice(writes).every((w) => w.name !== "batch"), "batch is not written any more");
  assert.ok(sim.get("apps", "deployments", NS, "batch"), "batch's Deployment stays");
  assert.is(replicasOf("batch"), 4, "and keeps its replicas");
  assert.is(await metric("foresight_pool_replicas_decided", { pool: "batch" }), 0, "batch's gauges left /metrics");

  // Added back, in scale mode: acted on from the next decision (a scale-up is never held).
  await putConfig([poolDoc("chat", "scale", 6), poolDoc("batch", "scale", 20)]);
  partialPools = ["chat", "batch"];
  await waitFor("batch scaled to what the demand wants (14)", () => replicasOf("batch") === 14);
  assert.ok(lines.some((l) => l.msg === "allocator settings applied" && l.added?.includes("batch")), "the added pool is logged");
});

test("a pool added live starts from the replicas its workload runs: no scale-down on its first decisions", async () => {
  sim.create(deployment("extra", { replicas: 10 }));
  await putConfig([poolDoc("chat", "scale", 6)]);
  await start();
  await waitFor("chat scaled", () => replicasOf("chat") === 6);
  // extra's demand (100/s at 50/s per replica) needs 3; its workload runs 10.
  await putConfig([poolDoc("chat", "scale", 6), poolDoc("extra", "scale", 20, { stabilizationWindowSec: 600, costModel: { requestsPerSecPerReplica: 50 } })]);
  partialPools = ["chat", "extra"];
  const first = decisions.length;
  await nextDecision("three decisions with extra", () => decisions.slice(first).filter((d) => d.some((x) => x.pool === "extra")).length >= 3);
  await waitFor("extra's decisions actuated", async () => (await metric("foresight_allocator_actuations_total", { pool: "extra" })) >= 2);
  const extra = decisions.slice(first).flatMap((d) => d.filter((x) => x.pool === "extra"));
  assert.ok(extra.every((d) => d.replicas === 10 && d.previousReplicas === 10), `decided from the 10 it runs: ${extra.map((d) => `${d.previousReplicas}->${d.replicas} ${d.reason}`).join("; ")}`);
  assert.is(replicasOf("extra"), 10, "no scale-down inside its stabilization window");
});

test("a standby follows the config too: after the leader stops, it decides with the revision applied meanwhile", async () => {
  await putConfig([poolDoc("chat", "scale", 8)]);
  await start();
  await start({ standby: true });
  assert.ok(running!.service.isLeader() && !standby!.service.isLeader(), "the first leads");
  await waitFor("chat at 8", () => replicasOf("chat") === 8);
  const revision = await putConfig([poolDoc("chat", "scale", 4)]);
  await waitFor("both allocators on the new revision", () => running!.watcher!.revision === revision && standby!.watcher!.revision === revision);
  await running!.stop();
  running = undefined;
  await waitFor("the standby leads", () => standby!.service.isLeader());
  const d = await nextDecision("a decision of the new leader", () => true);
  assert.is(d[0].replicas, 4, "the new leader decides with maxReplicas 4");
  await waitFor("chat at 4", () => replicasOf("chat") === 4);
});

test("a leader starts from the replicas its workloads run: no scale-down on its first decisions, at start and after a hand-over", async () => {
  sim.create(deployment("extra", { replicas: 10 }));
  // extra's demand (100/s at 50/s per replica) needs 3; its workload runs 10, inside a 600 s window.
  const pools = [poolDoc("chat", "scale", 6), poolDoc("extra", "scale", 20, { stabilizationWindowSec: 600, costModel: { requestsPerSecPerReplica: 50 } })];
  await putConfig(pools);
  await start();
  await start({ standby: true });
  const extraDecisions = (from: number) => decisions.slice(from).flatMap((d) => d.filter((x) => x.pool === "extra"));
  await nextDecision("three decisions of the first leader", () => extraDecisions(0).length >= 3);
  await waitFor("the first leader's decisions actuated", async () => (await metric("foresight_allocator_actuations_total", { pool: "extra" })) >= 2);
  const first = extraDecisions(0);
  assert.ok(first.every((d) => d.replicas === 10), `first leader decided from the 10 it runs: ${first.map((d) => `${d.previousReplicas}->${d.replicas} ${d.reason}`).join("; ")}`);
  assert.is(replicasOf("extra"), 10);
  const handOver = decisions.length;
  await running!.stop();
  running = undefined;
  await waitFor("the standby leads", () => standby!.service.isLeader());
  await nextDecision("three decisions of the new leader", () => extraDecisions(handOver).length >= 3);
  const second = extraDecisions(handOver);
  assert.ok(second.every((d) => d.replicas === 10), `new leader decided from the 10 it runs: ${second.map((d) => `${d.previousReplicas}->${d.replicas} ${d.reason}`).join("; ")}`);
  assert.is(replicasOf("extra"), 10, "no scale-down inside the new leader's stabilization window");
});

test("new throttle settings restart the leader's grant service with them; a budget change reaches the policy", async () => {
  await putConfig([poolDoc("chat", "scale", 8)]);
  await start({ grants: true });
  const host = running!.service.grants!;
  const first = await waitFor("the leader's grant service", () => host.service);
  const before = host.serviceOptions.plans!.default.requestsPerSec;

  await putConfig([poolDoc("chat", "scale", 8)], { throttle: { plans: { default: { requestsPerSec: before + 7 } }, grantTtlMs: 45_000 } });
  const second = await waitFor("a new grant service", () => (host.service && host.service !== first ? host.service : undefined));
  assert.is(host.serviceOptions.plans!.default.requestsPerSec, before + 7, "the new plan limit");
  assert.is(host.serviceOptions.grantTtlMs, 45_000, "the new grant TTL");
  assert.ok(lines.some((l) => l.msg === "allocator settings applied" && l.grantsRestarted === true));
  assert.ok(lines.some((l) => l.msg === "grant service stopped" && l.why === "config changed"));

  // The cluster budget: at most 3 replicas in all; chat (wanting 8) is cut to it.
  const revision = await store.set({ pools: [poolDoc("chat", "scale", 8)], cluster: { maxReplicasTotal: 3, maxCpuMillicores: 100_000, maxMemoryMiB: 100_000 }, throttle: { plans: { default: { requestsPerSec: before + 7 } }, grantTtlMs: 45_000 } }, (await store.getEntry())!.revision);
  const cut = await nextDecision("a decision cut by the new budget", (d) => d[0].budgetLimited);
  assert.is(cut[0].replicas, 3);
  await waitFor("chat at the budget's 3 replicas", () => replicasOf("chat") === 3);
  assert.is(host.service, second, "a budget change does not restart the grant service");
  assert.is(running!.watcher!.revision, revision);
});

test.run();
