// The model registry on a real nats-server, the hot swap in a running engine (state kept), and the
// live path: `serve --kv` swaps weights when engine.lstm.modelVersion changes in the config store,
// refuses a version that does not exist (keeping its weights), and rolls back.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { NatsServer } from "../../src/nats/server.ts";
import { LstmWeights } from "../../src/forecast/lstm.ts";
import { Engine } from "../../src/engine/index.ts";
import { userHash } from "../../src/telemetry/hash.ts";
import { ConfigStore } from "../../src/config/index.ts";
import { ModelRegistry, ModelNotFoundError, BadModelError } from "../../src/models/index.ts";
import { spawnServe, killChild, type ServeChild } from "../processor/support.ts";

let srv: NatsServer;
let nc: NatsConnection;
test.before(async () => {
  srv = await NatsServer.start();
  nc = await connect({ servers: srv.url });
});
test.after(async () => {
  await nc.close();
  await srv.dispose();
});

async function rejects(p: Promise<unknown>, check: (e: Error) => boolean, what: string): Promise<void> {
  try {
    await p;
  } catch (e) {
    assert.ok(check(e as Error), `${what}: unexpected ${(e as Error).name}: ${(e as Error).message}`);
    return;
  }
  assert.unreachable(`${what}: did not throw`);
}

const w = (seed: number) => LstmWeights.init(seed).toBytes();

test("registry: versions in order with metadata; bad blobs and unknown versions are named", async () => {
  const reg = await ModelRegistry.open(nc, "models-a");
  assert.equal(await reg.list(), []);
  const v1 = await reg.put(w(1), { source: "upload", promoted: false });
  const v2 = await reg.put(w(2), { source: "retrain", parent: "v1", promoted: true, holdoutError: 0.5 });
  assert.is(v1.version, "v1");
  assert.is(v2.version, "v2");
  assert.equal((await reg.list()).map((m) => [m.version, m.promoted, m.parent ?? null]), [["v1", false, null], ["v2", true, "v1"]]);
  assert.equal(await reg.get("v2"), w(2));
  assert.is((await reg.meta("v2")).holdoutError, 0.5);
  await rejects(reg.get("v9"), (e) => e instanceof ModelNotFoundError && /v9 not found in object store models-a/.test(e.message), "unknown version");
  await rejects(reg.put(new Uint8Array([1, 2, 3]), { source: "upload", promoted: false }), (e) => e instanceof BadModelError, "bad blob");
  assert.is((await reg.list()).length, 2, "nothing stored by the refused put");
});

test("hot swap: new weights in place, every user's state kept", async () => {
  const e = await Engine.create({ capacityUsers: 256, bucketWidthMs: 1000, allowedLatenessMs: 0, forecastModel: "ensemble", horizonBuckets: 1 });
  const users = Array.from({ length: 20 }, (_, i) => userHash(`swap-${i}`));
  for (let b = 0; b < 30; b++) {
    e.ingestCounts(users.map((h, i) => ({ userHash: h, timeMs: b * 1000 + 1, requests: 5 + ((i * b) % 7) })));
    e.tick((b + 1) * 1000);
  }
  const before = users.map((h) => [e.userTotals(h)?.requests, e.userForecast(h)?.ratePerSec]);
  e.setLstmWeights(w(7));
  assert.equal(e.lstmWeights(), w(7));
  assert.equal(users.map((h) => [e.userTotals(h)?.requests, e.userForecast(h)?.ratePerSec]), before, "totals and HW forecasts unchanged");
  assert.is(e.stats().usersTracked, 20);
  assert.throws(() => e.setLstmWeights(new Uint8Array(10)));
  assert.equal(e.lstmWeights(), w(7), "a refused blob changes nothing");
  const hw = await Engine.create({ capacityUsers: 16 });
  assert.throws(() => hw.setLstmWeights(w(1)), /needs forecastModel "ensemble"/);
});

async function lineAfter(c: ServeChild, from: number, re: RegExp, timeoutMs = 30_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const hit = c.output.slice(from).find((l) => re.test(l));
    if (hit) return hit;
    if (Date.now() > deadline) throw new Error(`no line matching ${re} within ${timeoutMs} ms:\n${c.output.slice(from).join("\n")}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

test("serve (watching the config KV): a config change swaps the model live, an unknown version is refused, a rollback works", async () => {
  const reg = await ModelRegistry.open(nc, "foresight-models");
  await reg.put(w(11), { source: "upload", promoted: false });
  await reg.put(w(12), { source: "upload", promoted: false });
  const store = await ConfigStore.open(nc);
  let rev = await store.set({ engine: { lstm: { modelVersion: "v1" } } }, 0);
  let child: ServeChild | undefined;
  try {
    child = await spawnServe(["--servers", srv.url, "--http-port", "0", "--prefix", "swp", "--partitions", "2"]);
    const first = await lineAfter(child, 0, /"model swapped"/);
    assert.match(first, /"version":"v1"/);
    let mark = child.output.length;
    rev = await store.set({ engine: { lstm: { modelVersion: "v2" } } }, rev);
    assert.match(await lineAfter(child, mark, /"model swapped"/), /"version":"v2"/);
    mark = child.output.length;
    rev = await store.set({ engine: { lstm: { modelVersion: "v9" } } }, rev);
    const refused = await lineAfter(child, mark, /model version refused/);
    assert.match(refused, /ModelNotFoundError/);
    assert.match(refused, /v9 not found/);
    mark = child.output.length;
    rev = await store.set({ engine: { lstm: { modelVersion: "v1" } } }, rev);
    assert.match(await lineAfter(child, mark, /"model swapped"/), /"version":"v1"/);
  } finally {
    await killChild(child);
  }
});

test.run();
