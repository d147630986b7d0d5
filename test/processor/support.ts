// Shared helpers of the processor tests: synthetic users and frames with known per-user totals,
// publishing with Nats-Msg-Id, polling with a deadline, and reading checkpoints back.
import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { JetStreamClient, JetStreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { EVENT_RECORD_BYTES } from "../../src/wire/layout.ts";
import { userHash, userHashHex } from "../../src/telemetry/hash.ts";
import { encodeFrame, partitionOf } from "../../src/telemetry/frame.ts";
import { writeRecord } from "../../src/telemetry/event.ts";
import { CheckpointStore, type ProcessorNames, type PartitionEngineFactory, type WasmPartitionEngine } from "../../src/processor/index.ts";

export interface TestUser {
  key: string;
  lo: number;
  hi: number;
  hex: string;
  partition: number;
}

export function makeUsers(n: number, partitions: number, tag = "u"): TestUser[] {
  return Array.from({ length: n }, (_, i) => {
    const key = `${tag}-${i}`;
    const h = userHash(key);
    return { key, lo: h.lo, hi: h.hi, hex: userHashHex(h), partition: partitionOf(h.lo, partitions) };
  });
}

export interface Totals {
  requests: number;
  inputTokens: number;
  outputTokens: number;
}

export interface FrameSet {
  /** Frames in publish order, each with its partition. */
  frames: { partition: number; bytes: Uint8Array; events: number }[];
  /** Expected per-user totals, by user hex. */
  totals: Map<string, Totals>;
  events: number;
}

/**
 * Deterministic frames: event i goes to user (i * 7919) % users, tokens derived from i, event
 * times spread over `spanMs` starting at `startMs` (or `timeOf(i)` when given, ms since the
 * epoch). Frames hold `perFrame` events of one partition, in ascending i.
 */
export function buildFrames(
  users: TestUser[], partitions: number, events: number, perFrame: number, startMs: number, spanMs = 1000,
  timeOf?: (i: number) => number,
): FrameSet {
  const byPartition: { user: TestUser; i: number }[][] = Array.from({ length: partitions }, () => []);
  const totals = new Map<string, Totals>();
  for (let i = 0; i < events; i++) {
    const u = users[(i * 7919) % users.length];
    byPartition[u.partition].push({ user: u, i });
    const t = totals.get(u.hex) ?? { requests: 0, inputTokens: 0, outputTokens: 0 };
    t.requests++;
    t.inputTokens += 10 + (i % 100);
    t.outputTokens += 5 + (i % 37);
    totals.set(u.hex, t);
  }
  const frames: FrameSet["frames"] = [];
  const rec = new Uint8Array(perFrame * EVENT_RECORD_BYTES);
  const view = new DataView(rec.buffer);
  // Interleave partitions frame by frame, like gateways publishing concurrently.
  const cursors = byPartition.map(() => 0);
  let left = events;
  while (left > 0) {
    for (let p = 0; p < partitions; p++) {
      const list = byPartition[p];
      const from = cursors[p];
      const n = Math.min(perFrame, list.length - from);
      if (n <= 0) continue;
      for (let k = 0; k < n; k++) {
        const { user, i } = list[from + k];
        writeRecord(view, k * EVENT_RECORD_BYTES, {
          userHashLo: user.lo,
          userHashHi: user.hi,
          timeMs: timeOf ? timeOf(i) : startMs + Math.floor((i * spanMs) / events),
          inputTokens: 10 + (i % 100),
          outputTokens: 5 + (i % 37),
          routeHash: 1 + (i % 5),
          ipHash: 100 + (i % 3),
          uaHash: 7,
          latencyMs: 20,
          bytes: 500,
          status: 200,
          flags: 0,
        });
      }
      frames.push({ partition: p, bytes: encodeFrame(rec, n), events: n });
      cursors[p] += n;
      left -= n;
    }
  }
  return { frames, totals, events };
}

/** Publishes frames with Nats-Msg-Id `<idPrefix>-<index>` (so a retry is de-duplicated), `window` in flight. */
export async function publishFrames(
  js: JetStreamClient,
  names: ProcessorNames,
  frames: FrameSet["frames"],
  opts: { idPrefix?: string; from?: number; to?: number; window?: number; retry?: boolean } = {},
): Promise<void> {
  const from = opts.from ?? 0;
  const to = opts.to ?? frames.length;
  const window = opts.window ?? 64;
  const inflight: Promise<unknown>[] = [];
  for (let i = from; i < to; i++) {
    const f = frames[i];
    const send = async (): Promise<void> => {
      for (let attempt = 0; ; attempt++) {
        try {
          await js.publish(names.telemetrySubject(f.partition), f.bytes, { msgID: `${opts.idPrefix ?? "f"}-${i}`, timeout: 5_000 });
          return;
        } catch (err) {
          // Retries with the same msgID: the stream's duplicate window removes the copies.
          if (!opts.retry || attempt > 60) throw err;
          await new Promise((r) => setTimeout(r, 250));
        }
      }
    };
    inflight.push(send());
    if (inflight.length >= window) await Promise.all(inflight.splice(0));
  }
  await Promise.all(inflight);
}

/** Polls `cond` every `everyMs` until it is truthy or `timeoutMs` passes (then throws naming `what`). */
export async function waitFor<T>(what: string, cond: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 20_000, everyMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await cond();
      if (v) return v as T;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${(last as Error).message}` : ""}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** Last stream sequence per partition subject (0 when the partition has no message). */
export async function lastSeqs(jsm: JetStreamManager, names: ProcessorNames, partitions: number): Promise<number[]> {
  const out: number[] = [];
  for (let p = 0; p < partitions; p++) {
    try {
      const m = await jsm.streams.getMessage(names.telemetryStream, { last_by_subj: names.telemetrySubject(p) });
      out.push(m?.seq ?? 0);
    } catch {
      out.push(0);
    }
  }
  return out;
}

/** Checkpointed lastSeq per partition (0 = none). */
export async function checkpointSeqs(nc: NatsConnection, names: ProcessorNames, partitions: number): Promise<number[]> {
  const store = await CheckpointStore.open(nc, names);
  const out: number[] = [];
  for (let p = 0; p < partitions; p++) out.push((await store.load(p))?.lastSeq ?? 0);
  return out;
}

/** Checkpoints restored into fresh engines, one per partition (undefined where the partition has none). */
export async function restoreCheckpoints(
  nc: NatsConnection, names: ProcessorNames, partitions: number, factory: PartitionEngineFactory, capacityPerPartition: number,
): Promise<(WasmPartitionEngine | undefined)[]> {
  const store = await CheckpointStore.open(nc, names);
  const out: (WasmPartitionEngine | undefined)[] = [];
  for (let p = 0; p < partitions; p++) {
    const cp = await store.load(p);
    if (!cp) {
      out.push(undefined);
      continue;
    }
    const pe = (await factory(p, capacityPerPartition)) as WasmPartitionEngine;
    pe.restore(cp.engineState);
    out.push(pe);
  }
  return out;
}

/**
 * Per-user cumulative totals (`Engine.userTotals`: every event applied, whatever its bucket) held
 * in every partition's checkpoint, restored into a fresh engine without ticking it.
 */
export async function checkpointTotals(
  nc: NatsConnection, names: ProcessorNames, partitions: number, factory: PartitionEngineFactory, capacityPerPartition: number,
  users: TestUser[],
): Promise<Map<string, Totals>> {
  const engines = await restoreCheckpoints(nc, names, partitions, factory, capacityPerPartition);
  const out = new Map<string, Totals>();
  for (let p = 0; p < partitions; p++) {
    const pe = engines[p];
    if (!pe) continue;
    for (const u of users) {
      if (u.partition !== p) continue;
      const t = pe.engine.userTotals({ lo: u.lo, hi: u.hi });
      if (t && t.requests > 0) out.set(u.hex, t);
    }
  }
  return out;
}

/** Sorted plain object of totals (for assert.equal with readable diffs). */
export function totalsObject(m: Map<string, Totals>): Record<string, Totals> {
  return Object.fromEntries([...m.entries()].sort(([a], [b]) => (a < b ? -1 : 1)));
}

// ---- child processes running `foresight serve` ----------------------------------------------

const repoRoot = fileURLToPath(new URL("../..", import.meta.url));

export interface ServeChild {
  proc: ChildProcess;
  /** HTTP port from the "processor started" log line. */
  httpPort: number;
  /** Every stdout/stderr line so far. */
  output: string[];
  /** Resolves with the exit code (or signal name) once the process ended. */
  exited: Promise<number | string>;
}

/** Spawns `node --import tsx src/cli/main.ts serve <args>` and waits for its "processor started" line. */
export async function spawnServe(args: string[], timeoutMs = 30_000): Promise<ServeChild> {
  const proc = spawn(process.execPath, ["--import", "tsx", "src/cli/main.ts", "serve", ...args], {
    cwd: repoRoot,
    stdio: ["ignore", "pipe", "pipe"],
  });
  liveChildren.add(proc);
  const output: string[] = [];
  const exited = new Promise<number | string>((resolve) => proc.on("exit", (code, sig) => {
    liveChildren.delete(proc);
    resolve(code ?? sig ?? -1);
  }));
  let onLine: ((l: string) => void) | undefined;
  const feed = (stream: NodeJS.ReadableStream) => {
    let buf = "";
    stream.on("data", (d) => {
      buf += d;
      let i;
      while ((i = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        output.push(line);
        onLine?.(line);
      }
    });
  };
  feed(proc.stdout!);
  feed(proc.stderr!);
  const httpPort = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`serve did not start within ${timeoutMs} ms:\n${output.join("\n")}`)), timeoutMs);
    const check = (line: string) => {
      if (!line.includes('"processor started"')) return;
      clearTimeout(timer);
      resolve((JSON.parse(line) as { httpPort: number }).httpPort);
    };
    output.forEach(check);
    onLine = check;
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`serve exited (${code}) before starting:\n${output.join("\n")}`));
    });
  });
  onLine = undefined;
  return { proc, httpPort, output, exited };
}

const liveChildren = new Set<ChildProcess>();
process.on("exit", () => {
  for (const p of liveChildren) {
    try {
      p.kill("SIGKILL");
    } catch {
      /* gone */
    }
  }
});

/** Stops a child: SIGKILL if it still runs (test cleanup). */
export async function killChild(c: ServeChild | undefined): Promise<void> {
  if (!c || c.proc.exitCode !== null || c.proc.signalCode !== null) return;
  c.proc.kill("SIGKILL");
  await c.exited;
}
