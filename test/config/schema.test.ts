// Schema, validation messages, merging and diffs: pure, no servers.
import { test } from "uvu";
import * as assert from "uvu/assert";
import {
  applyModeOf,
  CONFIG_APPLY_MODES,
  ConfigParseError,
  ConfigValidationError,
  DEFAULT_CONFIG,
  deepMerge,
  diffConfigs,
  envLayer,
  getPath,
  leafPaths,
  parseConfigText,
  validateConfig,
} from "../../src/config/index.ts";

/** The validation error of `doc`, failing the test if it validates. */
function issuesOf(doc: unknown): ConfigValidationError {
  try {
    validateConfig(doc, "test");
  } catch (err) {
    assert.instance(err, ConfigValidationError);
    return err as ConfigValidationError;
  }
  throw new assert.Assertion({ message: `expected ${JSON.stringify(doc)} to be rejected` } as never);
}

const pool = (over: Record<string, unknown> = {}) => ({
  name: "chat",
  workload: { name: "chat-api" },
  costModel: { requestsPerSecPerReplica: 50 },
  ...over,
});

test("defaults: an empty document gets every documented default", () => {
  const c = validateConfig({});
  assert.equal(c, DEFAULT_CONFIG);
  assert.is(c.engine.bucketWidthMs, 60_000);
  assert.is(c.engine.capacityUsers, 262_144);
  assert.is(c.engine.seasonPoints, 48);
  assert.is(c.engine.horizonBuckets, 5);
  assert.is(c.engine.upperQuantile, 0.95);
  assert.is(c.engine.forecastModel, "ensemble");
  assert.is(c.engine.lstm.trainUsersPerBucket, 64);
  assert.is(c.schedule.leaseTtlMs, 15_000);
  assert.is(c.nats.partitions, 8);
  assert.is(c.nats.replicas, 1);
  assert.is(c.nats.subjectPrefix, "foresight");
  assert.is(c.nats.kv.configBucket, "foresight-config");
  assert.equal(c.nats.connection.servers, ["nats://127.0.0.1:4222"]);
  assert.equal(c.pools, []);
  assert.ok(c.throttle.grantRefreshMs < c.throttle.grantTtlMs);
  assert.ok("default" in c.throttle.safeLimits);
  assert.ok(Object.isFrozen(DEFAULT_CONFIG));
});

test("defaults: nested sections fill in around the keys a user sets; pool defaults apply", () => {
  const c = validateConfig({ engine: { holtWinters: { beta: 0.1 } }, pools: [pool()] });
  assert.is(c.engine.holtWinters.beta, 0.1);
  assert.is(c.engine.holtWinters.alpha, 0.2);
  assert.is(c.engine.bucketWidthMs, 60_000);
  assert.is(c.pools[0].mode, "shadow");
  assert.is(c.pools[0].workload.kind, "Deployment");
  assert.is(c.pools[0].workload.namespace, "default");
  assert.is(c.pools[0].costModel.cpuPerReplicaMillicores, 1000);
});

test("errors: an unknown key is named by its full path", () => {
  const e = issuesOf({ engine: { bucketWidhtMs: 1000 }, extra: true });
  assert.equal(
    e.issues.map((i) => i.path).sort(),
    ["engine.bucketWidhtMs", "extra"],
  );
  assert.ok(e.issues.every((i) => i.message === "unknown key"));
  assert.match(e.message, /engine\.bucketWidhtMs: unknown key/);
  assert.match(e.message, /\(test\)/);
});

test("errors: wrong types and ranges name the path and the reason", () => {
  const e = issuesOf({ engine: { bucketWidthMs: "60s", seasonPoints: 12, lstm: { learningRate: 2 } }, nats: { replicas: 2 } });
  const byPath = new Map(e.issues.map((i) => [i.path, i.message]));
  assert.match(byPath.get("engine.bucketWidthMs") ?? "", /expected int|number/i);
  assert.match(byPath.get("engine.seasonPoints") ?? "", />=24/);
  assert.match(byPath.get("engine.lstm.learningRate") ?? "", /<=1/);
  assert.match(byPath.get("nats.replicas") ?? "", /1\|3\|5/);
  assert.is(e.issues.length, 4);
});

test("errors: minReplicas > maxReplicas names the pool's maxReplicas", () => {
  const e = issuesOf({ pools: [pool(), pool({ name: "embed", minReplicas: 5, maxReplicas: 2 })] });
  assert.equal(e.issues, [{ path: "pools.1.maxReplicas", message: "must be >= minReplicas (5)" }]);
});

test("errors: duplicate pool names and a missing required field", () => {
  const e = issuesOf({ pools: [pool(), pool()] });
  assert.equal(e.issues.map((i) => i.path), ["pools.1.name"]);
  assert.match(e.issues[0].message, /duplicate pool name "chat"/);
  const missing = issuesOf({ pools: [{ name: "x", workload: { name: "w" } }] });
  assert.equal(missing.issues.map((i) => i.path), ["pools.0.costModel"]);
});

test("errors: grantRefreshMs >= grantTtlMs; safeLimits without a default plan; envoy default plan", () => {
  const e = issuesOf({ throttle: { grantTtlMs: 5000, grantRefreshMs: 5000 } });
  assert.equal(e.issues, [{ path: "throttle.grantRefreshMs", message: "must be < grantTtlMs (5000)" }]);
  const noDefault = issuesOf({ throttle: { safeLimits: { pro: { requestsPerSec: 100 } } } });
  // The Envoy default plan ("default") then has no safe limit either: both are reported.
  assert.equal(noDefault.issues.map((i) => i.path), ["throttle.safeLimits.default", "envoy.descriptors.defaultPlan"]);
  const plan = issuesOf({ envoy: { descriptors: { defaultPlan: "gold" } } });
  assert.equal(plan.issues.map((i) => i.path), ["envoy.descriptors.defaultPlan"]);
});

test("errors: pools' minReplicas over the cluster budget; smoothing bounds", () => {
  const e = issuesOf({ cluster: { maxReplicasTotal: 3 }, pools: [pool({ minReplicas: 2 }), pool({ name: "b", minReplicas: 2 })] });
  assert.equal(e.issues.map((i) => i.path), ["cluster.maxReplicasTotal"]);
  const hw = issuesOf({ engine: { holtWinters: { alpha: 0.5, alphaMax: 0.4 } } });
  assert.equal(hw.issues, [{ path: "engine.holtWinters.alphaMax", message: "must be >= alpha (0.5)" }]);
});

test("pools: allocator fields default, modes are shadow/scale/hpa-floor/resize, one default pool", () => {
  const c = validateConfig({ pools: [pool()] });
  const p = c.pools[0];
  assert.is(p.mode, "shadow");
  assert.is(p.priority, 0);
  assert.is(p.targetUtilization, 0.8);
  assert.is(p.decisionIntervalMs, 15_000);
  assert.is(p.demandMethod, "variance");
  assert.is(p.upperQuantile, 0.99);
  assert.is(p.scaleDownMaxStepPercent, 50);
  assert.is(p.scaleDownMaxStepReplicas, undefined);
  assert.equal(p.reactive, { targetUtilization: 0.7, metricWindowSec: 60 });
  assert.equal(p.match, { routes: [], models: [], plans: [], segments: [], users: [], default: false });
  for (const mode of ["shadow", "scale", "hpa-floor", "resize"]) assert.is(validateConfig({ pools: [pool({ mode })] }).pools[0].mode, mode);
  assert.equal(issuesOf({ pools: [pool({ mode: "active" })] }).issues.map((i) => i.path), ["pools.0.mode"]);
  const two = issuesOf({ pools: [pool({ match: { default: true } }), pool({ name: "b", match: { default: true } })] });
  assert.equal(two.issues, [{ path: "pools.1.match.default", message: "only one pool may be the default (also pools.0)" }]);
  const bw = issuesOf({ pools: [pool({ bandwidth: { ingress: "10 Mbit" } })] });
  assert.equal(bw.issues.map((i) => i.path), ["pools.0.bandwidth.ingress"]);
  const tok = issuesOf({ pools: [pool({ costModel: { requestsPerSecPerReplica: 5, tokensPerRequest: 800 } })] });
  assert.equal(tok.issues.map((i) => i.path), ["pools.0.costModel.tokensPerSecPerReplica"]);
  assert.equal(issuesOf({ pools: [pool({ demandMethod: "max" })] }).issues.map((i) => i.path), ["pools.0.demandMethod"]);
});

test("errors: engine rules the WASM engine enforces at start are caught by the schema", () => {
  const width = issuesOf({ engine: { bucketWidthMs: 7000 } });
  assert.equal(width.issues, [{ path: "engine.bucketWidthMs", message: "must divide a day (86400000 ms) exactly" }]);
  const late = issuesOf({ engine: { bucketWidthMs: 1000, allowedLatenessMs: 6001 } });
  assert.equal(late.issues.map((i) => i.path), ["engine.allowedLatenessMs"]);
  assert.match(late.issues[0].message, /<= 6000/);
  // 10-minute buckets: 144 per day; horizon 200 and 145 season points do not fit.
  const day = issuesOf({ engine: { forecastModel: "hw", bucketWidthMs: 600_000, seasonPoints: 144, horizonBuckets: 200, maxCatchUpBuckets: 145 } });
  assert.equal(day.issues.map((i) => i.path), ["engine.horizonBuckets", "engine.maxCatchUpBuckets"]);
  assert.match(day.issues[0].message, /<= 144/);
  assert.is(validateConfig({ engine: { forecastModel: "hw", bucketWidthMs: 600_000, seasonPoints: 144, horizonBuckets: 144 } }).engine.horizonBuckets, 144);
});

test("parseConfigText: YAML, JSON, empty, and errors naming the source", () => {
  assert.equal(parseConfigText("engine:\n  horizonBuckets: 3\n", "a.yaml"), { engine: { horizonBuckets: 3 } });
  assert.equal(parseConfigText('{"log":{"level":"warn"}}', "a.json"), { log: { level: "warn" } });
  assert.equal(parseConfigText("", "empty.yaml"), {});
  assert.throws(() => parseConfigText("{bad", "b.json"), (e: unknown) => e instanceof ConfigParseError && /b\.json/.test((e as Error).message));
  assert.throws(() => parseConfigText("- 1\n- 2\n", "list.yaml"), (e: unknown) => e instanceof ConfigParseError && /mapping/.test((e as Error).message));
});

test("deepMerge: objects merge, arrays replace, inputs untouched", () => {
  const a = { nats: { connection: { servers: ["a", "b"], name: "x" } }, pools: [1, 2] };
  const b = { nats: { connection: { servers: ["c"] } }, pools: [3] };
  assert.equal(deepMerge(a, b), { nats: { connection: { servers: ["c"], name: "x" } }, pools: [3] });
  assert.equal(a.nats.connection.servers, ["a", "b"]);
});

test("diffConfigs: path-level added/removed/changed, arrays by index", () => {
  const a = { engine: { horizonBuckets: 5 }, pools: [{ name: "a", mode: "shadow" }] };
  const b = { engine: { horizonBuckets: 7, seasonPoints: 24 }, pools: [{ name: "a", mode: "scale" }, { name: "b" }] };
  assert.equal(diffConfigs(a, b), [
    { path: "engine.horizonBuckets", kind: "changed", before: 5, after: 7 },
    { path: "engine.seasonPoints", kind: "added", after: 24 },
    { path: "pools.0.mode", kind: "changed", before: "shadow", after: "scale" },
    { path: "pools.1.name", kind: "added", after: "b" },
  ]);
  assert.equal(diffConfigs(b, b), []);
  assert.equal(diffConfigs({ log: { level: "info" } }, {}), [{ path: "log.level", kind: "removed", before: "info" }]);
});

test("apply modes: every leaf of the config is classified; restart vs live examples", () => {
  const cfg = validateConfig({ pools: [pool()] });
  for (const p of leafPaths(cfg)) assert.ok(["live", "restart"].includes(applyModeOf(p)), p);
  for (const section of Object.keys(cfg)) assert.ok(section in CONFIG_APPLY_MODES, `section ${section} has a mode`);
  assert.is(applyModeOf("engine.bucketWidthMs"), "restart");
  assert.is(applyModeOf("engine.capacityUsers"), "restart");
  assert.is(applyModeOf("nats.connection.servers"), "restart");
  assert.is(applyModeOf("nats.partitions"), "restart");
  assert.is(applyModeOf("engine.horizonBuckets"), "live");
  assert.is(applyModeOf("engine.upperQuantile"), "live");
  assert.is(applyModeOf("pools.0.mode"), "live");
  assert.is(applyModeOf("throttle.safeLimits.default.requestsPerSec"), "live");
  // What `foresight allocate` follows live (src/allocator/kube/service.ts applySettings) and what not.
  for (const p of ["pools.0.maxReplicas", "pools.0.minReplicas", "pools.1.mode", "pools.0.costModel.requestsPerSecPerReplica", "pools.0.stabilizationWindowSec", "pools.0.workload.name", "pools.2", "cluster.maxReplicasTotal", "throttle.plans.default.requestsPerSec", "throttle.grantTtlMs", "engine.upperQuantile"]) {
    assert.is(applyModeOf(p), "live", p);
  }
  for (const p of ["engine.capacityUsers", "schedule.leaseTtlMs", "nats.partitions", "http.metricsPort"]) assert.is(applyModeOf(p), "restart", p);
});

test("envLayer and getPath", () => {
  assert.equal(envLayer({}), {});
  assert.equal(envLayer({ FORESIGHT_NATS_SERVERS: "nats://a:1, nats://b:2", FORESIGHT_NATS_TOKEN: "t", FORESIGHT_NATS_TLS_CA: "/ca.pem", OTHER: "x" }), {
    nats: { connection: { servers: ["nats://a:1", "nats://b:2"], token: "t", tls: { caFile: "/ca.pem" } } },
  });
  assert.is(getPath(DEFAULT_CONFIG, "engine.lstm.trainUsersPerBucket"), 64);
  assert.is(getPath(DEFAULT_CONFIG, "engine.nope"), undefined);
  assert.is(getPath({ pools: [{ name: "a" }] }, "pools.0.name"), "a");
});

test.run();
