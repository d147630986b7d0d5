// GrantService: consumes the processors' forecast ticks (`<prefix>.forecasts.<p>`), computes
// every user's grant with the pure policy (grants.ts) and publishes, per partition and tick, a
// delta (grants that moved by more than `deltaTolerance`, removals, and always at least an empty
// message that renews the partition's lease) and every `snapshotEveryTicks` ticks a full snapshot.
// It also publishes pool allocation, load and pressure every `poolStateIntervalMs`, load taken
// from the gateways' demand reports (fresh within a report interval) or, without reports, from
// the forecasts' observed rates.
//
// Distribution: one JetStream stream `<PREFIX>_GRANTS` over `<prefix>.grants.>` with
// max_msgs_per_subject = 1: snapshot chunks (`.grants.<p>.s.<chunk>`) and the pool state are
// replaced in place, every delta has its own subject (`.grants.<p>.d.<id>`) and ages out after
// `retainMs`. A gateway reads it with one ordered consumer, deliver "last per subject": the last
// snapshot, the deltas, the pool state, in stream order, then live messages (docs/throttle.md).
import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import { jetstream, jetstreamManager, DiscardPolicy, RetentionPolicy, StorageType, type JetStreamClient } from "@nats-io/jetstream";
import { decodeForecastMessage, type ForecastMessage } from "../processor/forecasts.ts";
import { FORECAST_RECORD_BYTES } from "../engine/layout.ts";
import { computeGrants, planLimits, planOrder, poolPressure, type GrantInputs, type PlanLimit, type PoolCapacity } from "./grants.ts";
import { ExceedanceFeedback, type FeedbackOptions } from "../feedback/correction.ts";
import { UserTable } from "./table.ts";
import {
  DEMAND_RECORD_BYTES,
  GRANT_FLAG_REMOVED,
  GRANT_RECORD_BYTES,
  MessageKind,
  decodeThrottleMessage,
  encodeGrantMessages,
  encodePoolsMessage,
  throttleNames,
  writeGrantRecord,
  type PoolState,
  type ThrottleNames,
} from "./wire.ts";
import type { ThrottleLog } from "./client.ts";

/** Default relative change of a grant's rates below which no delta record is sent. */
export const DEFAULT_DELTA_TOLERANCE = 0.05;
/** Default age after which the grants stream drops messages, ms (must exceed the snapshot period). */
export const DEFAULT_GRANTS_RETAIN_MS = 10 * 60_000;

/** Options of {@link GrantService}. */
export interface GrantServiceOptions {
  /** Subject prefix. Default "foresight". */
  subjectPrefix?: string;
  /** Partitions (nats.partitions). Default 8. */
  partitions?: number;
  /** Plan limits (throttle.plans). */
  plans: Readonly<Record<string, PlanLimit>>;
  /** Safe limits (throttle.safeLimits): a grant's floor. */
  safeLimits: Readonly<Record<string, PlanLimit>>;
  /** throttle.burstFactor. Default 1.5. */
  burstFactor?: number;
  /** Lease of every grant message, ms (throttle.grantTtlMs). Default 30,000. */
  grantTtlMs?: number;
  /** Leases are renewed at least this often while forecasts flow, ms (throttle.grantRefreshMs). Default 10,000. */
  grantRefreshMs?: number;
  /** Full snapshot every this many ticks (throttle.snapshotEveryTicks). Default 4. */
  snapshotEveryTicks?: number;
  /** Pool state period, ms (throttle.poolStateIntervalMs). Default 1000. */
  poolStateIntervalMs?: number;
  /** Pools' allocated capacity (index = pool index); called at every tick and pool publication. */
  pools: () => readonly PoolCapacity[];
  /** Pool index of a user. Default: 0. */
  poolOf?: (userHashLo: number, userHashHi: number) => number;
  /** Plan name of a user. Default: "default". */
  planOf?: (userHashLo: number, userHashHi: number) => string;
  /**
   * Per-user allocation for one partition's users (the allocator's src/allocator/users.ts), same
   * order as `inputs`; undefined or NaN entries = proportional share. Default: proportional.
   */
  allocationOf?: (partition: number, inputs: GrantInputs) => Float64Array | undefined;
  /** Relative change that makes a delta record. Default {@link DEFAULT_DELTA_TOLERANCE}. */
  deltaTolerance?: number;
  /** User slots per partition. Default 524,288. */
  usersPerPartition?: number;
  /** Grants stream max age, ms. Default {@link DEFAULT_GRANTS_RETAIN_MS}. */
  retainMs?: number;
  /** Grants stream replicas. Default 1. */
  replicas?: number;
  /**
   * Exceedance feedback on each user's upper bound before grants are computed (throttle.feedback).
   * Default: mode "bias" with the src/feedback defaults.
   */
  feedback?: FeedbackOptions;
  /**
   * Publications happen only while this returns true (a host's leader lease: a process that lost
   * it stops publishing at once, before its host stops the service). Default: always.
   */
  active?: () => boolean;
  /** Clock. Default Date.now. */
  now?: () => number;
  log?: ThrottleLog;
}

/** Counters since start. */
export interface GrantServiceStats {
  forecastMessages: number;
  badForecastMessages: number;
  incompleteTicks: number;
  ticks: number;
  deltaRecords: number;
  snapshotRecords: number;
  removals: number;
  messagesPublished: number;
  publishErrors: number;
  poolPublications: number;
  demandReports: number;
  /** Payload bytes of the messages published. */
  bytesPublished: number;
  /** Publications skipped because `active()` was false. */
  publicationsSkipped: number;
  /** Users seen above the bound their last grant was made from (exceedance feedback), all partitions. */
  exceedances: number;
  /** Users holding a live grant now (a gauge, not a counter). */
  users: number;
  /** Time of the last tick published, ms since the epoch; 0 = none yet. */
  lastTickPublishedMs: number;
}

/** Stats with every counter at zero. */
export function emptyGrantStats(): GrantServiceStats {
  return {
    forecastMessages: 0, badForecastMessages: 0, incompleteTicks: 0, ticks: 0, deltaRecords: 0, snapshotRecords: 0, removals: 0,
    messagesPublished: 0, publishErrors: 0, poolPublications: 0, demandReports: 0, bytesPublished: 0, publicationsSkipped: 0,
    exceedances: 0, users: 0, lastTickPublishedMs: 0,
  };
}

interface PartitionState {
  table: UserTable;
  /** Exceedance feedback per user slot. */
  feedback: ExceedanceFeedback;
  /** Last published record per slot. */
  records: Uint8Array;
  /** 1 while the slot has a live grant. */
  live: Uint8Array;
  /** Tick that last saw the slot. */
  seenTick: Float64Array;
  /** Slots in insertion order (for snapshots and removals). */
  slots: Int32Array;
  slotCount: number;
  ticks: number;
  lastForecastMs: number;
  /** Sum of forecast upper bounds per pool, this partition's users. */
  poolForecast: Float64Array;
  /** Sum of observed rates per pool. */
  poolObserved: Float64Array;
  /** Sum of allocations per pool. */
  poolAllocated: Float64Array;
  /** Chunks of the tick being assembled. */
  pending?: { tickTimeMs: number; chunks: (ForecastMessage | undefined)[]; got: number };
  seq: number;
}

/** Computes and publishes grants and pool state. */
export class GrantService {
  readonly names: ThrottleNames;
  private readonly partitions: number;
  private readonly planNames: string[];
  private readonly planIdx = new Map<string, number>();
  private readonly plans: PlanLimit[];
  private readonly safe: PlanLimit[];
  private readonly ttlMs: number;
  private readonly parts: PartitionState[] = [];
  private readonly demand = new Map<string, { load: Float64Array; atMs: number; intervalMs: number }>();
  private readonly now: () => number;
  private readonly tolerance: number;
  private readonly snapshotEvery: number;
  private js: JetStreamClient | undefined;
  private subs: Subscription[] = [];
  private timers: NodeJS.Timeout[] = [];
  private chain: Promise<void> = Promise.resolve();
  /** This instance's id: the first token of its delta subjects' last part (`.d.<instanceId>-<seq>`). */
  readonly instanceId = Math.floor(Math.random() * 0xffffffff).toString(36);
  private readonly s: GrantServiceStats = emptyGrantStats();
  /** Called after a partition's tick is published (tests, bench). */
  onTickPublished?: (partition: number, tickTimeMs: number) => void;

  constructor(private readonly opts: GrantServiceOptions) {
    this.names = throttleNames(opts.subjectPrefix ?? "foresight");
    this.partitions = opts.partitions ?? 8;
    this.planNames = planOrder(opts.plans);
    this.planNames.forEach((n, i) => this.planIdx.set(n, i));
    this.plans = planLimits(this.planNames, opts.plans);
    this.safe = planLimits(this.planNames, opts.safeLimits);
    this.ttlMs = opts.grantTtlMs ?? 30_000;
    this.now = opts.now ?? Date.now;
    this.tolerance = opts.deltaTolerance ?? DEFAULT_DELTA_TOLERANCE;
    this.snapshotEvery = opts.snapshotEveryTicks ?? 4;
    const cap = opts.usersPerPartition ?? 524_288;
    for (let p = 0; p < this.partitions; p++) {
      const table = new UserTable(cap);
      this.parts.push({
        table,
        feedback: new ExceedanceFeedback(table.capacity, opts.feedback),
        records: new Uint8Array(table.capacity * GRANT_RECORD_BYTES),
        live: new Uint8Array(table.capacity),
        seenTick: new Float64Array(table.capacity),
        slots: new Int32Array(1024),
        slotCount: 0,
        ticks: 0,
        lastForecastMs: 0,
        poolForecast: new Float64Array(0),
        poolObserved: new Float64Array(0),
        poolAllocated: new Float64Array(0),
        seq: 0,
      });
    }
  }

  stats(): GrantServiceStats {
    let exceedances = 0;
    for (const st of this.parts) exceedances += st.feedback.exceedances;
    return { ...this.s, exceedances };
  }

  /** Creates (or updates) the grants stream. */
  static async ensureStream(nc: NatsConnection, names: ThrottleNames, opts: { retainMs?: number; replicas?: number } = {}): Promise<void> {
    const jsm = await jetstreamManager(nc);
    const cfg = {
      name: names.grantsStream,
      subjects: [names.grantsWildcard],
      retention: RetentionPolicy.Limits,
      storage: StorageType.File,
      discard: DiscardPolicy.Old,
      max_msgs_per_subject: 1,
      max_age: (opts.retainMs ?? DEFAULT_GRANTS_RETAIN_MS) * 1_000_000,
      num_replicas: opts.replicas ?? 1,
    };
    try {
      await jsm.streams.info(names.grantsStream);
      await jsm.streams.update(names.grantsStream, cfg);
    } catch {
      await jsm.streams.add(cfg);
    }
  }

  /** Subscribes to forecasts and demand reports, starts the pool and renewal timers. */
  async start(nc: NatsConnection): Promise<void> {
    await GrantService.ensureStream(nc, this.names, { retainMs: this.opts.retainMs, replicas: this.opts.replicas });
    this.js = jetstream(nc);
    const prefix = this.opts.subjectPrefix ?? "foresight";
    this.subs.push(
      nc.subscribe(`${prefix}.forecasts.*`, { callback: (err, m) => { if (!err) this.onForecast(m.data); } }),
      nc.subscribe(this.names.demandWildcard, { callback: (err, m) => { if (!err) this.onDemand(m.subject, m.data); } }),
    );
    const pools = setInterval(() => this.enqueue(() => this.publishPools()), this.opts.poolStateIntervalMs ?? 1000);
    const renew = setInterval(() => this.enqueue(() => this.renew()), this.opts.grantRefreshMs ?? 10_000);
    pools.unref();
    renew.unref();
    this.timers.push(pools, renew);
  }

  /** Runs publications one at a time, in order (a tick's delta before the next tick's). */
  private enqueue(task: () => Promise<void>): void {
    this.chain = this.chain.then(task).catch((err) => {
      this.s.publishErrors++;
      this.opts.log?.warn({ err }, "grant service: publication failed; the next tick or renewal retries");
    });
  }

  /** Waits for queued publications. */
  async idle(): Promise<void> {
    await this.chain;
  }

  /** Feeds one forecast message (from NATS, or directly). A bad one is counted and skipped. */
  onForecast(bytes: Uint8Array): void {
    let m: ForecastMessage;
    try {
      m = decodeForecastMessage(bytes);
    } catch (err) {
      this.s.badForecastMessages++;
      this.opts.log?.warn({ err }, "grant service: forecast message does not decode; skipped");
      return;
    }
    if (m.partition >= this.partitions) {
      this.s.badForecastMessages++;
      return;
    }
    this.s.forecastMessages++;
    const st = this.parts[m.partition];
    if (!st.pending || st.pending.tickTimeMs !== m.tickTimeMs) {
      if (st.pending && st.pending.got < st.pending.chunks.length) this.s.incompleteTicks++;
      st.pending = { tickTimeMs: m.tickTimeMs, chunks: new Array(m.chunkCount), got: 0 };
    }
    const pend = st.pending;
    if (m.chunkIndex >= pend.chunks.length || pend.chunks[m.chunkIndex]) return;
    // The records view points into the NATS message buffer; keep a copy while assembling.
    pend.chunks[m.chunkIndex] = { ...m, records: m.records.slice() };
    pend.got++;
    if (pend.got === pend.chunks.length) {
      st.pending = undefined;
      const chunks = pend.chunks as ForecastMessage[];
      this.enqueue(() => this.tickPartition(m.partition, pend.tickTimeMs, chunks));
    }
  }

  private onDemand(subject: string, bytes: Uint8Array): void {
    let m;
    try {
      m = decodeThrottleMessage(bytes);
    } catch {
      return;
    }
    if (m.kind !== MessageKind.demand) return;
    this.s.demandReports++;
    const load = new Float64Array(this.opts.pools().length);
    for (let i = 0; i < m.count; i++) {
      const o = i * DEMAND_RECORD_BYTES;
      const lo = m.records.getUint32(o, true), hi = m.records.getUint32(o + 4, true);
      const st = this.parts[(lo >>> 0) % this.partitions];
      const slot = st.table.find(lo, hi);
      const pool = slot >= 0 && st.live[slot] ? st.records[slot * GRANT_RECORD_BYTES + 36] | (st.records[slot * GRANT_RECORD_BYTES + 37] << 8) : this.poolOf(lo, hi);
      if (pool < load.length) load[pool] += m.records.getFloat32(o + 8, true);
    }
    this.demand.set(subject, { load, atMs: this.now(), intervalMs: m.ttlMs });
  }

  private poolOf(lo: number, hi: number): number {
    return this.opts.poolOf ? this.opts.poolOf(lo, hi) : 0;
  }

  /** Computes and publishes one partition's grants for a complete forecast tick. */
  async tickPartition(partition: number, tickTimeMs: number, chunks: readonly ForecastMessage[]): Promise<void> {
    const st = this.parts[partition];
    const pools = this.opts.pools();
    let n = 0;
    for (const c of chunks) n += c.count;
    const inp: GrantInputs = {
      count: n,
      userHashLo: new Uint32Array(n),
      userHashHi: new Uint32Array(n),
      upperReqPerSec: new Float64Array(n),
      observedReqPerSec: new Float64Array(n),
      planIndex: new Uint8Array(n),
      poolIndex: new Uint16Array(n),
    };
    // Each user's slot, looked up once per tick (feedback state here, grant records below).
    const slotOf = new Int32Array(n);
    let i = 0;
    for (const c of chunks) {
      const dv = new DataView(c.records.buffer, c.records.byteOffset, c.records.byteLength);
      for (let k = 0; k < c.count; k++, i++) {
        const o = k * FORECAST_RECORD_BYTES;
        const lo = dv.getUint32(o, true), hi = dv.getUint32(o + 4, true);
        inp.userHashLo[i] = lo;
        inp.userHashHi[i] = hi;
        const u = dv.getFloat64(o + 16, true);
        const obs = dv.getFloat64(o + 24, true);
        const observed = obs >= 0 && Number.isFinite(obs) ? obs : 0;
        inp.observedReqPerSec![i] = observed;
        // A user whose demand went above the bound its grant was made from gets a corrected bound
        // until the forecaster catches up (a throttled request is censored demand, not less demand).
        const slot = st.table.findOrInsert(lo, hi);
        slotOf[i] = slot;
        if (slot >= 0 && st.table.isNew) {
          this.addSlot(st, slot);
          st.feedback.reset(slot); // a slot can be reused after a removal
        }
        const upper = u >= 0 && Number.isFinite(u) ? u : 0;
        inp.upperReqPerSec[i] = slot >= 0 ? st.feedback.update(slot, observed, upper) : upper;
        inp.planIndex[i] = this.opts.planOf ? this.planIdx.get(this.opts.planOf(lo, hi)) ?? 0 : 0;
        const pool = this.poolOf(lo, hi);
        inp.poolIndex[i] = pool < pools.length ? pool : 0;
      }
    }
    const alloc = this.opts.allocationOf?.(partition, inp);
    if (alloc) inp.allocReqPerSec = alloc;
    // This partition holds part of each pool's users: it gets the pool's capacity in proportion to
    // its share of the pool's forecast (other partitions' sums from their last ticks).
    const myForecast = new Float64Array(pools.length);
    for (let k = 0; k < n; k++) myForecast[inp.poolIndex[k]] += inp.upperReqPerSec[k];
    const scaled: PoolCapacity[] = pools.map((p, pool) => {
      let total = myForecast[pool];
      for (let q = 0; q < this.partitions; q++) if (q !== partition) total += this.parts[q].poolForecast[pool] ?? 0;
      return { capacityReqPerSec: total > 0 ? (p.capacityReqPerSec * myForecast[pool]) / total : p.capacityReqPerSec / this.partitions };
    });
    const t = computeGrants(inp, scaled, { plans: this.plans, burstFactor: this.opts.burstFactor ?? 1.5, safe: this.safe });
    st.poolForecast = myForecast;
    st.poolAllocated = t.poolAllocatedReqPerSec;
    const observed = new Float64Array(pools.length);
    for (let k = 0; k < n; k++) observed[inp.poolIndex[k]] += inp.observedReqPerSec![k];
    st.poolObserved = observed;
    st.lastForecastMs = this.now();

    // Delta: new or moved grants, then users absent from this tick (removed).
    const delta = new Uint8Array(Math.max(1, n) * GRANT_RECORD_BYTES);
    const scratch = new DataView(new ArrayBuffer(GRANT_RECORD_BYTES));
    let d = 0;
    const tick = ++st.ticks;
    for (let k = 0; k < n; k++) {
      const slot = slotOf[k];
      if (slot < 0) continue; // partition table full: the user keeps the default plan at gateways
      st.seenTick[slot] = tick;
      const ro = slot * GRANT_RECORD_BYTES;
      const prev = new DataView(st.records.buffer, ro, GRANT_RECORD_BYTES);
      writeGrantRecord(scratch, 0, t, k);
      if (st.live[slot] && !this.moved(prev, scratch)) continue;
      st.records.set(new Uint8Array(scratch.buffer), ro);
      if (!st.live[slot]) this.s.users++;
      st.live[slot] = 1;
      if ((d + 1) * GRANT_RECORD_BYTES > delta.length) break;
      delta.set(new Uint8Array(scratch.buffer), d * GRANT_RECORD_BYTES);
      d++;
    }
    const removed: number[] = [];
    for (let k = 0; k < st.slotCount; k++) {
      const slot = st.slots[k];
      if (st.live[slot] && st.seenTick[slot] !== tick) removed.push(slot);
    }
    let out = delta;
    if (removed.length > 0) {
      out = new Uint8Array((d + removed.length) * GRANT_RECORD_BYTES);
      out.set(delta.subarray(0, d * GRANT_RECORD_BYTES));
      const odv = new DataView(out.buffer);
      for (const slot of removed) {
        st.live[slot] = 0;
        out.set(st.records.subarray(slot * GRANT_RECORD_BYTES, (slot + 1) * GRANT_RECORD_BYTES), d * GRANT_RECORD_BYTES);
        odv.setUint8(d * GRANT_RECORD_BYTES + 39, GRANT_FLAG_REMOVED);
        d++;
      }
      this.s.removals += removed.length;
      this.s.users -= removed.length;
    }
    this.s.deltaRecords += d;
    this.s.ticks++;
    await this.publishDelta(partition, tickTimeMs, out, d);
    if (tick % this.snapshotEvery === 0) await this.publishSnapshot(partition, tickTimeMs);
    this.s.lastTickPublishedMs = this.now();
    this.onTickPublished?.(partition, tickTimeMs);
  }

  private addSlot(st: PartitionState, slot: number): void {
    if (st.slotCount === st.slots.length) {
      const s = new Int32Array(st.slots.length * 2);
      s.set(st.slots);
      st.slots = s;
    }
    st.slots[st.slotCount++] = slot;
  }

  /** Whether a grant moved enough to send: any rate by more than the tolerance, or pool/plan. */
  private moved(a: DataView, b: DataView): boolean {
    if (a.getUint16(36, true) !== b.getUint16(36, true) || a.getUint8(38) !== b.getUint8(38)) return true;
    for (let f = 8; f < 36; f += 4) {
      const x = a.getFloat32(f, true), y = b.getFloat32(f, true);
      if (x === y) continue;
      const scale = Math.max(Math.abs(x), Math.abs(y));
      if (!Number.isFinite(scale) || Math.abs(x - y) > this.tolerance * scale) return true;
    }
    return false;
  }

  /** Publishes one message; false when skipped because the service is not active. */
  private async publish(subject: string, msg: Uint8Array): Promise<boolean> {
    if (!this.js) throw new Error("grant service not started");
    if (this.opts.active && !this.opts.active()) {
      this.s.publicationsSkipped++;
      return false;
    }
    await this.js.publish(subject, msg);
    this.s.messagesPublished++;
    this.s.bytesPublished += msg.byteLength;
    return true;
  }

  private async publishDelta(partition: number, tickTimeMs: number, records: Uint8Array, count: number): Promise<void> {
    const st = this.parts[partition];
    const msgs = encodeGrantMessages(MessageKind.delta, partition, this.partitions, tickTimeMs, this.ttlMs, records, count);
    await Promise.all(msgs.map((m) => this.publish(this.names.deltaSubject(partition, `${this.instanceId}-${++st.seq}`), m)));
  }

  private async publishSnapshot(partition: number, tickTimeMs: number): Promise<void> {
    const st = this.parts[partition];
    let live = 0;
    for (let k = 0; k < st.slotCount; k++) if (st.live[st.slots[k]]) live++;
    const buf = new Uint8Array(live * GRANT_RECORD_BYTES);
    let j = 0;
    for (let k = 0; k < st.slotCount; k++) {
      const slot = st.slots[k];
      if (!st.live[slot]) continue;
      buf.set(st.records.subarray(slot * GRANT_RECORD_BYTES, (slot + 1) * GRANT_RECORD_BYTES), j * GRANT_RECORD_BYTES);
      j++;
    }
    const msgs = encodeGrantMessages(MessageKind.snapshot, partition, this.partitions, tickTimeMs, this.ttlMs, buf, live);
    await Promise.all(msgs.map((m, c) => this.publish(this.names.snapshotSubject(partition, c), m)));
    this.s.snapshotRecords += live;
  }

  /** Renews the leases of partitions whose forecasts still flow (an empty delta each). */
  private async renew(): Promise<void> {
    const now = this.now();
    await Promise.all(
      this.parts.map((st, p) =>
        st.lastForecastMs > 0 && now - st.lastForecastMs < this.ttlMs ? this.publishDelta(p, now, new Uint8Array(0), 0) : Promise.resolve(),
      ),
    );
  }

  /** The pool state now: allocation from the last ticks, load from demand reports (or forecasts). */
  poolStates(): PoolState[] {
    const pools = this.opts.pools();
    const now = this.now();
    const allocated = new Float64Array(pools.length);
    const observed = new Float64Array(pools.length);
    for (const st of this.parts) {
      for (let i = 0; i < pools.length; i++) {
        allocated[i] += st.poolAllocated[i] ?? 0;
        observed[i] += st.poolObserved[i] ?? 0;
      }
    }
    const load = new Float64Array(pools.length);
    let reports = 0;
    for (const [k, r] of this.demand) {
      if (now - r.atMs > 4 * r.intervalMs) {
        this.demand.delete(k);
        continue;
      }
      reports++;
      for (let i = 0; i < pools.length; i++) load[i] += r.load[i] ?? 0;
    }
    return pools.map((p, i) => {
      // Before the first tick the allocation is the pool's capacity.
      const alloc = allocated[i] > 0 ? allocated[i] : p.capacityReqPerSec;
      const l = reports > 0 ? load[i] : observed[i];
      return { pool: i, allocatedReqPerSec: alloc, loadReqPerSec: l, pressure: poolPressure(l, alloc) };
    });
  }

  private async publishPools(): Promise<void> {
    const msg = encodePoolsMessage(this.poolStates(), this.now(), 3 * (this.opts.poolStateIntervalMs ?? 1000));
    if (await this.publish(this.names.poolsSubject, msg)) this.s.poolPublications++;
  }

  /** Publishes the pool state now (tests; the timer does it every poolStateIntervalMs). */
  async publishPoolsNow(): Promise<void> {
    this.enqueue(() => this.publishPools());
    await this.idle();
  }

  async stop(): Promise<void> {
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    for (const s of this.subs) s.unsubscribe();
    this.subs = [];
    await this.idle();
  }
}
