// Tick threads: an engine whose ticks run on 2 or 3 threads over its shared memory gives, tick
// after tick, the same forecast records, counters, training and state (snapshot bytes) as the same
// engine on one thread and as the TypeScript reference, on a stream with dense and sparse users,
// users that expire, online training and a catch-up tick that closes several buckets at once.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { spawn } from "node:child_process";
import { Engine, EngineOptionsError, MIN_PARALLEL_SLOTS, type EngineOptions } from "../../src/engine/index.ts";
import { rng, users } from "./_util.ts";

const W = 60_000;
const T0 = Date.UTC(2025, 0, 6, 9);
/** Above MIN_PARALLEL_SLOTS, so the threaded engines really split the slots. */
const N = MIN_PARALLEL_SLOTS + 3_000;
const OPTIONS: EngineOptions = {
  capacityUsers: 16_384 + 4_096, bucketWidthMs: W, allowedLatenessMs: 10_000, forecastModel: "ensemble",
  horizonBuckets: 5, lstmTrainUsersPerBucket: 40, expireAfterBuckets: 4, lstmMinCountPerBucket: 0.5,
};

/** One tick's observable result of an engine: records bytes, stats, tiers, training. */
function observe(e: Engine): { records: Buffer; stats: string; loss: number; snapshot: Buffer } {
  const v = e.forecastView();
  const records = Buffer.from(new Uint8Array(v.u32.buffer, v.u32.byteOffset, v.count * 32));
  const training = e.lstmTrainingStats();
  const stats = JSON.stringify({ stats: e.stats(), tiers: e.lstmTierStats(), trainingSteps: training.steps });
  return { records, stats, loss: training.meanAbsError, snapshot: Buffer.from(e.snapshot()) };
}

test("2 and 3 tick threads give the records, counters, training and state of one thread and of the reference", async () => {
  const engines = [
    await Engine.create({ ...OPTIONS, tickThreads: 1 }),
    await Engine.create({ ...OPTIONS, tickThreads: 2 }),
    await Engine.create({ ...OPTIONS, tickThreads: 3 }),
    Engine.createReference(OPTIONS),
  ];
  try {
    assert.equal(engines.map((e) => e.tickThreads), [1, 2, 3, 1]);
    const hashes = users(N, "thr-");
    const rand = rng(7);
    // Per user: events per busy bucket (0 = sparse tier, a few = dense) and the bucket after which it goes quiet (expires).
    const rate = hashes.map((_, i) => (i % 3 === 0 ? 0.3 : 1 + (i % 5)));
    const quietAfter = hashes.map((_, i) => (i % 11 === 0 ? 6 : Infinity));
    let t = T0;
    let ticks = 0, expiredSeen = 0, stepsSeen = 0;
    for (let b = 0; b < 14; b++) {
      const events = [];
      for (let i = 0; i < N; i++) {
        if (b > quietAfter[i]) continue;
        const n = rate[i] < 1 ? (rand() < rate[i] ? 1 : 0) : rate[i];
        for (let k = 0; k < n; k++) events.push({ userHash: hashes[i], timeMs: t + Math.floor(rand() * W), inputTokens: 100 + k, outputTokens: 20 });
      }
      for (const e of engines) assert.is(e.ingest(events), events.length);
      // Bucket 9 is followed by a gap: the next tick closes 3 buckets at once.
      const gap = b === 9 ? 3 : 1;
      t += gap * W;
      const now = t + 10_000;
      const counts = engines.map((e) => e.tick(now));
      ticks++;
      const seen = engines.map(observe);
      for (let k = 1; k < engines.length; k++) {
        const who = `bucket ${b}, engine ${k} (${engines[k].kind}, ${engines[k].tickThreads} threads)`;
        assert.is(counts[k], counts[0], `${who}: record count`);
        assert.ok(seen[k].records.equals(seen[0].records), `${who}: forecast records differ`);
        assert.is(seen[k].stats, seen[0].stats, `${who}: counters differ`);
        // The training loss: exact between WASM engines, within rounding of the reference (see below).
        if (engines[k].kind === "reference") assert.ok(Math.abs(seen[k].loss - seen[0].loss) <= 1e-12 * Math.abs(seen[0].loss) || (Number.isNaN(seen[k].loss) && Number.isNaN(seen[0].loss)), `${who}: training loss ${seen[k].loss} vs ${seen[0].loss}`);
        else assert.ok(Object.is(seen[k].loss, seen[0].loss), `${who}: training loss ${seen[k].loss} vs ${seen[0].loss}`);
        // The reference's Adam moments may differ in a last bit (Math.pow of V8 and of the AS
        // library), so against the reference the snapshot is compared up to the training block.
        const upTo = engines[k].kind === "reference" ? 16 + engines[0].memoryInfo().stateBytes : seen[0].snapshot.length;
        assert.is(seen[k].snapshot.length, seen[0].snapshot.length, `${who}: snapshot length`);
        assert.ok(seen[k].snapshot.subarray(0, upTo).equals(seen[0].snapshot.subarray(0, upTo)), `${who}: state differs`);
      }
      const s = engines[0].stats();
      expiredSeen = s.expirations;
      stepsSeen = engines[0].lstmTrainingStats().steps;
    }
    // The stream did exercise what the threads must hand back to the main one.
    assert.is(ticks, 14);
    assert.ok(expiredSeen >= Math.floor(N / 11) - 1, `users expired: ${expiredSeen}`);
    assert.ok(stepsSeen >= 14 * 20, `training steps: ${stepsSeen}`);
    const tiers = engines[0].lstmTierStats();
    assert.ok(tiers.denseCloses > 0 && tiers.denseCloses < tiers.closes, `both tiers in the last tick: ${JSON.stringify(tiers)}`);
  } finally {
    await Promise.all(engines.map((e) => e.close()));
  }
});

test("close() stops the threads; the engine goes on ticking on the calling thread", async () => {
  const e = await Engine.create({ ...OPTIONS, tickThreads: 2 });
  const ref = Engine.createReference(OPTIONS);
  const hashes = users(N, "close-");
  const ev = hashes.map((h, i) => ({ userHash: h, timeMs: T0 + i }));
  e.ingest(ev);
  ref.ingest(ev);
  assert.is(e.tick(T0 + W + 10_000), N);
  await e.close();
  await e.close();
  assert.is(e.tickThreads, 1);
  e.ingest(ev.map((x) => ({ ...x, timeMs: x.timeMs + W })));
  assert.is(e.tick(T0 + 2 * W + 10_000), N);
  ref.tick(T0 + W + 10_000);
  ref.ingest(ev.map((x) => ({ ...x, timeMs: x.timeMs + W })));
  ref.tick(T0 + 2 * W + 10_000);
  assert.ok(observe(e).records.equals(observe(ref).records));
});

test("tickThreads out of range is refused, naming the option", async () => {
  for (const bad of [0, 5, 1.5]) {
    try {
      await Engine.create({ tickThreads: bad });
      assert.unreachable(`tickThreads ${bad} accepted`);
    } catch (err) {
      assert.instance(err, EngineOptionsError);
      assert.match((err as Error).message, /tickThreads/);
    }
  }
});

test("an engine with tick threads left open does not keep the process alive", async () => {
  const code = `
    import { Engine } from "./src/engine/index.ts";
    const e = await Engine.create({ capacityUsers: 20000, tickThreads: 2, forecastModel: "ensemble" });
    e.ingest(Array.from({ length: 10000 }, (_, i) => ({ userHash: { lo: i + 1, hi: 7 }, timeMs: 1_000_000 + i })));
    console.log("records", e.tick(1_000_000 + 120_000));
  `;
  const child = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", code], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout.on("data", (d) => (out += d));
  child.stderr.on("data", (d) => (out += d));
  const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
  const exit = await new Promise<number | null>((resolve) => child.on("exit", (c) => resolve(c)));
  clearTimeout(timer);
  assert.is(exit, 0, out);
  assert.match(out, /records 10000/);
});

test.run();
