import { test } from "uvu";
import * as assert from "uvu/assert";
import { ExceedanceFeedback, FeedbackOptionError } from "../../src/feedback/index.ts";

test("none: the grant bound is the forecast upper bound; exceedances still counted", () => {
  const f = new ExceedanceFeedback(1, { mode: "none" });
  assert.is(f.update(0, 5, 10), 10);
  assert.is(f.update(0, 40, 12), 12); // 40 > 10: exceedance
  assert.is(f.exceedances, 1);
});

test("bias: adds the last miss, decays it while quiet, drops it after holdTicks", () => {
  const f = new ExceedanceFeedback(2, { mode: "bias", decay: 0.5, holdTicks: 2 });
  assert.is(f.update(0, 5, 10), 10); // first tick: nothing to compare with
  assert.is(f.update(0, 30, 12), 12 + 20); // observed 30 > bound 10: miss 20
  assert.ok(f.active(0));
  assert.is(f.update(0, 20, 14), 14 + 10); // 20 <= 32: quiet, decays to 10
  assert.is(f.update(0, 20, 15), 15 + 5);
  assert.is(f.update(0, 15, 16), 16); // hold over
  assert.not.ok(f.active(0));
  assert.is(f.update(1, 1, 2), 2, "users are independent");
});

test("hold: honours observed × (1 + margin) for holdTicks unless the forecast is higher", () => {
  const f = new ExceedanceFeedback(1, { mode: "hold", margin: 0.1, holdTicks: 2 });
  f.update(0, 5, 10);
  assert.is(f.update(0, 40, 12), 44);
  assert.is(f.update(0, 40, 50), 50, "forecast above the hold wins");
  assert.is(f.update(0, 40, 20), 20, "second quiet tick: hold over (40 <= 50 was no exceedance)");
});

test("bad options are named", () => {
  assert.throws(() => new ExceedanceFeedback(1, { holdTicks: 0 }), (e: Error) => e instanceof FeedbackOptionError && /holdTicks/.test(e.message));
  assert.throws(() => new ExceedanceFeedback(1, { decay: 2 }), (e: Error) => e instanceof FeedbackOptionError && /decay/.test(e.message));
  assert.throws(() => new ExceedanceFeedback(1, { mode: "x" as never }), (e: Error) => e instanceof FeedbackOptionError && /mode/.test(e.message));
});

test.run();
