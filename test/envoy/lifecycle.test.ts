// RlsServer lifecycle over real sockets: health states, graceful shutdown finishing in-flight
// calls, forced shutdown after the grace, the concurrency cap, and a failing limiter.
import { test } from "uvu";
import * as assert from "uvu/assert";
import * as grpc from "@grpc/grpc-js";
import { RlsServer, RlsCode } from "../../src/envoy/server.ts";
import { FixedWindowLimiter } from "../../src/envoy/fixed-window.ts";
import { createRlsClient, shouldRateLimit, type RlsRequest } from "../../src/envoy/client.ts";
import { RLS_SERVICE_NAME } from "../../src/envoy/proto.ts";
import { DEFAULT_CONFIG } from "../../src/config/index.ts";
import { mappingFromConfig } from "../../src/envoy/config.ts";
import { GatedLimiter, healthCheck, healthClient } from "./helpers.ts";

const mapping = mappingFromConfig(DEFAULT_CONFIG);
const limiter = () => new FixedWindowLimiter({ windowMs: 60_000, plans: { default: { requestsPerWindow: 100 } }, defaultPlan: "default" });
const req = (user: string): RlsRequest => ({ domain: "foresight", descriptors: [{ entries: [{ key: "user_id", value: user }] }] });

/** Settles a call into { ok, code } (the call's outcome is asserted after). */
function settle(p: Promise<unknown>): Promise<{ ok: boolean; code?: number; details?: string }> {
  return p.then(
    () => ({ ok: true }),
    (e: grpc.ServiceError) => ({ ok: false, code: e.code, details: e.details }),
  );
}

test("health: SERVING for the server and the RLS service, NOT_SERVING from the start of a shutdown (watch sees both)", async () => {
  const server = await RlsServer.start({ host: "127.0.0.1", domain: "foresight", limiter: limiter(), mapping, drainDelayMs: 1_000, shutdownGraceMs: 2_000 });
  const h = healthClient(`127.0.0.1:${server.port}`);
  const before = [await healthCheck(h, ""), await healthCheck(h, RLS_SERVICE_NAME)];
  const unknownService = await healthCheck(h, "no.such.Service").catch((e: grpc.ServiceError) => e.code);
  const seen: string[] = [];
  const watch = h.Watch({ service: RLS_SERVICE_NAME });
  const notServing = new Promise<void>((resolve) =>
    watch.on("data", (m: { status: string }) => {
      seen.push(m.status);
      if (m.status === "NOT_SERVING") resolve();
    }),
  );
  watch.on("error", () => {}); // cancelled below
  await new Promise<void>((resolve) => watch.once("data", () => resolve()));
  const stopping = server.shutdown();
  await notServing;
  watch.cancel();
  // During the drain delay health says NOT_SERVING while rate-limit calls are still answered.
  const during = await healthCheck(h, "");
  const c = createRlsClient(`127.0.0.1:${server.port}`);
  const served = await settle(shouldRateLimit(c, req("u1")));
  const result = await stopping;
  c.close();
  h.close();
  assert.equal(before, ["SERVING", "SERVING"]);
  assert.is(unknownService, grpc.status.NOT_FOUND);
  assert.equal(seen, ["SERVING", "NOT_SERVING"]);
  assert.is(during, "NOT_SERVING");
  assert.is(served.ok, true);
  assert.is(result.forced, false);
});

test("graceful shutdown: in-flight calls complete with their answers; new connections are refused", async () => {
  const gated = new GatedLimiter(limiter());
  const server = await RlsServer.start({ host: "127.0.0.1", domain: "foresight", limiter: gated, mapping, shutdownGraceMs: 10_000 });
  const c = createRlsClient(`127.0.0.1:${server.port}`);
  const calls = [settle(shouldRateLimit(c, req("a"))), settle(shouldRateLimit(c, req("b"))), settle(shouldRateLimit(c, req("a")))];
  await gated.arrived(3);
  let stopped = false;
  const stopping = server.shutdown().then((r) => ((stopped = true), r));
  // The listener is closed: a fresh client cannot start a call.
  const late = createRlsClient(`127.0.0.1:${server.port}`);
  const refused = await settle(shouldRateLimit(late, req("c"), { deadline: Date.now() + 2_000 }));
  const stoppedBeforeRelease = stopped;
  gated.release();
  const outcomes = await Promise.all(calls);
  const result = await stopping;
  c.close();
  late.close();
  assert.is(stoppedBeforeRelease, false);
  assert.equal(outcomes.map((o) => o.ok), [true, true, true]);
  assert.is(refused.ok, false);
  assert.ok(refused.code === grpc.status.UNAVAILABLE || refused.code === grpc.status.DEADLINE_EXCEEDED, `code ${refused.code}`);
  assert.is(result.forced, false);
});

test("forced shutdown: calls still held after the grace are cancelled and shutdown returns", async () => {
  const gated = new GatedLimiter(limiter());
  const server = await RlsServer.start({ host: "127.0.0.1", domain: "foresight", limiter: gated, mapping, shutdownGraceMs: 300 });
  const c = createRlsClient(`127.0.0.1:${server.port}`);
  const held = settle(shouldRateLimit(c, req("a")));
  await gated.arrived(1);
  const result = await server.shutdown();
  const outcome = await held;
  gated.release(); // late answers go nowhere
  c.close();
  assert.is(result.forced, true);
  assert.is(outcome.ok, false);
  assert.ok(outcome.code === grpc.status.CANCELLED || outcome.code === grpc.status.UNAVAILABLE, `code ${outcome.code}`);
});

test("concurrency cap: calls above maxConcurrentRequests get RESOURCE_EXHAUSTED at once; later calls are served", async () => {
  const gated = new GatedLimiter(limiter());
  const server = await RlsServer.start({ host: "127.0.0.1", domain: "foresight", limiter: gated, mapping, maxConcurrentRequests: 2 });
  const c = createRlsClient(`127.0.0.1:${server.port}`);
  const first = [settle(shouldRateLimit(c, req("a"))), settle(shouldRateLimit(c, req("b")))];
  await gated.arrived(2);
  const over = await settle(shouldRateLimit(c, req("c")));
  const inFlightAtCap = server.callsInFlight;
  gated.release();
  const firstOutcomes = await Promise.all(first);
  const after = settle(shouldRateLimit(c, req("d")));
  await gated.arrived(1);
  gated.release();
  const afterOutcome = await after;
  const exhausted = (await server.metrics.requests.get()).values.find((v) => v.labels.result === "resource_exhausted")?.value;
  c.close();
  await server.shutdown();
  assert.is(over.ok, false);
  assert.is(over.code, grpc.status.RESOURCE_EXHAUSTED);
  assert.match(over.details ?? "", /more than 2 ShouldRateLimit calls in flight/);
  assert.is(inFlightAtCap, 2);
  assert.equal(firstOutcomes.map((o) => o.ok), [true, true]);
  assert.is(afterOutcome.ok, true);
  assert.is(exhausted, 1);
});

test("a failing limiter: UNAVAILABLE with the cause (Envoy's failure_mode_deny decides), then served again", async () => {
  const gated = new GatedLimiter(limiter());
  const server = await RlsServer.start({ host: "127.0.0.1", domain: "foresight", limiter: gated, mapping });
  const c = createRlsClient(`127.0.0.1:${server.port}`);
  gated.failWith = new Error("store unreachable");
  const failed = settle(shouldRateLimit(c, req("a")));
  await gated.arrived(1);
  gated.release();
  const f = await failed;
  gated.failWith = undefined;
  const okCall = shouldRateLimit(c, req("a"));
  await gated.arrived(1);
  gated.release();
  const ok = await okCall;
  c.close();
  await server.shutdown();
  assert.is(f.code, grpc.status.UNAVAILABLE);
  assert.match(f.details ?? "", /limiter unavailable: store unreachable/);
  assert.is(ok.overall_code, RlsCode.OK);
  assert.is(server.callsInFlight, 0);
});


test.run();
