// The step experiment on a slice of real clients through the WASM engine: the feedback variants
// cover a 4× step sooner and leave less demand above the grant than the forecaster alone.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { loadRateTrace, DEFAULT_TRACE_PATH } from "../../src/forecast/trace.ts";
import { stepExperiment } from "../../src/feedback/index.ts";

test("4× step on real clients: feedback covers sooner and throttles less than no feedback", async () => {
  const all = await loadRateTrace(DEFAULT_TRACE_PATH, { filter: (k) => k.startsWith("m-large:") });
  const series = all
    .filter((s) => s.requests.length >= 14 * 144)
    .sort((a, b) => b.totalRequests - a.totalRequests || a.key.localeCompare(b.key))
    .slice(0, 8);
  const r = await stepExperiment(series, { stepFactor: 4, seed: 3 });
  const by = new Map(r.variants.map((v) => [v.name, v]));
  const none = by.get("engine as served (adaptive smoothing); no feedback")!;
  const bias = by.get("as served + bias feedback")!;
  const hold = by.get("as served + hold feedback")!;
  assert.is(r.clients, 8);
  for (const v of [bias, hold]) {
    assert.ok(v.throttledRequests < none.throttledRequests, `${v.name}: ${v.throttledRequests} vs ${none.throttledRequests}`);
    assert.ok(v.coverBucketsP50 <= none.coverBucketsP50, `${v.name} covers no later`);
  }
  // Every variant is a real forecast: the grant is above demand most of the time elsewhere.
  for (const v of r.variants) assert.ok(v.exceedanceRate < 0.25 && v.grantOverDemand > 1, `${v.name}: ${v.exceedanceRate}, ${v.grantOverDemand}`);
});

test.run();
