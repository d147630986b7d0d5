// Grants over a real nats-server: propagation, a restarted gateway loading state before it
// enforces, a bad grant message dead-lettered and counted with the last good state kept, NATS
// down -> safe limits within one TTL (logged once) and recovery without restart, and N gateways
// whose Doorman shares keep the sum within the grant.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { setTimeout as delay } from "node:timers/promises";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { jetstream } from "@nats-io/jetstream";
import { NatsServer } from "../../src/nats/server.ts";
import { ThrottleClient, type ThrottleLog } from "../../src/throttle/client.ts";
import { GrantService } from "../../src/throttle/service.ts";
import { partitionOf } from "../../src/telemetry/frame.ts";
import { userHash } from "../../src/telemetry/hash.ts";
import { PLANS, SAFE, forecastMessages, whenApplied } from "./_util.ts";

const P = 2;
const TTL = 2000;
const test = suite("throttle distribution");

interface Ctx {
  server: NatsServer;
  conns: NatsConnection[];
  service: GrantService;
  clients: ThrottleClient[];
}
const ctx = {} as Ctx;

async function conn(): Promise<NatsConnection> {
  const nc = await connect({ servers: ctx.server.url, reconnectTimeWait: 100, maxReconnectAttempts: -1 });
  ctx.conns.push(nc);
  return nc;
}

function recordingLog(lines: string[]): ThrottleLog {
  return {
    info: (_o, m) => lines.push("info " + m),
    warn: (_o, m) => lines.push("warn " + m),
    error: (_o, m) => lines.push("error " + m),
  };
}

async function gateway(id: string, log?: ThrottleLog, reportMs = 500): Promise<ThrottleClient> {
  const c = new ThrottleClient({ plans: PLANS, safeLimits: SAFE, partitions: P, maxUsers: 4096, gatewayId: id, log, demandReportIntervalMs: reportMs });
  ctx.clients.push(c);
  await c.start(await conn());
  return c;
}

/** Publishes one forecast tick for the users (each to its partition). */
async function tick(nc: NatsConnection, users: { user: string; upper: number; observed?: number }[], tickTimeMs = Date.now()) {
  for (let p = 0; p < P; p++) {
    const mine = users.filter((u) => partitionOf(userHash(u.user).lo, P) === p);
    for (const m of forecastMessages(p, tickTimeMs, mine)) nc.publish(`foresight.forecasts.${p}`, m);
  }
  await nc.flush();
}

/** Waits for the service to publish one tick of every partition. */
function serviceTicked(): Promise<void> {
  let n = 0;
  return new Promise((resolve) => {
    ctx.service.onTickPublished = () => {
      if (++n === P) {
        ctx.service.onTickPublished = undefined;
        resolve();
      }
    };
  });
}

test.before.each(async () => {
  ctx.server = await NatsServer.start();
  ctx.conns = [];
  ctx.clients = [];
  ctx.service = new GrantService({
    partitions: P, plans: PLANS, safeLimits: SAFE, grantTtlMs: TTL, grantRefreshMs: 500, snapshotEveryTicks: 2,
    poolStateIntervalMs: 200, pools: () => [{ capacityReqPerSec: 5 }],
    planOf: (lo) => (lo === userHash("shared-user").lo ? "pro" : "default"),
    // Grants equal to the forecasts here; the feedback has its own test below.
    feedback: { mode: "none" },
  });
  await ctx.service.start(await conn());
});

test.after.each(async () => {
  for (const c of ctx.clients) await c.close();
  await ctx.service.stop();
  for (const nc of ctx.conns) await nc.close().catch(() => {});
  await ctx.server.dispose();
});

test("a forecast tick becomes a grant in the gateway; a restarted gateway loads the state before enforcing", async () => {
  const nc = await conn();
  const gw = await gateway("gw-a");
  const users = Array.from({ length: 20 }, (_, i) => ({ user: `u${i}`, upper: 1 + i }));
  let done = serviceTicked();
  await tick(nc, users);
  await done;
  await whenApplied(gw, () => gw.grantOf("u19")?.upperReqPerSec === 20 && gw.grantOf("u0") !== undefined);
  // Second tick (a snapshot tick): u3 moves, u4 disappears.
  const second = users.filter((u) => u.user !== "u4").map((u) => (u.user === "u3" ? { ...u, upper: 30 } : u));
  done = serviceTicked();
  await tick(nc, second);
  await done;
  // Third tick (delta after the snapshot): u5 moves.
  const third = second.map((u) => (u.user === "u5" ? { ...u, upper: 40 } : u));
  done = serviceTicked();
  await tick(nc, third);
  await done;
  await whenApplied(gw, () => gw.grantOf("u5")?.upperReqPerSec === 40);
  await ctx.service.publishPoolsNow();
  // A new gateway: start() resolves only once the stream's state is applied.
  const fresh = new ThrottleClient({ plans: PLANS, safeLimits: SAFE, partitions: P, maxUsers: 4096, gatewayId: "gw-fresh" });
  ctx.clients.push(fresh);
  const before = fresh.check("u3", { requests: 1, tokens: 0 });
  assert.is(before.reason, "safe-limit", "before start: safe limits, not deny-all");
  assert.is(before.allowed, true);
  await fresh.start(await conn());
  assert.ok(fresh.isLoaded);
  assert.is(fresh.grantOf("u3")?.upperReqPerSec, 30);
  assert.is(fresh.grantOf("u5")?.upperReqPerSec, 40);
  assert.is(fresh.grantOf("u4"), undefined, "removed in a delta: no grant");
  for (const u of third) assert.is(fresh.grantOf(u.user)?.upperReqPerSec, gw.grantOf(u.user)?.upperReqPerSec, u.user);
  assert.ok(fresh.check("u7", { requests: 1, tokens: 0 }).reason !== "safe-limit");
  assert.ok(!Number.isNaN(fresh.pressureOf(0)), "pool state loaded " + JSON.stringify([fresh.stats(), ctx.service.poolStates(), ctx.service.stats()]));
});

test("a grant message that does not decode is dead-lettered and counted; last good state kept (live and at load)", async () => {
  const nc = await conn();
  const lines: string[] = [];
  const gw = await gateway("gw-b", recordingLog(lines));
  // The dead-letter subject is read in order; each wait resolves on the message itself (the
  // gateway publishes it on its own connection, so a flush of ours does not order it).
  const sub = nc.subscribe("foresight.deadletter.grants");
  const it = sub[Symbol.asyncIterator]();
  const nextDeadReason = async (): Promise<string | undefined> => {
    let t: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_r, reject) => { t = setTimeout(() => reject(new Error("no dead-lettered grant message within 5 s")), 5000); });
    try {
      const r = await Promise.race([it.next(), timeout]);
      return r.done ? undefined : r.value.headers?.get("Foresight-Reason");
    } finally {
      clearTimeout(t);
    }
  };
  await nc.flush();
  const done = serviceTicked();
  await tick(nc, [{ user: "v1", upper: 3 }, { user: "v2", upper: 4 }]);
  await done;
  await whenApplied(gw, () => gw.grantOf("v2")?.upperReqPerSec === 4);
  const good = gw.grantOf("v1");
  const js = jetstream(nc);
  await js.publish("foresight.grants.0.d.garbage", new TextEncoder().encode("not a grant message at all, sorry; long enough to pass the header length check"));
  assert.is(await nextDeadReason(), "bad_magic");
  assert.is(gw.stats().badMessages, 1);
  assert.is(gw.stats().badMessagesByReason.bad_magic, 1);
  assert.equal(gw.grantOf("v1"), good);
  assert.is(lines.filter((l) => l.includes("dead-lettered")).length, 1);
  // A gateway starting now meets the bad message in the stream: dead-letters it, still loads.
  const fresh = await gateway("gw-b2");
  assert.is(fresh.stats().badMessages, 1);
  assert.equal(fresh.grantOf("v1")?.upperReqPerSec, 3);
  assert.is(await nextDeadReason(), "bad_magic");
  // The first gateway saw the message once only (it is not redelivered to it).
  assert.is(gw.stats().badMessages, 1);
  sub.unsubscribe();
});

test("NATS down: safe limits within one grant TTL, logged once; recovery without restart", async () => {
  const nc = await conn();
  const lines: string[] = [];
  const gw = await gateway("gw-c", recordingLog(lines));
  const done = serviceTicked();
  await tick(nc, [{ user: "w1", upper: 3 }]);
  await done;
  await whenApplied(gw, () => gw.grantOf("w1") !== undefined);
  assert.ok(gw.check("w1", { requests: 1, tokens: 0 }).reason !== "safe-limit");
  const stoppedAt = Date.now();
  await ctx.server.stop();
  // Poll the decision (the lapse is a deadline, not an event): it must switch within TTL (+ housekeeping).
  let switchedAt = 0;
  while (Date.now() - stoppedAt < TTL + 2000) {
    const d = gw.check("w1", { requests: 1, tokens: 0 });
    if (d.reason === "safe-limit") {
      switchedAt = Date.now();
      break;
    }
    await delay(20);
  }
  assert.ok(switchedAt > 0, "switched to safe limits");
  // Lease = tick time + TTL and the last renewal came before the stop, so the switch is due within
  // TTL of the stop; 500 ms of slack for this poll loop on a busy machine.
  assert.ok(switchedAt - stoppedAt <= TTL + 500, `switched after ${switchedAt - stoppedAt} ms`);
  // Safe limit is bounded and not zero: default plan 1 req/s, burst 1.5 -> a few allowed, most denied.
  let allowed = 0;
  for (let i = 0; i < 50; i++) if (gw.check("w1", { requests: 1, tokens: 0 }).allowed) allowed++;
  assert.ok(allowed >= 0 && allowed <= 3, `allowed ${allowed} of 50 at the safe limit`);
  await delay(600); // housekeeping runs several times while down: still one log line
  assert.is(lines.filter((l) => l.includes("lapsed")).length, 1, lines.join("\n"));
  assert.is(gw.stats().leaseLapses, 1);
  // Back: the server restarts on the same port, processors tick again, the gateway recovers.
  await ctx.server.restart();
  const recovered = whenApplied(gw, () => gw.check("w1", { requests: 0, tokens: 0 }).reason !== "safe-limit", 15_000);
  for (let i = 0; i < 30; i++) {
    const t = serviceTicked();
    await tick(nc, [{ user: "w1", upper: 3 }]).catch(() => {});
    const ok = await Promise.race([t.then(() => true), delay(500).then(() => false)]);
    if (ok) break;
  }
  await recovered;
  await delay(300); // one housekeeping pass logs the renewal
  assert.is(lines.filter((l) => l.includes("renewed")).length, 1);
  assert.is(lines.filter((l) => l.includes("lapsed")).length, 1);
});

test("two gateways: Doorman shares keep the sum within the grant; exceedances published", async () => {
  const nc = await conn();
  const a = await gateway("gw-1", undefined, 100);
  const b = await gateway("gw-2", undefined, 100);
  const ex: { user: string; forecastPerSec: number; actualPerSec: number; timeMs: number }[] = [];
  const sub = nc.subscribe("foresight.exceedances.*", { callback: (_e, m) => void ex.push(JSON.parse(new TextDecoder().decode(m.data))) });
  // shared-user: pro plan (40/s), forecast 10/s, pool capacity 5/s -> G = 10.
  const done = serviceTicked();
  await tick(nc, [{ user: "shared-user", upper: 10, observed: 10 }]);
  await done;
  await whenApplied(a, () => a.grantOf("shared-user")?.grantReqPerSec === 10);
  await whenApplied(b, () => b.grantOf("shared-user")?.grantReqPerSec === 10);
  // Each gateway sees 15 req/s (30 total): the pool becomes short (load 30 over allocation 5).
  const counts = { a: 0, b: 0, sent: 0 };
  let measuring = false;
  const start = Date.now();
  const warmMs = 1500, measureMs = 3000;
  let measureStart = 0;
  while (Date.now() - start < warmMs + measureMs) {
    if (!measuring && Date.now() - start >= warmMs) {
      measuring = true;
      measureStart = Date.now();
    }
    const da = a.check("shared-user", { requests: 1, tokens: 0 });
    const db = b.check("shared-user", { requests: 1, tokens: 0 });
    if (measuring) {
      counts.sent += 2;
      if (da.allowed) counts.a++;
      if (db.allowed) counts.b++;
    }
    await delay(1000 / 15);
  }
  const secs = (Date.now() - measureStart) / 1000;
  const total = counts.a + counts.b;
  assert.ok(a.pressureOf(0) >= 1, `pool short (pressure ${a.pressureOf(0)})`);
  // Sum within the grant: 10/s over the window plus the two buckets' burst (10 × 1.5 total).
  assert.ok(total <= 10 * secs + 15 + 2, `sum allowed ${total} over ${secs.toFixed(2)} s (grant 10/s)`);
  assert.ok(total >= 10 * secs * 0.6, `sum allowed ${total}: the grant is used, not starved`);
  const sa = a.grantOf("shared-user")!.share, sb = b.grantOf("shared-user")!.share;
  assert.ok(Math.abs(sa + sb - 1) < 0.2, `shares ${sa.toFixed(2)} + ${sb.toFixed(2)}`);
  await delay(400);
  sub.unsubscribe();
  const mine = ex.filter((e) => e.user === "shared-user");
  assert.ok(mine.length > 0, "exceedance events published");
  assert.ok(mine.every((e) => e.actualPerSec > e.forecastPerSec && e.forecastPerSec === 10 && e.timeMs > 0));
});

test("exceedance feedback: a user above the bound its grant was made from gets the miss added, decaying", async () => {
  await ctx.service.stop();
  ctx.service = new GrantService({
    partitions: P, plans: PLANS, safeLimits: SAFE, grantTtlMs: TTL, grantRefreshMs: 500, snapshotEveryTicks: 2,
    poolStateIntervalMs: 200, pools: () => [{ capacityReqPerSec: 5 }], feedback: { mode: "bias", decay: 0.5, holdTicks: 3 },
  });
  await ctx.service.start(await conn());
  const nc = await conn();
  const gw = await gateway("gw-fb");
  const step = async (users: { user: string; upper: number; observed: number }[]) => {
    const done = serviceTicked();
    await tick(nc, users);
    await done;
  };
  await step([{ user: "steady", upper: 10, observed: 5 }, { user: "stepper", upper: 10, observed: 5 }]);
  // stepper's demand jumps to 40 against the bound of 10: its next grant bound is 12 + 30.
  await step([{ user: "steady", upper: 10, observed: 6 }, { user: "stepper", upper: 12, observed: 40 }]);
  await whenApplied(gw, () => gw.grantOf("stepper")?.upperReqPerSec === 42);
  assert.is(gw.grantOf("steady")?.upperReqPerSec, 10, "a user within its bound is untouched");
  // Quiet tick: the correction halves (decay 0.5).
  await step([{ user: "steady", upper: 10, observed: 6 }, { user: "stepper", upper: 30, observed: 35 }]);
  await whenApplied(gw, () => gw.grantOf("stepper")?.upperReqPerSec === 45);
});

test.run();
