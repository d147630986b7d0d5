// The peer of the bench and the replay: a Redis fixed-window limiter that counts as Envoy's
// reference `ratelimit` service does: per descriptor per request an INCRBY of the window's key
// by the hits and an EXPIRE of that key, every command of one request sent in one pipeline (one
// round trip), the decision taken from the counter after the increment. Same semantics as
// FixedWindowLimiter (fixedWindowDecision), so both decide alike on the same input.
import { createClient } from "redis";
import { RedisLimiterError } from "./errors.ts";
import { checkFixedWindowOptions, fixedWindowDecision, type FixedWindowPlanLimit } from "./fixed-window.ts";
import type { BatchRateLimiter, LimitCheck, ThrottleDecision } from "./limiter.ts";

export interface RedisLimiterOptions {
  /** Redis URL, e.g. "redis://127.0.0.1:6379". Required. */
  url: string;
  /** Window length, ms (windows start at multiples of it since the epoch). */
  windowMs: number;
  /** Limits per plan; must hold `defaultPlan`. */
  plans: Readonly<Record<string, FixedWindowPlanLimit>>;
  /** Plan used for unknown plans. */
  defaultPlan: string;
  /** Prefix of every key (the reference service puts the domain first). Default "foresight_". */
  keyPrefix?: string;
  /** Clock, ms since the epoch. Default Date.now. */
  now?: () => number;
}

type Client = ReturnType<typeof createClient>;

/** Fixed-window limiter over Redis (INCRBY + EXPIRE per descriptor, pipelined per request). */
export class RedisFixedWindowLimiter implements BatchRateLimiter {
  private readonly o: Required<Omit<RedisLimiterOptions, "now">> & { now: () => number };
  private readonly ttlSec: number;

  private constructor(
    private readonly client: Client,
    o: RedisLimiterOptions,
  ) {
    this.o = { ...o, keyPrefix: o.keyPrefix ?? "foresight_", now: o.now ?? Date.now } as typeof this.o;
    // The key outlives its window by at most a second (EXPIRE has second resolution).
    this.ttlSec = Math.max(1, Math.ceil(o.windowMs / 1000));
  }

  /** Connects to Redis. */
  static async connect(o: RedisLimiterOptions): Promise<RedisFixedWindowLimiter> {
    checkFixedWindowOptions(o);
    // Without the offline queue a command fails at once while Redis is unreachable (as the
    // reference service's client does), so calls get UNAVAILABLE instead of piling up.
    const client = createClient({ url: o.url, disableOfflineQueue: true });
    client.on("error", () => {}); // reported through the failing commands
    try {
      await client.connect();
    } catch (cause) {
      throw new RedisLimiterError(`cannot connect to ${o.url}: ${(cause as Error).message}`, { cause });
    }
    return new RedisFixedWindowLimiter(client, o);
  }

  async checkBatch(checks: readonly LimitCheck[]): Promise<ThrottleDecision[]> {
    if (checks.length === 0) return [];
    const now = this.o.now();
    const { windowMs, plans, defaultPlan, keyPrefix } = this.o;
    const start = now - (now % windowMs);
    const limits: FixedWindowPlanLimit[] = new Array(checks.length);
    const multi = this.client.multi();
    for (let i = 0; i < checks.length; i++) {
      const c = checks[i];
      const limit = (limits[i] = plans[c.plan] ?? plans[defaultPlan]);
      const key = `${keyPrefix}${c.user}_${start}`;
      multi.incrBy(key, c.use.requests).expire(key, this.ttlSec);
      if (limit.tokensPerWindow !== undefined) {
        const tkey = `${keyPrefix}${c.user}_tokens_${start}`;
        multi.incrBy(tkey, c.use.tokens).expire(tkey, this.ttlSec);
      }
    }
    let replies: unknown[];
    try {
      replies = (await multi.execAsPipeline()) as unknown[];
    } catch (cause) {
      throw new RedisLimiterError(`pipeline failed: ${(cause as Error).message}`, { cause });
    }
    const out: ThrottleDecision[] = new Array(checks.length);
    let r = 0;
    const resetMs = start + windowMs - now;
    for (let i = 0; i < checks.length; i++) {
      const req = Number(replies[r]);
      r += 2;
      let tok = 0;
      if (limits[i].tokensPerWindow !== undefined) {
        tok = Number(replies[r]);
        r += 2;
      }
      out[i] = fixedWindowDecision(limits[i], req, tok, windowMs, resetMs);
    }
    return out;
  }

  /** Resolves when the connection is up (at once, or after a reconnect). */
  whenReady(): Promise<void> {
    if (this.client.isReady) return Promise.resolve();
    return new Promise((resolve) => this.client.once("ready", () => resolve()));
  }

  /** Closes the connection. */
  async close(): Promise<void> {
    if (this.client.isOpen) await this.client.close();
  }
}
