// Config bench: time from `ConfigStore.set` returning control to a running `ConfigWatcher`'s
// onChange with that revision, over 200 revisions on a local nats-server (hdr-histogram-js
// percentiles), and the cost of validating a 50-pool document. Every revision the watcher
// reports must be the one just written, with the value written, before any figure is reported.
// Prints a table and writes bench/results/config.json.
// Run: npm run bench:config
import * as hdr from "hdr-histogram-js";
import { connect } from "@nats-io/transport-node";
import { pino } from "pino";
import { Registry } from "prom-client";
import { NatsServer } from "../src/nats/server.ts";
import { ConfigStore, ConfigWatcher, validateConfig, type ConfigUpdate } from "../src/config/index.ts";
import { writeBenchJson } from "./env.ts";

const REVISIONS = 200;
const VALIDATIONS = 1000;
const BUCKET = "bench-config";

const srv = await NatsServer.start();
const nc = await connect({ servers: srv.url });
// set → applied, µs.
const hist = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 3 });
let wrong = 0;
try {
  const store = await ConfigStore.open(nc, { bucket: BUCKET });
  let resolve: (u: ConfigUpdate) => void = () => {};
  const w = await ConfigWatcher.start({
    nc,
    bucket: BUCKET,
    registry: new Registry(),
    logger: pino({ level: "silent" }),
    onChange: (u) => resolve(u),
  });
  let rev = 0;
  try {
    for (let i = 0; i < REVISIONS; i++) {
      const applied = new Promise<ConfigUpdate>((r) => (resolve = r));
      const horizon = 1 + (i % 6);
      const t0 = performance.now();
      rev = await store.set({ engine: { horizonBuckets: horizon } }, rev);
      const u = await applied;
      hist.recordValue(Math.max(1, Math.round((performance.now() - t0) * 1000)));
      if (u.revision !== rev || u.config.engine.horizonBuckets !== horizon) wrong++;
    }
  } finally {
    await w.stop();
  }
} finally {
  await nc.close();
  await srv.dispose();
}
if (wrong) throw new Error(`bench check failed: ${wrong} of ${REVISIONS} updates did not carry the revision and value just written`);

const doc = {
  pools: Array.from({ length: 50 }, (_, i) => ({ name: `p${i}`, workload: { name: `w${i}` }, costModel: { requestsPerSecPerReplica: 10 } })),
};
const vh = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 3 });
for (let i = 0; i < VALIDATIONS; i++) {
  const t0 = performance.now();
  validateConfig(doc);
  vh.recordValue(Math.max(1, Math.round((performance.now() - t0) * 1000)));
}

const ms = (us: number) => Math.round(us) / 1000;
const result = {
  revisions: REVISIONS,
  check: "every update the watcher reported carried the revision and value just written",
  setToAppliedMs: {
    p50: ms(hist.getValueAtPercentile(50)),
    p90: ms(hist.getValueAtPercentile(90)),
    p99: ms(hist.getValueAtPercentile(99)),
    max: ms(hist.maxValue),
    mean: Math.round(hist.mean) / 1000,
  },
  validate50Pools: {
    runs: VALIDATIONS,
    p50Us: Math.round(vh.getValueAtPercentile(50)),
    p99Us: Math.round(vh.getValueAtPercentile(99)),
    meanUs: Math.round(vh.mean),
  },
};
console.log(`\nConfig bench: ${REVISIONS} revisions set → applied by a running watcher; validation of a 50-pool document ×${VALIDATIONS}\n`);
console.log("| set → applied p50 ms | p90 ms | p99 ms | max ms | validate 50 pools p50 µs | p99 µs |");
console.log("|---:|---:|---:|---:|---:|---:|");
const s = result.setToAppliedMs;
const v = result.validate50Pools;
console.log(`| ${s.p50} | ${s.p90} | ${s.p99} | ${s.max} | ${v.p50Us} | ${v.p99Us} |`);
const out = new URL("./results/config.json", import.meta.url).pathname;
writeBenchJson(out, "npm run bench:config", result);
console.log(`\nwrote ${out}`);
