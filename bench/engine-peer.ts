/**
 * The peer of the engine benchmark: the same per-user bucketed features written the way one
 * would write them in plain JavaScript, with a Map of user objects (insertion order as the LRU,
 * bucket objects in a Map per user). Same semantics as the engine's ingest (event-time window,
 * late/early/invalid, LRU at bucket resolution, linear-counting bitmaps), so its features can be
 * compared with the engine's before anything is timed. No forecasting: it is an ingest baseline.
 */
import { EventField as EV, EventFlag } from "../src/engine/layout.ts";
import type { UserFeatures } from "../src/engine/index.ts";

interface Bucket {
  count: number;
  inTok: number;
  outTok: number;
  ipBits: number[];
  uaBits: number[];
  routes: number[];
  gapSum: number;
  gapSq: number;
  gapN: number;
  errors: number;
  throttled: number;
}

interface User {
  lo: number;
  hi: number;
  lastTime: number;
  lastSeen: number;
  buckets: Map<number, Bucket>;
}

/** The peer reports the same last-closed-bucket features as the engine (compared before timing). */
export type PeerFeatures = UserFeatures;

const newBucket = (): Bucket => ({
  count: 0, inTok: 0, outTok: 0, ipBits: [0, 0, 0, 0], uaBits: [0, 0, 0, 0], routes: [0, 0, 0, 0, 0, 0, 0, 0],
  gapSum: 0, gapSq: 0, gapN: 0, errors: 0, throttled: 0,
});

function zeros(bits: number[]): number {
  let ones = 0;
  for (const w of bits) for (let x = w >>> 0; x; x &= x - 1) ones++;
  return 128 - ones;
}

function linearCount(z: number): number {
  if (z >= 128) return 0;
  if (z === 0) return 128 * Math.log(128);
  return 128 * Math.log(128 / z);
}

export class MapPeer {
  readonly users = new Map<number, User>();
  closed = -1;
  applied = 0;
  invalid = 0;
  late = 0;
  early = 0;
  evictions = 0;

  constructor(
    readonly capacity: number,
    readonly widthMs: number,
    readonly latenessMs: number,
    readonly ring = Math.min(8, Math.ceil(latenessMs / widthMs) + 2),
  ) {}

  /** Applies n 48-byte records from dv (same layout as the engine's ingress). */
  ingest(dv: DataView, n: number): number {
    let applied = 0;
    for (let i = 0; i < n; i++) {
      const p = i * 48;
      const lo = dv.getUint32(p + EV.userHashLo, true);
      const hi = dv.getUint32(p + EV.userHashHi, true);
      const t = dv.getFloat64(p + EV.timeMs, true);
      const inTok = dv.getInt32(p + EV.inputTokens, true);
      const outTok = dv.getInt32(p + EV.outputTokens, true);
      if ((lo === 0 && hi === 0) || inTok < 0 || outTok < 0 || dv.getInt32(p + EV.latencyMs, true) < 0 ||
          dv.getInt32(p + EV.bytes, true) < 0 || !(t >= 0) || !Number.isFinite(t)) {
        this.invalid++;
        continue;
      }
      const b = Math.floor(t / this.widthMs);
      if (this.closed < 0) this.closed = Math.max(0, Math.floor((t - this.latenessMs) / this.widthMs));
      if (b < this.closed) {
        this.late++;
        continue;
      }
      if (b - this.closed >= this.ring) {
        this.early++;
        continue;
      }
      const key = hi * 4294967296 + lo;
      let u = this.users.get(key);
      if (u === undefined) {
        if (this.users.size >= this.capacity) {
          const oldest = this.users.keys().next().value as number;
          this.users.delete(oldest);
          this.evictions++;
        }
        u = { lo, hi, lastTime: -1, lastSeen: b, buckets: new Map() };
        this.users.set(key, u);
      } else if (b > u.lastSeen) {
        u.lastSeen = b;
        this.users.delete(key);
        this.users.set(key, u);
      }
      let bk = u.buckets.get(b);
      if (bk === undefined) {
        bk = newBucket();
        u.buckets.set(b, bk);
        for (const old of u.buckets.keys()) if (old < this.closed - 1) u.buckets.delete(old);
      }
      bk.count++;
      bk.inTok += inTok;
      bk.outTok += outTok;
      const ip = dv.getUint32(p + EV.ipHash, true);
      if (ip !== 0) bk.ipBits[(ip >>> 5) & 3] |= 1 << (ip & 31);
      const ua = dv.getUint32(p + EV.uaHash, true);
      if (ua !== 0) bk.uaBits[(ua >>> 5) & 3] |= 1 << (ua & 31);
      const route = dv.getUint32(p + EV.routeHash, true);
      if (route !== 0 && bk.routes[route & 7] < 0xffff) bk.routes[route & 7]++;
      if (t >= u.lastTime) {
        if (u.lastTime >= 0) {
          const gap = t - u.lastTime;
          bk.gapSum += gap;
          bk.gapSq += gap * gap;
          bk.gapN++;
        }
        u.lastTime = t;
      }
      const status = dv.getUint16(p + EV.status, true);
      const flags = dv.getUint16(p + EV.flags, true);
      if (status >= 500 || (flags & EventFlag.error) !== 0) bk.errors++;
      if ((flags & EventFlag.throttled) !== 0) bk.throttled++;
      applied++;
    }
    this.applied += applied;
    return applied;
  }

  /** Advances the event-time clock (buckets below the new clock are closed). */
  tick(nowMs: number): void {
    const target = Math.max(0, Math.floor((nowMs - this.latenessMs) / this.widthMs));
    if (this.closed < 0 || target > this.closed) this.closed = target;
  }

  /** Features of bucket b of a user (the engine's last-closed-bucket features), or undefined. */
  features(lo: number, hi: number, b: number): PeerFeatures | undefined {
    const u = this.users.get(hi * 4294967296 + lo);
    if (!u) return undefined;
    const bk = u.buckets.get(b) ?? newBucket();
    let cv = 0;
    if (bk.gapN >= 2) {
      const mean = bk.gapSum / bk.gapN;
      let v = bk.gapSq / bk.gapN - mean * mean;
      if (v < 0) v = 0;
      if (mean > 0) cv = Math.sqrt(v) / mean;
    }
    return {
      requests: bk.count, inputTokens: bk.inTok, outputTokens: bk.outTok, distinctIps: linearCount(zeros(bk.ipBits)),
      distinctUserAgents: linearCount(zeros(bk.uaBits)), interArrivalCv: Math.fround(cv), errors: bk.errors,
      throttled: bk.throttled,
    };
  }
}
