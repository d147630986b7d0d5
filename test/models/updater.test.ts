// The retraining schedule end to end on a real nats-server: forecasts of real ServeGen clients in
// the forecasts stream are read back as history (per-user counts and exceedances exactly as
// published), a candidate is trained, scored, stored, and promoted through the config store;
// a candidate that cannot clear the bar is stored but not promoted and the config is unchanged.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { NatsServer } from "../../src/nats/server.ts";
import { createLogger } from "../../src/obs/logger.ts";
import { loadRateTrace, DEFAULT_TRACE_PATH, type ClientSeries } from "../../src/forecast/trace.ts";
import { userHash } from "../../src/telemetry/hash.ts";
import { ensureStreams, processorNames } from "../../src/processor/index.ts";
import { encodeForecastMessages } from "../../src/processor/forecasts.ts";
import { FORECAST_RECORD_BYTES } from "../../src/engine/layout.ts";
import { ConfigStore } from "../../src/config/index.ts";
import { ModelRegistry, ModelUpdater, readHistory } from "../../src/models/index.ts";

const WIDTH_MS = 600_000;
const DAYS = 7;
const B = DAYS * 144;
let srv: NatsServer;
let nc: NatsConnection;
let series: ClientSeries[];
const upperOf = (s: ClientSeries, t: number) => (t % 50 === 0 && s.requests[t] > 0 ? s.requests[t] - 1 : s.requests[t] + 1);

test.before(async () => {
  srv = await NatsServer.start();
  nc = await connect({ servers: srv.url });
  const all = await loadRateTrace(DEFAULT_TRACE_PATH, { filter: (k) => k.startsWith("m-small:") });
  series = all.filter((s) => s.requests.length >= B + 1).sort((a, b) => b.totalRequests - a.totalRequests || a.key.localeCompare(b.key)).slice(0, 10);
  const names = processorNames("upd");
  await ensureStreams(await jetstreamManager(nc), names);
  const js = jetstream(nc);
  // One tick per bucket b: observed = count of b, upper = the bound for b + 1.
  const hashes = series.map((s) => userHash(s.key));
  const recs = new Uint8Array(series.length * FORECAST_RECORD_BYTES);
  const dv = new DataView(recs.buffer);
  for (let b = 0; b < B; b++) {
    series.forEach((s, i) => {
      const o = i * FORECAST_RECORD_BYTES;
      dv.setUint32(o, hashes[i].lo, true);
      dv.setUint32(o + 4, hashes[i].hi, true);
      dv.setFloat64(o + 8, s.requests[b] / 600, true);
      dv.setFloat64(o + 16, upperOf(s, b + 1) / 600, true);
      dv.setFloat64(o + 24, s.requests[b] / 600, true);
    });
    for (const m of encodeForecastMessages(0, (b + 1) * WIDTH_MS + 1, recs, series.length)) await js.publish(names.forecastsSubject(0), m);
  }
});
test.after(async () => {
  await nc.close();
  await srv.dispose();
});

const nowMs = () => B * WIDTH_MS + 2;

test("history read back from the forecasts stream equals what was published, per user, with exceedances", async () => {
  const h = await readHistory(jetstream(nc), await jetstreamManager(nc), {
    stream: processorNames("upd").forecastsStream, bucketWidthMs: WIDTH_MS, allowedLatenessMs: 0, horizonBuckets: 1, historyBuckets: B, maxUsers: 100, nowMs: nowMs(),
  });
  assert.is(h.users.length, series.length);
  assert.is(h.firstBucket, 0);
  for (const s of series) {
    const h2 = userHash(s.key);
    const u = h.users.find((x) => x.key === `${h2.lo}:${h2.hi}`)!;
    assert.ok(u, s.key);
    assert.equal(Array.from(u.counts), Array.from(s.requests.subarray(0, B)), `${s.key} counts`);
    for (let t = 1; t < B; t++) assert.is(u.exceeded[t], s.requests[t] > upperOf(s, t) ? 1 : 0, `${s.key} exceedance at ${t}`);
  }
});

test("runOnce: candidate stored and promoted via the config store; an impossible bar stores but does not promote", async () => {
  const store = await ConfigStore.open(nc);
  const base = { engine: { bucketWidthMs: WIDTH_MS, allowedLatenessMs: 0, horizonBuckets: 1, lstm: { retrain: { historyBuckets: B, holdoutBuckets: 144, epochs: 1, maxUsers: 10, minImprovement: 0.01 } } } };
  const rev0 = await store.set(base, 0);
  const registry = await ModelRegistry.open(nc, "foresight-models");
  const updater = new ModelUpdater({ nc, registry, config: store, forecastsStream: processorNames("upd").forecastsStream, log: createLogger({ level: "silent" }) });
  const r = await updater.runOnce(nowMs());
  assert.is(r.liveVersion, "built-in");
  assert.is(r.users, 10);
  assert.ok(r.sequences > 10, "exceedance windows add sequences");
  assert.ok(r.promoted, r.reason);
  assert.is(r.candidate.version, "v1");
  const after = await store.get();
  assert.is(after.revision, r.configRevision);
  assert.ok(after.revision > rev0);
  assert.is(after.config.engine.lstm.modelVersion, "v1");
  assert.is(after.config.engine.bucketWidthMs, WIDTH_MS, "the rest of the document kept");

  // Second run from v1 with a bar no candidate clears.
  const doc = structuredClone(after.document) as typeof base & { engine: { lstm: { modelVersion?: string } } };
  doc.engine.lstm.retrain.minImprovement = 0.99;
  const rev2 = await store.set(doc, after.revision);
  const r2 = await updater.runOnce(nowMs());
  assert.is(r2.liveVersion, "v1");
  assert.not.ok(r2.promoted);
  assert.is(r2.candidate.version, "v2");
  assert.is((await store.get()).revision, rev2, "config untouched");
  assert.equal((await registry.list()).map((m) => [m.version, m.promoted, m.parent]), [["v1", true, "built-in"], ["v2", false, "v1"]]);
});

test.run();
