// Envoy's rate limit service (envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit) over
// @grpc/grpc-js, wire-compatible with Envoy's `envoy.filters.http.ratelimit` filter.
//
// Per call: validate (INVALID_ARGUMENT naming the field; the server keeps serving) → map each
// descriptor to a user / plan / use (mapping.ts) → one limiter call for the whole request →
// per-descriptor statuses, overall code, and rate-limit headers for Envoy to add.
// Also: grpc.health.v1 (SERVING, NOT_SERVING from the start of a shutdown), a cap on calls in
// flight (RESOURCE_EXHAUSTED above it), graceful shutdown (drain, tryShutdown, forceShutdown).
import * as grpc from "@grpc/grpc-js";
import { HealthImplementation } from "grpc-health-check";
import type { Logger } from "pino";
import { RlsInvalidRequestError, RlsListenError } from "./errors.ts";
import { rateLimitHeaders, type HeaderPair, type HeaderStyle, type PolicyDecision } from "./headers.ts";
import { isBatchLimiter, type LimitCheck, type RlsLimiter, type ThrottleDecision } from "./limiter.ts";
import { DescriptorMapping, fieldLabel, type DescriptorMappingOptions, type MappedDescriptor, type RlsRequestObject } from "./mapping.ts";
import { RlsMetrics, type RlsResult } from "./metrics.ts";
import { RLS_SERVICE_NAME, rlsServerDefinition, type UndecodableRequest } from "./proto.ts";

/** Default cap on ShouldRateLimit calls in flight. */
export const DEFAULT_MAX_CONCURRENT_REQUESTS = 1024;
/** Default time in-flight calls get to finish in a shutdown before they are cancelled, ms. */
export const DEFAULT_SHUTDOWN_GRACE_MS = 10_000;
/** Default time between reporting NOT_SERVING and closing the listener, ms. */
export const DEFAULT_DRAIN_DELAY_MS = 0;

/** RateLimitResponse.Code values. */
export const RlsCode = { UNKNOWN: 0, OK: 1, OVER_LIMIT: 2 } as const;
/** RateLimitResponse.RateLimit.Unit values. */
export const RlsUnit = { UNKNOWN: 0, SECOND: 1, MINUTE: 2, HOUR: 3, DAY: 4, MONTH: 5, YEAR: 6 } as const;

export interface RlsServerOptions {
  /** The limiter that decides (in-process RateLimiter, or a BatchRateLimiter over a store). Required. */
  limiter: RlsLimiter;
  /** Rate-limit domain answered; requests for another domain get INVALID_ARGUMENT. Required. */
  domain: string;
  /** Descriptor → user / plan / pool mapping. Required. */
  mapping: DescriptorMapping | DescriptorMappingOptions;
  /** Bind address. Default "0.0.0.0". */
  host?: string;
  /** TCP port; 0 picks a free one. Default 0. */
  port?: number;
  /** Rate-limit headers put in response_headers_to_add. Default "ietf". */
  headerStyle?: HeaderStyle;
  /** Calls in flight above which new calls get RESOURCE_EXHAUSTED, >= 1. Default {@link DEFAULT_MAX_CONCURRENT_REQUESTS}. */
  maxConcurrentRequests?: number;
  /** Time in-flight calls get to finish in {@link RlsServer.shutdown} before they are cancelled, ms. Default {@link DEFAULT_SHUTDOWN_GRACE_MS}. */
  shutdownGraceMs?: number;
  /** Time between health turning NOT_SERVING and the listener closing (calls are still served), ms. Default {@link DEFAULT_DRAIN_DELAY_MS}. */
  drainDelayMs?: number;
  /** Metrics sink; default a new RlsMetrics with its own registry. */
  metrics?: RlsMetrics;
  /** Logger; default none. */
  log?: Logger;
  /** Extra grpc-js server options. */
  grpcOptions?: grpc.ServerOptions;
}

/** What a shutdown did. */
export interface RlsShutdownResult {
  /** In-flight calls did not finish within the grace and were cancelled. */
  forced: boolean;
}

/** The proto unit and per-unit count for a window: exact units when the window is one, else per second. */
export function limitInUnits(limit: number, windowMs: number): { requests_per_unit: number; unit: number } {
  const u32 = (n: number) => Math.min(0xffffffff, Math.max(0, Math.round(n)));
  switch (windowMs) {
    case 1000: return { requests_per_unit: u32(limit), unit: RlsUnit.SECOND };
    case 60_000: return { requests_per_unit: u32(limit), unit: RlsUnit.MINUTE };
    case 3_600_000: return { requests_per_unit: u32(limit), unit: RlsUnit.HOUR };
    case 86_400_000: return { requests_per_unit: u32(limit), unit: RlsUnit.DAY };
    default: return { requests_per_unit: u32((limit * 1000) / Math.max(1, windowMs)), unit: RlsUnit.SECOND };
  }
}

type Callback = grpc.sendUnaryData<object>;

/** The running RLS server. Start with {@link RlsServer.start}. */
export class RlsServer {
  readonly metrics: RlsMetrics;
  readonly health: HealthImplementation;
  /** Port actually bound. */
  port = 0;
  private readonly server: grpc.Server;
  private readonly limiter: RlsLimiter;
  private readonly batch: boolean;
  private mapping: DescriptorMapping;
  private domain: string;
  private headerStyle: HeaderStyle;
  private maxConcurrent: number;
  private readonly graceMs: number;
  private readonly drainMs: number;
  private readonly log: Logger | undefined;
  private inFlight = 0;
  private stopping: Promise<RlsShutdownResult> | undefined;

  private constructor(private readonly opts: RlsServerOptions) {
    this.metrics = opts.metrics ?? new RlsMetrics();
    this.limiter = opts.limiter;
    this.batch = isBatchLimiter(opts.limiter);
    this.mapping = opts.mapping instanceof DescriptorMapping ? opts.mapping : new DescriptorMapping(opts.mapping);
    this.domain = opts.domain;
    this.headerStyle = opts.headerStyle ?? "ietf";
    this.maxConcurrent = opts.maxConcurrentRequests ?? DEFAULT_MAX_CONCURRENT_REQUESTS;
    this.graceMs = opts.shutdownGraceMs ?? DEFAULT_SHUTDOWN_GRACE_MS;
    this.drainMs = opts.drainDelayMs ?? DEFAULT_DRAIN_DELAY_MS;
    this.log = opts.log;
    this.server = new grpc.Server(opts.grpcOptions);
    this.server.addService(rlsServerDefinition(), { ShouldRateLimit: this.handle });
    this.health = new HealthImplementation({ "": "SERVING", [RLS_SERVICE_NAME]: "SERVING" });
    this.health.addToServer(this.server);
  }

  /** Binds and serves; health reports SERVING once this resolves. */
  static async start(opts: RlsServerOptions): Promise<RlsServer> {
    const s = new RlsServer(opts);
    const addr = `${opts.host ?? "0.0.0.0"}:${opts.port ?? 0}`;
    s.port = await new Promise<number>((resolve, reject) =>
      s.server.bindAsync(addr, grpc.ServerCredentials.createInsecure(), (err, port) =>
        err ? reject(new RlsListenError(`cannot listen on ${addr}: ${err.message}`, { cause: err })) : resolve(port),
      ),
    );
    s.log?.info({ port: s.port, domain: s.domain, limiter: opts.limiter.constructor?.name }, "rls server listening");
    return s;
  }

  /** Applies options that take effect on the next call (the config's live `envoy` fields). */
  reconfigure(o: { domain?: string; mapping?: DescriptorMappingOptions; headerStyle?: HeaderStyle; maxConcurrentRequests?: number }): void {
    if (o.domain !== undefined) this.domain = o.domain;
    if (o.mapping !== undefined) this.mapping = new DescriptorMapping(o.mapping);
    if (o.headerStyle !== undefined) this.headerStyle = o.headerStyle;
    if (o.maxConcurrentRequests !== undefined) this.maxConcurrent = o.maxConcurrentRequests;
  }

  /** Calls being handled now. */
  get callsInFlight(): number {
    return this.inFlight;
  }

  private fail(callback: Callback, result: RlsResult, code: grpc.status, details: string, started: number): void {
    this.metrics.requests.inc({ result });
    this.metrics.duration.observe((performance.now() - started) / 1000);
    callback({ code, details });
  }

  private readonly handle = (call: grpc.ServerUnaryCall<RlsRequestObject | UndecodableRequest, object>, callback: Callback): void => {
    const started = performance.now();
    if (this.inFlight >= this.maxConcurrent) {
      // Refuse rather than queue: Envoy's filter times out after 20 ms by default, so a queued
      // call would mostly be answered after Envoy gave up; a fast refusal lets its
      // failure_mode_deny policy apply at once.
      return this.fail(callback, "resource_exhausted", grpc.status.RESOURCE_EXHAUSTED, `more than ${this.maxConcurrent} ShouldRateLimit calls in flight`, started);
    }
    const req = call.request;
    let mapped: MappedDescriptor[];
    try {
      if ("undecodable" in req) throw new RlsInvalidRequestError("request", `does not decode as envoy.service.ratelimit.v3.RateLimitRequest: ${req.undecodable}`);
      mapped = this.mapping.map(req, this.domain);
    } catch (e) {
      if (!(e instanceof RlsInvalidRequestError)) throw e;
      this.metrics.invalid.inc({ field: fieldLabel(e.field) });
      this.log?.debug({ field: e.field, problem: e.problem, peer: call.getPeer() }, "invalid ShouldRateLimit request");
      return this.fail(callback, "invalid_argument", grpc.status.INVALID_ARGUMENT, e.message, started);
    }
    const checks: LimitCheck[] = [];
    for (const m of mapped) if (m.check) checks.push(m.check);
    if (!this.batch) {
      let decisions: ThrottleDecision[];
      try {
        const l = this.limiter as import("./limiter.ts").RateLimiter;
        decisions = new Array(checks.length);
        for (let i = 0; i < checks.length; i++) decisions[i] = l.check(checks[i].user, checks[i].use, checks[i].plan);
      } catch (e) {
        this.log?.error({ err: e }, "limiter failed");
        return this.fail(callback, "internal", grpc.status.INTERNAL, `limiter failed: ${(e as Error).message}`, started);
      }
      return this.respond(callback, mapped, decisions, started);
    }
    this.inFlight++;
    this.metrics.inFlight.inc();
    (this.limiter as import("./limiter.ts").BatchRateLimiter).checkBatch(checks).then(
      (decisions) => {
        this.done();
        this.respond(callback, mapped, decisions, started);
      },
      (e: unknown) => {
        this.done();
        this.log?.warn({ err: e }, "limiter unavailable");
        this.fail(callback, "unavailable", grpc.status.UNAVAILABLE, `limiter unavailable: ${(e as Error).message}`, started);
      },
    );
  };

  private done(): void {
    this.inFlight--;
    this.metrics.inFlight.dec();
  }

  private respond(callback: Callback, mapped: MappedDescriptor[], decisions: ThrottleDecision[], started: number): void {
    const statuses = new Array<object>(mapped.length);
    const reported: PolicyDecision[] = [];
    let over = false;
    let k = 0;
    for (let i = 0; i < mapped.length; i++) {
      const m = mapped[i];
      if (!m.check) {
        // As Envoy's reference service answers a descriptor no limit is configured for.
        this.metrics.unmatched.inc();
        statuses[i] = { code: RlsCode.OK };
        continue;
      }
      const d = decisions[k++];
      this.metrics.decision(d);
      if (!d.allowed) over = true;
      const remaining = Math.min(0xffffffff, Math.max(0, Math.floor(d.remaining)));
      const resetMs = Math.max(0, d.resetMs);
      statuses[i] = {
        code: d.allowed ? RlsCode.OK : RlsCode.OVER_LIMIT,
        current_limit: { name: m.check.plan, ...limitInUnits(d.limit, d.windowMs) },
        limit_remaining: remaining,
        duration_until_reset: { seconds: Math.floor(resetMs / 1000), nanos: Math.round((resetMs % 1000) * 1e6) },
      };
      reported.push({ policy: m.check.plan, decision: d });
    }
    const headers: HeaderPair[] = rateLimitHeaders(reported, this.headerStyle, over);
    this.metrics.requests.inc({ result: over ? "over_limit" : "ok" });
    this.metrics.duration.observe((performance.now() - started) / 1000);
    callback(null, {
      overall_code: over ? RlsCode.OVER_LIMIT : RlsCode.OK,
      statuses,
      response_headers_to_add: headers,
    });
  }

  /**
   * Graceful shutdown: health turns NOT_SERVING at once; after drainDelayMs the listener closes
   * and in-flight calls get shutdownGraceMs to finish, then the rest are cancelled. Idempotent.
   */
  shutdown(): Promise<RlsShutdownResult> {
    this.stopping ??= (async () => {
      this.health.setStatus("", "NOT_SERVING");
      this.health.setStatus(RLS_SERVICE_NAME, "NOT_SERVING");
      this.log?.info({ drainDelayMs: this.drainMs, graceMs: this.graceMs, inFlight: this.inFlight }, "rls server shutting down");
      if (this.drainMs > 0) await new Promise((r) => setTimeout(r, this.drainMs));
      let timer: NodeJS.Timeout | undefined;
      const forced = await new Promise<boolean>((resolve) => {
        timer = setTimeout(() => {
          this.server.forceShutdown();
          resolve(true);
        }, this.graceMs);
        this.server.tryShutdown(() => resolve(false));
      });
      clearTimeout(timer);
      if (forced) this.log?.warn({ graceMs: this.graceMs }, "rls shutdown grace over: remaining calls cancelled");
      return { forced };
    })();
    return this.stopping;
  }
}
