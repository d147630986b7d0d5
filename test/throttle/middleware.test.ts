// The HTTP middleware over real sockets: rate-limit headers (IETF draft and X-RateLimit-*) on
// allowed and refused responses, 429 + Retry-After, user key from header or API key, the Express
// and Fastify call shapes, and the `throttled` flag in the telemetry stored in JetStream.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import { NatsServer } from "../../src/nats/server.ts";
import { ensureTelemetryStream, DEFAULT_TELEMETRY_STREAM } from "../../src/telemetry/stream.ts";
import { TelemetryPublisher } from "../../src/telemetry/publisher.ts";
import { decodeFrame } from "../../src/telemetry/frame.ts";
import { readRecord } from "../../src/telemetry/event.ts";
import { userHash } from "../../src/telemetry/hash.ts";
import { EventFlag } from "../../src/engine/layout.ts";
import { ThrottleClient } from "../../src/throttle/client.ts";
import { throttleMiddleware, withThrottle, type ThrottleMiddlewareOptions } from "../../src/throttle/middleware.ts";
import { PLANS, SAFE, grantMessage, poolsMessage } from "./_util.ts";

const test = suite("throttle middleware");
const ctx = {} as { nats: NatsServer; nc: NatsConnection; servers: Server[] };

function limiter(): ThrottleClient {
  const c = new ThrottleClient({ plans: PLANS, safeLimits: SAFE, partitions: 1, maxUsers: 4096 });
  const now = Date.now();
  c.apply(grantMessage(0, 1, now, 600_000, [{ user: "h1", upper: 2 }]));
  c.apply(poolsMessage([0.3], now, 600_000));
  return c;
}

async function serve(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<string> {
  const s = createServer(handler);
  ctx.servers.push(s);
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", () => r()));
  return `http://127.0.0.1:${(s.address() as AddressInfo).port}`;
}

const ok = (_req: IncomingMessage, res: ServerResponse) => {
  res.statusCode = 200;
  res.end("ok");
};

test.before(async () => {
  ctx.nats = await NatsServer.start();
  ctx.nc = await connect({ servers: ctx.nats.url });
  ctx.servers = [];
});

test.after(async () => {
  for (const s of ctx.servers) await new Promise((r) => s.close(r));
  await ctx.nc.close();
  await ctx.nats.dispose();
});

test("IETF headers on allow and deny, 429 with Retry-After, throttled flag in telemetry", async () => {
  await ensureTelemetryStream(ctx.nc, { partitions: 1 } as never);
  const pub = new TelemetryPublisher(ctx.nc, { partitions: 1, publisherId: "mw" });
  const url = await serve(withThrottle(ok, { limiter: limiter(), publisher: pub, usageOf: () => ({ inputTokens: 5, outputTokens: 7 }) }));
  // Plan default: 10 req/s, burst 1.5 -> a bucket of 15; 30 requests at once.
  const t0 = Date.now();
  const results = await Promise.all(
    Array.from({ length: 30 }, async () => {
      const r = await fetch(url + "/v1/chat", { headers: { "x-user-id": "h1" } });
      await r.text();
      return { status: r.status, policy: r.headers.get("ratelimit-policy"), rl: r.headers.get("ratelimit"), retry: r.headers.get("retry-after") };
    }),
  );
  const elapsedSec = (Date.now() - t0) / 1000;
  const allowed = results.filter((r) => r.status === 200);
  const refused = results.filter((r) => r.status === 429);
  assert.ok(allowed.length >= 15 && allowed.length <= 15 + Math.ceil(10 * elapsedSec), `allowed ${allowed.length} in ${elapsedSec} s`);
  assert.ok(refused.length > 0);
  assert.is(allowed.length + refused.length, 30);
  for (const r of allowed) {
    assert.is(r.policy, '"foresight";q=15;w=2');
    assert.match(r.rl!, /^"foresight";r=\d+;t=[0-2]$/);
    assert.is(r.retry, null);
  }
  assert.ok(allowed.some((r) => r.rl!.startsWith('"foresight";r=14;')), "the first allowed request leaves 14");
  for (const r of refused) {
    assert.is(r.policy, '"foresight";q=15;w=2');
    assert.match(r.rl!, /^"foresight";r=0;t=[12]$/);
    assert.is(r.retry, "1");
  }
  await pub.flush(10_000);
  const jsm = await jetstreamManager(ctx.nc);
  const info = await jsm.streams.info(DEFAULT_TELEMETRY_STREAM);
  let throttled = 0, total = 0, tokens = 0;
  const h = userHash("h1");
  for (let seq = info.state.first_seq; seq <= info.state.last_seq; seq++) {
    const m = await jsm.streams.getMessage(DEFAULT_TELEMETRY_STREAM, { seq });
    const f = decodeFrame(m!.data);
    for (let i = 0; i < f.count; i++) {
      const rec = readRecord(f.records, i);
      if (rec.userHashLo !== h.lo || rec.userHashHi !== h.hi) continue;
      total++;
      tokens += rec.inputTokens + rec.outputTokens;
      if (rec.flags & EventFlag.throttled) {
        throttled++;
        assert.is(rec.status, 429);
      }
    }
  }
  assert.is(total, 30);
  assert.is(throttled, refused.length);
  assert.is(tokens, 30 * 12);
  await pub.close();
});

test("X-RateLimit-* style; API key (Bearer) as the user key; plan header", async () => {
  const c = limiter();
  const url = await serve(withThrottle(ok, { limiter: c, headerStyle: "x-ratelimit", apiKeyHeader: "authorization" }));
  const r = await fetch(url, { headers: { authorization: "Bearer k-123", "x-plan": "pro" } });
  assert.is(r.status, 200);
  // pro plan: 40/s × 1.5 = 60.
  assert.is(r.headers.get("x-ratelimit-limit"), "60");
  assert.is(r.headers.get("x-ratelimit-remaining"), "59");
  assert.ok(r.headers.get("ratelimit") === null);
  assert.ok(c.stats().users >= 2, "key:k-123 got its own slot");
  const none = await serve(withThrottle(ok, { limiter: c, headerStyle: "none" }));
  const r2 = await fetch(none, { headers: { "x-user-id": "someone" } });
  assert.is(r2.status, 200);
  assert.is(r2.headers.get("x-ratelimit-limit"), null);
  assert.is(r2.headers.get("ratelimit-policy"), null);
});

test("Express-style (req, res, next) chain and Fastify-style raw request/reply", async () => {
  const opts: ThrottleMiddlewareOptions = { limiter: limiter() };
  const mw = throttleMiddleware(opts);
  let nextCalls = 0;
  const url = await serve((req, res) => mw(req, res, () => { nextCalls++; ok(req, res); }));
  const r = await fetch(url, { headers: { "x-user-id": "express-user" } });
  assert.is(r.status, 200);
  assert.is(nextCalls, 1);
  let hijacked = 0, done = 0;
  const furl = await serve((req, res) => {
    // Fastify passes wrappers with .raw; the hook answers 429 itself after hijacking the reply.
    mw({ raw: req } as never, { raw: res, hijack: () => hijacked++ } as never, () => { done++; ok(req, res); });
  });
  const statuses = await Promise.all(Array.from({ length: 30 }, async () => {
    const r = await fetch(furl, { headers: { "x-user-id": "fastify-user" } });
    await r.text();
    return r.status;
  }));
  assert.is(done, statuses.filter((s) => s === 200).length);
  assert.is(hijacked, statuses.filter((s) => s === 429).length);
  assert.ok(hijacked > 0);
});

test.run();
