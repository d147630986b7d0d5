// RlsServer over real sockets: a grpc-js client built from the same .proto files sends
// ShouldRateLimit; statuses, headers, hits_addend, mapping, INVALID_ARGUMENT naming the field.
import { test } from "uvu";
import * as assert from "uvu/assert";
import * as grpc from "@grpc/grpc-js";
import { RlsServer, RlsCode, RlsUnit } from "../../src/envoy/server.ts";
import { FixedWindowLimiter } from "../../src/envoy/fixed-window.ts";
import { createRlsClient, shouldRateLimit, type RlsClient, type RlsRequest, type RlsResponse } from "../../src/envoy/client.ts";
import type { DescriptorMappingOptions } from "../../src/envoy/mapping.ts";
import { DEFAULT_CONFIG } from "../../src/config/index.ts";
import { mappingFromConfig } from "../../src/envoy/config.ts";

// A frozen clock 250 ms into a one-minute window: resets and units are exact.
const WINDOW_MS = 60_000;
const NOW = 1_700_000_040_000 + 250;
const mapping: DescriptorMappingOptions = {
  ...mappingFromConfig(DEFAULT_CONFIG),
  poolHitsAddend: { chat: "tokens" },
};

let server: RlsServer;
let client: RlsClient;

function newLimiter() {
  return new FixedWindowLimiter({
    windowMs: WINDOW_MS,
    plans: { default: { requestsPerWindow: 3 }, pro: { requestsPerWindow: 100, tokensPerWindow: 1000 } },
    defaultPlan: "default",
    now: () => NOW,
  });
}

test.before(async () => {
  server = await RlsServer.start({ host: "127.0.0.1", port: 0, domain: "foresight", limiter: newLimiter(), mapping });
  client = createRlsClient(`127.0.0.1:${server.port}`);
});

test.after(async () => {
  client?.close();
  await server?.shutdown();
});

// Note: proto3 leaves zeros off the wire, so an absent limit_remaining or duration field reads as 0.
const entries = (...kv: [string, string][]) => ({ entries: kv.map(([key, value]) => ({ key, value })) });
const call = (req: Partial<RlsRequest>) => shouldRateLimit(client, { domain: "foresight", descriptors: [], ...req } as RlsRequest);
const header = (r: RlsResponse, k: string) => r.response_headers_to_add.find((h) => h.key === k)?.value;

async function callError(req: unknown): Promise<grpc.ServiceError> {
  try {
    await shouldRateLimit(client, req as RlsRequest);
  } catch (e) {
    return e as grpc.ServiceError;
  }
  throw new Error("expected the call to fail");
}

test("a user's requests: OK with a falling remainder, then OVER_LIMIT; statuses and IETF headers", async () => {
  const got: RlsResponse[] = [];
  for (let i = 0; i < 4; i++) got.push(await call({ descriptors: [entries(["user_id", "alice"])] }));
  assert.equal(got.map((r) => r.overall_code), [RlsCode.OK, RlsCode.OK, RlsCode.OK, RlsCode.OVER_LIMIT]);
  assert.equal(got.map((r) => r.statuses[0].limit_remaining ?? 0), [2, 1, 0, 0]);
  const s = got[3].statuses[0];
  assert.is(s.code, RlsCode.OVER_LIMIT);
  assert.equal(s.current_limit, { name: "default", requests_per_unit: 3, unit: RlsUnit.MINUTE });
  assert.equal(s.duration_until_reset, { seconds: 59, nanos: 750_000_000 });
  assert.is(header(got[0], "ratelimit-policy"), '"default";q=3;w=60');
  assert.is(header(got[0], "ratelimit"), '"default";r=2;t=60');
  assert.is(header(got[0], "retry-after"), undefined);
  assert.is(header(got[3], "retry-after"), "60");
  assert.is(got[3].response_headers_to_add.some((h) => h.key.startsWith("x-ratelimit")), false);
  // Another user is counted on its own.
  const bob = await call({ descriptors: [entries(["user_id", "bob"])] });
  assert.is(bob.statuses[0].limit_remaining, 2);
});

test("mapping: rule priority, prefixes, plan entry, unknown plan gets the default, unmatched descriptor is OK without a limit", async () => {
  // user_id outranks api_key whatever the entry order; api_key users are prefixed "key:".
  const a = await call({ descriptors: [entries(["api_key", "k1"], ["user_id", "carol"])] });
  const b = await call({ descriptors: [entries(["api_key", "k1"])] });
  const c = await call({ descriptors: [entries(["remote_address", "10.0.0.1"])] });
  assert.equal([a, b, c].map((r) => r.statuses[0].limit_remaining), [2, 2, 2]);
  const pro = await call({ descriptors: [entries(["user_id", "dave"], ["plan", "pro"])] });
  assert.equal(pro.statuses[0].current_limit, { name: "pro", requests_per_unit: 100, unit: RlsUnit.MINUTE });
  assert.is(pro.statuses[0].limit_remaining, 99);
  const unknown = await call({ descriptors: [entries(["user_id", "erin"], ["plan", "gold"])] });
  assert.is(unknown.statuses[0].current_limit?.requests_per_unit, 3);
  const before = (await server.metrics.unmatched.get()).values[0]?.value ?? 0;
  const mixed = await call({ descriptors: [entries(["generic_key", "whatever"]), entries(["user_id", "frank"])] });
  assert.is(mixed.statuses.length, 2);
  assert.equal(mixed.statuses[0], { code: RlsCode.OK });
  assert.is(mixed.statuses[1].limit_remaining, 2);
  assert.is((await server.metrics.unmatched.get()).values[0].value, before + 1);
});

test("hits_addend: request level counts hits, a descriptor's own replaces it, token pools count tokens", async () => {
  const r = await call({ descriptors: [entries(["user_id", "gina"], ["plan", "pro"])], hits_addend: 10 });
  assert.is(r.statuses[0].limit_remaining, 90);
  const own = await call({ descriptors: [{ ...entries(["user_id", "gina"], ["plan", "pro"]), hits_addend: { value: 5 } }], hits_addend: 10 });
  assert.is(own.statuses[0].limit_remaining, 85);
  // Pool "chat" counts tokens: 1 request + 600 tokens; the token dimension binds (400 of 1000 left).
  const t1 = await call({ descriptors: [entries(["user_id", "hank"], ["plan", "pro"], ["pool", "chat"])], hits_addend: 600 });
  assert.is(t1.overall_code, RlsCode.OK);
  assert.equal([t1.statuses[0].current_limit?.requests_per_unit, t1.statuses[0].limit_remaining], [1000, 400]);
  const t2 = await call({ descriptors: [entries(["user_id", "hank"], ["plan", "pro"], ["pool", "chat"])], hits_addend: 500 });
  assert.is(t2.overall_code, RlsCode.OVER_LIMIT);
  assert.is(t2.statuses[0].limit_remaining ?? 0, 0, "proto3: a remaining of 0 is not on the wire");
  // Over limit in any descriptor makes the whole request over limit.
  const both = await call({ descriptors: [entries(["user_id", "ivan"]), entries(["user_id", "hank"], ["plan", "pro"], ["pool", "chat"])] });
  assert.equal(both.statuses.map((s) => s.code), [RlsCode.OK, RlsCode.OVER_LIMIT]);
  assert.is(both.overall_code, RlsCode.OVER_LIMIT);
});

test("malformed requests: INVALID_ARGUMENT naming the field, counted, and the server keeps serving", async () => {
  const cases: [unknown, string][] = [
    [{ domain: "", descriptors: [entries(["user_id", "a"])] }, "domain: must not be empty"],
    [{ domain: "other", descriptors: [entries(["user_id", "a"])] }, 'domain: "other" is not served here'],
    [{ domain: "foresight", descriptors: [] }, "descriptors: at least one descriptor is required"],
    [{ domain: "foresight", descriptors: [entries(["user_id", "a"]), { entries: [] }] }, "descriptors[1].entries: at least one entry is required"],
    [{ domain: "foresight", descriptors: [entries(["user_id", "a"], ["", "x"])] }, "descriptors[0].entries[1].key: must not be empty"],
    [{ domain: "foresight", descriptors: [entries(["user_id", ""])] }, "descriptors[0].entries[0].value: must not be empty"],
    [{ domain: "foresight", descriptors: [{ ...entries(["user_id", "a"]), limit: { requests_per_unit: 5, unit: 9 } }] }, "descriptors[0].limit.unit: must be one of"],
    [{ domain: "foresight", descriptors: [{ ...entries(["user_id", "a"]), hits_addend: { value: 2_000_000_000 } }] }, "descriptors[0].hits_addend: must be <= 1000000000"],
    [{ domain: "foresight", descriptors: [entries(["user_id", "a"])], hits_addend: 4_000_000_000 }, "hits_addend: must be <= 1000000000"],
    [{ domain: "foresight", descriptors: Array.from({ length: 65 }, () => entries(["user_id", "a"])) }, "descriptors: at most 64 descriptors"],
  ];
  const got: [number, string][] = [];
  for (const [req] of cases) {
    const e = await callError(req);
    got.push([e.code, e.details]);
  }
  for (let i = 0; i < cases.length; i++) {
    assert.is(got[i][0], grpc.status.INVALID_ARGUMENT, `case ${i}: ${got[i][1]}`);
    assert.ok(got[i][1].startsWith(cases[i][1]), `case ${i}: "${got[i][1]}" should start with "${cases[i][1]}"`);
  }
  // Bytes that are not a RateLimitRequest at all (field 1 as a varint where a string is due, truncated).
  const raw = new grpc.Client(`127.0.0.1:${server.port}`, grpc.credentials.createInsecure());
  const rawErr = await new Promise<grpc.ServiceError>((resolve, reject) =>
    raw.makeUnaryRequest(
      "/envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit",
      (b: Buffer) => b,
      (b: Buffer) => b,
      Buffer.from([0x12, 0x05, 0x0a]),
      (err) => (err ? resolve(err) : reject(new Error("expected INVALID_ARGUMENT"))),
    ),
  );
  raw.close();
  assert.is(rawErr.code, grpc.status.INVALID_ARGUMENT);
  assert.match(rawErr.details, /^request: does not decode as envoy\.service\.ratelimit\.v3\.RateLimitRequest/);
  const metric = await server.metrics.invalid.get();
  const byField = Object.fromEntries(metric.values.map((v) => [v.labels.field, v.value]));
  assert.is(byField["descriptors[].entries[].key"], 1);
  assert.is(byField.domain, 2);
  assert.is(byField.request, 1);
  // Still serving.
  const ok = await call({ descriptors: [entries(["user_id", "after-bad-input"])] });
  assert.is(ok.overall_code, RlsCode.OK);
});

test("header styles: X-RateLimit-* by config, both, none", async () => {
  server.reconfigure({ headerStyle: "x-ratelimit" });
  const x = await call({ descriptors: [entries(["user_id", "jill"]), entries(["user_id", "kim"], ["plan", "pro"])] });
  // The descriptor closest to its limit is reported: jill has 2 of 3 left, kim 99 of 100.
  assert.equal(x.response_headers_to_add, [
    { key: "x-ratelimit-limit", value: "3" },
    { key: "x-ratelimit-remaining", value: "2" },
    { key: "x-ratelimit-reset", value: "60" },
  ]);
  server.reconfigure({ headerStyle: "both" });
  const b = await call({ descriptors: [entries(["user_id", "jill"]), entries(["user_id", "kim"], ["plan", "pro"])] });
  assert.is(header(b, "ratelimit-policy"), '"default";q=3;w=60, "pro";q=100;w=60');
  assert.is(header(b, "ratelimit"), '"default";r=1;t=60, "pro";r=98;t=60');
  assert.is(header(b, "x-ratelimit-remaining"), "1");
  server.reconfigure({ headerStyle: "none" });
  const n = await call({ descriptors: [entries(["user_id", "jill"])] });
  assert.equal(n.response_headers_to_add, []);
  server.reconfigure({ headerStyle: "ietf" });
});

test("decisions are counted by code and reason", async () => {
  const m = await server.metrics.decisions.get();
  const over = m.values.find((v) => v.labels.code === "OVER_LIMIT" && v.labels.reason === "plan-limit")?.value ?? 0;
  const ok = m.values.find((v) => v.labels.code === "OK" && v.labels.reason === "plan-limit")?.value ?? 0;
  assert.ok(over >= 3, `over-limit decisions ${over}`);
  assert.ok(ok >= 10, `ok decisions ${ok}`);
  const req = await server.metrics.requests.get();
  assert.ok((req.values.find((v) => v.labels.result === "invalid_argument")?.value ?? 0) === 11);
});

test.run();
