// A per-object single-flight queue: at most one request chain in flight per object key; a
// decision that arrives while one is in flight waits as the key's only pending item, and a newer
// decision replaces it (only the newest matters: an older one would be undone at once). A run may
// ask to be retried later (429/5xx backoff): the key stays busy for the wait, and the retry runs
// the newest pending decision if one arrived, else the same one again.

/** What a run returns: a delay (ms) to retry after, or nothing when done. */
export type RunResult = { retryAfterMs: number } | void;

export interface SingleFlightQueueOptions<T> {
  /** Works on one item; must not throw (errors are reported through `onError` if it does). */
  run: (key: string, item: T, attempt: number) => Promise<RunResult>;
  /** Where a throwing run's error goes. */
  onError: (err: unknown, key: string) => void;
}

/** Counters of the queue (whole lifetime). */
export interface QueueStats {
  /** Items submitted. */
  submitted: number;
  /** Runs started (including retries). */
  runs: number;
  /** Pending items replaced by a newer one before they ran (coalesced). */
  replaced: number;
  /** Highest number of runs in flight at once for any one key (must stay 1). */
  maxInFlightPerKey: number;
}

interface KeyState<T> {
  busy: boolean;
  inFlight: number;
  pending: T | undefined;
  hasPending: boolean;
  timer: NodeJS.Timeout | undefined;
  /** Ends a backoff wait early (stop). */
  stopWait?: () => void;
}

/** See the module comment. */
export class SingleFlightQueue<T> {
  private readonly keys = new Map<string, KeyState<T>>();
  private readonly idleWaiters: (() => void)[] = [];
  private stopped = false;
  readonly stats: QueueStats = { submitted: 0, runs: 0, replaced: 0, maxInFlightPerKey: 0 };

  constructor(private readonly opts: SingleFlightQueueOptions<T>) {}

  /** Submits the newest item for a key: runs at once if the key is idle, else replaces the pending one. */
  submit(key: string, item: T): "started" | "queued" | "replaced" {
    if (this.stopped) return "replaced";
    this.stats.submitted++;
    let s = this.keys.get(key);
    if (!s) this.keys.set(key, (s = { busy: false, inFlight: 0, pending: undefined, hasPending: false, timer: undefined }));
    if (s.busy) {
      const replaced = s.hasPending;
      if (replaced) this.stats.replaced++;
      s.pending = item;
      s.hasPending = true;
      return replaced ? "replaced" : "queued";
    }
    s.busy = true;
    void this.loop(key, s, item);
    return "started";
  }

  /** True while a run (or its backoff wait) is going for the key. */
  busy(key: string): boolean {
    return this.keys.get(key)?.busy ?? false;
  }

  /** Keys busy now. */
  busyKeys(): number {
    let n = 0;
    for (const s of this.keys.values()) if (s.busy) n++;
    return n;
  }

  private async loop(key: string, s: KeyState<T>, first: T): Promise<void> {
    let item = first;
    let attempt = 0;
    for (;;) {
      s.inFlight++;
      this.stats.runs++;
      if (s.inFlight > this.stats.maxInFlightPerKey) this.stats.maxInFlightPerKey = s.inFlight;
      let result: RunResult = undefined;
      try {
        result = await this.opts.run(key, item, attempt);
      } catch (err) {
        this.opts.onError(err, key);
      } finally {
        s.inFlight--;
      }
      if (this.stopped) break;
      if (result && result.retryAfterMs >= 0) {
        await new Promise<void>((resolve) => {
          s.timer = setTimeout(resolve, result.retryAfterMs);
          s.timer.unref();
          s.stopWait = resolve;
        });
        s.timer = undefined;
        if (this.stopped) break;
        if (s.hasPending) {
          item = s.pending as T;
          s.pending = undefined;
          s.hasPending = false;
        }
        attempt++;
        continue;
      }
      if (!s.hasPending) break;
      item = s.pending as T;
      s.pending = undefined;
      s.hasPending = false;
      attempt = 0;
    }
    s.busy = false;
    s.pending = undefined;
    s.hasPending = false;
    if (this.busyKeys() === 0) for (const w of this.idleWaiters.splice(0)) w();
  }

  /** Resolves when no key is busy. */
  idle(): Promise<void> {
    if (this.busyKeys() === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Stops: pending items are dropped, backoff waits end, runs in flight finish. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const s of this.keys.values()) {
      s.hasPending = false;
      s.pending = undefined;
      if (s.timer) clearTimeout(s.timer);
      s.stopWait?.();
    }
    await this.idle();
  }
}
