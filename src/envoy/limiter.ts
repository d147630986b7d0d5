// The limiter port of the RLS server. `RateLimiter`, `ThrottleUse` and `ThrottleDecision` are a
// structural copy of the throttle component's `ThrottleClient` interface (src/throttle on the
// throttle branch), so the real client plugs in without this module importing it.

/** What one request consumes. */
export interface ThrottleUse {
  /** Requests counted, >= 0. */
  requests: number;
  /** LLM tokens counted, >= 0 (0 for pools limited on requests only). */
  tokens: number;
}

/** The outcome of one check. */
export interface ThrottleDecision {
  /** The request may proceed (in shadow mode always true). */
  allowed: boolean;
  /** The request would have been denied (equals !allowed unless in shadow mode). */
  wouldDeny: boolean;
  /** The limit that applies in the current window, in units of the binding dimension. */
  limit: number;
  /** What is left of `limit` in the current window after this request, >= 0. */
  remaining: number;
  /** Time until the current window resets, ms. */
  resetMs: number;
  /** When denied: how long to wait before retrying, ms; 0 when allowed. */
  retryAfterMs: number;
  /** Length of the window `limit` applies to, ms. */
  windowMs: number;
  /** Which rule decided. */
  reason: "within-forecast" | "pool-has-spare" | "over-forecast-pool-short" | "plan-limit" | "safe-limit" | "shadow";
}

/** An in-process limiter (the throttle component's ThrottleClient, or {@link FixedWindowLimiter}). */
export interface RateLimiter {
  check(user: string, use: ThrottleUse, plan?: string): ThrottleDecision;
}

/** One descriptor's check, as the RLS server hands it to a limiter. */
export interface LimitCheck {
  /** User key (from the descriptor mapping, prefix included). */
  user: string;
  /** Plan of the user (mapped, or the configured default plan). */
  plan: string;
  /** What the request consumes. */
  use: ThrottleUse;
}

/**
 * A limiter that answers all descriptors of a request in one asynchronous call (a remote store:
 * one Redis pipeline per request, as Envoy's reference ratelimit service does).
 */
export interface BatchRateLimiter {
  checkBatch(checks: readonly LimitCheck[]): Promise<ThrottleDecision[]>;
}

/** Either kind of limiter the RLS server accepts. */
export type RlsLimiter = RateLimiter | BatchRateLimiter;

/** True when `l` is a {@link BatchRateLimiter}. */
export function isBatchLimiter(l: RlsLimiter): l is BatchRateLimiter {
  return typeof (l as BatchRateLimiter).checkBatch === "function";
}

/**
 * Builds the limiter the `foresight rls` command serves with, from the validated configuration.
 * The default builds a {@link FixedWindowLimiter}; the lead swaps in one that returns the
 * throttle component's ThrottleClient.
 */
export type RateLimiterFactory<C = unknown> = (config: C) => RlsLimiter | Promise<RlsLimiter>;
