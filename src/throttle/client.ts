// ThrottleClient: the gateway side. check() runs in process against typed-array state (no network
// hop, no allocation but the returned decision): a user table keyed by the 64-bit user hash, per
// user a request bucket and a token bucket whose refill rate follows the rule in grants.ts, scaled
// by this gateway's share of the user's demand (Doorman: share = mine / total, from the demand
// reports every gateway publishes), so the sum over gateways stays within the grant.
//
// Grants arrive over JetStream (snapshot + deltas per partition, pool state; see service.ts) through
// one ordered consumer that starts with the last message of every subject, so a starting gateway
// loads the current state before start() resolves. Each grant message renews its partition's
// lease until tickTimeMs + ttlMs; a lapsed lease (service gone, NATS cut off) means the plan's safe
// limit, logged once per lapse and counted, never deny-all and never unbounded. A message that does
// not decode is dead-lettered and counted; the state stays as it was.
import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import { headers as natsHeaders } from "@nats-io/transport-node";
import { DeliverPolicy, jetstream, jetstreamManager, type ConsumerMessages } from "@nats-io/jetstream";
import type { RateLimiter, ThrottleDecision, ThrottleReason, ThrottleUse } from "./decision.ts";
import { planLimits, planOrder, type PlanLimit } from "./grants.ts";
import { UserTable, hashOut, hashUserKey } from "./table.ts";
import {
  BadGrantMessageError,
  DEMAND_RECORD_BYTES,
  GRANT_FLAG_REMOVED,
  GRANT_RECORD_BYTES,
  MessageKind,
  POOL_RECORD_BYTES,
  decodeThrottleMessage,
  encodeDemandMessage,
  throttleNames,
  type BadGrantReason,
  type ThrottleMessage,
  type ThrottleNames,
} from "./wire.ts";
import { hash32 } from "../telemetry/hash.ts";
import { DEAD_LETTER_DETAIL_HEADER, DEAD_LETTER_REASON_HEADER } from "../telemetry/frame.ts";
import { randomBytes } from "node:crypto";

/** Default requests the decision's window counts when burstFactor is 1: one second. */
const SECOND_MS = 1000;
/** Default wait for the grant state at start(), ms. */
export const DEFAULT_LOAD_TIMEOUT_MS = 10_000;
/** Default interval of the lease watchdog (lapse logging) and exceedance flush, ms. */
export const DEFAULT_HOUSEKEEPING_MS = 250;
/** Exceedance events held between flushes at most (more in one flush interval are dropped: best effort). */
const MAX_QUEUED_EXCEEDANCES = 10_000;
/** A gateway's demand report counts for this many report intervals, then is dropped. */
const DEMAND_REPORT_LIFETIME_INTERVALS = 4;

/** Minimal logger (pino-compatible). */
export interface ThrottleLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/** Options of {@link ThrottleClient}; the config's `throttle` section maps onto them (`fromConfig`). */
export interface ThrottleClientOptions {
  /** Plan limits (throttle.plans); "default" required. */
  plans: Readonly<Record<string, PlanLimit>>;
  /** Safe limits when no valid grant (throttle.safeLimits); plans missing here use its "default". */
  safeLimits: Readonly<Record<string, PlanLimit>>;
  /** Bucket capacity = rate × burstFactor × 1 s. Default 1.5. */
  burstFactor?: number;
  /** Shadow mode: compute, log and count would-deny, allow everything. Default false. */
  shadow?: boolean;
  /** Subject prefix. Default "foresight". */
  subjectPrefix?: string;
  /** Partitions (nats.partitions); must match the grant service. Default 8. */
  partitions?: number;
  /** Subject token of exceedance events. Default "exceedances". */
  exceedanceSubject?: string;
  /** User slots (throttle.maxUsers). Default 2,097,152. */
  maxUsers?: number;
  /** Demand report interval, ms (throttle.demandReportIntervalMs). Default 500. */
  demandReportIntervalMs?: number;
  /** This gateway's id in demand reports (letters, digits, '_', '-'). Default: random. */
  gatewayId?: string;
  /** Clock, ms since the epoch. Default Date.now (tests and benches may inject one). */
  now?: () => number;
  /** Logger. Default: none (counters still count). */
  log?: ThrottleLog;
}

/** Counters since construction. */
export interface ThrottleClientStats {
  checks: number;
  allowed: number;
  denied: number;
  /** Decisions the rule would have denied in shadow mode (allowed). */
  shadowWouldDeny: number;
  /** Decisions made on safe limits (no valid grant). */
  safeLimitDecisions: number;
  /** Times the grant state lapsed (each logged once). */
  leaseLapses: number;
  /** Grant records applied. */
  grantsApplied: number;
  /** Grant / pool / demand messages applied. */
  messagesApplied: number;
  /** Messages that did not decode (dead-lettered). */
  badMessages: number;
  /** Bad messages by reason. */
  badMessagesByReason: Partial<Record<BadGrantReason, number>>;
  /** Exceedance events published. */
  exceedances: number;
  /** Users with a slot now. */
  users: number;
  /** Users refused a slot because the table was full (decided on a shared overflow slot). */
  tableFull: number;
  /** Demand reports published / received from other gateways. */
  demandReportsSent: number;
  demandReportsReceived: number;
}

// Per-slot f64 state, stride 8 (one cache line).
const S_REQ = 0; // request bucket tokens
const S_TOK = 1; // LLM-token bucket tokens
const S_LAST = 2; // last refill time, ms
const S_WIN = 3; // start of the current 1 s rate window, ms
const S_WCOUNT = 4; // requests (demand, denied included) in the window
const S_DEMAND = 5; // requests since the last demand report
const S_SHARE = 6; // this gateway's share of the user's grant (0..1]
const S_EXCEED = 7; // time of the last exceedance event, ms
const SS = 8;
// Per-slot f32 grant, stride 8 (32 bytes).
const G_U = 0, G_G = 1, G_P = 2, G_UT = 3, G_GT = 4, G_PT = 5, G_A = 6, G_PREV = 7; // G_PREV: rate of the last 1 s window here
const GS = 8;
// Per-slot u16 meta, stride 2: pool, plan | (hasGrant << 8).
const M_HAS = 0x100;

/** One gateway's last demand report, kept to subtract it when the next arrives. */
interface DemandReport {
  slots: Int32Array;
  rates: Float32Array;
  atMs: number;
}

/** The in-process throttle of one gateway. */
export class ThrottleClient implements RateLimiter {
  readonly names: ThrottleNames;
  readonly gatewayId: string;
  private readonly gatewayHash: number;
  private readonly partitions: number;
  private readonly burst: number;
  private shadow: boolean;
  private readonly planNames: string[];
  private readonly planIndex = new Map<string, number>();
  private planReq!: Float64Array;
  private planTok!: Float64Array;
  private safeReq!: Float64Array;
  private safeTok!: Float64Array;
  private readonly now: () => number;
  private readonly log: ThrottleLog | undefined;
  private readonly reportIntervalMs: number;

  private readonly table: UserTable;
  /** Slot used for users that found the table full (shared, bounded, never unbounded). */
  private readonly overflow: number;
  private readonly st: Float64Array;
  private readonly gr: Float32Array;
  private readonly meta: Uint16Array;
  private readonly userKeys: (string | undefined)[];
  private readonly othersDemand: Float32Array;
  private readonly myRate: Float32Array;
  private touched: Int32Array;
  private touchedCount = 0;
  private readonly touchedFlag: Uint8Array;
  private readonly exceedQueue: { slot: number; user: string; forecast: number; actual: number; timeMs: number }[] = [];

  /** Grants of partition p are valid until leaseUntilMs[p] (0 = never received). */
  private readonly leaseUntilMs: Float64Array;
  private readonly lapsed: Uint8Array;
  private lapsedCount: number;
  private poolPressure = new Float32Array(1);
  private poolUntilMs = 0;
  private readonly reports = new Map<number, DemandReport>();

  private nc: NatsConnection | undefined;
  private messages: ConsumerMessages | undefined;
  private demandSub: Subscription | undefined;
  private timers: NodeJS.Timeout[] = [];
  private loaded = false;
  private loadedWaiters: (() => void)[] = [];
  private closed = false;

  /** Called after each message from NATS is applied (tests, bench). */
  onApplied?: (msg: ThrottleMessage) => void;

  private readonly s: ThrottleClientStats = {
    checks: 0, allowed: 0, denied: 0, shadowWouldDeny: 0, safeLimitDecisions: 0, leaseLapses: 0,
    grantsApplied: 0, messagesApplied: 0, badMessages: 0, badMessagesByReason: {}, exceedances: 0,
    users: 0, tableFull: 0, demandReportsSent: 0, demandReportsReceived: 0,
  };

  constructor(opts: ThrottleClientOptions) {
    this.names = throttleNames(opts.subjectPrefix ?? "foresight", opts.exceedanceSubject ?? "exceedances");
    this.partitions = opts.partitions ?? 8;
    this.burst = opts.burstFactor ?? 1.5;
    this.shadow = opts.shadow ?? false;
    this.now = opts.now ?? Date.now;
    this.log = opts.log;
    this.reportIntervalMs = opts.demandReportIntervalMs ?? 500;
    this.gatewayId = opts.gatewayId ?? randomBytes(6).toString("hex");
    this.gatewayHash = hash32(this.gatewayId);
    this.planNames = planOrder(opts.plans);
    this.planNames.forEach((n, i) => this.planIndex.set(n, i));
    this.setLimits(opts.plans, opts.safeLimits);
    this.table = new UserTable(opts.maxUsers ?? 2_097_152);
    const cap = this.table.capacity;
    this.overflow = cap;
    this.st = new Float64Array((cap + 1) * SS);
    this.gr = new Float32Array((cap + 1) * GS);
    this.meta = new Uint16Array((cap + 1) * 2);
    this.userKeys = new Array(cap + 1);
    this.othersDemand = new Float32Array(cap + 1);
    this.myRate = new Float32Array(cap + 1);
    this.touchedFlag = new Uint8Array(cap + 1);
    this.touched = new Int32Array(1024);
    this.leaseUntilMs = new Float64Array(this.partitions);
    // Lapsed from the start (nothing received yet): the first lapse logged is a real one.
    this.lapsed = new Uint8Array(this.partitions).fill(1);
    this.lapsedCount = -1;
    this.initSlot(this.overflow, "(overflow)", this.now());
  }

  /** Live settings change (throttle section reloaded): plan and safe limits, shadow mode. */
  setLimits(plans: Readonly<Record<string, PlanLimit>>, safeLimits: Readonly<Record<string, PlanLimit>>, shadow?: boolean): void {
    const p = planLimits(this.planNames, plans);
    const s = planLimits(this.planNames, safeLimits);
    this.planReq = Float64Array.from(p, (x) => x.requestsPerSec);
    this.planTok = Float64Array.from(p, (x) => x.tokensPerSec ?? Infinity);
    this.safeReq = Float64Array.from(s, (x) => x.requestsPerSec);
    this.safeTok = Float64Array.from(s, (x) => x.tokensPerSec ?? Infinity);
    if (shadow !== undefined) this.shadow = shadow;
  }

  private initSlot(slot: number, user: string, now: number): void {
    const b = slot * SS;
    // A new user starts with a full bucket (Infinity is capped to the capacity that applies at its first check).
    this.st[b + S_REQ] = Infinity;
    this.st[b + S_TOK] = Infinity;
    this.st[b + S_LAST] = now;
    this.st[b + S_WIN] = now;
    this.st[b + S_SHARE] = 1;
    this.userKeys[slot] = user;
  }

  /** Decides one request (see the module comment). Never throws for a string user. */
  check(user: string, use: ThrottleUse, plan?: string): ThrottleDecision {
    const now = this.now();
    hashUserKey(user);
    const lo = hashOut.lo;
    let slot = this.table.findOrInsert(lo, hashOut.hi);
    if (slot < 0) {
      slot = this.overflow;
      this.s.tableFull++;
    } else if (this.table.isNew) {
      this.initSlot(slot, user, now);
      // A user first seen here takes a share among the gateways already serving it.
      this.st[slot * SS + S_SHARE] = this.shareOf(slot);
    }
    const st = this.st, gr = this.gr;
    const b = slot * SS, g = slot * GS;
    const m = this.meta[slot * 2 + 1];
    const has = (m & M_HAS) !== 0;
    let pi = m & 0xff;
    if (plan !== undefined) pi = this.planIndex.get(plan) ?? 0;
    const reqs = use.requests;
    const toks = use.tokens;
    const share = st[b + S_SHARE];

    // Rate window (this gateway's view of the user's rate): demand, denied requests included.
    if (now - st[b + S_WIN] >= SECOND_MS) {
      const elapsed = now - st[b + S_WIN];
      const rate = (st[b + S_WCOUNT] * SECOND_MS) / elapsed;
      if (has && rate > gr[g + G_U] * share && now - st[b + S_EXCEED] >= SECOND_MS && this.exceedQueue.length < MAX_QUEUED_EXCEEDANCES) {
        st[b + S_EXCEED] = now;
        this.exceedQueue.push({ slot, user, forecast: gr[g + G_U], actual: share > 0 ? rate / share : rate, timeMs: now });
      }
      st[b + S_WIN] = now;
      st[b + S_WCOUNT] = 0;
      gr[g + G_PREV] = elapsed < 2 * SECOND_MS ? rate : 0;
    }
    st[b + S_WCOUNT] += reqs;
    st[b + S_DEMAND] += reqs;
    if (this.touchedFlag[slot] === 0) this.touch(slot);

    // Which rate applies: safe limit without a valid lease; else plan limit or grant by pool pressure.
    let rate: number, rateTok: number, reason: ThrottleReason;
    const part = (lo >>> 0) % this.partitions;
    let short = false;
    if (now >= this.leaseUntilMs[part]) {
      rate = this.safeReq[pi];
      rateTok = this.safeTok[pi];
      reason = "safe-limit";
      this.s.safeLimitDecisions++;
    } else {
      const pressure = now < this.poolUntilMs ? this.poolPressure[this.meta[slot * 2]] : 1;
      const planR = plan !== undefined || !has ? this.planReq[pi] : gr[g + G_P];
      const planT = plan !== undefined || !has ? this.planTok[pi] : gr[g + G_PT];
      const u = has ? gr[g + G_U] : 0;
      // Over forecast: this window so far, or the last whole window, above my share of U.
      const cur = st[b + S_WCOUNT];
      const overForecast = (cur > gr[g + G_PREV] ? cur : gr[g + G_PREV]) > u * share;
      if (pressure < 1) {
        rate = planR;
        rateTok = planT;
        reason = overForecast ? "pool-has-spare" : "within-forecast";
      } else {
        short = true;
        rate = has ? Math.min(planR, gr[g + G_G]) : Math.min(planR, this.safeReq[pi]);
        rateTok = has ? Math.min(planT, gr[g + G_GT]) : Math.min(planT, this.safeTok[pi]);
        reason = overForecast ? "over-forecast-pool-short" : "within-forecast";
      }
      rate *= share;
      rateTok *= share;
    }

    // Refill both buckets to now, then take.
    const cap = rate * this.burst;
    const capTok = rateTok * this.burst;
    const elapsed = now - st[b + S_LAST];
    let t = st[b + S_REQ];
    let tt = st[b + S_TOK];
    if (elapsed > 0) {
      t += (elapsed * rate) / SECOND_MS;
      tt += (elapsed * rateTok) / SECOND_MS;
      st[b + S_LAST] = now;
    }
    if (t > cap) t = cap;
    if (tt > capTok) tt = capTok;
    // A request larger than the whole token bucket passes when the bucket is full (then owes).
    const tokNeed = toks < capTok ? toks : capTok;
    const deny = t < reqs || tt < tokNeed;
    this.s.checks++;
    let retryAfterMs = 0;
    if (deny) {
      if (reason !== "safe-limit") reason = short ? "over-forecast-pool-short" : "plan-limit";
      const wr = t < reqs ? (rate > 0 ? ((reqs - t) * SECOND_MS) / rate : Infinity) : 0;
      const wt = tt < tokNeed ? (rateTok > 0 ? ((tokNeed - tt) * SECOND_MS) / rateTok : Infinity) : 0;
      retryAfterMs = Math.ceil(wr > wt ? wr : wt);
      if (!(retryAfterMs < 3_600_000)) retryAfterMs = 3_600_000;
    } else {
      t -= reqs;
      tt -= toks;
    }
    st[b + S_REQ] = t;
    st[b + S_TOK] = tt;
    const limit = Math.floor(cap);
    const remaining = t > 0 ? Math.floor(t) : 0;
    const resetMs = rate > 0 ? Math.ceil(((cap - (t > 0 ? t : 0)) * SECOND_MS) / rate) : 0;
    let allowed = !deny;
    if (deny) {
      if (this.shadow) {
        allowed = true;
        reason = "shadow";
        this.s.shadowWouldDeny++;
        retryAfterMs = 0;
        this.s.allowed++;
      } else this.s.denied++;
    } else this.s.allowed++;
    return { allowed, wouldDeny: deny, limit, remaining, resetMs, retryAfterMs, windowMs: this.burst * SECOND_MS, reason };
  }

  private touch(slot: number): void {
    if (this.touchedCount === this.touched.length) {
      const n = new Int32Array(this.touched.length * 2);
      n.set(this.touched);
      this.touched = n;
    }
    this.touched[this.touchedCount++] = slot;
    this.touchedFlag[slot] = 1;
  }

  /** Doorman share: my demand over everyone's; alone (no other reports) = 1. */
  private shareOf(slot: number): number {
    const others = this.othersDemand[slot];
    if (!(others > 0)) return 1;
    const mine = this.myRate[slot];
    if (mine > 0) return mine / (mine + others);
    // No demand of mine measured yet: an equal split among the gateways reporting (plus me).
    return 1 / (this.reports.size + 1);
  }

  /** Counters (a copy). */
  stats(): ThrottleClientStats {
    return { ...this.s, badMessagesByReason: { ...this.s.badMessagesByReason }, users: this.table.size };
  }

  /** Whether the grant state was loaded (start() resolved). */
  get isLoaded(): boolean {
    return this.loaded;
  }

  /** Milliseconds the lease of `user`'s partition has left (<= 0: safe limits). */
  leaseRemainingMs(user: string): number {
    hashUserKey(user);
    return this.leaseUntilMs[(hashOut.lo >>> 0) % this.partitions] - this.now();
  }

  /** The grant a gateway holds for a user (undefined: none); for tools and tests. */
  grantOf(user: string): { upperReqPerSec: number; grantReqPerSec: number; planReqPerSec: number; allocReqPerSec: number; pool: number; plan: string; share: number } | undefined {
    hashUserKey(user);
    const slot = this.table.find(hashOut.lo, hashOut.hi);
    if (slot < 0 || (this.meta[slot * 2 + 1] & M_HAS) === 0) return undefined;
    const g = slot * GS;
    return {
      upperReqPerSec: this.gr[g + G_U],
      grantReqPerSec: this.gr[g + G_G],
      planReqPerSec: this.gr[g + G_P],
      allocReqPerSec: this.gr[g + G_A],
      pool: this.meta[slot * 2],
      plan: this.planNames[this.meta[slot * 2 + 1] & 0xff] ?? "default",
      share: this.st[slot * SS + S_SHARE],
    };
  }

  /** Pressure of a pool as this gateway knows it (NaN: unknown or stale). */
  pressureOf(pool: number): number {
    return this.now() < this.poolUntilMs && pool < this.poolPressure.length ? this.poolPressure[pool] : NaN;
  }

  // -------------------------------------------------------------------------------------------
  // Applying messages (from NATS, or directly in tests and the bench).

  /**
   * Applies one throttle message (grant snapshot/delta, pool state, demand report). A message that
   * does not decode throws {@link BadGrantMessageError} and changes nothing.
   */
  apply(bytes: Uint8Array): ThrottleMessage {
    const msg = decodeThrottleMessage(bytes);
    if ((msg.kind === MessageKind.snapshot || msg.kind === MessageKind.delta) && (msg.partitions !== this.partitions || msg.partition >= this.partitions)) {
      throw new BadGrantMessageError("bad_value", `grants for partition ${msg.partition} of ${msg.partitions}, this gateway uses ${this.partitions} partitions`);
    }
    const now = this.now();
    switch (msg.kind) {
      case MessageKind.snapshot:
      case MessageKind.delta:
        this.applyGrants(msg);
        {
          const until = msg.tickTimeMs + msg.ttlMs;
          if (until > this.leaseUntilMs[msg.partition]) this.leaseUntilMs[msg.partition] = until;
        }
        break;
      case MessageKind.pools: {
        let max = 0;
        for (let i = 0; i < msg.count; i++) max = Math.max(max, msg.records.getUint16(i * POOL_RECORD_BYTES + 12, true) + 1);
        const p = new Float32Array(Math.max(1, max)).fill(1);
        for (let i = 0; i < msg.count; i++) {
          const o = i * POOL_RECORD_BYTES;
          p[msg.records.getUint16(o + 12, true)] = msg.records.getFloat32(o + 8, true);
        }
        this.poolPressure = p;
        this.poolUntilMs = msg.tickTimeMs + msg.ttlMs;
        break;
      }
      case MessageKind.demand:
        if (msg.partition !== this.gatewayHash) this.applyDemand(msg, now);
        break;
    }
    this.s.messagesApplied++;
    return msg;
  }

  private applyGrants(msg: ThrottleMessage): void {
    const r = msg.records;
    const now = this.now();
    for (let i = 0; i < msg.count; i++) {
      const o = i * GRANT_RECORD_BYTES;
      const lo = r.getUint32(o, true), hi = r.getUint32(o + 4, true);
      const flags = r.getUint8(o + 39);
      if (flags & GRANT_FLAG_REMOVED) {
        const slot = this.table.find(lo, hi);
        if (slot >= 0) this.meta[slot * 2 + 1] &= 0xff & ~M_HAS;
        continue;
      }
      const slot = this.table.findOrInsert(lo, hi);
      if (slot < 0) {
        this.s.tableFull++;
        continue;
      }
      if (this.table.isNew) this.initSlot(slot, "", now);
      const g = slot * GS;
      this.gr[g + G_U] = r.getFloat32(o + 8, true);
      this.gr[g + G_A] = r.getFloat32(o + 12, true);
      this.gr[g + G_G] = r.getFloat32(o + 16, true);
      this.gr[g + G_P] = r.getFloat32(o + 20, true);
      this.gr[g + G_UT] = r.getFloat32(o + 24, true);
      this.gr[g + G_GT] = r.getFloat32(o + 28, true);
      this.gr[g + G_PT] = r.getFloat32(o + 32, true);
      this.meta[slot * 2] = r.getUint16(o + 36, true);
      const plan = r.getUint8(o + 38);
      this.meta[slot * 2 + 1] = (plan < this.planNames.length ? plan : 0) | M_HAS;
    }
    this.s.grantsApplied += msg.count;
  }

  private applyDemand(msg: ThrottleMessage, now: number): void {
    this.s.demandReportsReceived++;
    const old = this.reports.get(msg.partition);
    if (old) this.subtractReport(old);
    const slots = new Int32Array(msg.count);
    const rates = new Float32Array(msg.count);
    for (let i = 0; i < msg.count; i++) {
      const o = i * DEMAND_RECORD_BYTES;
      const slot = this.table.findOrInsert(msg.records.getUint32(o, true), msg.records.getUint32(o + 4, true));
      if (slot < 0) {
        slots[i] = -1;
        continue;
      }
      if (this.table.isNew) this.initSlot(slot, "", now);
      slots[i] = slot;
      rates[i] = msg.records.getFloat32(o + 8, true);
      this.othersDemand[slot] += rates[i];
    }
    this.reports.set(msg.partition, { slots, rates, atMs: now });
    for (let i = 0; i < slots.length; i++) if (slots[i] >= 0) this.st[slots[i] * SS + S_SHARE] = this.shareOf(slots[i]);
  }

  private subtractReport(r: DemandReport): void {
    for (let i = 0; i < r.slots.length; i++) {
      const s = r.slots[i];
      if (s < 0) continue;
      const v = this.othersDemand[s] - r.rates[i];
      this.othersDemand[s] = v > 1e-6 ? v : 0;
    }
  }

  /** Builds this gateway's demand report and resets the counts; recomputes my shares. */
  buildDemandReport(): Uint8Array | undefined {
    const now = this.now();
    const n = this.touchedCount;
    const lo = new Uint32Array(n), hi = new Uint32Array(n), rate = new Float64Array(n);
    const perSec = SECOND_MS / this.reportIntervalMs;
    // Drop reports of gateways that went quiet, so their old demand no longer shrinks my share.
    for (const [id, r] of this.reports) {
      if (now - r.atMs > DEMAND_REPORT_LIFETIME_INTERVALS * this.reportIntervalMs) {
        this.subtractReport(r);
        this.reports.delete(id);
        for (const s of r.slots) if (s >= 0) this.st[s * SS + S_SHARE] = this.shareOf(s);
      }
    }
    let k = 0;
    for (let i = 0; i < n; i++) {
      const slot = this.touched[i];
      this.touchedFlag[slot] = 0;
      if (slot === this.overflow) continue;
      const b = slot * SS;
      const r = this.st[b + S_DEMAND] * perSec;
      this.st[b + S_DEMAND] = 0;
      this.myRate[slot] = r;
      this.st[b + S_SHARE] = this.shareOf(slot);
      lo[k] = this.table.keys[slot * 2];
      hi[k] = this.table.keys[slot * 2 + 1];
      rate[k] = r;
      k++;
    }
    // Users I served last interval but not this one: my demand is now 0.
    this.touchedCount = 0;
    if (k === 0) return undefined;
    return encodeDemandMessage(this.gatewayHash, this.partitions, now, this.reportIntervalMs, lo, hi, rate, k);
  }

  /** Exceedance events queued since the last call, with user keys resolved (then cleared). */
  takeExceedances(): { user: string; userHash: string; partition: number; forecastPerSec: number; actualPerSec: number; timeMs: number; gateway: string }[] {
    const out = this.exceedQueue.map((e) => {
      const lo = this.table.keys[e.slot * 2], hi = this.table.keys[e.slot * 2 + 1];
      return {
        user: e.user,
        userHash: hi.toString(16).padStart(8, "0") + lo.toString(16).padStart(8, "0"),
        partition: lo % this.partitions,
        forecastPerSec: e.forecast,
        actualPerSec: e.actual,
        timeMs: e.timeMs,
        gateway: this.gatewayId,
      };
    });
    this.exceedQueue.length = 0;
    return out;
  }

  /**
   * Logs once per lapse: when the first partition's lease runs out (none lapsed before), and when
   * the last one is renewed. Partitions that never had a grant start lapsed (no log at start).
   */
  private watchLeases(): void {
    const now = this.now();
    let count = 0;
    const lapsedNow: number[] = [];
    for (let p = 0; p < this.partitions; p++) {
      const isLapsed = now >= this.leaseUntilMs[p] ? 1 : 0;
      if (isLapsed) {
        count++;
        if (!this.lapsed[p]) lapsedNow.push(p);
      }
      this.lapsed[p] = isLapsed;
    }
    if (this.lapsedCount < 0) {
      // Never had grants yet: nothing lapsed; say once when they arrive.
      if (count === 0) {
        this.log?.info({}, "throttle: grants loaded for every partition");
        this.lapsedCount = 0;
      }
      return;
    }
    if (count > 0 && this.lapsedCount === 0) {
      this.s.leaseLapses++;
      this.log?.warn({ partitions: lapsedNow, connected: this.nc ? !this.nc.isClosed() : false }, "throttle: grants lapsed (no renewal within the grant TTL); safe limits apply");
    } else if (count === 0 && this.lapsedCount > 0) {
      this.log?.info({}, "throttle: grants renewed; forecast-based limits apply again");
    }
    this.lapsedCount = count;
  }

  // -------------------------------------------------------------------------------------------
  // NATS.

  /**
   * Connects the client: loads the current grant state (last snapshot, the deltas after it, pool
   * state) and resolves once it is applied, then keeps following; publishes demand reports and
   * exceedances. Until then, and whenever a partition's lease lapses, safe limits apply.
   */
  async start(nc: NatsConnection, opts: { loadTimeoutMs?: number } = {}): Promise<void> {
    this.nc = nc;
    this.demandSub = nc.subscribe(this.names.demandWildcard, {
      callback: (err, m) => {
        if (err) return;
        this.onMessage(m.data, m.subject);
      },
    });
    const loaded = new Promise<void>((resolve) => this.loadedWaiters.push(resolve));
    void this.follow(nc);
    const report = setInterval(() => this.housekeepingReport(), this.reportIntervalMs);
    const house = setInterval(() => this.housekeeping(), DEFAULT_HOUSEKEEPING_MS);
    report.unref();
    house.unref();
    this.timers.push(report, house);
    void this.watchStatus(nc);
    const timeout = opts.loadTimeoutMs ?? DEFAULT_LOAD_TIMEOUT_MS;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      loaded,
      new Promise<void>((resolve) => {
        timer = setTimeout(() => {
          this.log?.warn({ timeoutMs: timeout }, "throttle: grant state not loaded in time; safe limits until it is");
          resolve();
        }, timeout);
        timer.unref();
      }),
    ]);
    clearTimeout(timer);
  }

  private markLoaded(): void {
    if (this.loaded) return;
    this.loaded = true;
    for (const w of this.loadedWaiters) w();
    this.loadedWaiters = [];
  }

  /** Follows the grants stream with an ordered consumer (it re-creates itself after reconnects). */
  private async follow(nc: NatsConnection): Promise<void> {
    while (!this.closed) {
      try {
        const jsm = await jetstreamManager(nc);
        const info = await jsm.streams.info(this.names.grantsStream);
        if (info.state.messages === 0) this.markLoaded();
        const js = jetstream(nc);
        // The stream holds only grant subjects, so no filter (filter_subjects needs nats-server 2.10).
        const c = await js.consumers.get(this.names.grantsStream, {
          deliver_policy: DeliverPolicy.LastPerSubject,
        });
        const msgs = await c.consume();
        this.messages = msgs;
        if (this.closed) {
          await msgs.close();
          return;
        }
        for await (const m of msgs) {
          this.onMessage(m.data, m.subject);
          if (m.info.pending === 0) this.markLoaded();
        }
        return;
      } catch (err) {
        if (this.closed) return;
        this.log?.warn({ err }, "throttle: cannot follow the grants stream yet; retrying");
        await new Promise((r) => setTimeout(r, 1000).unref());
      }
    }
  }

  private onMessage(data: Uint8Array, subject: string): void {
    try {
      const msg = this.apply(data);
      this.onApplied?.(msg);
    } catch (err) {
      if (!(err instanceof BadGrantMessageError)) throw err;
      this.s.badMessages++;
      this.s.badMessagesByReason[err.reason] = (this.s.badMessagesByReason[err.reason] ?? 0) + 1;
      this.log?.warn({ subject, reason: err.reason, detail: err.message }, "throttle: bad grant message dead-lettered; last good state kept");
      if (this.nc && !this.nc.isClosed()) {
        const h = natsHeaders();
        h.set(DEAD_LETTER_REASON_HEADER, err.reason);
        h.set(DEAD_LETTER_DETAIL_HEADER, `${subject}: ${err.message}`.slice(0, 512));
        try {
          this.nc.publish(this.names.deadLetterSubject, data, { headers: h });
        } catch {
          /* disconnected: counted and logged already */
        }
      }
    }
  }

  private async watchStatus(nc: NatsConnection): Promise<void> {
    for await (const s of nc.status()) {
      if (s.type === "disconnect") this.log?.warn({ server: (s as { server?: string }).server }, "throttle: NATS disconnected; grants run until their lease, then safe limits");
      else if (s.type === "reconnect") this.log?.info({}, "throttle: NATS reconnected");
    }
  }

  private housekeepingReport(): void {
    if (!this.nc || this.nc.isClosed()) return;
    const msg = this.buildDemandReport();
    if (!msg) return;
    try {
      this.nc.publish(this.names.demandSubject(this.gatewayId), msg);
      this.s.demandReportsSent++;
    } catch {
      /* disconnected: the next report carries fresh figures */
    }
  }

  private housekeeping(): void {
    this.watchLeases();
    if (this.exceedQueue.length === 0 || !this.nc || this.nc.isClosed()) return;
    const enc = new TextEncoder();
    for (const e of this.takeExceedances()) {
      try {
        this.nc.publish(this.names.exceedanceSubject(e.partition), enc.encode(JSON.stringify(e)));
        this.s.exceedances++;
      } catch {
        /* disconnected: exceedances are best effort */
      }
    }
  }

  /** Stops following and reporting (the connection stays the caller's). */
  async close(): Promise<void> {
    this.closed = true;
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    this.demandSub?.unsubscribe();
    await this.messages?.close();
    this.markLoaded();
  }
}
