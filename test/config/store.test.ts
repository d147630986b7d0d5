// The KV-backed store, layered loading and the live watcher against a real nats-server.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { Kvm } from "@nats-io/kv";
import { pino } from "pino";
import { Registry } from "prom-client";
import { NatsServer } from "../../src/nats/server.ts";
import {
  ConfigConflictError,
  ConfigStore,
  ConfigValidationError,
  ConfigWatcher,
  DEFAULT_CONFIG,
  loadConfig,
  type ConfigRejection,
  type ConfigUpdate,
} from "../../src/config/index.ts";

let srv: NatsServer;
let nc: NatsConnection;
let dir: string;
let bucketSeq = 0;
/** A fresh bucket per test, so tests do not see each other's revisions. */
const nextBucket = () => `cfg-test-${++bucketSeq}`;

test.before(async () => {
  srv = await NatsServer.start();
  nc = await connect({ servers: srv.url });
  dir = mkdtempSync(join(tmpdir(), "foresight-config-"));
});

test.after(async () => {
  try {
    await nc?.close();
  } finally {
    await srv?.dispose();
    rmSync(dir, { recursive: true, force: true });
  }
});

/** Awaits `p`, asserts it rejects with an instance of `cls`, and returns the error. */
async function rejectsWith<E>(p: Promise<unknown>, cls: new (...a: never[]) => E): Promise<E> {
  try {
    await p;
  } catch (err) {
    assert.instance(err, cls);
    return err as E;
  }
  throw new Error(`expected a rejection with ${cls.name}`);
}

/** A queue of values pushed by callbacks, awaited in order with a deadline. */
function inbox<T>() {
  const items: T[] = [];
  const waiters: ((v: T) => void)[] = [];
  return {
    push(v: T) {
      const w = waiters.shift();
      if (w) w(v);
      else items.push(v);
    },
    next(timeoutMs = 5000): Promise<T> {
      const v = items.shift();
      if (v !== undefined) return Promise.resolve(v);
      return new Promise<T>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`nothing arrived within ${timeoutMs} ms`)), timeoutMs);
        waiters.push((x) => {
          clearTimeout(t);
          resolve(x);
        });
      });
    },
    get size() {
      return items.length;
    },
  };
}

test("precedence: defaults < file < env < KV, with the source of each value", async () => {
  const bucket = nextBucket();
  const file = join(dir, "precedence.yaml");
  writeFileSync(
    file,
    [
      "engine:",
      "  horizonBuckets: 4",
      "  upperQuantile: 0.9",
      "nats:",
      "  connection:",
      "    servers: [nats://file-only:4222]",
      "    name: from-file",
      `  kv: { configBucket: ${bucket} }`,
      "log: { level: debug }",
    ].join("\n"),
  );
  const store = await ConfigStore.open(nc, { bucket });
  await store.set({ engine: { horizonBuckets: 6 }, throttle: { burstFactor: 2 } }, 0);

  // env points at the real server (the file's server does not exist): the KV layer is read through it.
  const env = { FORESIGHT_NATS_SERVERS: srv.url, FORESIGHT_NATS_USER: "" };
  const loaded = await loadConfig({ file, env, kv: {} });
  const c = loaded.config;
  assert.is(c.engine.horizonBuckets, 6, "KV beats file");
  assert.is(c.engine.upperQuantile, 0.9, "file beats default");
  assert.is(c.engine.bucketWidthMs, DEFAULT_CONFIG.engine.bucketWidthMs, "default where nobody sets it");
  assert.equal(c.nats.connection.servers, [srv.url], "env beats file");
  assert.is(c.nats.connection.name, "from-file", "env only replaces what it sets");
  assert.is(c.nats.connection.user, undefined, "an empty env var is unset");
  assert.is(c.throttle.burstFactor, 2);
  assert.is(c.log.level, "debug");
  assert.is(loaded.kvRevision, 1);
  assert.is(loaded.sources.get("engine.horizonBuckets"), "kv");
  assert.is(loaded.sources.get("engine.upperQuantile"), "file");
  assert.is(loaded.sources.get("nats.connection.servers"), "env");
  assert.is(loaded.sources.get("engine.bucketWidthMs"), "default");

  // Without a KV layer the file's value stands; the merged result is validated as a whole.
  assert.is((await loadConfig({ file, env })).config.engine.horizonBuckets, 4);
});

test("load: a bad file names the file and the field; a KV doc that breaks a cross-field rule names kv", async () => {
  const bad = join(dir, "bad.yaml");
  writeFileSync(bad, "pools:\n  - name: a\n    workload: { name: w }\n    costModel: { requestsPerSecPerReplica: 1 }\n    minReplicas: 4\n    maxReplica: 2\n");
  try {
    await loadConfig({ file: bad, env: {} });
    assert.unreachable("should reject");
  } catch (err) {
    assert.instance(err, ConfigValidationError);
    assert.equal((err as ConfigValidationError).issues, [{ path: "pools.0.maxReplica", message: "unknown key" }]);
    assert.match((err as Error).message, /bad\.yaml/);
  }
  // Each layer is valid alone, the merge is not: refresh (file) >= TTL (KV).
  const bucket = nextBucket();
  const file = join(dir, "refresh.yaml");
  writeFileSync(file, `throttle: { grantRefreshMs: 20000 }\nnats: { kv: { configBucket: ${bucket} } }\n`);
  const store = await ConfigStore.open(nc, { bucket });
  await store.set({ throttle: { grantTtlMs: 15000, grantRefreshMs: 5000 } }, 0);
  await store.set({ throttle: { grantTtlMs: 15000 } }, 1);
  try {
    await loadConfig({ file, env: {}, kv: { nc } });
    assert.unreachable("should reject");
  } catch (err) {
    assert.instance(err, ConfigValidationError);
    assert.equal((err as ConfigValidationError).issues, [{ path: "throttle.grantRefreshMs", message: "must be < grantTtlMs (15000)" }]);
    assert.match((err as Error).message, /kv revision 2/);
  }
});

test("set: validates before writing; two writers on the same revision: one wins, one conflicts", async () => {
  const store = await ConfigStore.open(nc, { bucket: nextBucket() });
  assert.is((await store.get()).revision, 0);
  const invalid = await rejectsWith(store.set({ engine: { horizonBuckets: 0 } }, 0), ConfigValidationError);
  assert.equal(invalid.issues.map((i) => i.path), ["engine.horizonBuckets"]);
  assert.is((await store.get()).revision, 0, "nothing written on a validation error");

  const r1 = await store.set({ engine: { horizonBuckets: 6 } }, 0);
  const results = await Promise.allSettled([
    store.set({ engine: { horizonBuckets: 2 } }, r1),
    store.set({ engine: { horizonBuckets: 3 } }, r1),
  ]);
  const won = results.filter((r) => r.status === "fulfilled");
  const lost = results.filter((r): r is PromiseRejectedResult => r.status === "rejected");
  assert.is(won.length, 1);
  assert.is(lost.length, 1);
  const err = lost[0].reason as ConfigConflictError;
  assert.instance(err, ConfigConflictError);
  const winner = (won[0] as PromiseFulfilledResult<number>).value;
  assert.is(err.expectedRevision, r1);
  assert.is(err.actualRevision, winner);
  assert.match(err.message, new RegExp(`expected revision ${r1}, bucket is at revision ${winner}`));
  const now = await store.get();
  assert.is(now.revision, winner);
  assert.ok([2, 3].includes(now.config.engine.horizonBuckets));

  // Creating over an existing document is a conflict too.
  const again = await rejectsWith(store.set({}, 0), ConfigConflictError);
  assert.is(again.expectedRevision, 0);
  assert.is(again.actualRevision, winner);
});

test("history: revisions with time, operation and a diff against the previous one", async () => {
  const bucket = nextBucket();
  const store = await ConfigStore.open(nc, { bucket });
  assert.equal(await store.history(), []);
  const before = Date.now();
  const r1 = await store.set({ engine: { horizonBuckets: 6 } }, 0);
  const r2 = await store.set({ engine: { horizonBuckets: 4 }, log: { level: "warn" } }, r1);
  const kv = await new Kvm(nc).open(bucket);
  await kv.put("config", "{not json"); // another tool
  const r4 = await store.set({ log: { level: "warn" } }, r2 + 1);
  const h = await store.history();
  assert.equal(h.map((x) => x.revision), [r1, r2, r2 + 1, r4]);
  assert.ok(h.every((x) => x.operation === "PUT" && x.time.getTime() >= before - 1000));
  assert.equal(h[0].changes, [{ path: "engine.horizonBuckets", kind: "added", after: 6 }]);
  assert.equal(h[1].changes, [
    { path: "engine.horizonBuckets", kind: "changed", before: 6, after: 4 },
    { path: "log.level", kind: "added", after: "warn" },
  ]);
  assert.is(h[2].document, null);
  assert.match(h[2].error ?? "", /cannot parse/);
  assert.is(h[3].baseRevision, r2, "diff skips the unreadable revision");
  assert.equal(h[3].changes, [{ path: "engine.horizonBuckets", kind: "removed", before: 4 }]);
});

test("watcher: applies valid revisions live, classifies restart-required, rejects invalid writes", async () => {
  const bucket = nextBucket();
  const store = await ConfigStore.open(nc, { bucket });
  await store.set({ pools: [{ name: "chat", workload: { name: "chat" }, costModel: { requestsPerSecPerReplica: 20 } }] }, 0);
  const registry = new Registry();
  let logged = "";
  const logger = pino({ level: "info" }, new Writable({ write: (c, _e, cb) => ((logged += c), cb()) }));
  const updates = inbox<ConfigUpdate>();
  const rejections = inbox<ConfigRejection>();
  const watcher = await ConfigWatcher.start({
    nc,
    bucket,
    base: { engine: { upperQuantile: 0.9 } },
    registry,
    logger,
    onChange: (u) => updates.push(u),
    onReject: (r) => rejections.push(r),
  });
  try {
    assert.is(watcher.revision, 1, "starts with the current revision");
    assert.is(watcher.config.pools[0].name, "chat");
    assert.is(watcher.config.engine.upperQuantile, 0.9, "base layers apply under KV");

    // A live change: horizon and pool mode.
    const doc = (await store.get()).document as { pools: Record<string, unknown>[] };
    await store.set({ engine: { horizonBuckets: 2 }, pools: [{ ...doc.pools[0], mode: "scale" }] }, 1);
    const u1 = await updates.next();
    assert.is(u1.revision, 2);
    assert.equal(u1.changes.map((c) => c.path), ["engine.horizonBuckets", "pools.0.mode"]);
    assert.equal(u1.restartRequired, []);
    assert.is(watcher.config.engine.horizonBuckets, 2);
    assert.is(watcher.config.pools[0].mode, "scale");

    // A change that needs a restart is applied to the config object but reported as such.
    await store.set({ engine: { horizonBuckets: 2, bucketWidthMs: 30_000 }, pools: [{ ...doc.pools[0], mode: "scale" }] }, 2);
    const u2 = await updates.next();
    assert.equal(u2.restartRequired, ["engine.bucketWidthMs"]);
    assert.equal(watcher.restartPending, ["engine.bucketWidthMs"]);
    assert.match(logged, /restart needed for engine\.bucketWidthMs/);

    // Another tool writes garbage, then a schema-invalid document: both rejected, config stays.
    const kv = await new Kvm(nc).open(bucket);
    await kv.put("config", "{oops");
    const j = await rejections.next();
    assert.is(j.reason, "invalid_json");
    assert.is(j.revision, 4);
    await kv.put("config", JSON.stringify({ engine: { horizonBuckets: 2, upperQuantile: 2 } }));
    const s = await rejections.next();
    assert.is(s.reason, "invalid_schema");
    assert.instance(s.error, ConfigValidationError);
    assert.equal((s.error as ConfigValidationError).issues.map((i) => i.path), ["engine.upperQuantile"]);
    assert.is(watcher.revision, 3, "the running config stays");
    assert.is(watcher.config.engine.bucketWidthMs, 30_000);
    assert.is(updates.size, 0, "no update for rejected revisions");
    assert.match(logged, /config revision 5 rejected, keeping revision 3/);
    const metrics = await registry.metrics();
    assert.match(metrics, /foresight_config_rejected_total\{reason="invalid_json"\} 1/);
    assert.match(metrics, /foresight_config_rejected_total\{reason="invalid_schema"\} 1/);
    assert.match(metrics, /foresight_config_revision 3/);
    assert.match(metrics, /foresight_config_restart_pending 1/);

    // The next valid write applies again (CAS on the bucket's latest revision, the invalid one).
    await store.set({ engine: { horizonBuckets: 4, bucketWidthMs: 30_000 } }, 5);
    const u3 = await updates.next();
    assert.is(u3.revision, 6);
    assert.is(watcher.config.engine.horizonBuckets, 4);
    assert.equal(watcher.config.pools, [], "a key absent from the new document falls back to lower layers");
    assert.match(await registry.metrics(), /foresight_config_revision 6/);
  } finally {
    await watcher.stop();
  }
});

test("watcher: an invalid current revision at start is rejected and the base layers run", async () => {
  const bucket = nextBucket();
  const kv = await new Kvm(nc).create(bucket, { history: 64 });
  await kv.put("config", JSON.stringify({ engine: { seasonPoints: 1 } }));
  const registry = new Registry();
  const rejections = inbox<ConfigRejection>();
  const updates = inbox<ConfigUpdate>();
  const watcher = await ConfigWatcher.start({
    nc,
    bucket,
    registry,
    logger: pino({ level: "silent" }),
    onReject: (r) => rejections.push(r),
    onChange: (u) => updates.push(u),
  });
  try {
    const r = await rejections.next();
    assert.is(r.revision, 1);
    assert.is(watcher.revision, 0);
    assert.equal(watcher.config, DEFAULT_CONFIG);
    assert.match(await registry.metrics(), /foresight_config_rejected_total\{reason="invalid_schema"\} 1/);
    // The revision is not handled again by the watch; a fixed document applies.
    await kv.put("config", JSON.stringify({ engine: { seasonPoints: 24 } }));
    const u = await updates.next();
    assert.is(u.revision, 2);
    assert.equal(u.restartRequired, ["engine.seasonPoints"]);
    assert.is(rejections.size, 0);
    // Deleting the document reverts to the lower layers.
    await kv.delete("config");
    const d = await updates.next();
    assert.is(d.revision, 3);
    assert.is(watcher.config.engine.seasonPoints, DEFAULT_CONFIG.engine.seasonPoints);
  } finally {
    await watcher.stop();
  }
});

test.run();
