/**
 * Tick threads: more instances of the engine's WASM module over its shared memory, each running
 * the per-user part of a tick (tickChunks) together with the calling thread: every thread takes
 * chunks of slots from a shared counter until none is left, so a thread that runs slower (a busy
 * core) takes fewer chunks. A user's bucket closes and forecast depend only on its own slot and on
 * values fixed for the tick (assembly/threads.ts), and what depends on other users waits for
 * tickEnd on the calling thread, in slot order, so the records, states and counters are those of a
 * one-thread tick, for any number of threads and any split of the chunks (tested byte for byte).
 *
 * The calling thread starts the workers through a small shared control block per worker and waits
 * for them with Atomics.wait: Engine.tick stays synchronous. Workers are unref'd (they never keep a
 * process alive) and stopped by Engine.close.
 */
import { Worker } from "node:worker_threads";
import type { EngineCore } from "./core.ts";
import { EngineLoadError, EngineTrapError } from "./errors.ts";
import type { WasmShared } from "./wasm.ts";

/** Slots below which a tick runs on the calling thread alone (waking the workers costs more than it saves). */
export const MIN_PARALLEL_SLOTS = 8192;
/** Longest wait for a tick thread's chunks before the tick fails, ms (all the chunks of 1M dense users take under a second). */
const RANGE_TIMEOUT_MS = 120_000;

// Control block words (Int32) per worker.
const C_JOB = 0; // sequence number of the latest job (-1: stop)
const C_DONE = 1; // sequence number of the latest finished job
const C_STATUS = 4; // 0 ok, 1 the job threw
const C_WORDS = 8;

/**
 * The worker's program (run with eval, so that it works from src/ under tsx and from the esbuild
 * bundle alike; it imports with import(), which CommonJS and ES module evaluation both have). It
 * instantiates the module over the shared memory, attaches as thread t, then runs tickChunks for
 * each job until told to stop.
 */
const WORKER_SOURCE = `
async function main() {
  const { parentPort, workerData } = await import("node:worker_threads");
  const { module, memory, t, fcArgs, initArgs, control } = workerData;
  const c = new Int32Array(control);
  let x;
  try {
    const inst = new WebAssembly.Instance(module, { env: { memory, abort() { throw new Error("engine abort in tick thread " + t); } } });
    x = inst.exports;
    x.fcConfigure(...fcArgs);
    const rc = x.attach(t, ...initArgs);
    if (rc !== 0) throw new Error("attach returned " + rc);
  } catch (err) {
    parentPort.postMessage({ error: String((err && err.stack) || err) });
    return;
  }
  parentPort.postMessage({ ready: true });
  let seen = 0;
  for (;;) {
    Atomics.wait(c, ${C_JOB}, seen);
    const job = Atomics.load(c, ${C_JOB});
    if (job < 0) return;
    if (job === seen) continue;
    seen = job;
    try {
      x.tickChunks();
      c[${C_STATUS}] = 0;
    } catch (err) {
      c[${C_STATUS}] = 1;
      parentPort.postMessage({ error: String((err && err.stack) || err) });
    }
    Atomics.store(c, ${C_DONE}, job);
    Atomics.notify(c, ${C_DONE});
  }
}
main();
`;

/** A running tick thread. */
interface TickWorker {
  worker: Worker;
  control: Int32Array;
  lastError?: string;
}

export class TickPool {
  private seq = 0;
  private closed = false;

  private constructor(private readonly workers: TickWorker[]) {}

  /**
   * Starts `threads - 1` workers (thread ids 1..threads-1) over the core's shared memory. fcArgs
   * and initArgs are the arguments the main instance's fcConfigure and init were called with.
   */
  static async start(shared: WasmShared, threads: number, fcArgs: readonly number[], initArgs: readonly number[]): Promise<TickPool> {
    const workers: TickWorker[] = [];
    try {
      for (let t = 1; t < threads; t++) {
        const control = new Int32Array(new SharedArrayBuffer(C_WORDS * 4));
        const worker = new Worker(WORKER_SOURCE, {
          eval: true,
          // The program is plain JavaScript: none of the parent's flags (a TypeScript loader, --input-type) apply.
          execArgv: [],
          workerData: { module: shared.module, memory: shared.memory, t, fcArgs, initArgs, control: control.buffer },
        });
        const w: TickWorker = { worker, control };
        workers.push(w);
        await new Promise<void>((resolve, reject) => {
          worker.once("message", (m: { ready?: boolean; error?: string }) => (m.ready ? resolve() : reject(new EngineLoadError(`tick thread ${t} did not start: ${m.error}`))));
          worker.once("error", (err) => reject(new EngineLoadError(`tick thread ${t} did not start: ${err.message}`, { cause: err })));
        });
        worker.on("message", (m: { error?: string }) => {
          if (m.error) w.lastError = m.error;
        });
        worker.unref();
      }
    } catch (err) {
      await Promise.all(workers.map((w) => w.worker.terminate()));
      throw err;
    }
    return new TickPool(workers);
  }

  /** Threads of a tick, the calling one included. */
  get threads(): number {
    return this.workers.length + 1;
  }

  /** One tick over the core (tickBegin, tickChunks on every thread, tickEnd); returns the record count. */
  tick(core: EngineCore, nowMs: number): number {
    const slots = core.tickBegin!(nowMs);
    if (this.closed || slots < MIN_PARALLEL_SLOTS) {
      core.tickChunks!();
      return core.tickEnd!(1);
    }
    const n = this.threads;
    const job = ++this.seq;
    for (let t = 1; t < n; t++) {
      const c = this.workers[t - 1].control;
      Atomics.store(c, C_JOB, job);
      Atomics.notify(c, C_JOB);
    }
    core.tickChunks!();
    for (let t = 1; t < n; t++) {
      const w = this.workers[t - 1];
      const c = w.control;
      const deadline = Date.now() + RANGE_TIMEOUT_MS;
      for (;;) {
        // Wait on the very value just compared: had the worker stored `job` in between a second
        // load and the wait, the wait would expect `job` and sleep the whole timeout (it did:
        // a 2-minute stall in a test run, once the chunked ticks made both threads finish together).
        const done = Atomics.load(c, C_DONE);
        if (done === job) break;
        const left = deadline - Date.now();
        if (left <= 0) throw new EngineTrapError(`tick thread ${t} did not finish its chunks within ${RANGE_TIMEOUT_MS} ms`);
        Atomics.wait(c, C_DONE, done, left);
      }
      if (c[C_STATUS] !== 0) throw new EngineTrapError(`tick thread ${t} failed: ${w.lastError ?? "see its error"}`);
    }
    return core.tickEnd!(n);
  }

  /** Stops the workers (idempotent); later ticks run on the calling thread. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const w of this.workers) {
      Atomics.store(w.control, C_JOB, -1);
      Atomics.notify(w.control, C_JOB);
    }
    await Promise.all(this.workers.map((w) => w.worker.terminate()));
  }
}
