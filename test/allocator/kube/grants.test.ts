// The grant service hosted by `foresight allocate`, against a real nats-server and the Kubernetes
// API test server: the leader publishes per-user grants (its users' pools and allocations from the
// allocator's policy) that a gateway's ThrottleClient applies; a standby publishes nothing; when
// the leader dies the standby takes over within the lease TTL and the gateway follows it without
// its grants lapsing; the grant series on /metrics over HTTP match the service's stats.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { connect, type NatsConnection, type Subscription } from "@nats-io/transport-node";
import { KubeConfig } from "@kubernetes/client-node";
import { NatsServer } from "../../../src/nats/server.ts";
import { KubeSim } from "../../../src/kube-sim/index.ts";
import { AllocatorService, type AllocatorPoolConfig } from "../../../src/allocator/kube/service.ts";
import { GrantShares } from "../../../src/allocator/kube/grants.ts";
import { PoolMembership, type UserForecastArrays } from "../../../src/allocator/demand.ts";
import { UserAllocations } from "../../../src/allocator/users.ts";
import { POOL_POLICY_DEFAULTS } from "../../../src/allocator/policy.ts";
import { ThrottleClient } from "../../../src/throttle/client.ts";
import type { GrantInputs } from "../../../src/throttle/grants.ts";
import { throttleNames } from "../../../src/throttle/wire.ts";
import { partitionOf } from "../../../src/telemetry/frame.ts";
import { userHash } from "../../../src/telemetry/hash.ts";
import { forecastMessages, whenApplied } from "../../throttle/_util.ts";
import { NS, deployment, memoryLogger } from "./support.ts";

const PREFIX = "gh";
const P = 2;
const LEASE_TTL_MS = 1500;
const GRANT_TTL_MS = 6000;
const PLANS = { default: { requestsPerSec: 20 } };
const SAFE = { default: { requestsPerSec: 0.5 } };
/** chat: 1 replica × 10 req/s (its minimum: no decision is made in these tests); vip: 2 × 10. */
const CHAT_CAPACITY = 10;
const VIP_CAPACITY = 20;

function pool(name: string, minReplicas: number, users: string[], isDefault: boolean): AllocatorPoolConfig {
  return {
    ...POOL_POLICY_DEFAULTS,
    name, mode: "shadow",
    costModel: { requestsPerSecPerReplica: 10, cpuPerReplicaMillicores: 500, memoryPerReplicaMiB: 512 },
    minReplicas, maxReplicas: 20, stabilizationWindowSec: 0, tolerance: 0, decisionIntervalMs: 3_600_000,
    workload: { kind: "Deployment", namespace: NS, name },
    match: { routes: [], models: [], plans: [], segments: [], users, default: isDefault },
  };
}

let nats: NatsServer;
let sim: KubeSim;
const conns: NatsConnection[] = [];
const services: AllocatorService[] = [];
const clients: ThrottleClient[] = [];

test.before(async () => {
  nats = await NatsServer.start();
  sim = new KubeSim();
  await sim.start();
  sim.create(deployment("chat", { replicas: 1 }));
  sim.create(deployment("vip", { replicas: 2 }));
});
test.after.each(async () => {
  for (const c of clients.splice(0)) await c.close();
  for (const s of services.splice(0)) await s.stop();
  for (const nc of conns.splice(0)) await nc.close().catch(() => undefined);
});
test.after(async () => {
  await sim.stop();
  await nats.dispose();
});

async function conn(): Promise<NatsConnection> {
  const nc = await connect({ servers: nats.url });
  conns.push(nc);
  return nc;
}

async function allocator(id: string, grants = true): Promise<AllocatorService> {
  const kc = new KubeConfig();
  kc.loadFromOptions(sim.kubeConfigOptions());
  const s = await AllocatorService.start({
    nats: { servers: [nats.url], maxReconnectAttempts: 0 }, prefix: PREFIX, partitions: P,
    pools: [pool("chat", 1, [], true), pool("vip", 2, ["vip-user"], false)],
    cluster: { maxCpuMillicores: 64_000, maxMemoryMiB: 262_144, maxReplicasTotal: 100 }, kubeConfig: kc, processId: id,
    leaseTtlMs: LEASE_TTL_MS, httpPort: 0, log: memoryLogger().log, actuator: { events: false },
    grants: grants
      ? {
        subjectPrefix: PREFIX, partitions: P, plans: PLANS, safeLimits: SAFE, grantTtlMs: GRANT_TTL_MS, grantRefreshMs: 500,
        poolStateIntervalMs: 200, snapshotEveryTicks: 2, usersPerPartition: 1024, feedback: { mode: "none" },
      }
      : undefined,
  });
  services.push(s);
  return s;
}

async function gateway(id: string): Promise<ThrottleClient> {
  const c = new ThrottleClient({ plans: PLANS, safeLimits: SAFE, subjectPrefix: PREFIX, partitions: P, maxUsers: 4096, gatewayId: id });
  clients.push(c);
  await c.start(await conn());
  return c;
}

/** Publishes one forecast tick (each user to its partition), as the processors do. */
async function tick(nc: NatsConnection, users: { user: string; upper: number; observed?: number }[], tickTimeMs = Date.now()): Promise<void> {
  for (let p = 0; p < P; p++) {
    const mine = users.filter((u) => partitionOf(userHash(u.user).lo, P) === p);
    for (const m of forecastMessages(p, tickTimeMs, mine)) nc.publish(`${PREFIX}.forecasts.${p}`, m);
  }
  await nc.flush();
}

/** Resolves when the allocator hosts a grant service (at once if it does already). */
function hosting(s: AllocatorService, timeoutMs = 10_000): Promise<void> {
  const host = s.grants!;
  if (host.service) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`${s.processId} hosted no grant service within ${timeoutMs} ms`)), timeoutMs);
    host.onChange = (svc) => {
      if (!svc) return;
      clearTimeout(t);
      host.onChange = undefined;
      resolve();
    };
  });
}

/** Resolves after every partition's tick was published by the leader's grant service. */
function ticked(s: AllocatorService): Promise<void> {
  const g = s.grants!.service!;
  let n = 0;
  return new Promise((resolve) => {
    g.onTickPublished = () => {
      if (++n === P) {
        g.onTickPublished = undefined;
        resolve();
      }
    };
  });
}

/** Expected per-user allocation of one pool: max-min fair (water-filling) when short, else proportional. */
function fairShares(claims: number[], capacity: number): number[] {
  const total = claims.reduce((a, b) => a + b, 0);
  if (capacity >= total) return claims.map((c) => (c * capacity) / total);
  const sorted = [...claims].sort((a, b) => a - b);
  let left = capacity;
  let level = 0;
  for (let i = 0; i < sorted.length; i++) {
    const rest = sorted.length - i;
    if (sorted[i] * rest >= left) {
      level = left / rest;
      break;
    }
    left -= sorted[i];
  }
  return claims.map((c) => Math.min(c, level));
}

test("GrantShares: partitions ticking one by one get exactly the pool-wide fair shares of the allocator's policy", () => {
  const users = Array.from({ length: 40 }, (_, i) => ({ lo: userHash(`u${i}`).lo, hi: userHash(`u${i}`).hi, upper: 0.5 + ((i * 7) % 13), pool: i % 3 === 0 ? 1 : 0 }));
  for (const caps of [[30, 500], [1000, 12]]) {
    const shares = new GrantShares(P, 256, () => caps);
    const byPart = [0, 1].map((p) => users.filter((u) => partitionOf(u.lo, P) === p));
    const inputs = (us: typeof users): GrantInputs => ({
      count: us.length, userHashLo: Uint32Array.from(us, (u) => u.lo), userHashHi: Uint32Array.from(us, (u) => u.hi),
      upperReqPerSec: Float64Array.from(us, (u) => u.upper), planIndex: new Uint8Array(us.length), poolIndex: Uint16Array.from(us, (u) => u.pool),
    });
    // Partition 0 ticks before partition 1 was ever heard: its shares are from its own claims;
    // then both tick, and the second round must equal one pool-wide allocation over all users
    // (run twice, so the reference went through the same safeguard on the second call).
    const ref = new UserAllocations(users.length);
    const firstRound = new Map<number, number>();
    for (const p of [0, 1]) {
      const a = shares.allocationOf(p, inputs(byPart[p]));
      byPart[p].forEach((u, k) => firstRound.set(u.lo, a[k]));
    }
    users.forEach((u, i) => ref.allocatedPerSec[i] = firstRound.get(u.lo)!);
    const got = new Map<number, number>();
    for (const p of [0, 1]) {
      const a = shares.allocationOf(p, inputs(byPart[p]));
      byPart[p].forEach((u, k) => got.set(u.lo, a[k]));
    }
    const m = new PoolMembership(users.length, 2);
    users.forEach((u, i) => m.set(i, u.pool));
    const upper = Float64Array.from(users, (u) => u.upper);
    const f: UserForecastArrays = { count: users.length, meanPerSec: upper, upperPerSec: upper, observedPerSec: upper };
    ref.allocateAll(f, m, caps);
    users.forEach((u, i) => assert.ok(Math.abs(got.get(u.lo)! - ref.allocatedPerSec[i]) < 1e-9, `caps ${caps}: user ${i} got ${got.get(u.lo)}, the pool-wide policy gives ${ref.allocatedPerSec[i]}`));
    // A user outside every pool (index = pool count) has no allocation.
    const outside = shares.allocationOf(0, { ...inputs(byPart[0].slice(0, 1)), poolIndex: Uint16Array.from([2]) });
    assert.is(outside[0], 0, "a user outside the pools gets no pool's capacity");
    if (caps[0] === 30) {
      // chat is short: the fair shares at once, whatever the first round gave.
      const chat = users.filter((u) => u.pool === 0);
      const want = fairShares(chat.map((u) => u.upper), caps[0]);
      chat.forEach((u, i) => assert.ok(Math.abs(got.get(u.lo)! - want[i]) < 1e-9, `caps ${caps}: chat user ${i}: ${got.get(u.lo)} vs ${want[i]}`));
    }
  }
});

test("the leader hosts the grant service: a gateway gets each user's grant from the allocator's pools and shares", async () => {
  const a = await allocator("gh-a");
  await hosting(a);
  assert.ok(a.isLeader());
  const nc = await conn();
  const gw = await gateway("gw-1");
  // chat (default pool, capacity 10 req/s) is short: 1 + 2 + 3 + 8 + 9 = 23 req/s of claims.
  const chat = [{ user: "c1", upper: 1 }, { user: "c2", upper: 2 }, { user: "c3", upper: 3 }, { user: "c8", upper: 8 }, { user: "c9", upper: 9 }];
  const vip = [{ user: "vip-user", upper: 4 }];
  // Two ticks: a partition's first tick is computed before the other partition was heard.
  for (let i = 0; i < 2; i++) {
    const done = ticked(a);
    await tick(nc, [...chat, ...vip], Date.now() + i);
    await done;
  }
  const level = 7 / 3; // 1 + 2 + 3·L = 10
  await whenApplied(gw, () => [...chat, ...vip].every((u) => gw.grantOf(u.user) !== undefined) && Math.abs(gw.grantOf("c9")!.allocReqPerSec - level) < 1e-5, 10_000, "every user's grant at the gateway");
  const expect = fairShares(chat.map((u) => u.upper), CHAT_CAPACITY);
  assert.ok(Math.abs(expect[3] - level) < 1e-12, `the reference water level is ${expect[3]}`);
  chat.forEach((u, i) => {
    const g = gw.grantOf(u.user)!;
    assert.is(g.pool, 0, `${u.user}: default pool`);
    assert.ok(Math.abs(g.upperReqPerSec - u.upper) < 1e-5, `${u.user}: U ${g.upperReqPerSec}`);
    assert.ok(Math.abs(g.allocReqPerSec - expect[i]) < 1e-5, `${u.user}: A ${g.allocReqPerSec}, want ${expect[i]}`);
    assert.ok(Math.abs(g.grantReqPerSec - Math.min(20, Math.max(u.upper, expect[i], 0.5))) < 1e-5, `${u.user}: G ${g.grantReqPerSec}`);
    assert.is(g.planReqPerSec, 20);
  });
  // The vip user is the vip pool's (config match.users) and has its whole capacity (20 req/s ≥ 4).
  const v = gw.grantOf("vip-user")!;
  assert.is(v.pool, 1);
  assert.ok(Math.abs(v.allocReqPerSec - VIP_CAPACITY) < 1e-5, `vip A ${v.allocReqPerSec}`);
  const st = a.grants!.stats();
  assert.is(st.ticks, 2 * P);
  assert.is(st.users, 6);
});

test("two allocators: only the leader publishes grants; when it dies the standby takes over within the lease TTL", async () => {
  const a = await allocator("gh-lead");
  await hosting(a);
  const b = await allocator("gh-standby");
  assert.ok(a.isLeader() && !b.isLeader(), "a leads, b stands by");
  const names = throttleNames(PREFIX);
  const watch = await conn();
  const deltasBy = new Map<string, number>();
  const sub: Subscription = watch.subscribe(`${PREFIX}.grants.*.d.*`, {
    callback: (_e, m) => {
      const id = m.subject.split(".").pop()!.split("-")[0];
      deltasBy.set(id, (deltasBy.get(id) ?? 0) + 1);
    },
  });
  await watch.flush();
  const nc = await conn();
  const gw = await gateway("gw-2");
  const users = [{ user: "h1", upper: 1 }, { user: "h2", upper: 2 }, { user: "h3", upper: 3 }];
  let done = ticked(a);
  await tick(nc, users);
  await done;
  await whenApplied(gw, () => gw.grantOf("h3")?.upperReqPerSec === 3, 10_000, "the leader's grants at the gateway");
  await watch.flush();
  const leaderId = a.grants!.service!.instanceId;
  assert.equal([...deltasBy.keys()], [leaderId], "every delta came from the leader's grant service");
  assert.is(b.grants!.service, undefined, "the standby runs no grant service");
  assert.is(b.grants!.stats().messagesPublished, 0);
  assert.is(b.grants!.stats().ticks, 0);
  const standbyMetrics = await (await fetch(`http://127.0.0.1:${b.httpPort}/metrics`)).text();
  assert.match(standbyMetrics, /^foresight_grants_messages_published_total 0$/m);
  assert.match(standbyMetrics, /^foresight_grants_active 0$/m);
  const lapses = gw.stats().leaseLapses;

  // The leader dies without releasing its lease (its NATS connection drops, as when the pod is
  // killed): the lease expires and the standby takes it at its next round, then publishes.
  const takeover = hosting(b, 3 * LEASE_TTL_MS);
  const crashedAt = Date.now();
  await a.connection.close();
  const keepTicking = setInterval(() => void tick(nc, users.map((u) => ({ ...u, upper: u.upper * 2 }))).catch(() => undefined), 200);
  try {
    await takeover;
    const tookOverMs = Date.now() - crashedAt;
    assert.ok(tookOverMs <= LEASE_TTL_MS + LEASE_TTL_MS / 3 + 500, `took over after ${tookOverMs} ms (lease TTL ${LEASE_TTL_MS} ms)`);
    await whenApplied(gw, () => gw.grantOf("h3")?.upperReqPerSec === 6 && gw.grantOf("h1")?.upperReqPerSec === 2, 10_000, "the new leader's grants at the gateway");
  } finally {
    clearInterval(keepTicking);
  }
  await watch.flush();
  const newId = b.grants!.service!.instanceId;
  assert.ok((deltasBy.get(newId) ?? 0) > 0, "the new leader published deltas");
  assert.equal(new Set(deltasBy.keys()), new Set([leaderId, newId]), "no third publisher");
  assert.is(gw.stats().leaseLapses, lapses, "the gateway's grants never lapsed over the hand-over");
  assert.is(gw.grantOf("h2")!.upperReqPerSec, 4);
  assert.ok(names.grantsStream.length > 0);
  sub.unsubscribe();
});

test("/metrics over HTTP: the grant series match the service's stats", async () => {
  const a = await allocator("gh-metrics");
  await hosting(a);
  const nc = await conn();
  const gw = await gateway("gw-3");
  const users = [{ user: "m1", upper: 1 }, { user: "m2", upper: 5 }];
  for (let i = 0; i < 3; i++) {
    const done = ticked(a);
    // The third tick's observed rate is above the bound of the second: an exceedance.
    await tick(nc, users.map((u) => ({ ...u, observed: i === 2 ? u.upper * 3 : u.upper / 2 })), Date.now() + i);
    await done;
  }
  await whenApplied(gw, () => gw.grantOf("m2") !== undefined, 10_000, "grants at the gateway");
  const svc = a.grants!.service!;
  await svc.stop(); // nothing moves while the scrape and the stats are compared
  const st = a.grants!.stats();
  const text = await (await fetch(`http://127.0.0.1:${a.httpPort}/metrics`)).text();
  const value = (name: string): number => {
    const m = new RegExp(`^${name} (\\S+)$`, "m").exec(text);
    assert.ok(m, `${name} missing from /metrics`);
    return Number(m![1]);
  };
  const pairs: [string, number][] = [
    ["foresight_grants_ticks_total", st.ticks],
    ["foresight_grants_messages_published_total", st.messagesPublished],
    ["foresight_grants_published_bytes_total", st.bytesPublished],
    ["foresight_grants_delta_records_total", st.deltaRecords],
    ["foresight_grants_snapshot_records_total", st.snapshotRecords],
    ["foresight_grants_forecast_messages_total", st.forecastMessages],
    ["foresight_grants_exceedances_total", st.exceedances],
    ["foresight_grants_users", st.users],
  ];
  for (const [name, want] of pairs) {
    assert.ok(want > 0, `${name}: the stats should be non-zero (${want})`);
    assert.is(value(name), want, name);
  }
  assert.is(st.ticks, 3 * P);
  assert.is(st.exceedances, 2, "both users went above their bound once");
  assert.is(value("foresight_grants_publish_errors_total"), 0);
  assert.is(value("foresight_grants_active"), 1);
  assert.ok(value("foresight_grants_last_tick_published_timestamp_seconds") * 1000 >= st.lastTickPublishedMs - 1);
});

test.run();
