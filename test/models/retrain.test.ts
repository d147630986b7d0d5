// Retraining policy (pure): exceedance windows weighted up, the holdout score, the promotion rule,
// and on real ServeGen clients: a candidate trained on the history beats the built-in weights on the
// held-out days, and a damaged candidate is refused.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { loadRateTrace, DEFAULT_TRACE_PATH, type ClientSeries } from "../../src/forecast/trace.ts";
import { LstmWeights } from "../../src/forecast/lstm.ts";
import { trainingSequences, trainCandidate, holdoutError, decidePromotion, type UserHistory } from "../../src/models/index.ts";

test("training sequences: history minus the holdout, plus each exceedance run's window repeated weight-1 times", () => {
  const counts = Float64Array.from({ length: 100 }, (_, i) => i);
  const exceeded = new Uint8Array(100);
  exceeded[40] = 1;
  exceeded[43] = 1; // same run (within 6 buckets)
  exceeded[70] = 1; // its own run
  exceeded[95] = 1; // inside the holdout: not trained on
  const seqs = trainingSequences([{ key: "u", counts, exceeded }], { holdoutBuckets: 10, exceedanceWeight: 3 });
  assert.is(seqs.length, 1 + 2 * 2);
  assert.is(seqs[0].counts.length, 90);
  assert.equal(Array.from(seqs[1].counts as Float64Array).slice(0, 1), [16]); // 40 - 24
  assert.is(seqs[1].counts.length, 50 - 16); // up to 43 + 6 inclusive
  assert.equal(Array.from(seqs[2].counts as Float64Array), Array.from(seqs[1].counts as Float64Array));
  assert.is((seqs[3].counts as Float64Array)[0], 46);
  assert.is(seqs[3].counts.length, 77 - 46);
  assert.is(trainingSequences([{ key: "u", counts, exceeded }], { holdoutBuckets: 10, exceedanceWeight: 1 }).length, 1);
});

test("promotion: needs the relative improvement; a non-finite candidate never wins", () => {
  assert.ok(decidePromotion(0.89, 1, 0.1).promote);
  assert.not.ok(decidePromotion(0.91, 1, 0.1).promote);
  assert.match(decidePromotion(0.91, 1, 0.1).reason, /does not beat live 1\.0000 by 10\.0 %/);
  assert.not.ok(decidePromotion(NaN, 1, 0).promote);
});

let series: ClientSeries[] = [];
test.before(async () => {
  const all = await loadRateTrace(DEFAULT_TRACE_PATH, { filter: (k) => k.startsWith("m-mid:") });
  series = all.filter((s) => s.requests.length >= 14 * 144).sort((a, b) => b.totalRequests - a.totalRequests || a.key.localeCompare(b.key)).slice(0, 12);
});

function histories(days: number): UserHistory[] {
  return series.map((s) => ({ key: s.key, counts: s.requests.slice(0, days * 144), exceeded: new Uint8Array(days * 144) }));
}

test("real clients: a candidate trained on 6 days beats the built-in weights on the 7th; damaged weights are refused", () => {
  const hist = histories(7);
  const opts = { holdoutBuckets: 144, exceedanceWeight: 3, epochs: 1, seasonBuckets: 144 };
  const builtIn = LstmWeights.init(1).toBytes();
  const cand = trainCandidate(builtIn, hist, opts);
  const e1 = holdoutError(cand.weights, hist, opts);
  const e0 = holdoutError(builtIn, hist, opts);
  assert.ok(Number.isFinite(e1) && Number.isFinite(e0));
  assert.is(holdoutError(cand.weights, hist, opts), e1, "deterministic");
  const d = decidePromotion(e1, e0, 0.01);
  assert.ok(d.promote, d.reason);
  // Damage: scale every parameter; the candidate must lose against the trained one.
  const bad = LstmWeights.fromBytes(cand.weights);
  for (let i = 0; i < bad.params.length; i++) bad.params[i] *= 25;
  const eb = holdoutError(bad.toBytes(), hist, opts);
  assert.not.ok(decidePromotion(eb, e1, 0.01).promote, `damaged ${eb} vs ${e1}`);
});

test.run();
