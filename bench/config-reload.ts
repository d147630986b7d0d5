// Ad-hoc measurement (not a test): time from calling `ConfigStore.set` to the watcher's
// onChange, over 200 revisions on a local nats-server, and schema validation cost of a
// 50-pool document. Run: npm run bench:config
import { connect } from "@nats-io/transport-node";
import { pino } from "pino";
import { Registry } from "prom-client";
import { NatsServer } from "../src/nats/server.ts";
import { ConfigStore, ConfigWatcher, validateConfig, type ConfigUpdate } from "../src/config/index.ts";

const REVISIONS = 200;
const VALIDATIONS = 1000;

const srv = await NatsServer.start();
const nc = await connect({ servers: srv.url });
try {
  const store = await ConfigStore.open(nc, { bucket: "measure" });
  let resolve: (u: ConfigUpdate) => void = () => {};
  const w = await ConfigWatcher.start({
    nc,
    bucket: "measure",
    registry: new Registry(),
    logger: pino({ level: "silent" }),
    onChange: (u) => resolve(u),
  });
  const latMs: number[] = [];
  let rev = 0;
  try {
    for (let i = 0; i < REVISIONS; i++) {
      const applied = new Promise<ConfigUpdate>((r) => (resolve = r));
      const t0 = performance.now();
      rev = await store.set({ engine: { horizonBuckets: 1 + (i % 6) } }, rev);
      await applied;
      latMs.push(performance.now() - t0);
    }
  } finally {
    await w.stop();
  }
  latMs.sort((a, b) => a - b);
  const q = (p: number) => latMs[Math.min(latMs.length - 1, Math.floor(p * latMs.length))].toFixed(2);
  const doc = {
    pools: Array.from({ length: 50 }, (_, i) => ({ name: `p${i}`, workload: { name: `w${i}` }, costModel: { requestsPerSecPerReplica: 10 } })),
  };
  const t1 = performance.now();
  for (let i = 0; i < VALIDATIONS; i++) validateConfig(doc);
  const validateUs = ((performance.now() - t1) * 1000) / VALIDATIONS;
  const result = { revisions: REVISIONS, setToAppliedMs: { p50: q(0.5), p99: q(0.99), max: q(1) }, validate50PoolsUs: Math.round(validateUs) };
  console.log("| set -> applied p50 ms | p99 ms | max ms | validate 50 pools µs |");
  console.log("|---|---|---|---|");
  console.log(`| ${result.setToAppliedMs.p50} | ${result.setToAppliedMs.p99} | ${result.setToAppliedMs.max} | ${result.validate50PoolsUs} |`);
  console.log(JSON.stringify(result));
} finally {
  await nc.close();
  await srv.dispose();
}
