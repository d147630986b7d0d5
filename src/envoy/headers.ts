// Rate-limit response headers for Envoy to add (RateLimitResponse.response_headers_to_add):
// the IETF RateLimit / RateLimit-Policy fields (draft-ietf-httpapi-ratelimit-headers-09:
// `RateLimit-Policy: "default";q=100;w=1`, `RateLimit: "default";r=42;t=1`) and/or the older
// X-RateLimit-Limit / -Remaining / -Reset trio, plus Retry-After when over limit. Pure.
import type { ThrottleDecision } from "./limiter.ts";

/** Which header families are added. */
export type HeaderStyle = "ietf" | "x-ratelimit" | "both" | "none";

/** A header for the proto's HeaderValue (key, value). */
export interface HeaderPair {
  key: string;
  value: string;
}

/** One descriptor's decision and the policy name it is reported under. */
export interface PolicyDecision {
  policy: string;
  decision: ThrottleDecision;
}

/** Seconds, rounded up (a client told "0" would retry at once). */
function ceilSec(ms: number): number {
  return Math.max(0, Math.ceil(ms / 1000));
}

const sfCache = new Map<string, string>();

/** A Structured Fields string (RFC 8941): printable ASCII, `"` and `\` escaped, others replaced. Cached: policy names are few. */
function sfString(s: string): string {
  let v = sfCache.get(s);
  if (v === undefined) {
    v = '"' + s.replace(/[^\x20-\x7e]/g, "?").replace(/["\\]/g, (c) => "\\" + c) + '"';
    if (sfCache.size < 10_000) sfCache.set(s, v);
  }
  return v;
}

function policyFields(name: string, d: ThrottleDecision): { policies: string; current: string } {
  const id = sfString(name);
  return {
    policies: `${id};q=${Math.floor(d.limit)};w=${ceilSec(d.windowMs)}`,
    current: `${id};r=${Math.floor(d.remaining)};t=${ceilSec(d.resetMs)}`,
  };
}

/**
 * Headers for a response whose descriptors got `decisions` (those without a limit left out).
 * Several descriptors under one policy name are reported once, with the lowest remaining; the
 * X-RateLimit trio reports the descriptor closest to its limit (lowest remaining share).
 */
export function rateLimitHeaders(decisions: readonly PolicyDecision[], style: HeaderStyle, overLimit: boolean): HeaderPair[] {
  if (style === "none" || decisions.length === 0) return [];
  const out: HeaderPair[] = [];
  let tightest = decisions[0];
  for (const d of decisions) {
    const a = d.decision, b = tightest.decision;
    if (a.remaining / Math.max(1, a.limit) < b.remaining / Math.max(1, b.limit)) tightest = d;
  }
  if (style === "ietf" || style === "both") {
    let policies = "", current = "";
    if (decisions.length === 1) {
      ({ policies, current } = policyFields(decisions[0].policy, decisions[0].decision));
    } else {
      const byPolicy = new Map<string, ThrottleDecision>();
      for (const d of decisions) {
        const seen = byPolicy.get(d.policy);
        if (!seen || d.decision.remaining < seen.remaining) byPolicy.set(d.policy, d.decision);
      }
      for (const [name, d] of byPolicy) {
        const f = policyFields(name, d);
        policies = policies ? `${policies}, ${f.policies}` : f.policies;
        current = current ? `${current}, ${f.current}` : f.current;
      }
    }
    out.push({ key: "ratelimit-policy", value: policies }, { key: "ratelimit", value: current });
  }
  if (style === "x-ratelimit" || style === "both") {
    const d = tightest.decision;
    out.push(
      { key: "x-ratelimit-limit", value: String(Math.floor(d.limit)) },
      { key: "x-ratelimit-remaining", value: String(Math.floor(d.remaining)) },
      { key: "x-ratelimit-reset", value: String(ceilSec(d.resetMs)) },
    );
  }
  if (overLimit) {
    let retryMs = 0;
    for (const d of decisions) if (!d.decision.allowed) retryMs = Math.max(retryMs, d.decision.retryAfterMs);
    out.push({ key: "retry-after", value: String(ceilSec(retryMs)) });
  }
  return out;
}
