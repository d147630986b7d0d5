// A 3-node JetStream cluster loses a node while telemetry is published to an R3 stream and the
// processor consumes it: nothing is lost, nothing is applied twice. Checked per user (each
// user's totals in the live engines equal what was published), so a lost event and a duplicate
// cannot cancel out as they would in a sum.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { connect } from "@nats-io/transport-node";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { NatsCluster } from "../../src/nats/server.ts";
import { createLogger } from "../../src/obs/logger.ts";
import { Processor, createWasmEngineFactory, ensureStreams, processorNames, type WasmPartitionEngine } from "../../src/processor/index.ts";
import { buildFrames, lastSeqs, makeUsers, publishFrames, totalsObject, waitFor, type Totals } from "./support.ts";

const T0 = 1_700_000_000_000;

test("R3 stream on a 3-node cluster: a node dies mid-publish, every event is applied exactly once", async () => {
  const cluster = await NatsCluster.start(3);
  const P = 2;
  const names = processorNames("clu");
  const nc = await connect({ servers: cluster.urls, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
  let proc: Processor | undefined;
  try {
    const jsm = await jetstreamManager(nc);
    await ensureStreams(jsm, names, { replicas: 3 });
    proc = await Processor.start({
      nats: { servers: cluster.urls, reconnectTimeWaitMs: 100 },
      prefix: "clu",
      partitions: P,
      streams: { replicas: 3 },
      engineFactory: createWasmEngineFactory({ bucketWidthMs: 1000, allowedLatenessMs: 2000, capacityUsers: 1024 }),
      capacityUsers: 2048,
      tickIntervalMs: 200,
      checkpointIntervalMs: 1000,
      leaseTtlMs: 10_000,
      httpPort: -1,
      clock: () => T0,
      log: createLogger({ level: process.env.FORESIGHT_TEST_LOG === "1" ? "debug" : "silent" }),
    });
    const users = makeUsers(60, P, "clu");
    const set = buildFrames(users, P, 8000, 50, T0 + 1, 900);
    const js = jetstream(nc);
    const third = Math.floor(set.frames.length / 3);
    await publishFrames(js, names, set.frames, { to: third, retry: true });
    const publishing = publishFrames(js, names, set.frames, { from: third, retry: true, window: 16 });
    // Kill the node the processor is connected to: its consumers and connection must move.
    const victim = cluster.servers.find((s) => proc!.connection.getServer().includes(String(s.port)))!;
    await victim.kill();
    await publishing;
    const info = await jsm.streams.info(names.telemetryStream);
    assert.is(info.state.messages, set.frames.length, "every frame stored once");
    assert.is(info.config.num_replicas, 3);
    const want = await lastSeqs(jsm, names, P);
    await waitFor(
      `processor to catch up after the node loss (want ${want})`,
      () => {
        const got = want.map((_, p) => proc!.worker(p)?.lastAppliedSeq ?? -1);
        if (got.every((s, p) => s >= want[p])) return true;
        throw new Error(`applied up to ${got}`);
      },
      60_000,
      100,
    );
    let applied = 0;
    for (let p = 0; p < P; p++) applied += proc.worker(p)!.engine.stats().eventsApplied;
    assert.is(applied, set.events);
    // Per-user cumulative totals held by the running engines (every event applied, whatever its bucket).
    const got = new Map<string, Totals>();
    for (const u of users) {
      const t = (proc.worker(u.partition)!.engine as WasmPartitionEngine).engine.userTotals({ lo: u.lo, hi: u.hi });
      if (t && t.requests > 0) got.set(u.hex, { requests: t.requests, inputTokens: t.inputTokens, outputTokens: t.outputTokens });
    }
    assert.is(got.size, set.totals.size, "every published user is in an engine");
    assert.equal(totalsObject(got), totalsObject(set.totals), "per-user totals equal what was published");
  } finally {
    await proc?.stop();
    await nc.close();
    await cluster.dispose();
  }
});

test.run();
