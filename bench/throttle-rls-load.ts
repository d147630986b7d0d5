// Load generator of bench/throttle-rls.ts, run in a worker thread (its own event loop and grpc-js
// channel; on this 2-core machine it takes the second core while the server under test runs on
// the main thread). Two modes:
// - "rate": open loop at a fixed rate; request i is due at t0 + i/rate and its latency is
//   measured from that due time (so a stalled server is charged for the requests it delayed:
//   no coordinated omission). Between sends the thread sleeps in Atomics.wait (sub-ms, no CPU).
// - "saturate": closed loop keeping `concurrency` calls outstanding; throughput = completions/s.
import { parentPort, workerData } from "node:worker_threads";
import * as hdr from "hdr-histogram-js";
import { createRlsClient, type RlsRequest, type RlsResponse } from "../src/envoy/client.ts";
import type * as grpc from "@grpc/grpc-js";

export interface LoadJob {
  address: string;
  mode: "rate" | "saturate";
  /** Calls per second (rate mode). */
  ratePerSec: number;
  /** Calls outstanding (saturate mode). */
  concurrency: number;
  /** Measured phase, ms (after warmupMs). */
  durationMs: number;
  /** Warm-up, ms (not recorded). */
  warmupMs: number;
  /** Per-call deadline, ms (Envoy's filter gives up after 20 ms by default; later answers are failures to it). */
  deadlineMs: number;
  /** Rate mode: stop sending when this many calls are outstanding (the server is not keeping up). */
  maxOutstanding: number;
  /** Sequence of user ids to send, cycled. */
  users: string[];
  domain: string;
}

export interface LoadResult {
  sent: number;
  completed: number;
  errors: number;
  /** Errors by gRPC code, and the first error's details. */
  errorCodes: Record<string, number>;
  firstError?: string;
  /** Rate mode: sending stopped early because maxOutstanding calls were pending. */
  overloaded: boolean;
  /** Rate mode, when overloaded: ms after the first scheduled send when sending stopped. */
  overloadedAfterMs?: number;
  overLimit: number;
  measuredMs: number;
  achievedPerSec: number;
  p50Ms: number;
  p99Ms: number;
  p999Ms: number;
  maxMs: number;
}

const job = workerData as LoadJob;
const client = createRlsClient(job.address);
const reqs: RlsRequest[] = job.users.map((u) => ({ domain: job.domain, descriptors: [{ entries: [{ key: "user_id", value: u }] }] }));
const hist = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 3 });
const sleeper = new Int32Array(new SharedArrayBuffer(4));

let sent = 0, completed = 0, errors = 0, overLimit = 0, overloaded = false;
let overloadedAfterMs: number | undefined;
/** Successful answers that arrived inside the measured interval (throughput counts by arrival). */
let arrivedInWindow = 0;
const errorCodes: Record<string, number> = {};
let firstError: string | undefined;
let measureFrom = 0, measureTo = 0;

function send(i: number, dueMs: number, done: () => void): void {
  sent++;
  const deadline = Date.now() + job.deadlineMs;
  client.ShouldRateLimit(reqs[i % reqs.length], { deadline }, (err: grpc.ServiceError | null, res?: RlsResponse) => {
    const now = performance.now();
    if (!err && now >= measureFrom && now < measureTo) arrivedInWindow++;
    if (dueMs >= measureFrom && dueMs < measureTo) {
      // Failed calls are latencies too (a deadline miss costs its whole wait).
      hist.recordValue(Math.max(1, Math.round((now - dueMs) * 1000)));
      if (err) {
        errors++;
        errorCodes[err.code] = (errorCodes[err.code] ?? 0) + 1;
        firstError ??= `${err.code} ${err.details}`;
      } else {
        completed++;
        if (res!.overall_code === 2) overLimit++;
      }
    }
    done();
  });
}

function percentiles(measuredMs: number): LoadResult {
  const q = (p: number) => hist.getValueAtPercentile(p) / 1000;
  return {
    sent, completed, errors, errorCodes, firstError, overloaded, overloadedAfterMs, overLimit, measuredMs,
    achievedPerSec: Math.round((arrivedInWindow / measuredMs) * 1000),
    p50Ms: q(50), p99Ms: q(99), p999Ms: q(99.9), maxMs: hist.maxValue / 1000,
  };
}

async function rate(): Promise<LoadResult> {
  const t0 = performance.now() + 20;
  measureFrom = t0 + job.warmupMs;
  measureTo = measureFrom + job.durationMs;
  const total = Math.floor(((job.warmupMs + job.durationMs) / 1000) * job.ratePerSec);
  const intervalMs = 1000 / job.ratePerSec;
  let outstanding = 0;
  let i = 0;
  await new Promise<void>((resolve) => {
    const onDone = () => {
      outstanding--;
      if (i >= total && outstanding === 0) resolve();
    };
    const loop = () => {
      const now = performance.now();
      while (i < total && t0 + i * intervalMs <= now) {
        if (outstanding >= job.maxOutstanding) {
          // The server is not keeping up: stop offering load (what was sent still completes).
          overloaded = true;
          overloadedAfterMs = Math.round(now - t0);
          i = total;
          break;
        }
        outstanding++;
        send(i, t0 + i * intervalMs, onDone);
        i++;
      }
      if (i >= total) {
        if (outstanding === 0) resolve();
        return;
      }
      const waitMs = t0 + i * intervalMs - performance.now();
      // Sleep up to 0.2 ms without spinning; replies are read by the event loop between naps.
      if (waitMs > 0.02) Atomics.wait(sleeper, 0, 0, Math.min(waitMs, 0.2));
      setImmediate(loop);
    };
    loop();
  });
  return percentiles(job.durationMs);
}

async function saturate(): Promise<LoadResult> {
  const t0 = performance.now();
  measureFrom = t0 + job.warmupMs;
  measureTo = measureFrom + job.durationMs;
  let i = 0;
  await new Promise<void>((resolve) => {
    let outstanding = 0;
    const next = () => {
      outstanding--;
      if (performance.now() < measureTo) issue();
      else if (outstanding === 0) resolve();
    };
    // Closed loop: latency counts from the moment a call is issued.
    const issue = () => {
      outstanding++;
      send(i++, performance.now(), next);
    };
    for (let k = 0; k < job.concurrency; k++) issue();
  });
  return percentiles(job.durationMs);
}

const result = job.mode === "rate" ? await rate() : await saturate();
client.close();
parentPort!.postMessage(result);
