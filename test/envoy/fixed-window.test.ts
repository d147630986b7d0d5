// The fixed-window limiter's counting (as Envoy's reference service counts) and the config
// adapters that build it.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { FixedWindowLimiter } from "../../src/envoy/fixed-window.ts";
import { LimiterConfigError } from "../../src/envoy/errors.ts";
import { fixedWindowPlans } from "../../src/envoy/config.ts";
import { ForesightConfigSchema } from "../../src/config/index.ts";

test("windows align to the epoch; refused hits still count; the counter restarts with the window", () => {
  let now = 10_000 + 900;
  const l = new FixedWindowLimiter({ windowMs: 1000, plans: { default: { requestsPerWindow: 2 } }, defaultPlan: "default", now: () => now });
  const a = [l.check("u", { requests: 1, tokens: 0 }), l.check("u", { requests: 1, tokens: 0 }), l.check("u", { requests: 1, tokens: 0 })];
  assert.equal(a.map((d) => [d.allowed, d.remaining, d.resetMs, d.retryAfterMs]), [[true, 1, 100, 0], [true, 0, 100, 0], [false, 0, 100, 100]]);
  // A request that would cross the limit is refused whole (the counter after it exceeds the limit).
  now = 11_000;
  assert.is(l.check("u", { requests: 3, tokens: 0 }).allowed, false);
  assert.is(l.check("u", { requests: 1, tokens: 0 }).allowed, false, "the refused 3 hits were counted");
  now = 12_000;
  const fresh = l.check("u", { requests: 2, tokens: 0 });
  assert.equal([fresh.allowed, fresh.remaining, fresh.resetMs, fresh.reason], [true, 0, 1000, "plan-limit"]);
  assert.is(l.activeUsers, 1);
});

test("tokens: the binding dimension is reported; unknown plans get the default plan", () => {
  const l = new FixedWindowLimiter({
    windowMs: 60_000,
    plans: { default: { requestsPerWindow: 5 }, llm: { requestsPerWindow: 100, tokensPerWindow: 1000 } },
    defaultPlan: "default",
    now: () => 0,
  });
  const d1 = l.check("a", { requests: 1, tokens: 100 }, "llm");
  assert.equal([d1.allowed, d1.limit, d1.remaining], [true, 1000, 900], "tokens have the smaller share left (90 % vs 99 %)");
  const r = l.check("c", { requests: 95, tokens: 10 }, "llm");
  assert.equal([r.allowed, r.limit, r.remaining], [true, 100, 5], "requests have the smaller share left (5 % vs 99 %)");
  const d2 = l.check("a", { requests: 1, tokens: 850 }, "llm");
  assert.equal([d2.allowed, d2.limit, d2.remaining], [true, 1000, 50]);
  const d3 = l.check("a", { requests: 1, tokens: 100 }, "llm");
  assert.equal([d3.allowed, d3.limit, d3.remaining], [false, 1000, 0]);
  const d4 = l.check("b", { requests: 1, tokens: 0 }, "gold");
  assert.equal([d4.limit, d4.remaining], [5, 4]);
});

test("bad options are refused with the field named", () => {
  assert.throws(() => new FixedWindowLimiter({ windowMs: 0, plans: { default: { requestsPerWindow: 1 } }, defaultPlan: "default" }), (e: Error) => e instanceof LimiterConfigError && /windowMs/.test(e.message));
  assert.throws(() => new FixedWindowLimiter({ windowMs: 1000, plans: {}, defaultPlan: "default" }), (e: Error) => e instanceof LimiterConfigError && /defaultPlan "default"/.test(e.message));
});

test("config: plans default to throttle.safeLimits scaled to the window; explicit plans win", () => {
  const c = ForesightConfigSchema.parse({
    throttle: { safeLimits: { default: { requestsPerSec: 10, tokensPerSec: 20_000 }, pro: { requestsPerSec: 0.5 } } },
    envoy: { fixedWindow: { windowMs: 60_000, plans: { pro: { requestsPerWindow: 7 } } } },
  });
  assert.equal(fixedWindowPlans(c), { default: { requestsPerWindow: 600, tokensPerWindow: 1_200_000 }, pro: { requestsPerWindow: 7 } });
});

test.run();
