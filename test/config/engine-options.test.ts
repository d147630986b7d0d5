// The config's engine section and the engine itself must agree: the same defaults (the schema
// imports the engine's constants; this proves the mapping carries every one), and every path the
// config calls "live" is one a running engine can really change.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { DEFAULT_CONFIG, applyModeOf, validateConfig } from "../../src/config/index.ts";
import { LIVE_ENGINE_OPTIONS, resolveEngineOptions } from "../../src/engine/index.ts";
import { autoTickThreads, engineLiveOptionsFromConfig, engineOptionsFromConfig } from "../../src/processor/index.ts";
import { availableParallelism } from "node:os";

test("the config's engine defaults are the engine's defaults (forecast model and tick threads aside)", () => {
  const fromConfig = resolveEngineOptions(engineOptionsFromConfig(DEFAULT_CONFIG.engine));
  const engineDefaults = resolveEngineOptions({ forecastModel: DEFAULT_CONFIG.engine.forecastModel, tickThreads: autoTickThreads() });
  assert.equal(fromConfig, engineDefaults);
});

test("tickThreads: the config's 0 is one per core up to 4; a number is taken as it is", () => {
  assert.is(DEFAULT_CONFIG.engine.tickThreads, 0);
  assert.is(autoTickThreads(), Math.min(4, availableParallelism()));
  assert.is(engineOptionsFromConfig(DEFAULT_CONFIG.engine).tickThreads, autoTickThreads());
  assert.is(engineOptionsFromConfig(validateConfig({ engine: { tickThreads: 3 } }).engine).tickThreads, 3);
  assert.throws(() => validateConfig({ engine: { tickThreads: 5 } }), /engine\.tickThreads/);
  assert.is(applyModeOf("engine.tickThreads"), "restart");
});

test("a changed config value reaches the engine options", () => {
  const c = validateConfig({ engine: { horizonBuckets: 3, holtWinters: { gamma: 0.2, varianceSmoothing: 0.1 }, lstm: { trainUsersPerBucket: 9 } } });
  const o = resolveEngineOptions(engineOptionsFromConfig(c.engine));
  assert.is(o.horizonBuckets, 3);
  assert.is(o.gamma, 0.2);
  assert.is(o.varianceSmoothing, 0.1);
  assert.is(o.lstmTrainUsersPerBucket, 9);
});

test("options the config applies live are options a running engine can change", () => {
  const live = engineLiveOptionsFromConfig(DEFAULT_CONFIG.engine);
  const allowed: readonly string[] = LIVE_ENGINE_OPTIONS;
  for (const k of Object.keys(live)) assert.ok(allowed.includes(k), `${k} is mapped as live but the engine cannot change it live`);
  // And the schema classifies their paths as live, the memory-shaping ones as restart.
  for (const path of ["engine.horizonBuckets", "engine.upperQuantile", "engine.holtWinters.alpha", "engine.expireAfterBuckets"]) {
    assert.is(applyModeOf(path), "live", path);
  }
  for (const path of ["engine.bucketWidthMs", "engine.capacityUsers", "engine.seasonPoints", "engine.allowedLatenessMs", "engine.forecastModel"]) {
    assert.is(applyModeOf(path), "restart", path);
  }
});

test("forecastModel ensemble refuses a horizon beyond 6 buckets, naming the field", () => {
  assert.throws(() => validateConfig({ engine: { horizonBuckets: 7 } }), /engine\.horizonBuckets: must be <= 6 with forecastModel "ensemble"/);
  assert.is(validateConfig({ engine: { horizonBuckets: 7, forecastModel: "hw" } }).engine.horizonBuckets, 7);
});

test.run();
