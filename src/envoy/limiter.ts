// The limiter port of the RLS server: the throttle component's interface (`ThrottleClient`
// implements it), plus a batch variant for asynchronous limiters such as the Redis peer.
import type { RateLimiter, ThrottleDecision, ThrottleUse } from "../throttle/decision.ts";

export type { RateLimiter, ThrottleDecision, ThrottleUse };

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
