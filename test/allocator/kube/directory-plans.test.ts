// Users' plans and segments from the user directory, against a real nats-server: pools matched by
// `plans` and `segments` get exactly the users whose directory entries say so (per user, in the
// precedence users → plans → segments → default), the demand partials sum them so, and the grant
// service the allocator's leader hosts gives each user's grant its directory plan (plans missing
// from throttle.plans fall back to "default"), which a gateway's ThrottleClient applies; the
// allocator's /metrics shows the directory it follows.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { KubeConfig } from "@kubernetes/client-node";
import { NatsServer } from "../../../src/nats/server.ts";
import { KubeSim } from "../../../src/kube-sim/index.ts";
import { AllocatorService, type AllocatorPoolConfig } from "../../../src/allocator/kube/service.ts";
import { DemandPartialBuilder, UserPoolResolver } from "../../../src/allocator/kube/partials.ts";
import { NO_POOL } from "../../../src/allocator/demand.ts";
import { POOL_POLICY_DEFAULTS } from "../../../src/allocator/policy.ts";
import { ThrottleClient } from "../../../src/throttle/client.ts";
import { decodeForecastMessage } from "../../../src/processor/forecasts.ts";
import { UserDirectory } from "../../../src/telemetry/directory.ts";
import { DirectoryIndex } from "../../../src/telemetry/directory-index.ts";
import { partitionOf } from "../../../src/telemetry/frame.ts";
import { userHash, userHashHex } from "../../../src/telemetry/hash.ts";
import { forecastMessages, whenApplied } from "../../throttle/_util.ts";
import { NS, deployment, memoryLogger } from "./support.ts";

const PREFIX = "dp";
const P = 2;
const BUCKET = "dp-users";
const PLANS = { default: { requestsPerSec: 20 }, enterprise: { requestsPerSec: 50 }, pro: { requestsPerSec: 30 } };
const SAFE = { default: { requestsPerSec: 0.5 } };

type Match = Partial<AllocatorPoolConfig["match"]>;
function pool(name: string, match: Match): AllocatorPoolConfig {
  return {
    ...POOL_POLICY_DEFAULTS,
    name, mode: "shadow",
    costModel: { requestsPerSecPerReplica: 10, cpuPerReplicaMillicores: 500, memoryPerReplicaMiB: 512 },
    minReplicas: 1, maxReplicas: 20, stabilizationWindowSec: 0, tolerance: 0, decisionIntervalMs: 3_600_000,
    workload: { kind: "Deployment", namespace: NS, name },
    match: { routes: [], models: [], plans: [], segments: [], users: [], default: false, ...match },
  };
}

/** chat takes whoever no rule claims; ent the enterprise plan; edu the edu segment; vip one user. */
const POOLS = [
  pool("chat", { default: true }),
  pool("ent", { plans: ["enterprise"] }),
  pool("edu", { segments: ["edu"] }),
  pool("vip", { users: ["vip-ent"] }),
];
const [CHAT, ENT, EDU, VIP] = [0, 1, 2, 3];

/** Directory entries written before anything starts; the expected pool of each user. */
const USERS: { user: string; plan?: string; segment?: string; pool: number; grantPlan: string }[] = [
  { user: "ent-1", plan: "enterprise", pool: ENT, grantPlan: "enterprise" },
  { user: "ent-2", plan: "enterprise", segment: "edu", pool: ENT, grantPlan: "enterprise" }, // plans before segments
  { user: "vip-ent", plan: "enterprise", pool: VIP, grantPlan: "enterprise" }, // explicit users first
  { user: "edu-1", plan: "pro", segment: "edu", pool: EDU, grantPlan: "pro" },
  { user: "edu-2", segment: "edu", pool: EDU, grantPlan: "default" },
  { user: "pro-1", plan: "pro", segment: "smb", pool: CHAT, grantPlan: "pro" },
  { user: "odd-1", plan: "platinum", pool: CHAT, grantPlan: "default" }, // not in throttle.plans
  { user: "anon", pool: CHAT, grantPlan: "default" }, // no entry at all
];

let nats: NatsServer;
let sim: KubeSim;
let nc: NatsConnection;
let dir: UserDirectory;
const stops: (() => Promise<unknown>)[] = [];

test.before(async () => {
  nats = await NatsServer.start();
  sim = new KubeSim();
  await sim.start();
  for (const p of POOLS) sim.create(deployment(p.name, { replicas: 1 }));
  nc = await connect({ servers: nats.url });
  dir = await UserDirectory.open(nc, { bucket: BUCKET });
  for (const u of USERS) {
    if (u.plan === undefined && u.segment === undefined) continue;
    await dir.register(userHashHex(userHash(u.user)), { user: u.user, plan: u.plan, segment: u.segment, firstSeenMs: 1 });
  }
});
test.after(async () => {
  for (const s of stops.splice(0).reverse()) await s().catch(() => undefined);
  await nc?.close().catch(() => undefined);
  await sim?.stop();
  await nats?.dispose();
});

test("pools matched by plans and segments get the users whose directory entries say so (users → plans → segments → default)", async () => {
  const index = await DirectoryIndex.open(nc, { bucket: BUCKET });
  stops.push(() => index.stop());
  await index.initialized();
  const resolver = new UserPoolResolver(POOLS, index);
  for (const u of USERS) {
    const h = userHash(u.user);
    assert.is(resolver.resolve(h.lo, h.hi), u.pool, `${u.user} (plan ${u.plan}, segment ${u.segment}) → ${POOLS[u.pool].name}`);
  }
  // Without a directory, only explicit users and the default pool match.
  const plain = new UserPoolResolver(POOLS);
  for (const u of USERS) {
    const h = userHash(u.user);
    assert.is(plain.resolve(h.lo, h.hi), u.user === "vip-ent" ? VIP : CHAT, `${u.user} without a directory`);
  }
  // No default pool: a user no rule claims has none.
  const h = userHash("anon");
  assert.is(new UserPoolResolver(POOLS.slice(1), index).resolve(h.lo, h.hi), NO_POOL);

  // The demand partials sum each pool over exactly those users: each user's upper bound is a power
  // of two, so every pool's sum names its members.
  const builder = new DemandPartialBuilder(POOLS, 1.645, index);
  const [msg] = forecastMessages(0, Date.now(), USERS.map((u, i) => ({ user: u.user, upper: 2 ** i })));
  const { records } = decodeForecastMessage(msg);
  const partial = builder.build(0, Date.now(), records, USERS.length);
  POOLS.forEach((p, q) => {
    const want = USERS.reduce((s, u, i) => s + (u.pool === q ? 2 ** i : 0), 0);
    assert.is(partial.upperSumPerSec[q], want, `pool ${p.name}: members ${USERS.filter((u) => u.pool === q).map((u) => u.user)}`);
  });
});

test("the allocator's grants carry each user's directory plan and plan pool; a later directory entry follows", async () => {
  const kc = new KubeConfig();
  kc.loadFromOptions(sim.kubeConfigOptions());
  const a = await AllocatorService.start({
    nats: { servers: [nats.url], maxReconnectAttempts: 0 }, prefix: PREFIX, partitions: P, pools: POOLS,
    cluster: { maxCpuMillicores: 64_000, maxMemoryMiB: 262_144, maxReplicasTotal: 100 }, kubeConfig: kc, processId: "dp-a",
    leaseTtlMs: 1500, httpPort: 0, log: memoryLogger().log, actuator: { events: false },
    grants: {
      subjectPrefix: PREFIX, partitions: P, plans: PLANS, safeLimits: SAFE, grantTtlMs: 6000, grantRefreshMs: 500,
      poolStateIntervalMs: 200, snapshotEveryTicks: 2, usersPerPartition: 1024, feedback: { mode: "none" },
    },
    directory: { bucket: BUCKET },
  });
  stops.push(() => a.stop());
  const gnc = await connect({ servers: nats.url });
  stops.push(() => gnc.close());
  const gw = new ThrottleClient({ plans: PLANS, safeLimits: SAFE, subjectPrefix: PREFIX, partitions: P, maxUsers: 4096, gatewayId: "dp-gw" });
  stops.push(() => gw.close());
  await gw.start(gnc);
  const users = [...USERS.map((u) => ({ user: u.user, upper: 1 })), { user: "late", upper: 1 }];
  const tick = async () => {
    const now = Date.now();
    for (let p = 0; p < P; p++) {
      const mine = users.filter((u) => partitionOf(userHash(u.user).lo, P) === p);
      for (const m of forecastMessages(p, now, mine)) nc.publish(`${PREFIX}.forecasts.${p}`, m);
    }
    await nc.flush();
  };
  // Forecast ticks keep coming, as from the processors, until the gateway sees every plan.
  const ticking = setInterval(() => void tick().catch(() => undefined), 200);
  stops.push(async () => clearInterval(ticking));
  const settled = () => USERS.every((u) => gw.grantOf(u.user)?.plan === u.grantPlan && gw.grantOf(u.user)?.pool === u.pool);
  await whenApplied(gw, settled, 20_000, "every user's grant with its directory plan and pool");
  for (const u of USERS) {
    const g = gw.grantOf(u.user)!;
    assert.is(g.plan, u.grantPlan, `${u.user}: plan`);
    assert.is(g.pool, u.pool, `${u.user}: pool ${POOLS[u.pool].name}`);
    assert.is(g.planReqPerSec, PLANS[u.grantPlan as keyof typeof PLANS].requestsPerSec, `${u.user}: plan limit`);
  }
  // "late" has no entry yet: default plan, default pool; its entry, written now, moves both.
  assert.is(gw.grantOf("late")?.plan, "default");
  assert.is(gw.grantOf("late")?.pool, CHAT);
  await dir.register(userHashHex(userHash("late")), { user: "late", plan: "enterprise", firstSeenMs: 2 });
  await whenApplied(gw, () => gw.grantOf("late")?.plan === "enterprise", 20_000, "late's grant with its new plan");
  assert.is(gw.grantOf("late")!.pool, ENT);
  assert.is(gw.grantOf("late")!.planReqPerSec, 50);
  // A decision at the gateway uses the plan's limit: 50 req/s allowed where default has 20.
  assert.is(gw.grantOf("ent-1")!.planReqPerSec, 50);
  assert.is(gw.grantOf("anon")!.planReqPerSec, 20);
  // The allocator's /metrics shows the directory it follows: every user with a plan or segment.
  const text = await (await fetch(`http://127.0.0.1:${a.httpPort}/metrics`)).text();
  const held = USERS.filter((u) => u.plan !== undefined || u.segment !== undefined).length + 1;
  assert.match(text, new RegExp(`^foresight_directory_users ${held}$`, "m"));
  assert.match(text, /^foresight_directory_initialized 1$/m);
  assert.not.match(text, /^foresight_directory_bad_entries_total\{/m, "no bad entries");
});

test.run();
