// A periodic task that is single-flight (the next run is scheduled only after the previous one
// settled), bounded (a run that exceeds its timeout is reported; no second run starts while it
// is still going), never throws from a timer (errors go to one handler), uses unref()ed timers,
// and stops in order (stop() waits for the run in flight).

/** A run exceeded its timeout (it keeps going in the background; no new run starts meanwhile). */
export class TaskTimeoutError extends Error {
  override name = "TaskTimeoutError";
  constructor(readonly task: string, readonly timeoutMs: number) {
    super(`${task} did not finish within ${timeoutMs} ms`);
  }
}

export interface PeriodicTaskOptions {
  /** Name used in errors and logs. */
  name: string;
  /** Time between the end of one run and the start of the next, ms. */
  intervalMs: number;
  /** Longest a run may take before a {@link TaskTimeoutError} is reported, ms. */
  timeoutMs: number;
  /** The work. */
  run: () => Promise<void> | void;
  /** Where errors (thrown or timeouts) go. Must not throw. */
  onError: (err: unknown, task: string) => void;
}

/** See the module comment. */
export class PeriodicTask {
  private timer: NodeJS.Timeout | undefined;
  private inFlight: Promise<void> | undefined;
  private stopped = true;

  constructor(private readonly opts: PeriodicTaskOptions) {}

  /** Starts the schedule; the first run happens after `firstDelayMs` (default: the interval). */
  start(firstDelayMs = this.opts.intervalMs): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.schedule(firstDelayMs);
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.runNow().finally(() => this.schedule(this.opts.intervalMs));
    }, delayMs);
    this.timer.unref();
  }

  /** Changes the interval; takes effect from the next scheduling (live config changes). */
  setIntervalMs(intervalMs: number): void {
    if (!(intervalMs > 0)) throw new RangeError(`${this.opts.name}: interval must be > 0 ms, got ${intervalMs}`);
    this.opts.intervalMs = intervalMs;
  }

  /** The current interval, ms. */
  get intervalMs(): number {
    return this.opts.intervalMs;
  }

  /** Runs once now (or joins the run in flight); never rejects. */
  runNow(): Promise<void> {
    if (this.inFlight) return this.inFlight;
    const { name, timeoutMs, onError } = this.opts;
    const run = (async () => {
      await this.opts.run();
    })();
    let timeout: NodeJS.Timeout | undefined;
    const timed = new Promise<void>((resolve) => {
      timeout = setTimeout(() => {
        onError(new TaskTimeoutError(name, timeoutMs), name);
        resolve();
      }, timeoutMs);
      timeout.unref();
    });
    const settled = run.then(
      () => undefined,
      (err) => onError(err, name),
    );
    // The run stays "in flight" until it really settles, even after a timeout was reported.
    this.inFlight = settled.finally(() => {
      clearTimeout(timeout);
      this.inFlight = undefined;
    });
    return Promise.race([this.inFlight, timed]);
  }

  /** Stops scheduling and waits for the run in flight. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.inFlight) await this.inFlight;
  }
}
