// A refused request is demand that was censored, not demand that vanished: gateways publish it
// with the `throttled` flag, and the engine counts it as a request of its user (so forecasts, and
// the grants made from them, see the real demand). Real nats-server, real publisher, processor in process.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { NatsServer } from "../../src/nats/server.ts";
import { createLogger } from "../../src/obs/logger.ts";
import { TelemetryPublisher } from "../../src/telemetry/publisher.ts";
import { userHash } from "../../src/telemetry/hash.ts";
import { Processor, createWasmEngineFactory, WasmPartitionEngine } from "../../src/processor/index.ts";
import { partitionOf } from "../../src/telemetry/frame.ts";

const P = 2;
let srv: NatsServer;
let nc: NatsConnection;
let proc: Processor | undefined;
test.before(async () => {
  srv = await NatsServer.start();
  nc = await connect({ servers: srv.url });
});
test.after(async () => {
  await proc?.stop();
  await nc.close();
  await srv.dispose();
});

test("throttled requests count as requests of their user (per-user totals equal what each gateway saw)", async () => {
  proc = await Processor.start({
    nats: { servers: [srv.url] },
    prefix: "cens",
    partitions: P,
    engineFactory: createWasmEngineFactory({ bucketWidthMs: 60_000, allowedLatenessMs: 60_000, capacityUsers: 1024 }),
    capacityUsers: 1024,
    tickIntervalMs: 600_000,
    checkpointIntervalMs: 600_000,
    leaseTtlMs: 30_000,
    httpPort: -1,
    log: createLogger({ level: "silent" }),
  });
  const pub = new TelemetryPublisher(nc, { subjectPrefix: "cens", partitions: P, flushIntervalMs: 10 });
  // Per user: how many requests, how many of them refused by the gateway.
  const plan: Record<string, { n: number; refused: number }> = { refusedHalf: { n: 300, refused: 150 }, refusedAll: { n: 120, refused: 120 }, served: { n: 200, refused: 0 } };
  const now = Date.now();
  for (const [user, p] of Object.entries(plan)) {
    for (let i = 0; i < p.n; i++) pub.record({ user, timeMs: now, inputTokens: 10, status: i < p.refused ? 429 : 200, throttled: i < p.refused });
  }
  await pub.close();
  const total = Object.values(plan).reduce((a, p) => a + p.n, 0);
  const deadline = Date.now() + 30_000;
  const applied = () => Array.from({ length: P }, (_, k) => proc!.worker(k)?.engine.stats().eventsApplied ?? 0).reduce((a, b) => a + b, 0);
  while (applied() < total) {
    if (Date.now() > deadline) throw new Error(`only ${applied()} of ${total} events applied`);
    await new Promise((r) => setTimeout(r, 20));
  }
  for (const [user, p] of Object.entries(plan)) {
    const h = userHash(user);
    const port = proc.worker(partitionOf(h.lo, P))!.engine;
    assert.instance(port, WasmPartitionEngine);
    const engine = (port as WasmPartitionEngine).engine;
    assert.is(engine.userTotals(h)?.requests, p.n, `${user}: every request, refused or not, is demand`);
  }
});

test.run();
