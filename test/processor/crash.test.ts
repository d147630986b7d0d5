// `foresight serve` as child processes against a real nats-server: kill -9 mid-stream and
// restart gives the same engine state (and per-user cumulative totals over 8 buckets) as a run
// without the crash; SIGTERM
// writes a final checkpoint and releases leases; partitions of a killed process are taken over
// after the lease TTL.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { NatsServer } from "../../src/nats/server.ts";
import { ForesightConfigSchema } from "../../src/config/index.ts";
import { CheckpointStore, createWasmEngineFactory, ensureStreams, processorNames, type ProcessorNames } from "../../src/processor/index.ts";
import {
  buildFrames, checkpointSeqs, checkpointTotals, killChild, lastSeqs, makeUsers, publishFrames, restoreCheckpoints, spawnServe,
  totalsObject, waitFor, type ServeChild,
} from "./support.ts";

// Child processes tick on the wall clock (at shutdown and when releasing a partition), so event
// times are recent: from the current minute back, with six minutes of allowed lateness (ring of
// R = 8 one-minute buckets), so no tick during a test makes them late. Per-user totals are the
// engine's cumulative ones (Engine.userTotals), whatever bucket an event fell into.
const ENGINE = { bucketWidthMs: 60_000, allowedLatenessMs: 360_000, capacityUsers: 1024 };
const T0 = Math.floor(Date.now() / ENGINE.bucketWidthMs) * ENGINE.bucketWidthMs;
/** Engines as `serve` makes them from the config file below (config defaults + ENGINE). */
const factory = createWasmEngineFactory(ForesightConfigSchema.parse({ engine: ENGINE }).engine);
/** Buckets the crash test spreads its events over: the engine's whole window. */
const CRASH_BUCKETS = 8;
/** First of them: the crash test's events fall into buckets B0 .. B0 + 7 (B0 + 7 = this minute). */
const B0 = T0 / ENGINE.bucketWidthMs - (CRASH_BUCKETS - 1);
/**
 * Event times of the crash test. A partition's first event sets the engine clock to
 * floor((t - lateness) / width), so the first 64 events are in bucket B0 + 6 (clock = B0, window
 * B0 .. B0 + 7); the rest run through all 8 buckets in order of i, so every user has events in
 * each of them and the first ones arrive out of order.
 */
function crashTimeOf(events: number): (i: number) => number {
  return (i) => {
    const k = i < 64 ? 6 : Math.floor((i * CRASH_BUCKETS) / events);
    return (B0 + k) * ENGINE.bucketWidthMs + (i % 997) * 50;
  };
}
let srv: NatsServer;
let dir: string;
let configFile: string;

test.before(async () => {
  srv = await NatsServer.start();
  dir = mkdtempSync(join(tmpdir(), "foresight-serve-"));
  configFile = join(dir, "foresight.yaml");
  // No periodic tick during a test (1 h): engine state then depends on the events alone, so two
  // runs can be compared byte for byte. Checkpoints every second.
  writeFileSync(
    configFile,
    [
      "engine:",
      `  bucketWidthMs: ${ENGINE.bucketWidthMs}`,
      `  allowedLatenessMs: ${ENGINE.allowedLatenessMs}`,
      `  capacityUsers: ${ENGINE.capacityUsers}`,
      "schedule:",
      "  tickIntervalMs: 3600000",
      "  checkpointIntervalMs: 1000",
      "http:",
      "  host: 127.0.0.1",
      "log:",
      "  level: info",
    ].join("\n") + "\n",
  );
});
test.after(async () => {
  await srv.dispose();
  rmSync(dir, { recursive: true, force: true });
});

function serveArgs(prefix: string, partitions: number, extra: string[] = []): string[] {
  return ["--config", configFile, "--servers", srv.url, "--prefix", prefix, "--partitions", String(partitions), "--http-port", "0", "--lease-ttl-ms", "1500", ...extra];
}

async function checkpointed(nc: NatsConnection, names: ProcessorNames, P: number): Promise<void> {
  const jsm = await jetstreamManager(nc);
  const want = await lastSeqs(jsm, names, P);
  await waitFor("checkpoints at the last sequence of every partition", async () => {
    const got = await checkpointSeqs(nc, names, P);
    return got.every((s, p) => s === want[p]);
  }, 30_000, 100);
}

async function engineStates(nc: NatsConnection, names: ProcessorNames, P: number): Promise<Uint8Array[]> {
  const store = await CheckpointStore.open(nc, names);
  const out: Uint8Array[] = [];
  for (let p = 0; p < P; p++) out.push((await store.load(p))!.engineState);
  return out;
}

test("kill -9 mid-stream, restart: the same engine state and per-user totals as a run without the crash", async () => {
  const P = 2;
  const users = makeUsers(200, P, "crash");
  const set = buildFrames(users, P, 40_000, 200, 0, 0, crashTimeOf(40_000));
  const nc = await connect({ servers: srv.url });
  const js = jetstream(nc);
  const jsm = await jetstreamManager(nc);
  let a: ServeChild | undefined;
  let b: ServeChild | undefined;
  try {
    // Run A: no crash.
    const namesA = processorNames("crashA");
    await ensureStreams(jsm, namesA);
    a = await spawnServe(serveArgs("crashA", P));
    await publishFrames(js, namesA, set.frames);
    await checkpointed(nc, namesA, P);
    const statesA = await engineStates(nc, namesA, P);
    const cap = Math.ceil(ENGINE.capacityUsers / P);
    // Read before the shutdown's final tick (the totals would survive it, the states would not).
    const totalsA = await checkpointTotals(nc, namesA, P, factory, cap, users);
    a.proc.kill("SIGTERM");
    assert.is(await a.exited, 0);

    // Run B: SIGKILL after a checkpoint while more events are applied, then restart.
    const namesB = processorNames("crashB");
    await ensureStreams(jsm, namesB);
    b = await spawnServe(serveArgs("crashB", P));
    const third = Math.floor(set.frames.length / 3);
    await publishFrames(js, namesB, set.frames, { to: third });
    await waitFor("a first checkpoint", async () => (await checkpointSeqs(nc, namesB, P)).every((s) => s > 0), 20_000, 100);
    await publishFrames(js, namesB, set.frames, { from: third, to: 2 * third });
    const cpBefore = await checkpointSeqs(nc, namesB, P);
    b.proc.kill("SIGKILL");
    assert.is(await b.exited, "SIGKILL");
    const seqsAtKill = await lastSeqs(jsm, namesB, P);
    assert.ok(cpBefore.some((s, p) => s < seqsAtKill[p]), "the kill left applied but uncheckpointed events behind");
    await publishFrames(js, namesB, set.frames, { from: 2 * third });
    // The dead process's leases expire after the TTL (1.5 s); the new one takes them then.
    b = await spawnServe(serveArgs("crashB", P));
    await checkpointed(nc, namesB, P);
    const statesB = await engineStates(nc, namesB, P);
    for (let p = 0; p < P; p++) assert.ok(Buffer.from(statesA[p]).equals(Buffer.from(statesB[p])), `partition ${p}: engine state equals the uncrashed run's`);

    const totalsB = await checkpointTotals(nc, namesB, P, factory, cap, users);
    assert.is(totalsB.size, users.length);
    assert.equal(totalsObject(totalsB), totalsObject(set.totals), "per-user cumulative totals equal what was published");
    assert.equal(totalsObject(totalsB), totalsObject(totalsA), "and the uncrashed run's");
    let applied = 0;
    const bucketsSeen = new Set<number>();
    for (const e of await restoreCheckpoints(nc, namesB, P, factory, cap)) {
      const st = e!.engine.stats();
      applied += st.eventsApplied;
      // Every event landed in the window: the totals cover all 8 buckets, none dropped.
      assert.equal([st.late, st.early, st.invalid], [0, 0, 0], "no event dropped");
      assert.is(st.closedBucket, B0, "no tick moved the clock");
      for (const u of users) {
        const s = e!.engine.lookup(u);
        for (let k = 0; k < CRASH_BUCKETS; k++) if (s >= 0 && e!.engine.core.cellRouteBin(s, B0 + k, 0) >= 0) bucketsSeen.add(k);
      }
    }
    assert.is(bucketsSeen.size, CRASH_BUCKETS, "events spread over every bucket of the window");
    assert.is(applied, set.events, "every event applied exactly once across the crash");
    b.proc.kill("SIGTERM");
    assert.is(await b.exited, 0);
  } finally {
    await killChild(a);
    await killChild(b);
    await nc.close();
  }
});

test("SIGTERM: final checkpoint at the last applied sequence, leases released, exit 0", async () => {
  const P = 2;
  const nc = await connect({ servers: srv.url });
  const names = processorNames("term");
  let c: ServeChild | undefined;
  try {
    // A long checkpoint interval: only the shutdown writes one.
    c = await spawnServe(serveArgs("term", P, ["--checkpoint-interval-ms", "3600000"]));
    const set = buildFrames(makeUsers(30, P, "term"), P, 3000, 100, T0 + 1, 900);
    await publishFrames(jetstream(nc), names, set.frames);
    const health = await fetch(`http://127.0.0.1:${c.httpPort}/healthz`);
    assert.is(health.status, 200);
    await waitFor("events in", async () => {
      const text = await (await fetch(`http://127.0.0.1:${c!.httpPort}/metrics`)).text();
      const sum = [...text.matchAll(/^foresight_events_in_total\{partition="\d+"\} (\d+)/gm)].reduce((s, m) => s + Number(m[1]), 0);
      return sum === 3000;
    });
    assert.equal(await checkpointSeqs(nc, names, P), [0, 0], "no checkpoint before shutdown");
    c.proc.kill("SIGTERM");
    assert.is(await c.exited, 0);
    const jsm = await jetstreamManager(nc);
    assert.equal(await checkpointSeqs(nc, names, P), await lastSeqs(jsm, names, P));
    const kv = await new Kvm(nc).open(names.leaseBucket);
    for (let p = 0; p < P; p++) {
      const e = await kv.get(`partition.${p}`);
      assert.is(JSON.parse(e!.string()).owner, "", `partition ${p} released`);
    }
    assert.ok(c.output.some((l) => l.includes('"stopped"')), "logged the end of the shutdown");
  } finally {
    await killChild(c);
    await nc.close();
  }
});

test("three processes share six partitions; a killed one's partitions are taken over after the lease TTL", async () => {
  const P = 6;
  const nc = await connect({ servers: srv.url });
  const names = processorNames("share");
  const children: ServeChild[] = [];
  const owned = async (c: ServeChild): Promise<number> => {
    // Bounded: a request that never answers must fail (and be retried by waitFor), not hang the file.
    const r = await fetch(`http://127.0.0.1:${c.httpPort}/readyz`, { signal: AbortSignal.timeout(5_000) });
    return ((await r.json()) as { checks: { ownedPartitions: number } }).checks.ownedPartitions;
  };
  try {
    for (let i = 0; i < 3; i++) children.push(await spawnServe(serveArgs("share", P, ["--process-id", `proc-${i}`])));
    await waitFor("two partitions each", async () => (await Promise.all(children.map(owned))).every((n) => n === 2), 20_000, 100);
    const users = makeUsers(120, P, "share");
    const set = buildFrames(users, P, 12_000, 100, T0 + 1, 900);
    const js = jetstream(nc);
    await publishFrames(js, names, set.frames, { to: set.frames.length >> 1 });
    const victim = children.pop()!;
    victim.proc.kill("SIGKILL");
    await victim.exited;
    await publishFrames(js, names, set.frames, { from: set.frames.length >> 1 });
    await waitFor("the survivors to own all six", async () => {
      const n = await Promise.all(children.map(owned));
      return n[0] + n[1] === P && n.every((k) => k === 3);
    }, 20_000, 100);
    await checkpointed(nc, names, P);
    const store = await CheckpointStore.open(nc, names);
    let applied = 0;
    for (let p = 0; p < P; p++) {
      const e = await factory(p, Math.ceil(ENGINE.capacityUsers / P));
      e.restore((await store.load(p))!.engineState);
      applied += e.stats().eventsApplied;
      e.dispose?.();
    }
    assert.is(applied, set.events, "every event applied exactly once across the takeover");
    const totals = await checkpointTotals(nc, names, P, factory, Math.ceil(ENGINE.capacityUsers / P), users);
    assert.equal(totalsObject(totals), totalsObject(set.totals), "per-user totals equal what was published");
    for (const c of children) c.proc.kill("SIGTERM");
    for (const c of children) assert.is(await c.exited, 0);
  } finally {
    for (const c of children) await killChild(c);
    await nc.close();
  }
});

test.run();
