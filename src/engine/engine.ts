/**
 * The engine facade: owns one engine core (the WASM module, or the TypeScript reference), sizes it
 * once, moves batches through its linear-memory buffers and reads forecasts, features and stats.
 * See docs/engine.md.
 */
import type { UserHash } from "../telemetry/hash.ts";
import type { EngineCore } from "./core.ts";
import { EngineInputError, EngineLoadError, EngineOptionsError, SnapshotError } from "./errors.ts";
import { EVENT_RECORD_BYTES, EventField as EV, FORECAST_RECORD_BYTES } from "./layout.ts";
import { LSTM_GRAD_CLIP, type EngineOptions, type ResolvedEngineOptions, resolveEngineOptions } from "./options.ts";
import { ReferenceCore } from "./reference.ts";
import { COUNTS_RECORD_BYTES, GlobalIndex as GI, MAX_BUCKET, NIL, PARAMS_BYTES, ParamIndex, GLOBALS_BYTES } from "./regions.ts";
import { instantiateWasmCore, wasmPath } from "./wasm.ts";
import { MIN_PARALLEL_SLOTS, TickPool } from "./tick-pool.ts";
import { LSTM_PARAM_COUNT, LstmWeights } from "./gru.ts";

/** One request event, as the convenience API takes it (missing numbers are 0). */
export interface EventInput {
  userHash: UserHash;
  /** Event time, ms since the Unix epoch. */
  timeMs: number;
  inputTokens?: number;
  outputTokens?: number;
  routeHash?: number;
  ipHash?: number;
  uaHash?: number;
  latencyMs?: number;
  bytes?: number;
  /** HTTP status (0 = unknown). */
  status?: number;
  /** EventFlag bits. */
  flags?: number;
}

/** One aggregate record for the replay path: `requests` requests in the bucket holding `timeMs`. */
export interface CountsInput {
  userHash: UserHash;
  timeMs: number;
  requests: number;
  inputTokens?: number;
  outputTokens?: number;
}

/** One forecast output record. */
export interface ForecastRecord {
  userHash: UserHash;
  /** Forecast request rate at the configured horizon, req/s. */
  ratePerSec: number;
  /** Upper bound at the configured quantile, req/s. */
  upperPerSec: number;
  /** Observed rate in the bucket that closed last, req/s. */
  observedPerSec: number;
}

/** Features of a user's last closed bucket. */
export interface UserFeatures {
  requests: number;
  inputTokens: number;
  outputTokens: number;
  /** Linear-counting estimate (128-bit bitmap). */
  distinctIps: number;
  distinctUserAgents: number;
  /** Coefficient of variation of in-order inter-arrival gaps (0 with fewer than 2 gaps). */
  interArrivalCv: number;
  errors: number;
  throttled: number;
}

/** Cumulative per-user totals (Engine.userTotals). */
export interface UserTotals {
  /** Requests applied: events plus the `requests` of aggregate records. */
  requests: number;
  /** Sum of input tokens applied. */
  inputTokens: number;
  /** Sum of output tokens applied. */
  outputTokens: number;
}

/** Engine counters (all numbers). */
export interface EngineStats {
  eventsApplied: number;
  countsApplied: number;
  invalid: number;
  late: number;
  early: number;
  evictions: number;
  expirations: number;
  usersTracked: number;
  bucketsClosed: number;
  skippedBuckets: number;
  ticks: number;
  /** Buckets below this are closed (event-time clock). */
  closedBucket: number;
}

/** Zero-copy access to the ingress buffer for producers that fill records themselves. */
export interface IngressBuffer {
  /** The buffer's bytes (capacity x 48), records laid out as src/engine/layout.ts. */
  bytes: Uint8Array;
  /** A DataView over the same bytes (little-endian accessors). */
  view: DataView;
  /** Records it holds. */
  capacity: number;
}

/** Zero-copy view of the last tick's output records. */
export interface ForecastView {
  count: number;
  /** u32 view: record i's hash words at [i*8], [i*8+1]. */
  u32: Uint32Array;
  /** f64 view: record i's rate, upper, observed at [i*4+1], [i*4+2], [i*4+3]. */
  f64: Float64Array;
}

const SNAPSHOT_MAGIC = 0x31455346; // "FSE1" little-endian
const SNAPSHOT_VERSION = 1;
const SNAPSHOT_HEADER_BYTES = 16;

/**
 * Parameters that shape the state (memory layout, bucket grid): a snapshot restores only into an
 * engine whose values are equal. The others (horizon, quantile, smoothing, expiry, catch-up) are
 * the running engine's own and survive a restore, so a changed config still restores its
 * checkpoints and {@link Engine.reconfigured} can change them on a live engine.
 */
const LAYOUT_PARAMS: readonly (keyof typeof ParamIndex)[] = [
  "version", "capacity", "indexEntries", "slotBytes", "bucketWidthMs", "allowedLatenessMs", "ringBuckets",
  "seasonPoints", "periodBuckets",
];

/** Engine options a running engine can change without a restart (see {@link Engine.reconfigured}). */
export const LIVE_ENGINE_OPTIONS = [
  "horizonBuckets", "upperQuantile", "alpha", "beta", "gamma", "phi", "alphaMax", "trackingThreshold",
  "trackingSmoothing", "alphaDecay", "varianceSmoothing", "timeOfDayDayWeight", "expireAfterBuckets",
  "maxCatchUpBuckets", "lstmTrainUsersPerBucket", "lstmLearningRate", "lstmMinCountPerBucket",
] as const satisfies readonly (keyof EngineOptions)[];

/** Creates engines of one implementation. */
export interface EngineFactory {
  readonly name: string;
  create(options?: EngineOptions): Promise<Engine>;
}

/** The arguments of the core's fcConfigure and init for resolved options (tick threads attach with the same). */
function coreArgs(o: ResolvedEngineOptions): [Parameters<EngineCore["fcConfigure"]>, Parameters<EngineCore["init"]>] {
  return [
    [o.forecastModel === "ensemble" ? 1 : 0, o.upperQuantile, o.lstmTrainUsersPerBucket, o.lstmLearningRate, LSTM_GRAD_CLIP, o.lstmMinCountPerBucket],
    [
      o.capacityUsers, o.bucketWidthMs, o.allowedLatenessMs, o.seasonPoints, o.horizonBuckets, o.z, o.alpha,
      o.beta, o.gamma, o.phi, o.alphaMax, o.trackingThreshold, o.trackingSmoothing, o.alphaDecay,
      o.varianceSmoothing, o.todAlpha, o.expireAfterBuckets, o.maxCatchUpBuckets, o.ingressCapacity,
      o.countsCapacity,
    ],
  ];
}

/** Stops the tick threads of engines dropped without close(). */
const poolReaper = new FinalizationRegistry<TickPool>((pool) => void pool.close());

export class Engine {
  /** Resolved options (defaults applied, derived scalars added). */
  readonly options: ResolvedEngineOptions;
  /** The core's scalar API (cold-path getters: lookup, hwForecast, feat*, ...). */
  readonly core: EngineCore;
  private buf: ArrayBuffer;
  private u8!: Uint8Array;
  private u16!: Uint16Array;
  private u32!: Uint32Array;
  private i32!: Int32Array;
  private f64!: Float64Array;
  private outCount = 0;
  /** The options as given (before defaults), so {@link reconfigured} can change a few of them. */
  private input: EngineOptions = {};
  /** Tick threads (tickThreads > 1). */
  private pool?: TickPool;

  private constructor(core: EngineCore, options: ResolvedEngineOptions) {
    this.core = core;
    this.options = options;
    const o = options;
    // LSTM-lite and the ensemble are configured before init: the slot layout depends on them.
    const [fcArgs, initArgs] = coreArgs(o);
    core.fcConfigure(...fcArgs);
    const rc = core.init(...initArgs);
    if (rc !== 0) {
      const why = { [-1]: "already initialised", [-2]: "memory.grow failed (out of memory)", [-3]: "state larger than 4 GiB", [-4]: "parameters rejected" }[rc] ?? `code ${rc}`;
      throw new EngineLoadError(`engine init failed: ${why} (capacityUsers ${o.capacityUsers})`);
    }
    this.buf = core.buffer();
    this.views();
    if (o.forecastModel === "ensemble") {
      const w = o.lstmWeights ? LstmWeights.fromBytes(o.lstmWeights) : LstmWeights.init(1);
      this.f64.set(w.params, this.core.fcTrainBlockPtr() >> 3);
    }
  }

  /** Bytes of the LSTM-lite training block carried in snapshots (0 with forecastModel "hw"). */
  private fcBlockBytes(): number {
    return this.options.forecastModel === "ensemble" ? this.core.fcTrainBlockBytes() : 0;
  }

  /** The shared LSTM-lite weights as an LSTL blob (e.g. after online training); undefined with "hw". */
  lstmWeights(): Uint8Array | undefined {
    if (this.options.forecastModel !== "ensemble") return undefined;
    this.fresh();
    const p = this.core.fcTrainBlockPtr() >> 3;
    return new LstmWeights(this.f64.slice(p, p + LSTM_PARAM_COUNT)).toBytes();
  }

  /**
   * Replaces the shared LSTM-lite weights in place (a model hot swap): every user's state (features,
   * Holt-Winters, hidden vectors, ensemble weights) is kept; the online trainer's optimizer moments
   * restart, since they belong to the old weights. Throws {@link EngineOptionsError} with "hw".
   */
  setLstmWeights(bytes: Uint8Array): void {
    if (this.options.forecastModel !== "ensemble") throw new EngineOptionsError(`setLstmWeights needs forecastModel "ensemble" (this engine runs "${this.options.forecastModel}")`);
    const w = LstmWeights.fromBytes(bytes);
    this.fresh();
    const p = this.core.fcTrainBlockPtr() >> 3;
    this.f64.set(w.params, p);
    // Adam's first and second moments and its step count follow the parameters.
    this.f64.fill(0, p + LSTM_PARAM_COUNT, p + 3 * LSTM_PARAM_COUNT + 1);
  }

  /** LSTM-lite forecast of the user's request count h buckets after the last closed one; undefined if untracked or "hw". */
  userLstmForecast(h: UserHash, horizonBuckets: number = this.options.horizonBuckets): number | undefined {
    const s = this.lookup(h);
    if (s < 0 || this.options.forecastModel !== "ensemble") return undefined;
    return this.core.lstmForecast(s, horizonBuckets);
  }

  /** Online LSTM-lite training so far: steps and mean absolute error (log1p space) of those steps. */
  lstmTrainingStats(): { steps: number; meanAbsError: number } {
    const steps = this.core.fcTrainSteps();
    return { steps, meanAbsError: steps ? this.core.fcTrainLossSum() / steps : NaN };
  }

  /**
   * The tiers in the last tick that closed buckets: user-bucket closes that ran LSTM-lite's GRU
   * (dense tier) out of all of them. Both 0 for "hw" engines.
   */
  lstmTierStats(): { denseCloses: number; closes: number } {
    if (this.options.forecastModel !== "ensemble") return { denseCloses: 0, closes: 0 };
    return { denseCloses: this.core.fcDenseCloses(), closes: this.core.fcCloses() };
  }

  /**
   * Creates a WASM engine (release build, or debug with `debug: true`); with tickThreads > 1 it
   * starts the tick threads (unless capacityUsers is below MIN_PARALLEL_SLOTS).
   */
  static async create(options: EngineOptions = {}): Promise<Engine> {
    const o = resolveEngineOptions(options);
    const core = await instantiateWasmCore(o.wasmPath ?? wasmPath(o.debug));
    const e = new Engine(core, o);
    e.input = { ...options };
    // A table that can never hold MIN_PARALLEL_SLOTS users never ticks on threads: no workers for it.
    if (o.tickThreads > 1 && o.capacityUsers >= MIN_PARALLEL_SLOTS) {
      if (!core.shared) throw new EngineOptionsError(`tickThreads ${o.tickThreads}: the module ${o.wasmPath ?? wasmPath(o.debug)} has no shared memory (a build from before tick threads); use tickThreads 1`);
      const [fcArgs, initArgs] = coreArgs(o);
      e.pool = await TickPool.start(core.shared, o.tickThreads, fcArgs, initArgs);
      poolReaper.register(e, e.pool, e);
    }
    return e;
  }

  /** Threads that run this engine's ticks (1 without tick threads). */
  get tickThreads(): number {
    return this.pool?.threads ?? 1;
  }

  /**
   * Stops the engine's tick threads, if any (later ticks run on the calling thread alone). The
   * engine stays usable; call it when the engine is dropped (an unclosed engine's threads stop
   * when it is garbage-collected, and never keep the process alive).
   */
  async close(): Promise<void> {
    const pool = this.pool;
    if (!pool) return;
    this.pool = undefined;
    poolReaper.unregister(this);
    await pool.close();
  }

  /** Creates an engine on the TypeScript reference core (same interface and results). */
  static createReference(options: EngineOptions = {}): Engine {
    const e = new Engine(new ReferenceCore(), resolveEngineOptions(options));
    e.input = { ...options };
    return e;
  }

  /**
   * A new, empty engine of the same kind and options but for the given live ones
   * ({@link LIVE_ENGINE_OPTIONS}); move the state over with `next.restore(this.snapshot())`
   * (synchronously, between batches). Options that shape memory need a restart: changing one
   * throws EngineOptionsError naming it.
   */
  async reconfigured(changes: EngineOptions): Promise<Engine> {
    const live: readonly string[] = LIVE_ENGINE_OPTIONS;
    for (const [k, v] of Object.entries(changes)) {
      if (v === undefined || live.includes(k)) continue;
      const current = (this.input as Record<string, unknown>)[k] ?? (this.options as Record<string, unknown>)[k];
      if (!Object.is(current, v)) throw new EngineOptionsError(`${k} cannot change on a running engine (it shapes the state); restart with the new value`);
    }
    const options = { ...this.input, ...changes };
    return this.kind === "wasm" ? Engine.create(options) : Engine.createReference(options);
  }

  /** "wasm" or "reference". */
  get kind(): string {
    return this.core.kind;
  }

  private views(): void {
    const b = this.core.buffer();
    this.buf = b;
    this.u8 = new Uint8Array(b);
    this.u16 = new Uint16Array(b);
    this.u32 = new Uint32Array(b);
    this.i32 = new Int32Array(b);
    this.f64 = new Float64Array(b);
  }

  /** Re-creates the views if the memory's buffer was replaced (growth); cheap identity check. */
  private fresh(): void {
    if (this.core.buffer() !== this.buf || this.buf.byteLength === 0) this.views();
  }

  /** Capacity of the ingress buffer, records. */
  get ingressCapacity(): number {
    return this.options.ingressCapacity;
  }

  /** Zero-copy ingress: fill `bytes` with up to `capacity` records, then call ingestFilled(n). */
  ingressBuffer(): IngressBuffer {
    this.fresh();
    const ptr = this.core.ingressPtr();
    const cap = this.options.ingressCapacity;
    return {
      bytes: new Uint8Array(this.buf, ptr, cap * EVENT_RECORD_BYTES),
      view: new DataView(this.buf, ptr, cap * EVENT_RECORD_BYTES),
      capacity: cap,
    };
  }

  /** Applies the first n records already in the ingress buffer; returns how many were applied. */
  ingestFilled(n: number): number {
    if (!Number.isInteger(n) || n < 0 || n > this.options.ingressCapacity)
      throw new EngineInputError(`ingestFilled: count ${n} not in 0..${this.options.ingressCapacity}`);
    return n === 0 ? 0 : this.core.ingest(n);
  }

  /** Copies `count` 48-byte records from `bytes` (e.g. a telemetry frame) in chunks of the ingress capacity. */
  ingestRecords(bytes: Uint8Array, count: number = Math.floor(bytes.byteLength / EVENT_RECORD_BYTES)): number {
    if (!Number.isInteger(count) || count < 0 || count * EVENT_RECORD_BYTES > bytes.byteLength)
      throw new EngineInputError(`ingestRecords: ${count} records need ${count * EVENT_RECORD_BYTES} bytes, got ${bytes.byteLength}`);
    const cap = this.options.ingressCapacity;
    let applied = 0;
    for (let i = 0; i < count; i += cap) {
      const n = Math.min(cap, count - i);
      this.fresh();
      this.u8.set(bytes.subarray(i * EVENT_RECORD_BYTES, (i + n) * EVENT_RECORD_BYTES), this.core.ingressPtr());
      applied += this.core.ingest(n);
    }
    return applied;
  }

  /** Convenience ingest of event objects (numbers are written as the record's types; see layout.ts). */
  ingest(events: readonly EventInput[]): number {
    const cap = this.options.ingressCapacity;
    let applied = 0;
    for (let i = 0; i < events.length; i += cap) {
      const n = Math.min(cap, events.length - i);
      this.fresh();
      const base = this.core.ingressPtr();
      const { u32, i32, u16, f64 } = this;
      for (let k = 0; k < n; k++) {
        const e = events[i + k];
        const p = base + k * EVENT_RECORD_BYTES;
        u32[(p + EV.userHashLo) >> 2] = e.userHash.lo;
        u32[(p + EV.userHashHi) >> 2] = e.userHash.hi;
        f64[(p + EV.timeMs) >> 3] = e.timeMs;
        i32[(p + EV.inputTokens) >> 2] = e.inputTokens ?? 0;
        i32[(p + EV.outputTokens) >> 2] = e.outputTokens ?? 0;
        u32[(p + EV.routeHash) >> 2] = e.routeHash ?? 0;
        u32[(p + EV.ipHash) >> 2] = e.ipHash ?? 0;
        u32[(p + EV.uaHash) >> 2] = e.uaHash ?? 0;
        i32[(p + EV.latencyMs) >> 2] = e.latencyMs ?? 0;
        i32[(p + EV.bytes) >> 2] = e.bytes ?? 0;
        u16[(p + EV.status) >> 1] = e.status ?? 0;
        u16[(p + EV.flags) >> 1] = e.flags ?? 0;
      }
      applied += this.core.ingest(n);
    }
    return applied;
  }

  /** Replay path: adds aggregate counts (per-event features untouched). */
  ingestCounts(records: readonly CountsInput[]): number {
    const cap = this.options.countsCapacity;
    let applied = 0;
    for (let i = 0; i < records.length; i += cap) {
      const n = Math.min(cap, records.length - i);
      this.fresh();
      const base = this.core.countsPtr();
      const { u32, f64 } = this;
      for (let k = 0; k < n; k++) {
        const r = records[i + k];
        const p = base + k * COUNTS_RECORD_BYTES;
        u32[p >> 2] = r.userHash.lo;
        u32[(p + 4) >> 2] = r.userHash.hi;
        f64[(p + 8) >> 3] = r.timeMs;
        f64[(p + 16) >> 3] = r.requests;
        f64[(p + 24) >> 3] = r.inputTokens ?? 0;
        f64[(p + 32) >> 3] = r.outputTokens ?? 0;
      }
      applied += this.core.ingestCounts(n);
    }
    return applied;
  }

  /** Closes buckets up to floor((nowMs - lateness) / width), runs the models, writes forecasts; returns their count. */
  tick(nowMs: number): number {
    if (!Number.isFinite(nowMs) || nowMs < 0) throw new EngineInputError(`tick: nowMs ${nowMs} must be a finite time >= 0`);
    this.outCount = this.pool ? this.pool.tick(this.core, nowMs) : this.core.tick(nowMs);
    return this.outCount;
  }

  /** The last tick's forecasts as objects (allocates; use forecastView() on hot paths). */
  forecasts(): ForecastRecord[] {
    const v = this.forecastView();
    const out: ForecastRecord[] = new Array(v.count);
    for (let i = 0; i < v.count; i++) {
      out[i] = {
        userHash: { lo: v.u32[i * 8], hi: v.u32[i * 8 + 1] },
        ratePerSec: v.f64[i * 4 + 1],
        upperPerSec: v.f64[i * 4 + 2],
        observedPerSec: v.f64[i * 4 + 3],
      };
    }
    return out;
  }

  /** Zero-copy view of the last tick's output (valid until the next tick). */
  forecastView(): ForecastView {
    this.fresh();
    const ptr = this.core.outputPtr();
    const n = this.outCount;
    return {
      count: n,
      u32: new Uint32Array(this.buf, ptr, n * (FORECAST_RECORD_BYTES / 4)),
      f64: new Float64Array(this.buf, ptr, n * (FORECAST_RECORD_BYTES / 8)),
    };
  }

  /** Slot of a user, or -1. */
  lookup(h: UserHash): number {
    return this.core.lookup(h.lo >>> 0, h.hi >>> 0);
  }

  /** Features of the user's last closed bucket, or undefined if the user is not tracked. */
  userFeatures(h: UserHash): UserFeatures | undefined {
    const s = this.lookup(h);
    if (s < 0) return undefined;
    const c = this.core;
    return {
      requests: c.featCount(s), inputTokens: c.featInputTokens(s), outputTokens: c.featOutputTokens(s),
      distinctIps: c.featDistinctIps(s), distinctUserAgents: c.featDistinctUas(s), interArrivalCv: c.featCv(s),
      errors: c.featErrors(s), throttled: c.featThrottled(s),
    };
  }

  /**
   * Cumulative totals of everything applied to the user since its slot was taken (events and
   * aggregate records; late, early and invalid ones are not counted): requests, input and output
   * tokens. Undefined if the user is not tracked (an evicted or expired user starts again at 0).
   */
  userTotals(h: UserHash): UserTotals | undefined {
    const s = this.lookup(h);
    if (s < 0) return undefined;
    const c = this.core;
    return { requests: c.userRequests(s), inputTokens: c.userInputTokens(s), outputTokens: c.userOutputTokens(s) };
  }

  /** Holt-Winters forecast and upper bound h buckets after the last closed one, or undefined. */
  userForecast(h: UserHash, horizonBuckets: number = this.options.horizonBuckets): { ratePerSec: number; upperPerSec: number } | undefined {
    const s = this.lookup(h);
    if (s < 0) return undefined;
    return { ratePerSec: this.core.hwForecast(s, horizonBuckets), upperPerSec: this.core.hwUpper(s, horizonBuckets) };
  }

  /** Counters and the event-time clock. */
  stats(): EngineStats {
    this.core.saveGlobals();
    this.fresh();
    const g = (this.core.statePtr() + PARAMS_BYTES) >> 3;
    const f = this.f64;
    return {
      eventsApplied: f[g + GI.eventsApplied], countsApplied: f[g + GI.countsApplied], invalid: f[g + GI.invalid],
      late: f[g + GI.late], early: f[g + GI.early], evictions: f[g + GI.evictions], expirations: f[g + GI.expirations],
      usersTracked: f[g + GI.usersTracked], bucketsClosed: f[g + GI.bucketsClosed],
      skippedBuckets: f[g + GI.skippedBuckets], ticks: f[g + GI.ticks], closedBucket: f[g + GI.closedBucket],
    };
  }

  /** Sizes: slot bytes (LRU links included), bytes of state per user (slot + index + output), total memory. */
  memoryInfo(): { slotBytes: number; bytesPerUser: number; stateBytes: number; memoryBytes: number; ringBuckets: number; slotExtOffset: number } {
    const c = this.core;
    const cap = this.options.capacityUsers;
    const slot = c.slotBytes();
    return {
      slotBytes: slot,
      bytesPerUser: slot + (c.indexEntries() * 8) / cap + FORECAST_RECORD_BYTES,
      stateBytes: c.stateBytes(),
      memoryBytes: c.buffer().byteLength,
      ringBuckets: c.ringBuckets(),
      slotExtOffset: c.slotExtOffset(),
    };
  }

  /** Serialises the state (params, globals, index, slots): 16-byte header + state region. */
  snapshot(): Uint8Array {
    this.core.saveGlobals();
    this.fresh();
    const n = this.core.stateBytes();
    const fcBytes = this.fcBlockBytes();
    const out = new Uint8Array(SNAPSHOT_HEADER_BYTES + n + fcBytes);
    const dv = new DataView(out.buffer);
    dv.setUint32(0, SNAPSHOT_MAGIC, true);
    dv.setUint32(4, SNAPSHOT_VERSION, true);
    dv.setFloat64(8, n, true);
    out.set(this.u8.subarray(this.core.statePtr(), this.core.statePtr() + n), SNAPSHOT_HEADER_BYTES);
    // LSTM-lite's shared weights and optimiser state follow the state region.
    if (fcBytes) out.set(this.u8.subarray(this.core.fcTrainBlockPtr(), this.core.fcTrainBlockPtr() + fcBytes), SNAPSHOT_HEADER_BYTES + n);
    return out;
  }

  /**
   * Restores a snapshot taken by an engine with the same layout parameters (capacity, bucket
   * width, lateness, season points); throws SnapshotError otherwise. This engine keeps its own
   * live parameters (horizon, quantile, smoothing, ...), so a checkpoint survives a config change.
   */
  restore(bytes: Uint8Array): void {
    if (!(bytes instanceof Uint8Array) || bytes.byteLength < SNAPSHOT_HEADER_BYTES + PARAMS_BYTES + GLOBALS_BYTES)
      throw new SnapshotError(`snapshot too short (${bytes?.byteLength ?? 0} bytes)`);
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    if (dv.getUint32(0, true) !== SNAPSHOT_MAGIC) throw new SnapshotError("not an engine snapshot (bad magic)");
    const version = dv.getUint32(4, true);
    if (version !== SNAPSHOT_VERSION) throw new SnapshotError(`snapshot format version ${version}, this engine reads ${SNAPSHOT_VERSION}`);
    const n = this.core.stateBytes();
    const declared = dv.getFloat64(8, true);
    const fcBytes = this.fcBlockBytes();
    if (declared !== n || bytes.byteLength !== SNAPSHOT_HEADER_BYTES + n + fcBytes)
      throw new SnapshotError(`snapshot holds ${declared} state bytes (${bytes.byteLength - SNAPSHOT_HEADER_BYTES} present), this engine has ${n}${fcBytes ? ` + ${fcBytes} LSTM-lite bytes` : ""}: incompatible capacity, layout or forecastModel`);
    this.fresh();
    const ptr = this.core.statePtr();
    for (const name of LAYOUT_PARAMS) {
      const i = ParamIndex[name];
      const mine = this.f64[(ptr >> 3) + i];
      const theirs = dv.getFloat64(SNAPSHOT_HEADER_BYTES + i * 8, true);
      if (!Object.is(mine, theirs)) throw new SnapshotError(`snapshot parameter ${name} = ${theirs}, this engine has ${mine}`);
    }
    const g = (k: keyof typeof GI) => dv.getFloat64(SNAPSHOT_HEADER_BYTES + PARAMS_BYTES + GI[k] * 8, true);
    const cap = this.options.capacityUsers;
    const slotOrNil = (v: number) => v === NIL || (Number.isInteger(v) && v >= 0 && v < cap);
    const okInt = (v: number, max: number) => Number.isInteger(v) && v >= 0 && v <= max;
    if (!okInt(g("used"), cap) || !okInt(g("usersTracked"), g("used")) || !okInt(g("closedBucket"), MAX_BUCKET) ||
        !slotOrNil(g("freeHead")) || !slotOrNil(g("lruHead")) || !slotOrNil(g("lruTail")) || !(g("initialized") === 0 || g("initialized") === 1))
      throw new SnapshotError("snapshot globals are inconsistent (corrupt snapshot)");
    // The parameter block at the start of the state stays this engine's own (live parameters).
    const ownParams = this.u8.slice(ptr, ptr + PARAMS_BYTES);
    this.u8.set(bytes.subarray(SNAPSHOT_HEADER_BYTES, SNAPSHOT_HEADER_BYTES + n), ptr);
    this.u8.set(ownParams, ptr);
    if (fcBytes) this.u8.set(bytes.subarray(SNAPSHOT_HEADER_BYTES + n), this.core.fcTrainBlockPtr());
    this.core.loadGlobals();
    this.outCount = 0;
  }
}

/** The WASM implementation (release build unless options.debug). */
export const WASM: EngineFactory = { name: "wasm", create: (o) => Engine.create(o) };
/** The TypeScript reference implementation, same interface. */
export const REFERENCE: EngineFactory = { name: "reference", create: async (o) => Engine.createReference(o) };
