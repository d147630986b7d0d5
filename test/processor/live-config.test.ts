// Live engine reconfiguration in the processor against a real nats-server: a changed horizon and
// quantile move every owned partition onto a reconfigured engine without losing or re-applying an
// event; a change that needs a restart is refused while the running engine stays; and a checkpoint
// written under the new options restores into a processor started with the old ones.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { connect } from "@nats-io/transport-node";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { NatsServer } from "../../src/nats/server.ts";
import { createLogger } from "../../src/obs/logger.ts";
import { Processor, createWasmEngineFactory, type WasmPartitionEngine } from "../../src/processor/index.ts";
import { buildFrames, lastSeqs, makeUsers, publishFrames, waitFor } from "./support.ts";

const T0 = 1_700_000_000_000;
const P = 2;
const quiet = createLogger({ level: process.env.FORESIGHT_TEST_LOG === "1" ? "debug" : "silent" });

function engineOf(proc: Processor, p: number): WasmPartitionEngine {
  return proc.worker(p)!.engine as WasmPartitionEngine;
}

function applied(proc: Processor): number {
  let n = 0;
  for (let p = 0; p < P; p++) n += proc.worker(p)?.engine.stats().eventsApplied ?? 0;
  return n;
}

test("live engine options: state kept, events after the change applied once, restart-only changes refused", async () => {
  const srv = await NatsServer.start();
  const nc = await connect({ servers: srv.url });
  const start = () =>
    Processor.start({
      nats: { servers: [srv.url] },
      prefix: "live",
      partitions: P,
      engineFactory: createWasmEngineFactory({ bucketWidthMs: 1000, allowedLatenessMs: 2000, horizonBuckets: 5 }),
      capacityUsers: 2048,
      tickIntervalMs: 60_000,
      checkpointIntervalMs: 60_000,
      leaseTtlMs: 3000,
      httpPort: -1,
      clock: () => T0 + 60_000,
      log: quiet,
    });
  let proc = await start();
  try {
    const names = proc.names;
    const jsm = await jetstreamManager(nc);
    const js = jetstream(nc);
    const users = makeUsers(40, P, "live");
    const caughtUp = async () => {
      const want = await lastSeqs(jsm, names, P);
      await waitFor("processor to catch up", () => want.every((seq, p) => (proc.worker(p)?.lastAppliedSeq ?? -1) >= seq));
    };
    const a = buildFrames(users, P, 3000, 100, T0 + 58_000, 500);
    await publishFrames(js, names, a.frames, { idPrefix: "a" });
    await caughtUp();
    assert.is(applied(proc), a.events);
    const before = [0, 1].map((p) => engineOf(proc, p).snapshot().byteLength);

    await proc.applyLive({ engine: { horizonBuckets: 2, upperQuantile: 0.9, alpha: 0.3 } });
    for (let p = 0; p < P; p++) {
      const e = engineOf(proc, p).engine;
      assert.is(e.options.horizonBuckets, 2, `partition ${p} horizon`);
      assert.is(e.options.upperQuantile, 0.9, `partition ${p} quantile`);
      assert.is(e.snapshot().byteLength, before[p], `partition ${p} state size`);
    }
    assert.is(applied(proc), a.events, "no event lost or applied twice by the move");

    // Events after the change reach the new engines (the consumer stages into their buffers).
    const b = buildFrames(users, P, 2000, 100, T0 + 58_500, 500);
    await publishFrames(js, names, b.frames, { idPrefix: "b" });
    await caughtUp();
    assert.is(applied(proc), a.events + b.events);

    // A change of an option that shapes memory is refused; the running engine stays.
    const running = engineOf(proc, 0);
    await proc.applyLive({ engine: { seasonPoints: 24 } });
    assert.is(engineOf(proc, 0), running, "engine unchanged after a refused change");
    assert.is(running.engine.options.horizonBuckets, 2, "the accepted live options stay in force");
    assert.is(applied(proc), a.events + b.events);

    // Stop (final checkpoint under horizon 2), then start with the original options: the
    // checkpoints restore and every event is still counted once.
    await proc.stop();
    proc = await start();
    await waitFor("partitions restored", () => proc.ownedPartitions().length === P);
    assert.is(applied(proc), a.events + b.events);
    assert.is(engineOf(proc, 0).engine.options.horizonBuckets, 5);
  } finally {
    await proc.stop();
    await nc.close();
    await srv.dispose();
  }
});

test.run();
