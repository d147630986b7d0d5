// Prometheus metrics of the Envoy rate-limit service (names carry the foresight_rls_ prefix).
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import { METRIC_PREFIX } from "../obs/metrics.ts";
import type { ThrottleDecision } from "./limiter.ts";

/** Buckets of the ShouldRateLimit handling time, seconds (10 µs to 250 ms). */
export const RLS_DURATION_BUCKETS_SEC = [0.00001, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 0.25];

/** gRPC outcome of one ShouldRateLimit call. */
export type RlsResult = "ok" | "over_limit" | "invalid_argument" | "resource_exhausted" | "unavailable" | "internal";

export class RlsMetrics {
  readonly registry: Registry;
  /** ShouldRateLimit calls by outcome. */
  readonly requests: Counter<"result">;
  /** Per-descriptor decisions by response code and the limiter's reason. */
  readonly decisions: Counter<"code" | "reason">;
  /** Decisions that would have denied (shadow mode counts them while allowing). */
  readonly wouldDeny: Counter;
  /** Malformed requests by field (indices removed), each answered INVALID_ARGUMENT. */
  readonly invalid: Counter<"field">;
  /** Descriptors no mapping rule gave a user (answered OK without a limit). */
  readonly unmatched: Counter;
  /** Calls being handled now (bounded by maxConcurrentRequests). */
  readonly inFlight: Gauge;
  /** Time from a call's arrival to its answer, seconds. */
  readonly duration: Histogram;
  // Pre-bound children: label hashing on every decision would cost more than the decision.
  private readonly bound = new Map<string, Counter.Internal>();

  constructor(opts: { registry?: Registry } = {}) {
    const registry = (this.registry = opts.registry ?? new Registry());
    const p = `${METRIC_PREFIX}rls_`;
    const r = [registry];
    this.requests = new Counter({ name: `${p}requests_total`, help: "ShouldRateLimit calls by outcome.", labelNames: ["result"], registers: r });
    this.decisions = new Counter({ name: `${p}decisions_total`, help: "Per-descriptor decisions by code and reason.", labelNames: ["code", "reason"], registers: r });
    this.wouldDeny = new Counter({ name: `${p}would_deny_total`, help: "Decisions that would deny (including shadow mode).", registers: r });
    this.invalid = new Counter({ name: `${p}invalid_requests_total`, help: "Malformed requests (INVALID_ARGUMENT) by field.", labelNames: ["field"], registers: r });
    this.unmatched = new Counter({ name: `${p}unmatched_descriptors_total`, help: "Descriptors without a user mapping (answered OK, unlimited).", registers: r });
    this.inFlight = new Gauge({ name: `${p}in_flight_requests`, help: "ShouldRateLimit calls being handled.", registers: r });
    this.duration = new Histogram({ name: `${p}request_duration_seconds`, help: "ShouldRateLimit handling time.", buckets: RLS_DURATION_BUCKETS_SEC, registers: r });
  }

  /** Counts one descriptor decision. */
  decision(d: ThrottleDecision): void {
    const code = d.allowed ? "OK" : "OVER_LIMIT";
    const k = code + d.reason;
    let c = this.bound.get(k);
    if (!c) this.bound.set(k, (c = this.decisions.labels(code, d.reason)));
    c.inc();
    if (d.wouldDeny) this.wouldDeny.inc();
  }
}
