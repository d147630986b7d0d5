import { test } from "uvu";
import * as assert from "uvu/assert";
import {
  EnsembleModel,
  EwmaModel,
  fitEwmaAlpha,
  HoltWintersModel,
  NaiveModel,
  RecentMedianModel,
  ResidualQuantile,
  SeasonalNaiveModel,
  SlotMedianModel,
  type BucketContext,
  type UserForecaster,
} from "../../src/forecast/index.ts";
import { xorshift32 } from "../../src/util/random.ts";

const M = 24; // a short season keeps these tests fast
const ctx = (t: number): BucketContext => ({ index: t, slotOfDay: t % M, dayOfWeek: Math.floor(t / M) % 7, iatCv: 0, tokensPerRequest: 0, throttledShare: 0 });
function feed(m: UserForecaster, ys: number[]): void {
  ys.forEach((y, t) => m.observe(y, ctx(t)));
}
/** xorshift32 in [0, 1): deterministic noise. */
const rng = xorshift32;

test("naive, seasonal naive and EWMA forecast what their definitions say", () => {
  const ys = Array.from({ length: 3 * M }, (_, t) => (t % M) * 10 + Math.floor(t / M));
  const n = new NaiveModel();
  feed(n, ys);
  assert.is(n.forecast(1), ys.at(-1));
  const s = new SeasonalNaiveModel(M);
  feed(s, ys);
  // Target t+h is one season after t+h−M, i.e. ys[len−1+h−M].
  for (const h of [1, 3, M, M + 2]) assert.is(s.forecast(h), ys[ys.length - 1 + h - M * Math.ceil(h / M)], `h=${h}`);
  const e = new EwmaModel(0.5);
  feed(e, [4, 8]);
  assert.is(e.forecast(1), 6);
  assert.ok(Math.abs(fitEwmaAlpha([1, 1, 1, 9, 9, 9, 9, 9, 9, 9]) - 1) < 1e-9, "a level shift is best followed at alpha 1");
});

test("Holt-Winters learns a daily profile: after a few seasons its error is far below naive's", () => {
  const y = (t: number) => 100 + 50 * Math.sin((2 * Math.PI * t) / M);
  const hw = new HoltWintersModel({ alpha: 0.1, beta: 0, gamma: 0.5, phi: 0.9, log: false }, M);
  const naive = new NaiveModel();
  let errHw = 0, errNaive = 0;
  for (let t = 0; t < 10 * M; t++) {
    if (t >= 8 * M) {
      errHw += Math.abs(hw.forecast(3) - y(t + 2));
      errNaive += Math.abs(naive.forecast(3) - y(t + 2));
    }
    hw.observe(y(t), ctx(t));
    naive.observe(y(t), ctx(t));
  }
  assert.ok(errHw < errNaive / 5, `hw ${errHw.toFixed(1)} vs naive ${errNaive.toFixed(1)}`);
});

test("median members ignore a single spike", () => {
  const r = new RecentMedianModel(3);
  feed(r, [5, 500, 6]);
  assert.is(r.forecast(1), 6);
  const sm = new SlotMedianModel(5, M);
  const ys: number[] = [];
  for (let d = 0; d < 5; d++) for (let i = 0; i < M; i++) ys.push(i === 3 ? (d === 2 ? 1000 : 7) : 1);
  feed(sm, ys);
  // Next bucket is slot 0 of day 5; slot 3 is h = 4 ahead.
  assert.is(sm.forecast(4), 7);
  assert.is(sm.forecast(1), 1);
});

test("ensemble puts its weight on the member that has been right for this user", () => {
  // A strictly periodic series: seasonal naive is exact after one season, naive is not.
  const ys = Array.from({ length: 6 * M }, (_, t) => ((t * 7) % M) * 3);
  const e = new EnsembleModel([new NaiveModel(), new SeasonalNaiveModel(M)], { maxHorizon: 3 });
  feed(e, ys);
  const w = e.weights(1);
  assert.ok(w[1] > 0.999, `weights ${w}`);
  assert.ok(Math.abs(e.forecast(2) - ys[ys.length + 1 - M]) < 1e-6);
});

test("upper bound: residual-quantile tracker covers the configured quantile on skewed noise", () => {
  for (const q of [0.9, 0.95]) {
    const r = rng(7);
    const rq = new ResidualQuantile(q);
    let exceed = 0, n = 0;
    for (let t = 0; t < 40_000; t++) {
      const actual = 100 * -Math.log(1 - r()); // exponential, heavy right tail
      const forecast = 70;
      if (t > 2000) {
        n++;
        if (actual > rq.upper(forecast)) exceed++;
      }
      rq.update(actual, forecast);
    }
    const share = exceed / n;
    assert.ok(Math.abs(share - (1 - q)) < 0.01, `q=${q}: exceed ${share.toFixed(4)}`);
  }
});

test("ensemble upper bound is never below its forecast and moves with the user's volume", () => {
  const r = rng(3);
  const small = new EnsembleModel([new NaiveModel(), new EwmaModel(0.3)]);
  const big = new EnsembleModel([new NaiveModel(), new EwmaModel(0.3)]);
  for (let t = 0; t < 2000; t++) {
    const u = r();
    small.observe(10 * u, ctx(t));
    big.observe(10_000 * u, ctx(t));
  }
  for (const h of [1, 3, 6]) {
    assert.ok(small.upper(h) >= small.forecast(h));
    const ratio = big.upper(h) / small.upper(h);
    assert.ok(ratio > 500 && ratio < 2000, `scale ratio ${ratio}`);
  }
});

test.run();
