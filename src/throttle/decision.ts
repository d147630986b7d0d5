/**
 * The shape every throttle enforcement point shares: the in-process gateway client
 * (`ThrottleClient`) and the Envoy rate-limit service both answer `check()` with a
 * `ThrottleDecision`.
 */

/** What one request consumes. */
export interface ThrottleUse {
  /** Requests this call counts for (normally 1). */
  requests: number;
  /** LLM tokens this call counts for (input + output, or an estimate before the call). */
  tokens: number;
}

/** Why a decision came out the way it did. */
export type ThrottleReason =
  /** The user is at or under its forecast upper bound. */
  | "within-forecast"
  /** Over forecast, but the pool has allocation to spare: served up to the plan limit. */
  | "pool-has-spare"
  /** Over forecast while the pool is above its allocation: the user's token bucket decides. */
  | "over-forecast-pool-short"
  /** The plan's hard limit was reached. */
  | "plan-limit"
  /** No valid grant (expired lease, or cut off from NATS): the plan's safe limit applies. */
  | "safe-limit"
  /** Shadow mode: the rule would have denied; the request is allowed. */
  | "shadow";

export interface ThrottleDecision {
  /** What the gateway must do (always true in shadow mode). */
  allowed: boolean;
  /** The rule's verdict (differs from `!allowed` only in shadow mode). */
  wouldDeny: boolean;
  /** Requests allowed per window for this user at this gateway. */
  limit: number;
  /** Requests left in the current window. */
  remaining: number;
  /** Milliseconds until the window/bucket refills to `limit`. */
  resetMs: number;
  /** Milliseconds the caller should wait before retrying; 0 when allowed. */
  retryAfterMs: number;
  /** The window `limit` is counted over, in milliseconds. */
  windowMs: number;
  reason: ThrottleReason;
}

/** Anything that can decide one request for one user. */
export interface RateLimiter {
  /** Decide one request; `plan` overrides the user's plan (unknown users get the default plan). */
  check(user: string, use: ThrottleUse, plan?: string): ThrottleDecision;
}
