// Drives a LoadPlan against an HTTP gateway in real time: requests leave at their planned
// offsets (open loop, so a slow gateway cannot slow the offered load down), latency is measured
// from the planned send time, and every outcome is kept per client.
import { Agent, request } from "node:http";
import * as hdr from "hdr-histogram-js";
import type { LoadPlan } from "./plan.ts";

/** Options of {@link LoadDriver}. */
export interface LoadDriverOptions {
  /** Gateway base URL, e.g. "http://127.0.0.1:8080". Required. */
  url: string;
  /** Path requests are sent to. Default "/v1/completions". */
  path?: string;
  /** Header carrying the user key. Default "x-user-id" (the throttle middleware's default). */
  userHeader?: string;
  /** Requests in flight at most; above it a request is counted as `skipped` (the driver is the bottleneck). Default 512. */
  maxInFlight?: number;
  /** Timer period of the scheduler, ms. Default 5. */
  schedulerPeriodMs?: number;
  /** Per-request timeout, ms. Default 10 000. */
  timeoutMs?: number;
}

/** What happened to one client's requests. */
export interface ClientOutcome {
  sent: number;
  ok: number;
  throttled: number;
  errors: number;
  skipped: number;
}

/** A latency histogram, µs: 1 µs to 60 s at 3 significant digits. */
const latencyHistogram = (): hdr.Histogram => hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 3 });

/** Totals of a run. */
export interface LoadResult {
  planned: number;
  sent: number;
  ok: number;
  throttled: number;
  errors: number;
  skipped: number;
  perClient: Map<string, ClientOutcome>;
  /** Latency of answered requests from planned send time, µs. */
  latencyUs: hdr.Histogram;
  /** The same latency per model (a model is one pool in `foresight start`), µs. */
  latencyUsByModel: Map<string, hdr.Histogram>;
  elapsedMs: number;
}

/** Sends a plan's requests to a gateway; `run()` resolves when all are answered or `stop()` is called. */
export class LoadDriver {
  private readonly agent: Agent;
  private readonly opts: Required<LoadDriverOptions>;
  private stopped = false;
  private wake: (() => void) | undefined;
  private inFlight = 0;
  private next = 0;
  /** Live counters (read by status lines while running). */
  readonly result: LoadResult;

  constructor(private readonly plan: LoadPlan, opts: LoadDriverOptions) {
    this.opts = {
      path: "/v1/completions",
      userHeader: "x-user-id",
      maxInFlight: 512,
      schedulerPeriodMs: 5,
      timeoutMs: 10_000,
      ...opts,
    };
    this.agent = new Agent({ keepAlive: true, maxSockets: this.opts.maxInFlight });
    this.result = {
      planned: plan.count,
      sent: 0,
      ok: 0,
      throttled: 0,
      errors: 0,
      skipped: 0,
      perClient: new Map(plan.clients.map((c) => [c, { sent: 0, ok: 0, throttled: 0, errors: 0, skipped: 0 }])),
      latencyUs: latencyHistogram(),
      latencyUsByModel: new Map([...new Set(plan.models)].map((m) => [m, latencyHistogram()])),
      elapsedMs: 0,
    };
  }

  /** Requests sent so far / planned, for progress lines. */
  get progress(): number {
    return this.plan.count === 0 ? 1 : this.next / this.plan.count;
  }

  /** Stops sending; in-flight requests are still awaited by run(). */
  stop(): void {
    this.stopped = true;
    this.wake?.();
  }

  /** Runs the plan in real time. */
  async run(): Promise<LoadResult> {
    const started = performance.now();
    const url = new URL(this.opts.url);
    let drained: (() => void) | undefined;
    const onDone = () => {
      this.inFlight--;
      if (this.inFlight === 0) drained?.();
    };
    while (!this.stopped && this.next < this.plan.count) {
      const nowMs = performance.now() - started;
      while (this.next < this.plan.count && this.plan.atMs[this.next] <= nowMs) {
        const i = this.next++;
        const key = this.plan.clients[this.plan.client[i]];
        const out = this.result.perClient.get(key)!;
        if (this.inFlight >= this.opts.maxInFlight) {
          out.skipped++;
          this.result.skipped++;
          continue;
        }
        out.sent++;
        this.result.sent++;
        this.inFlight++;
        this.send(url, key, this.plan.models[this.plan.client[i]], this.plan.tokens[i], started + this.plan.atMs[i], out, onDone);
      }
      const wait = this.next < this.plan.count ? Math.max(0, Math.min(this.opts.schedulerPeriodMs, this.plan.atMs[this.next] - (performance.now() - started))) : 0;
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        setTimeout(resolve, wait);
      });
    }
    if (this.inFlight > 0) await new Promise<void>((resolve) => (drained = resolve));
    this.result.elapsedMs = performance.now() - started;
    this.agent.destroy();
    return this.result;
  }

  private send(url: URL, user: string, model: string, tokens: number, plannedAt: number, out: ClientOutcome, done: () => void): void {
    const body = JSON.stringify({ model, tokens });
    // Exactly one outcome per request, whichever of response end / error comes first.
    let settled = false;
    const settle = (status: number) => {
      if (settled) return;
      settled = true;
      if (status === 429) {
        out.throttled++;
        this.result.throttled++;
      } else if (status >= 200 && status < 300) {
        out.ok++;
        this.result.ok++;
      } else {
        out.errors++;
        this.result.errors++;
      }
      if (status > 0) {
        const us = Math.max(1, Math.round((performance.now() - plannedAt) * 1000));
        this.result.latencyUs.recordValue(us);
        this.result.latencyUsByModel.get(model)?.recordValue(us);
      }
      done();
    };
    const req = request(
      {
        host: url.hostname,
        port: url.port,
        path: this.opts.path,
        method: "POST",
        agent: this.agent,
        timeout: this.opts.timeoutMs,
        // The model and the expected tokens also travel as headers, so a gateway can check a request
        // before reading its body.
        headers: { [this.opts.userHeader]: user, "x-model": model, "x-expected-tokens": String(tokens), "content-type": "application/json", "content-length": Buffer.byteLength(body) },
      },
      (res) => {
        res.resume();
        res.on("end", () => settle(res.statusCode ?? 0));
        res.on("error", () => settle(0));
      },
    );
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", () => settle(0));
    req.end(body);
  }
}
