import { test } from "uvu";
import * as assert from "uvu/assert";
import {
  BpttTrainer,
  LSTM_HIDDEN,
  LSTM_INPUTS,
  LSTM_MAX_HORIZON,
  LSTM_PARAM_COUNT,
  LstmLiteModel,
  LstmWeights,
  WeightsFormatError,
  trainLstm,
} from "../../src/forecast/index.ts";
import { gruOutput, gruStep } from "../../src/forecast/lstm.ts";
import { xorshift32 } from "../../src/util/random.ts";

/** xorshift32 centred on 0: deterministic noise in [-0.5, 0.5). */
function rng(seed: number) {
  const uniform = xorshift32(seed);
  return () => uniform() - 0.5;
}

/** The loss the trainer differentiates, computed by a plain forward pass. */
function windowLoss(p: Float64Array, h0: Float64Array, xs: Float64Array, ts: Float64Array, len: number): number {
  const H = LSTM_HIDDEN, X = LSTM_INPUTS, O = LSTM_MAX_HORIZON;
  let h = Float64Array.from(h0);
  const hn = new Float64Array(H);
  const y = new Float64Array(O);
  let loss = 0;
  for (let t = 0; t < len; t++) {
    const x = xs.subarray(t * X, (t + 1) * X);
    gruStep(p, h, x, hn);
    h = Float64Array.from(hn);
    gruOutput(p, h, x, y);
    for (let o = 0; o < O; o++) loss += Math.abs(y[o] - ts[t * O + o]) / O;
  }
  return loss / len;
}

test("BPTT gradient matches central finite differences on every parameter", () => {
  const r = rng(11);
  const w = LstmWeights.init(5);
  const len = 6;
  const xs = Float64Array.from({ length: len * LSTM_INPUTS }, () => r() * 2);
  // Targets far from the outputs keep every |.| away from its kink, where the loss is smooth.
  const ts = Float64Array.from({ length: len * LSTM_MAX_HORIZON }, (_, i) => (i % 2 ? 5 : -5) + r());
  const h0 = Float64Array.from({ length: LSTM_HIDDEN }, () => r());
  const trainer = new BpttTrainer(w);
  trainer.gradient(h0, xs, ts, len);
  const g = Float64Array.from(trainer.gradientView);
  const p = w.params;
  let worst = 0;
  for (let i = 0; i < LSTM_PARAM_COUNT; i++) {
    const keep = p[i];
    const eps = 1e-5;
    p[i] = keep + eps;
    const up = windowLoss(p, h0, xs, ts, len);
    p[i] = keep - eps;
    const down = windowLoss(p, h0, xs, ts, len);
    p[i] = keep;
    const num = (up - down) / (2 * eps);
    worst = Math.max(worst, Math.abs(num - g[i]) / Math.max(1e-3, Math.abs(num) + Math.abs(g[i])));
  }
  assert.ok(worst < 1e-4, `worst relative gradient error ${worst}`);
});

test("weights round-trip through the LSTL blob; bad blobs are refused with WeightsFormatError", () => {
  const w = LstmWeights.init(3);
  const back = LstmWeights.fromBytes(w.toBytes());
  for (let i = 0; i < LSTM_PARAM_COUNT; i++) assert.ok(Math.abs(back.params[i] - w.params[i]) < 1e-6);
  const bytes = w.toBytes();
  assert.throws(() => LstmWeights.fromBytes(bytes.subarray(0, 10)), (e: unknown) => e instanceof WeightsFormatError && /too short/.test((e as Error).message));
  const bad = bytes.slice();
  bad[0] ^= 0xff;
  assert.throws(() => LstmWeights.fromBytes(bad), (e: unknown) => e instanceof WeightsFormatError && /magic/.test((e as Error).message));
  const shape = bytes.slice();
  new DataView(shape.buffer).setUint32(8, 99, true);
  assert.throws(() => LstmWeights.fromBytes(shape), (e: unknown) => e instanceof WeightsFormatError && /shape/.test((e as Error).message));
  const nan = bytes.slice();
  new DataView(nan.buffer).setFloat32(24, NaN, true);
  assert.throws(() => LstmWeights.fromBytes(nan), (e: unknown) => e instanceof WeightsFormatError && /non-finite/.test((e as Error).message));
});

test("training across users learns a shared daily pattern: a new user is forecast well at once", () => {
  const M = 144;
  const r = rng(2);
  // Users of very different volume share one daily shape (busy afternoons); level-normalised
  // inputs let one set of weights serve all of them.
  const shape = (t: number) => Math.exp(1.5 * Math.sin((2 * Math.PI * (t % M)) / M));
  const user = (scale: number, days: number) => Float64Array.from({ length: days * M }, (_, t) => Math.round(scale * shape(t) * (1 + 0.1 * r())));
  const seqs = [3, 30, 300, 3000].map((s) => ({ counts: user(s, 4) }));
  const w = LstmWeights.init(1);
  const before = trainLstm(LstmWeights.init(1), seqs, { epochs: 1, learningRate: 0 });
  const after = trainLstm(w, seqs, { epochs: 6, learningRate: 0.01 });
  assert.ok(after < before * 0.6, `loss ${before.toFixed(3)} -> ${after.toFixed(3)}`);
  // A new user (volume 100) gets a 3-bucket-ahead forecast within 35 % on its second day.
  const m = new LstmLiteModel(w, M);
  const ys = user(100, 2);
  let relErr = 0, n = 0;
  ys.forEach((y, t) => {
    if (t >= M && t + 3 < ys.length) {
      relErr += Math.abs(m.forecast(3) - ys[t + 2]) / ys[t + 2];
      n++;
    }
    m.observe(y, { index: t, slotOfDay: t % M, dayOfWeek: 0, iatCv: 0, tokensPerRequest: 0, throttledShare: 0 });
  });
  assert.ok(relErr / n < 0.35, `mean relative error ${(relErr / n).toFixed(3)}`);
});

test.run();
