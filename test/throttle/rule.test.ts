// The rule and the client's decisions without NATS: grants applied as messages, a fake clock.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { userHash } from "../../src/telemetry/hash.ts";
import { hashOut, hashUserKey } from "../../src/throttle/table.ts";
import { computeGrants, enforcedRate } from "../../src/throttle/grants.ts";
import { ThrottleClient } from "../../src/throttle/client.ts";
import { BadGrantMessageError, decodeThrottleMessage } from "../../src/throttle/wire.ts";
import { PLANS, SAFE, drive, fakeClock, grantMessage, poolsMessage } from "./_util.ts";

const test = suite("throttle rule");
const TTL = 30_000;

function client(shadow = false) {
  const clock = fakeClock();
  const c = new ThrottleClient({ plans: PLANS, safeLimits: SAFE, partitions: 1, burstFactor: 1.5, shadow, maxUsers: 4096, now: clock.now });
  return { clock, c };
}

test("hashUserKey equals userHash (ASCII fast path and non-ASCII)", () => {
  for (const k of ["a", "ab", "abc", "abcd", "user-123456", "Ünïcødé-ключ", "x".repeat(37)]) {
    hashUserKey(k);
    const h = userHash(k);
    assert.equal([hashOut.lo, hashOut.hi], [h.lo, h.hi], k);
  }
});

test("computeGrants: G = min(P, max(U, A, safe floor)); proportional allocation by forecast", () => {
  const t = computeGrants(
    {
      count: 3,
      userHashLo: Uint32Array.of(1, 2, 3),
      userHashHi: Uint32Array.of(0, 0, 0),
      upperReqPerSec: Float64Array.of(2, 6, 0),
      planIndex: Uint8Array.of(0, 0, 0),
      poolIndex: Uint16Array.of(0, 0, 0),
    },
    [{ capacityReqPerSec: 16 }],
    { plans: [{ requestsPerSec: 10 }], burstFactor: 1.5, safe: [{ requestsPerSec: 1 }] },
  );
  // Pool capacity 16 split 2:6 -> A = 4, 12, 0.
  assert.equal(Array.from(t.allocReqPerSec), [4, 12, 0]);
  assert.equal(Array.from(t.grantReqPerSec), [4, 10, 1]); // 10 = plan cap; 1 = safe floor
  assert.equal(t.poolAllocatedReqPerSec[0], 16);
  assert.is(enforcedRate(10, 4, 0.5), 10);
  assert.is(enforcedRate(10, 4, 1.2), 4);
});

test("pool has spare: a user over its forecast is served up to its plan limit", () => {
  const { clock, c } = client();
  c.apply(grantMessage(0, 1, clock.t, TTL, [{ user: "alice", upper: 2, alloc: 2 }]));
  c.apply(poolsMessage([0.5], clock.t, 60_000));
  // 8 req/s: 4x its forecast, under the plan's 10 -> all served.
  const r = drive(clock, () => c.check("alice", { requests: 1, tokens: 10 }), 8, 5);
  assert.is(r.allowed, r.sent);
  assert.ok((r.reasons.get("pool-has-spare") ?? 0) > 0);
  // 20 req/s: beyond the plan limit -> about 10/s pass (+ burst), the rest "plan-limit".
  const over = drive(clock, () => c.check("alice", { requests: 1, tokens: 10 }), 20, 5);
  assert.ok(over.allowed <= 10 * 5 + 15 + 1, `allowed ${over.allowed}`);
  assert.ok(over.allowed >= 10 * 5 - 1, `allowed ${over.allowed}`);
  assert.ok((over.reasons.get("plan-limit") ?? 0) > 0);
});

test("pool short: over-forecast users throttled to their grant, within-forecast users keep their share", () => {
  const { clock, c } = client();
  c.apply(grantMessage(0, 1, clock.t, TTL, [
    { user: "greedy", upper: 2, alloc: 3 }, // G = 3
    { user: "steady", upper: 5, alloc: 5 }, // G = 5
  ]));
  c.apply(poolsMessage([1.4], clock.t, 60_000));
  let greedyAllowed = 0, steadyAllowed = 0, sent = 0;
  const reasons = new Set<string>();
  // greedy sends 8/s, steady 4/s (within its forecast 5), interleaved over 10 s.
  for (let i = 0; i < 80; i++) {
    clock.t += 125;
    const g = c.check("greedy", { requests: 1, tokens: 1 });
    if (g.allowed) greedyAllowed++;
    else reasons.add(g.reason);
    if (i % 2 === 0) {
      sent++;
      if (c.check("steady", { requests: 1, tokens: 1 }).allowed) steadyAllowed++;
    }
  }
  assert.is(steadyAllowed, sent, "within forecast: nothing refused");
  // greedy: 3/s for 10 s plus the first bucket (its safe-rate start) at most.
  assert.ok(greedyAllowed <= 3 * 10 + 3 * 1.5 + 1, `greedy allowed ${greedyAllowed}`);
  assert.ok(greedyAllowed >= 3 * 10 - 2, `greedy allowed ${greedyAllowed}`);
  assert.equal([...reasons], ["over-forecast-pool-short"]);
  const d = c.check("greedy", { requests: 1, tokens: 1 });
  assert.is(d.allowed, false);
  assert.ok(d.retryAfterMs > 0 && d.retryAfterMs <= 1000 / 3 + 1, `retryAfter ${d.retryAfterMs}`);
  assert.is(d.limit, Math.floor(3 * 1.5));
  assert.is(d.windowMs, 1500);
});

test("lease past expiry: the plan's safe limit (never deny-all, never unbounded), counted and logged once", () => {
  const lines: string[] = [];
  const clock = fakeClock();
  const log = { info: (_: object, m: string) => lines.push("info " + m), warn: (_: object, m: string) => lines.push("warn " + m), error: () => {} };
  const c = new ThrottleClient({ plans: PLANS, safeLimits: SAFE, partitions: 1, maxUsers: 4096, now: clock.now, log });
  c.apply(grantMessage(0, 1, clock.t, TTL, [{ user: "bob", upper: 5, plan: 1 }]));
  c.apply(poolsMessage([0.2], clock.t, 600_000));
  (c as unknown as { watchLeases(): void }).watchLeases(); // valid now: no line
  clock.t += TTL + 1;
  // pro plan safe limit: 4/s. Send 10/s for 10 s.
  const r = drive(clock, () => c.check("bob", { requests: 1, tokens: 0 }), 10, 10);
  assert.ok(r.allowed >= 4 * 10 - 1 && r.allowed <= 4 * 10 + 4 * 1.5 + 1, `allowed ${r.allowed}`);
  assert.equal([...r.reasons.keys()], ["safe-limit"]);
  (c as unknown as { watchLeases(): void }).watchLeases();
  (c as unknown as { watchLeases(): void }).watchLeases();
  assert.is(lines.filter((l) => l.includes("lapsed")).length, 1);
  assert.is(c.stats().leaseLapses, 1);
  assert.ok(c.stats().safeLimitDecisions >= r.sent);
  // Renewal: back to the grant without a restart, logged once.
  c.apply(grantMessage(0, 1, clock.t, TTL, [{ user: "bob", upper: 5, plan: 1 }]));
  (c as unknown as { watchLeases(): void }).watchLeases();
  assert.is(lines.filter((l) => l.includes("renewed")).length, 1);
  assert.is(c.check("bob", { requests: 1, tokens: 0 }).reason === "safe-limit", false);
});

test("unknown users get the default plan; a plan argument picks another plan", () => {
  const { clock, c } = client();
  c.apply(grantMessage(0, 1, clock.t, TTL, [{ user: "someone-else", upper: 1 }]));
  c.apply(poolsMessage([0.1], clock.t, 600_000));
  const r = drive(clock, () => c.check("stranger", { requests: 1, tokens: 0 }), 30, 5);
  assert.ok(r.allowed >= 10 * 5 - 1 && r.allowed <= 10 * 5 + 15 + 1, `default plan 10/s, allowed ${r.allowed}`);
  const p = drive(clock, () => c.check("stranger-pro", { requests: 1, tokens: 0 }, "pro"), 30, 5);
  assert.is(p.allowed, p.sent, "pro plan 40/s serves 30/s");
});

test("token bucket: LLM tokens per second bound the user too", () => {
  const { clock, c } = client();
  c.apply(grantMessage(0, 1, clock.t, TTL, [{ user: "llm", upper: 10 }]));
  c.apply(poolsMessage([0.1], clock.t, 600_000));
  // default plan: 10,000 tokens/s; 5 req/s of 4,000 tokens = 20,000 tokens/s -> about half pass.
  const r = drive(clock, () => c.check("llm", { requests: 1, tokens: 4000 }), 5, 10);
  assert.ok(r.allowed >= 23 && r.allowed <= 30, `allowed ${r.allowed}`);
});

test("shadow: would-deny is allowed, flagged, counted", () => {
  const { clock, c } = client(true);
  c.apply(grantMessage(0, 1, clock.t, TTL, [{ user: "carol", upper: 1 }]));
  c.apply(poolsMessage([0.1], clock.t, 600_000));
  const r = drive(clock, () => c.check("carol", { requests: 1, tokens: 0 }), 40, 2);
  assert.is(r.allowed, r.sent);
  const s = c.stats();
  assert.ok(s.shadowWouldDeny > 40, `would deny ${s.shadowWouldDeny}`);
  assert.is(s.denied, 0);
  const d = c.check("carol", { requests: 1, tokens: 0 });
  assert.equal([d.allowed, d.wouldDeny, d.reason], [true, true, "shadow"]);
});

test("a message that does not decode throws BadGrantMessageError and changes nothing", () => {
  const { clock, c } = client();
  c.apply(grantMessage(0, 1, clock.t, TTL, [{ user: "dave", upper: 3, alloc: 3 }]));
  const before = c.grantOf("dave");
  const good = grantMessage(0, 1, clock.t, TTL, [{ user: "dave", upper: 9, alloc: 9 }]);
  const cases: [Uint8Array, string][] = [
    [good.subarray(0, 10), "too_short"],
    [Uint8Array.from(good, (b, i) => (i === 0 ? b ^ 0xff : b)), "bad_magic"],
    [Uint8Array.from(good, (b, i) => (i === 4 ? 9 : b)), "bad_version"],
    [Uint8Array.from(good, (b, i) => (i === 5 ? 77 : b)), "bad_kind"],
    [good.subarray(0, good.length - 3), "length_mismatch"],
  ];
  const nan = good.slice();
  new DataView(nan.buffer).setFloat32(40 + 16, NaN, true);
  cases.push([nan, "bad_value"]);
  for (const [bytes, reason] of cases) {
    try {
      c.apply(bytes);
      assert.unreachable(reason);
    } catch (err) {
      assert.instance(err, BadGrantMessageError);
      assert.is((err as BadGrantMessageError).reason, reason);
    }
  }
  assert.equal(c.grantOf("dave"), before);
  assert.is(decodeThrottleMessage(good).count, 1);
});

test.run();
