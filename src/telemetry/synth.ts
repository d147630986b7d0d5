// A small deterministic telemetry generator for tests and benches: a seeded PRNG, Zipf-skewed
// users (a few heavy users, a long tail, as in real multi-tenant APIs), evenly spaced event times.
// The same options and seed always give the same bytes.
import { FRAME_HEADER_BYTES, FRAME_RECORD_BYTES, writeFrameHeader } from "./frame.ts";
import { hash32, userHash, type UserHash } from "./hash.ts";
import { writeRecord, type TelemetryEvent } from "./event.ts";
import { EventFlag } from "../wire/layout.ts";
import { mulberry32 } from "../util/random.ts";

/** Default number of distinct users. */
export const DEFAULT_SYNTH_USERS = 1_000;
/** Default Zipf exponent s (user of rank k has weight 1 / k^s). */
export const DEFAULT_SYNTH_ZIPF_EXPONENT = 1.1;
/** Default time of the first event, ms since the epoch (2023-11-14T22:13:20Z). */
export const DEFAULT_SYNTH_START_MS = 1_700_000_000_000;
/** Default spacing between consecutive events, ms. */
export const DEFAULT_SYNTH_SPACING_MS = 1;
/** Default PRNG seed. */
export const DEFAULT_SYNTH_SEED = 1;
/** Routes the generator draws from (uniformly). */
export const SYNTH_ROUTES = ["/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/images"] as const;

/** Options of {@link SynthTelemetry}. */
export interface SynthOptions {
  /** Distinct users, named `<userPrefix><rank>` with rank 1 the heaviest. Default 1000. */
  users?: number;
  /** Zipf exponent s (0 = uniform). Default 1.1. */
  zipfExponent?: number;
  /** Time of the first event, ms since the epoch. Default {@link DEFAULT_SYNTH_START_MS}. */
  startTimeMs?: number;
  /** Time between consecutive events, ms. Default 1. */
  spacingMs?: number;
  /** PRNG seed (any 32-bit integer). Default 1. */
  seed?: number;
  /** Prefix of user keys. Default "user-". */
  userPrefix?: string;
  /** Fraction of events with status 429 and the throttled flag, 0..1. Default 0.01. */
  throttledFraction?: number;
}

/** Deterministic generator of telemetry events and frames. */
export class SynthTelemetry {
  /** User keys by rank - 1. */
  readonly userKeys: string[];
  /** User hashes by rank - 1. */
  readonly userHashes: UserHash[];
  private readonly cdf: Float64Array;
  private readonly routeHashes: number[];
  private readonly spacingMs: number;
  private readonly throttledFraction: number;
  private readonly uniform: () => number;
  /** Time of the next event, ms. */
  nextTimeMs: number;

  constructor(opts: SynthOptions = {}) {
    const n = opts.users ?? DEFAULT_SYNTH_USERS;
    if (!Number.isInteger(n) || n < 1) throw new RangeError(`synth users must be a positive integer, got ${n}`);
    const s = opts.zipfExponent ?? DEFAULT_SYNTH_ZIPF_EXPONENT;
    const prefix = opts.userPrefix ?? "user-";
    this.userKeys = Array.from({ length: n }, (_, i) => `${prefix}${i + 1}`);
    this.userHashes = this.userKeys.map(userHash);
    this.cdf = new Float64Array(n);
    let sum = 0;
    for (let k = 1; k <= n; k++) {
      sum += 1 / Math.pow(k, s);
      this.cdf[k - 1] = sum;
    }
    for (let i = 0; i < n; i++) this.cdf[i] /= sum;
    this.routeHashes = SYNTH_ROUTES.map((r) => hash32(r));
    this.spacingMs = opts.spacingMs ?? DEFAULT_SYNTH_SPACING_MS;
    this.throttledFraction = opts.throttledFraction ?? 0.01;
    this.uniform = mulberry32(opts.seed ?? DEFAULT_SYNTH_SEED);
    this.nextTimeMs = opts.startTimeMs ?? DEFAULT_SYNTH_START_MS;
  }

  /** Uniform in [0, 1) (mulberry32). */
  random(): number {
    return this.uniform();
  }

  /** A user index (rank - 1) drawn from the Zipf distribution. */
  nextUserIndex(): number {
    const u = this.random();
    let lo = 0;
    let hi = this.cdf.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.cdf[mid] > u) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }

  /** The next event as a TelemetryEvent (for publisher tests). */
  nextEvent(): TelemetryEvent {
    const f = this.draw();
    return {
      user: this.userKeys[f.user],
      timeMs: f.timeMs,
      inputTokens: f.inputTokens,
      outputTokens: f.outputTokens,
      route: SYNTH_ROUTES[f.route],
      status: f.throttled ? 429 : 200,
      latencyMs: f.latencyMs,
      bytes: f.bytes,
      throttled: f.throttled,
    };
  }

  /** The next `count` events. */
  events(count: number): TelemetryEvent[] {
    return Array.from({ length: count }, () => this.nextEvent());
  }

  /** A binary frame of the next `count` events (same draws as `events(count)` would make). */
  frame(count: number): Uint8Array {
    const bytes = new Uint8Array(FRAME_HEADER_BYTES + count * FRAME_RECORD_BYTES);
    writeFrameHeader(bytes, count);
    const view = new DataView(bytes.buffer);
    for (let i = 0; i < count; i++) {
      const f = this.draw();
      const h = this.userHashes[f.user];
      writeRecord(view, FRAME_HEADER_BYTES + i * FRAME_RECORD_BYTES, {
        userHashLo: h.lo,
        userHashHi: h.hi,
        timeMs: f.timeMs,
        inputTokens: f.inputTokens,
        outputTokens: f.outputTokens,
        routeHash: this.routeHashes[f.route],
        ipHash: 0,
        uaHash: 0,
        latencyMs: f.latencyMs,
        bytes: f.bytes,
        status: f.throttled ? 429 : 200,
        flags: f.throttled ? EventFlag.throttled : 0,
      });
    }
    return bytes;
  }

  private draw() {
    const user = this.nextUserIndex();
    const timeMs = this.nextTimeMs;
    this.nextTimeMs += this.spacingMs;
    // Log-uniform token counts: 16..4096 input, 8..1024 output, as LLM APIs see.
    const inputTokens = Math.floor(16 * Math.pow(256, this.random()));
    const outputTokens = Math.floor(8 * Math.pow(128, this.random()));
    const route = Math.floor(this.random() * SYNTH_ROUTES.length);
    const throttled = this.random() < this.throttledFraction;
    const latencyMs = throttled ? 1 : 20 + Math.floor(outputTokens * (0.5 + this.random()));
    const bytes = throttled ? 64 : 200 + outputTokens * 4;
    return { user, timeMs, inputTokens, outputTokens, route, throttled, latencyMs, bytes };
  }
}
