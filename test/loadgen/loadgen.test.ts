import { test } from "uvu";
import * as assert from "uvu/assert";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { loadRateTrace, attachTokenStats, DEFAULT_TRACE_PATH, DEFAULT_TOKENS_PATH, type ClientSeries } from "../../src/forecast/trace.ts";
import { buildLoadPlan, busiestClients, windowIntegral, LoadDriver, LoadPlanError } from "../../src/loadgen/index.ts";

const DAY = 86_400;
let series: ClientSeries[] = [];

test.before(async () => {
  const all = await loadRateTrace(DEFAULT_TRACE_PATH, { filter: (k) => k.startsWith("m-mid:") });
  await attachTokenStats(all, DEFAULT_TOKENS_PATH);
  series = busiestClients(all, 5, 7 * DAY, 7 * DAY + 3600);
});

test("busiestClients picks by volume over the span, deterministically", () => {
  assert.is(series.length, 5);
  const vols = series.map((s) => windowIntegral(s.requests, 600, 7 * DAY, 7 * DAY + 3600));
  for (let i = 1; i < vols.length; i++) assert.ok(vols[i - 1] >= vols[i], `sorted by volume: ${vols}`);
});

test("plan: same seed, same schedule; sorted; tokens from the token file", () => {
  const a = buildLoadPlan(series, { speedup: 60, durationMs: 30_000, traceStartSec: 7 * DAY, maxRatePerSec: 1e9, seed: 7 });
  const b = buildLoadPlan(series, { speedup: 60, durationMs: 30_000, traceStartSec: 7 * DAY, maxRatePerSec: 1e9, seed: 7 });
  const c = buildLoadPlan(series, { speedup: 60, durationMs: 30_000, traceStartSec: 7 * DAY, maxRatePerSec: 1e9, seed: 8 });
  assert.equal(Array.from(a.atMs), Array.from(b.atMs));
  assert.equal(Array.from(a.tokens), Array.from(b.tokens));
  assert.not.equal(Array.from(a.atMs.slice(0, 50)), Array.from(c.atMs.slice(0, 50)));
  for (let i = 1; i < a.count; i++) assert.ok(a.atMs[i] >= a.atMs[i - 1]);
  assert.ok(a.atMs[a.count - 1] < 30_000);
  assert.is(a.thinning, 1);
  // Per client, the drawn count is the trace's volume over 30 min (Poisson: within 5 sigma).
  for (let ci = 0; ci < series.length; ci++) {
    const expected = windowIntegral(series[ci].requests, 600, 7 * DAY, 7 * DAY + 1800);
    const drawn = Array.from(a.client).filter((x) => x === ci).length;
    assert.ok(Math.abs(drawn - expected) <= 5 * Math.sqrt(expected) + 1, `${series[ci].key}: drew ${drawn}, trace has ${expected}`);
  }
  const withTokens = series.filter((s) => s.tokensPerRequest[7 * 144] > 0);
  assert.ok(withTokens.length > 0, "token file covers some chosen client");
  const ci = series.indexOf(withTokens[0]);
  const idx = Array.from(a.client).findIndex((x) => x === ci);
  assert.is(a.tokens[idx], Math.round(withTokens[0].tokensPerRequest[7 * 144]));
});

test("plan: thinning caps the mean rate and keeps every client's share", () => {
  const full = buildLoadPlan(series, { speedup: 60, durationMs: 30_000, traceStartSec: 7 * DAY, maxRatePerSec: 1e9, seed: 3 });
  const cap = full.traceRatePerSec / 4;
  const thin = buildLoadPlan(series, { speedup: 60, durationMs: 30_000, traceStartSec: 7 * DAY, maxRatePerSec: cap, seed: 3 });
  assert.ok(Math.abs(thin.thinning - 0.25) < 1e-9);
  const rate = thin.count / 30;
  assert.ok(Math.abs(rate - cap) < 5 * Math.sqrt(cap * 30) / 30 + 1, `rate ${rate} vs cap ${cap}`);
  for (let ci = 0; ci < series.length; ci++) {
    const f = Array.from(full.client).filter((x) => x === ci).length;
    const t = Array.from(thin.client).filter((x) => x === ci).length;
    assert.ok(Math.abs(t - f / 4) <= 5 * Math.sqrt(f / 4) + 2, `${series[ci].key}: ${t} of ${f}`);
  }
});

test("plan: bad options are named", () => {
  assert.throws(() => buildLoadPlan(series, { speedup: 0 }), (e: Error) => e instanceof LoadPlanError && /speedup/.test(e.message));
  assert.throws(() => buildLoadPlan([], {}), (e: Error) => e instanceof LoadPlanError && /no clients/.test(e.message));
});

test("driver: every planned request reaches the gateway once, outcomes per client match the server's", async () => {
  const plan = buildLoadPlan(series, { speedup: 600, durationMs: 2_000, traceStartSec: 7 * DAY, maxRatePerSec: 800, seed: 5 });
  const denied = plan.clients[0];
  const seen = new Map<string, number>();
  const server = createServer((req, res) => {
    const user = String(req.headers["x-api-key"]);
    seen.set(user, (seen.get(user) ?? 0) + 1);
    req.resume();
    req.on("end", () => res.writeHead(user === denied ? 429 : 200).end());
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  try {
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const result = await new LoadDriver(plan, { url }).run();
    assert.is(result.skipped, 0);
    assert.is(result.sent, plan.count);
    assert.is(result.ok + result.throttled + result.errors, plan.count);
    assert.is(result.errors, 0);
    for (const [key, out] of result.perClient) {
      const planned = Array.from(plan.client).filter((c) => plan.clients[c] === key).length;
      assert.is(out.sent, planned, key);
      assert.is(seen.get(key) ?? 0, planned, `server saw ${key}`);
      if (key === denied) assert.is(out.throttled, planned);
      else assert.is(out.ok, planned);
    }
    assert.is(result.latencyUs.totalCount, plan.count);
  } finally {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  }
});

test.run();
