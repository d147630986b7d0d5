// A fixed-window limiter as Envoy's reference `ratelimit` service counts: one counter per key
// per window, windows aligned to the epoch, every hit counted (also the refused ones), a hit
// over limit when the counter after adding it exceeds the limit. The baseline of the replay and
// the bench, and the RLS server's limiter until the throttle component's ThrottleClient is wired.
import { LimiterConfigError } from "./errors.ts";
import type { RateLimiter, ThrottleDecision, ThrottleUse } from "./limiter.ts";

/** One plan's limits per window. */
export interface FixedWindowPlanLimit {
  /** Requests a user may send per window, > 0. */
  requestsPerWindow: number;
  /** Tokens a user may use per window; absent = tokens are not limited. */
  tokensPerWindow?: number;
}

export interface FixedWindowOptions {
  /** Window length, ms; windows start at multiples of it since the epoch (as the reference service's units do). */
  windowMs: number;
  /** Limits per plan; must hold `defaultPlan`. */
  plans: Readonly<Record<string, FixedWindowPlanLimit>>;
  /** Plan used for unknown plans and checks without a plan. */
  defaultPlan: string;
  /** Clock, ms since the epoch. Default Date.now. */
  now?: () => number;
}

/** The decision both fixed-window limiters (memory, Redis) derive from counters after a hit. */
export function fixedWindowDecision(
  limit: FixedWindowPlanLimit,
  requestsAfter: number,
  tokensAfter: number,
  windowMs: number,
  resetMs: number,
): ThrottleDecision {
  const reqOver = requestsAfter > limit.requestsPerWindow;
  const tokLimit = limit.tokensPerWindow;
  const tokOver = tokLimit !== undefined && tokensAfter > tokLimit;
  const reqRemaining = Math.max(0, limit.requestsPerWindow - requestsAfter);
  // Report the binding dimension: the one over limit, else the one with the smaller share left.
  let useTokens = false;
  if (tokLimit !== undefined) {
    const tokRemaining = Math.max(0, tokLimit - tokensAfter);
    useTokens = tokOver || (!reqOver && tokRemaining / tokLimit < reqRemaining / limit.requestsPerWindow);
  }
  const allowed = !reqOver && !tokOver;
  return {
    allowed,
    wouldDeny: !allowed,
    limit: useTokens ? tokLimit! : limit.requestsPerWindow,
    remaining: useTokens ? Math.max(0, tokLimit! - tokensAfter) : reqRemaining,
    resetMs,
    retryAfterMs: allowed ? 0 : resetMs,
    windowMs,
    reason: "plan-limit",
  };
}

/** Validates fixed-window options (shared by the memory and Redis limiters). */
export function checkFixedWindowOptions(o: { windowMs: number; plans: Readonly<Record<string, FixedWindowPlanLimit>>; defaultPlan: string }): void {
  if (!Number.isInteger(o.windowMs) || o.windowMs < 1) throw new LimiterConfigError(`windowMs must be an integer >= 1, got ${o.windowMs}`);
  if (!(o.defaultPlan in o.plans)) throw new LimiterConfigError(`defaultPlan "${o.defaultPlan}" has no entry in plans`);
  for (const [name, p] of Object.entries(o.plans)) {
    if (!(p.requestsPerWindow > 0)) throw new LimiterConfigError(`plans.${name}.requestsPerWindow must be > 0`);
    if (p.tokensPerWindow !== undefined && !(p.tokensPerWindow > 0)) throw new LimiterConfigError(`plans.${name}.tokensPerWindow must be > 0`);
  }
}

/** In-memory fixed-window limiter (one process; counters are dropped when the window turns). */
export class FixedWindowLimiter implements RateLimiter {
  private readonly windowMs: number;
  private readonly plans: Readonly<Record<string, FixedWindowPlanLimit>>;
  private readonly defaultLimit: FixedWindowPlanLimit;
  private readonly now: () => number;
  private windowStart = -1;
  // Counters of the current window only: all keys share the window, so turning it clears all.
  private requests = new Map<string, number>();
  private tokens = new Map<string, number>();

  constructor(o: FixedWindowOptions) {
    checkFixedWindowOptions(o);
    this.windowMs = o.windowMs;
    this.plans = o.plans;
    this.defaultLimit = o.plans[o.defaultPlan];
    this.now = o.now ?? Date.now;
  }

  /** Users with a counter in the current window. */
  get activeUsers(): number {
    return this.requests.size;
  }

  check(user: string, use: ThrottleUse, plan?: string): ThrottleDecision {
    const now = this.now();
    const start = now - (now % this.windowMs);
    if (start !== this.windowStart) {
      this.windowStart = start;
      this.requests = new Map();
      this.tokens = new Map();
    }
    const limit = (plan !== undefined ? this.plans[plan] : undefined) ?? this.defaultLimit;
    const req = (this.requests.get(user) ?? 0) + use.requests;
    this.requests.set(user, req);
    let tok = 0;
    if (limit.tokensPerWindow !== undefined) {
      tok = (this.tokens.get(user) ?? 0) + use.tokens;
      this.tokens.set(user, tok);
    }
    return fixedWindowDecision(limit, req, tok, this.windowMs, start + this.windowMs - now);
  }
}
