// One source of truth for the processor's defaults: a Processor started without schedule or
// capacity options runs with the config schema's defaults (the values `foresight config
// defaults` prints), so the library and `foresight serve` cannot drift apart.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { DEFAULT_CONFIG } from "../../src/config/index.ts";
import { NatsServer } from "../../src/nats/server.ts";
import { createLogger } from "../../src/obs/logger.ts";
import { Processor, createWasmEngineFactory } from "../../src/processor/index.ts";
import { waitFor } from "./support.ts";

test("a Processor without schedule or capacity options uses the schema's defaults", async () => {
  const srv = await NatsServer.start();
  const P = 2;
  const small = createWasmEngineFactory({ bucketWidthMs: 1000, allowedLatenessMs: 2000, forecastModel: "hw" });
  const asked: number[] = [];
  let proc: Processor | undefined;
  try {
    proc = await Processor.start({
      nats: { servers: [srv.url] },
      prefix: "defaults",
      partitions: P,
      // Records the capacity the processor asks for, and builds a small engine (the default
      // capacity of an ensemble engine is hundreds of MB, which this test does not need).
      engineFactory: (p, capacityUsers) => {
        asked.push(capacityUsers);
        return small(p, 64);
      },
      httpPort: -1,
      log: createLogger({ level: process.env.FORESIGHT_TEST_LOG === "1" ? "debug" : "silent" }),
    });
    const running = proc;
    await waitFor("both partitions to start", () => running.ownedPartitions().length === P);
    const s = running.settings;
    assert.is(s.tickIntervalMs, DEFAULT_CONFIG.schedule.tickIntervalMs);
    assert.is(s.checkpointIntervalMs, DEFAULT_CONFIG.schedule.checkpointIntervalMs);
    assert.is(s.leaseTtlMs, DEFAULT_CONFIG.schedule.leaseTtlMs);
    assert.is(s.capacityUsersPerPartition, Math.ceil(DEFAULT_CONFIG.engine.capacityUsers / P));
    assert.equal(asked, [s.capacityUsersPerPartition, s.capacityUsersPerPartition], "each engine asked for its share of the schema's capacity");
    // And live changes show in the same read-back.
    await running.applyLive({ tickIntervalMs: 1234, checkpointIntervalMs: 5678 });
    assert.is(running.settings.tickIntervalMs, 1234);
    assert.is(running.settings.checkpointIntervalMs, 5678);
  } finally {
    await proc?.stop();
    await srv.dispose();
  }
});

test.run();
