// The Redis fixed-window peer against a real redis-server: same decisions as the in-memory
// fixed window on the same input, keys expire with their window, and a Redis outage answers
// UNAVAILABLE while the server keeps serving once Redis is back.
import { test } from "uvu";
import * as assert from "uvu/assert";
import * as grpc from "@grpc/grpc-js";
import { createClient } from "redis";
import { RedisServer } from "../../src/envoy/redis-server.ts";
import { RedisFixedWindowLimiter } from "../../src/envoy/redis-limiter.ts";
import { FixedWindowLimiter, type FixedWindowPlanLimit } from "../../src/envoy/fixed-window.ts";
import { RlsServer, RlsCode } from "../../src/envoy/server.ts";
import { createRlsClient, shouldRateLimit } from "../../src/envoy/client.ts";
import { DEFAULT_CONFIG } from "../../src/config/index.ts";
import { mappingFromConfig } from "../../src/envoy/config.ts";
import { mulberry32 } from "../../src/util/random.ts";

let redis: RedisServer;
const plans: Record<string, FixedWindowPlanLimit> = { default: { requestsPerWindow: 20 }, pro: { requestsPerWindow: 50, tokensPerWindow: 5_000 } };

test.before(async () => {
  redis = await RedisServer.start();
});
test.after(async () => {
  await redis?.stop();
});

test("same decisions as the in-memory fixed window on 3000 random checks over 3 windows (one-minute windows: key TTLs run on real time)", async () => {
  let now = 1_800_000_000_000;
  const clock = () => now;
  const mem = new FixedWindowLimiter({ windowMs: 60_000, plans, defaultPlan: "default", now: clock });
  const red = await RedisFixedWindowLimiter.connect({ url: redis.url, windowMs: 60_000, plans, defaultPlan: "default", now: clock, keyPrefix: "eq_" });
  const rand = mulberry32(7);
  const a: string[] = [];
  const b: string[] = [];
  for (let i = 0; i < 3000; i++) {
    if (i % 1000 === 0 && i > 0) now += 60_000;
    const user = `u${Math.floor(rand() * 40)}`;
    const plan = rand() < 0.3 ? "pro" : "default";
    const use = { requests: 1 + Math.floor(rand() * 2), tokens: Math.floor(rand() * 400) };
    const m = mem.check(user, use, plan);
    const [r] = await red.checkBatch([{ user, plan, use }]);
    a.push(`${m.allowed}/${m.limit}/${m.remaining}/${m.resetMs}`);
    b.push(`${r.allowed}/${r.limit}/${r.remaining}/${r.resetMs}`);
  }
  await red.close();
  assert.equal(b, a);
  assert.ok(a.some((s) => s.startsWith("false")) && a.some((s) => s.startsWith("true")), "the sample has both outcomes");
});

test("INCRBY + EXPIRE: a key per user per window that expires", async () => {
  const red = await RedisFixedWindowLimiter.connect({ url: redis.url, windowMs: 2000, plans, defaultPlan: "default", keyPrefix: "ttl_", now: () => 1_800_000_001_000 });
  await red.checkBatch([{ user: "x", plan: "default", use: { requests: 3, tokens: 0 } }, { user: "y", plan: "default", use: { requests: 1, tokens: 0 } }]);
  await red.close();
  const c = createClient({ url: redis.url });
  await c.connect();
  const keys = (await c.keys("ttl_*")).sort();
  const value = await c.get("ttl_x_1800000000000");
  const ttl = await c.ttl("ttl_x_1800000000000");
  await c.close();
  assert.equal(keys, ["ttl_x_1800000000000", "ttl_y_1800000000000"]);
  assert.is(value, "3");
  assert.ok(ttl > 0 && ttl <= 2, `ttl ${ttl}`);
});

test("over gRPC; Redis stalled: the call runs into Envoy's deadline; Redis gone: UNAVAILABLE at once; Redis back: served again", async () => {
  const red = await RedisFixedWindowLimiter.connect({ url: redis.url, windowMs: 60_000, plans, defaultPlan: "default", keyPrefix: "grpc_" });
  const server = await RlsServer.start({ host: "127.0.0.1", domain: "foresight", limiter: red, mapping: mappingFromConfig(DEFAULT_CONFIG) });
  const client = createRlsClient(`127.0.0.1:${server.port}`);
  const req = { domain: "foresight", descriptors: [{ entries: [{ key: "user_id", value: "zed" }] }] };
  const outcome = (p: Promise<unknown>) => p.then(() => "ok", (e: grpc.ServiceError) => e.code);
  const first = await shouldRateLimit(client, req);
  process.kill(redis.pid!, "SIGSTOP");
  const stalled = await outcome(shouldRateLimit(client, req, { deadline: Date.now() + 300 }));
  process.kill(redis.pid!, "SIGCONT");
  const port = redis.port;
  await redis.stop();
  const started = Date.now();
  let goneErr: grpc.ServiceError | undefined;
  await shouldRateLimit(client, req, { deadline: Date.now() + 5_000 }).catch((e: grpc.ServiceError) => (goneErr = e));
  const goneMs = Date.now() - started;
  redis = await RedisServer.start({ port });
  await red.whenReady();
  const again = await shouldRateLimit(client, req);
  client.close();
  await server.shutdown();
  await red.close();
  assert.is(first.overall_code, RlsCode.OK);
  assert.is(first.statuses[0].limit_remaining, 19);
  assert.is(stalled, grpc.status.DEADLINE_EXCEEDED);
  assert.is(goneErr?.code, grpc.status.UNAVAILABLE);
  assert.match(goneErr?.details ?? "", /^limiter unavailable: pipeline failed/);
  assert.ok(goneMs < 1_000, `answered in ${goneMs} ms`);
  // The new server starts empty: zed's window restarts.
  assert.is(again.overall_code, RlsCode.OK);
  assert.is(again.statuses[0].limit_remaining, 19);
});

test.run();
