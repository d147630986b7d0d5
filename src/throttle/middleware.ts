// HTTP middleware for node:http, usable as Express middleware `(req, res, next)`, as a Fastify
// `onRequest` hook (it unwraps `req.raw` / `reply.raw` and hijacks the reply it answers), and as a
// plain wrapper around a `(req, res)` handler. Per request: user key from the configured header or
// API key, `check()`, the rate-limit headers on every response, 429 + Retry-After on deny, and one
// telemetry record (with tokens, status, latency and the `throttled` flag) when the response ends.
import type { IncomingMessage, ServerResponse } from "node:http";
import type { RateLimiter, ThrottleDecision } from "./decision.ts";
import type { TelemetryEvent } from "../telemetry/event.ts";

/** Which rate-limit headers responses carry (throttle.headerStyle). */
export type HeaderStyle = "ietf" | "x-ratelimit" | "none";

/** Options of {@link throttleMiddleware} and {@link withThrottle}. */
export interface ThrottleMiddlewareOptions {
  /** The limiter (a ThrottleClient). Required. */
  limiter: RateLimiter;
  /** Header style. Default "ietf" (draft-ietf-httpapi-ratelimit-headers: `RateLimit`, `RateLimit-Policy`). */
  headerStyle?: HeaderStyle;
  /** Policy name in the IETF headers. Default "foresight". */
  policyName?: string;
  /** Header holding the user key (lowercase). Default "x-user-id". */
  userKeyHeader?: string;
  /** Header holding an API key, used when the user header is absent; "authorization" reads a Bearer token. Default "x-api-key". */
  apiKeyHeader?: string;
  /** Header naming the plan (optional). Default "x-plan". */
  planHeader?: string;
  /** LLM tokens a request is expected to use, counted at check time. Default: 0 (requests only). */
  tokensOf?: (req: IncomingMessage) => number;
  /** Where telemetry goes (a TelemetryPublisher). Default: none. */
  publisher?: { record(e: TelemetryEvent): void };
  /** Tokens actually used, read when the response finishes (e.g. from the handler's res.locals). Default: none. */
  usageOf?: (req: IncomingMessage, res: ServerResponse) => { inputTokens?: number; outputTokens?: number } | undefined;
  /** Route key for telemetry. Default: the URL path. */
  routeOf?: (req: IncomingMessage) => string;
}

/** The user key of a request: user header, else API key, else the peer address ("ip:<addr>"). */
export function userKeyOf(req: IncomingMessage, userKeyHeader = "x-user-id", apiKeyHeader = "x-api-key"): string {
  const u = req.headers[userKeyHeader];
  const user = Array.isArray(u) ? u[0] : u;
  if (user) return user;
  const k = req.headers[apiKeyHeader];
  let key = Array.isArray(k) ? k[0] : k;
  if (key && apiKeyHeader === "authorization") key = key.replace(/^Bearer\s+/i, "");
  if (key) return `key:${key}`;
  // No key at all: the peer address, so anonymous traffic is limited per client, under the default plan.
  return `ip:${req.socket?.remoteAddress ?? "unknown"}`;
}

/** The rate-limit headers of a decision. */
export function rateLimitHeaders(d: ThrottleDecision, style: HeaderStyle, policyName = "foresight"): Record<string, string> {
  const resetSec = Math.ceil(d.resetMs / 1000);
  if (style === "ietf") {
    // draft-ietf-httpapi-ratelimit-headers (-08 and later): structured-field lists; q = quota,
    // w = window (s), r = remaining, t = seconds until the quota resets.
    return {
      "RateLimit-Policy": `"${policyName}";q=${d.limit};w=${Math.max(1, Math.ceil(d.windowMs / 1000))}`,
      RateLimit: `"${policyName}";r=${d.remaining};t=${resetSec}`,
    };
  }
  if (style === "x-ratelimit") {
    return {
      "X-RateLimit-Limit": String(d.limit),
      "X-RateLimit-Remaining": String(d.remaining),
      "X-RateLimit-Reset": String(resetSec),
    };
  }
  return {};
}

type Next = (err?: unknown) => void;

interface Unwrappable {
  raw?: IncomingMessage | ServerResponse;
  hijack?: () => void;
}

/** Express/Connect middleware (also a Fastify onRequest hook). */
export function throttleMiddleware(opts: ThrottleMiddlewareOptions): (req: IncomingMessage, res: ServerResponse, next: Next) => void {
  const style = opts.headerStyle ?? "ietf";
  const policy = opts.policyName ?? "foresight";
  const userHeader = opts.userKeyHeader ?? "x-user-id";
  const apiHeader = opts.apiKeyHeader ?? "x-api-key";
  const planHeader = opts.planHeader ?? "x-plan";
  return (reqIn, resIn, next) => {
    const req = ((reqIn as unknown as Unwrappable).raw as IncomingMessage | undefined) ?? reqIn;
    const res = ((resIn as unknown as Unwrappable).raw as ServerResponse | undefined) ?? resIn;
    const startMs = Date.now();
    const user = userKeyOf(req, userHeader, apiHeader);
    const ph = req.headers[planHeader];
    const plan = (Array.isArray(ph) ? ph[0] : ph) || undefined;
    let d: ThrottleDecision;
    try {
      d = opts.limiter.check(user, { requests: 1, tokens: opts.tokensOf?.(req) ?? 0 }, plan);
    } catch (err) {
      next(err);
      return;
    }
    const h = rateLimitHeaders(d, style, policy);
    for (const name in h) res.setHeader(name, h[name]);
    if (opts.publisher) {
      const publisher = opts.publisher;
      res.once("finish", () => {
        const usage = opts.usageOf?.(req, res);
        try {
          publisher.record({
            user,
            timeMs: startMs,
            inputTokens: usage?.inputTokens,
            outputTokens: usage?.outputTokens,
            route: opts.routeOf ? opts.routeOf(req) : (req.url ?? "").split("?")[0],
            userAgent: req.headers["user-agent"],
            sourceIp: req.socket?.remoteAddress,
            status: res.statusCode,
            latencyMs: Date.now() - startMs,
            throttled: !d.allowed,
            plan,
          });
        } catch {
          /* telemetry never breaks serving (the publisher counts its own drops) */
        }
      });
    }
    if (d.allowed) {
      next();
      return;
    }
    (resIn as unknown as Unwrappable).hijack?.();
    res.statusCode = 429;
    res.setHeader("Retry-After", String(Math.max(1, Math.ceil(d.retryAfterMs / 1000))));
    res.setHeader("Content-Type", "application/json");
    res.end(JSON.stringify({ error: "rate limited", reason: d.reason, retryAfterMs: d.retryAfterMs }));
  };
}

/** Wraps a plain node:http handler: `http.createServer(withThrottle(handler, opts))`. */
export function withThrottle(
  handler: (req: IncomingMessage, res: ServerResponse) => void,
  opts: ThrottleMiddlewareOptions,
): (req: IncomingMessage, res: ServerResponse) => void {
  const mw = throttleMiddleware(opts);
  return (req, res) =>
    mw(req, res, (err) => {
      if (err) {
        res.statusCode = 500;
        res.end();
        return;
      }
      handler(req, res);
    });
}
