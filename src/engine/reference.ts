/**
 * Plain-TypeScript reference of the engine core (assembly/). Same input bytes, same memory layout
 * (so its state region, and therefore its snapshot, is byte-identical to the WASM engine's), same
 * table capacity and eviction order, same float operations in the same order (f32 fields go
 * through Float32Array stores, i.e. Math.fround). Used by differential tests and as a baseline.
 */
import type { EngineCore } from "./core.ts";
import { decI16, decU16, encI16, encU16 } from "./codec.ts";
import { FcMirror, fcExtBytes, TRAIN_BLOCK_BYTES as FC_TRAIN_BLOCK_BYTES } from "./fc-mirror.ts";
import {
  CELL_BYTES, CellField as C, COUNTS_RECORD_BYTES, GLOBALS_BYTES, GlobalIndex as GI, LAYOUT_VERSION,
  MAX_BUCKET, NIL, PARAMS_BYTES, ParamIndex as PI, SCRATCH_BYTES, SlotField as S, indexEntriesFor,
  ringBuckets, slotLayout,
} from "./regions.ts";
import { EVENT_RECORD_BYTES, EventField as EV, EventFlag, FORECAST_RECORD_BYTES } from "./layout.ts";

const MS_PER_DAY = 86400000;
const MS_PER_HOUR = 3600000;
const align = (n: number, a: number) => Math.ceil(n / a) * a;

/** 32-bit mix of the two hash words (assembly/table.ts mixTag). */
export function mixTag(lo: number, hi: number): number {
  let h = (lo ^ Math.imul(hi, 0x9e3779b1)) >>> 0;
  h = (h ^ (h >>> 16)) >>> 0;
  h = Math.imul(h, 0x85ebca6b) >>> 0;
  h = (h ^ (h >>> 13)) >>> 0;
  h = Math.imul(h, 0xc2b2ae35) >>> 0;
  return (h ^ (h >>> 16)) >>> 0;
}

function popcnt(x: number): number {
  x = x - ((x >>> 1) & 0x55555555);
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  x = (x + (x >>> 4)) & 0x0f0f0f0f;
  return Math.imul(x, 0x01010101) >>> 24;
}

/** Linear-counting estimate from the zero bits of a 128-bit bitmap (assembly/engine.ts). */
export function linearCount(zeros: number): number {
  if (zeros >= 128) return 0;
  if (zeros === 0) return 128 * Math.log(128);
  return 128 * Math.log(128 / zeros);
}

export class ReferenceCore implements EngineCore {
  readonly kind = "reference";
  private buf = new ArrayBuffer(64);
  private u8 = new Uint8Array(this.buf);
  private u16 = new Uint16Array(this.buf);
  private u32 = new Uint32Array(this.buf);
  private i32 = new Int32Array(this.buf);
  private f32 = new Float32Array(this.buf);
  private f64 = new Float64Array(this.buf);
  private ready = false;
  /** LSTM-lite + ensemble mirror (src/engine/fc-mirror.ts) and its training block's offset. */
  private readonly fc = new FcMirror();
  private rFcBlock = 0;

  // params
  private capacity = 0;
  private nIndex = 0;
  private mask = 0;
  private slotSize = 0;
  private widthMs = 0;
  private widthSec = 0;
  private latenessMs = 0;
  private ring = 0;
  private seasonPoints = 0;
  private period = 0;
  private horizon = 0;
  private z = 0;
  private alpha = 0;
  private beta = 0;
  private gamma = 0;
  private phi = 0;
  private alphaMax = 0;
  private tsThreshold = 0;
  private tsSmoothing = 0;
  private alphaDecay = 0;
  private varSmoothing = 0;
  private todAlpha = 0;
  private expireAfter = 0;
  private maxCatchUp = 0;
  private phiSumH = 0;
  private varMultH = 0;
  // slot layout
  private sSeason = 0;
  /** Offset in the slot of each ring cell. */
  private cellOff = new Int32Array(0);
  private sExt = 0;
  // regions
  private rIngress = 0;
  private rIngressCap = 0;
  private rCounts = 0;
  private rCountsCap = 0;
  private rOutput = 0;
  private rScratch = 0;
  private rState = 0;
  private rStateBytes = 0;
  private rGlobals = 0;
  private rIndex = 0;
  private rSlab = 0;
  // globals
  private initialized = false;
  private closed = 0;
  private used = 0;
  private freeHead = NIL;
  private head = NIL;
  private tail = NIL;
  private tracked = 0;
  private applied = 0;
  private invalid = 0;
  private late = 0;
  private early = 0;
  private evictions = 0;
  private expirations = 0;
  private bucketsClosed = 0;
  private ticks = 0;
  private countsApplied = 0;
  private skippedBuckets = 0;

  buffer(): ArrayBuffer {
    return this.buf;
  }

  init(
    capacity: number, widthMs: number, latenessMs: number, seasonPoints: number, horizon: number,
    z: number, alpha: number, beta: number, gamma: number, phi: number, alphaMax: number,
    tsThreshold: number, tsSmoothing: number, alphaDecay: number, varSmoothing: number,
    todAlpha: number, expireAfter: number, maxCatchUp: number, ingressCap: number, countsCap: number,
  ): number {
    if (this.ready) return -1;
    if (capacity < 1 || !(widthMs >= 1000) || !(latenessMs >= 0) || seasonPoints < 2 || ingressCap < 1 ||
        countsCap < 1 || maxCatchUp < 1) return -4;
    const ring = ringBuckets(widthMs, latenessMs);
    const nIndex = indexEntriesFor(capacity);
    const lay = slotLayout(seasonPoints, ring, this.fc.enabled ? fcExtBytes(seasonPoints) : 0);
    const ingress = 0;
    const counts = align(ingress + ingressCap * EVENT_RECORD_BYTES, 64);
    const output = align(counts + countsCap * COUNTS_RECORD_BYTES, 64);
    const scratch = align(output + capacity * FORECAST_RECORD_BYTES, 64);
    const state = align(scratch + (maxCatchUp + 1) * SCRATCH_BYTES, 64);
    const index = state + PARAMS_BYTES + GLOBALS_BYTES;
    const slab = align(index + nIndex * 8, 64);
    const end = slab + capacity * lay.bytes;
    if (end > 0xffff0000) return -3;
    // The shared LSTM-lite training block sits after the state (static data in the WASM module).
    const fcBlock = align(end, 16);
    this.buf = new ArrayBuffer(align(fcBlock + FC_TRAIN_BLOCK_BYTES, 65536));
    this.u8 = new Uint8Array(this.buf);
    this.u16 = new Uint16Array(this.buf);
    this.u32 = new Uint32Array(this.buf);
    this.i32 = new Int32Array(this.buf);
    this.f32 = new Float32Array(this.buf);
    this.f64 = new Float64Array(this.buf);
    Object.assign(this, {
      rIngress: ingress, rIngressCap: ingressCap, rCounts: counts, rCountsCap: countsCap, rOutput: output,
      rScratch: scratch, rState: state, rStateBytes: end - state, rGlobals: state + PARAMS_BYTES,
      rIndex: index, rSlab: slab,
      capacity, nIndex, mask: nIndex - 1, slotSize: lay.bytes, widthMs, widthSec: widthMs / 1000,
      latenessMs, ring, seasonPoints, period: Math.floor(MS_PER_DAY / widthMs), horizon, z, alpha, beta,
      gamma, phi, alphaMax, tsThreshold, tsSmoothing, alphaDecay, varSmoothing, todAlpha, expireAfter,
      maxCatchUp, sSeason: lay.season, cellOff: Int32Array.from(lay.cells), sExt: lay.ext,
    });
    this.phiSumH = this.phiSum(horizon);
    this.varMultH = this.varMult(horizon);
    this.rFcBlock = fcBlock;
    this.fc.attach(this.buf, fcBlock, { ext: lay.ext, points: seasonPoints, period: this.period, horizon, widthSec: widthMs / 1000, phiSumH: this.phiSumH });
    const pb = state >> 3;
    const f = this.f64;
    f[pb + PI.version] = LAYOUT_VERSION;
    f[pb + PI.capacity] = capacity;
    f[pb + PI.indexEntries] = nIndex;
    f[pb + PI.slotBytes] = lay.bytes;
    f[pb + PI.bucketWidthMs] = widthMs;
    f[pb + PI.allowedLatenessMs] = latenessMs;
    f[pb + PI.ringBuckets] = ring;
    f[pb + PI.seasonPoints] = seasonPoints;
    f[pb + PI.periodBuckets] = this.period;
    f[pb + PI.horizonBuckets] = horizon;
    f[pb + PI.z] = z;
    f[pb + PI.alpha] = alpha;
    f[pb + PI.beta] = beta;
    f[pb + PI.gamma] = gamma;
    f[pb + PI.phi] = phi;
    f[pb + PI.alphaMax] = alphaMax;
    f[pb + PI.trackingThreshold] = tsThreshold;
    f[pb + PI.trackingSmoothing] = tsSmoothing;
    f[pb + PI.alphaDecay] = alphaDecay;
    f[pb + PI.varianceSmoothing] = varSmoothing;
    f[pb + PI.todAlpha] = todAlpha;
    f[pb + PI.expireAfterBuckets] = expireAfter;
    f[pb + PI.maxCatchUpBuckets] = maxCatchUp;
    this.saveGlobals();
    this.ready = true;
    return 0;
  }

  saveGlobals(): void {
    const g = this.rGlobals >> 3;
    const f = this.f64;
    f[g + GI.initialized] = this.initialized ? 1 : 0;
    f[g + GI.closedBucket] = this.closed;
    f[g + GI.used] = this.used;
    f[g + GI.freeHead] = this.freeHead;
    f[g + GI.lruHead] = this.head;
    f[g + GI.lruTail] = this.tail;
    f[g + GI.usersTracked] = this.tracked;
    f[g + GI.eventsApplied] = this.applied;
    f[g + GI.invalid] = this.invalid;
    f[g + GI.late] = this.late;
    f[g + GI.early] = this.early;
    f[g + GI.evictions] = this.evictions;
    f[g + GI.expirations] = this.expirations;
    f[g + GI.bucketsClosed] = this.bucketsClosed;
    f[g + GI.ticks] = this.ticks;
    f[g + GI.countsApplied] = this.countsApplied;
    f[g + GI.skippedBuckets] = this.skippedBuckets;
  }

  loadGlobals(): void {
    const g = this.rGlobals >> 3;
    const f = this.f64;
    this.initialized = f[g + GI.initialized] !== 0;
    this.closed = f[g + GI.closedBucket];
    this.used = f[g + GI.used];
    this.freeHead = f[g + GI.freeHead];
    this.head = f[g + GI.lruHead];
    this.tail = f[g + GI.lruTail];
    this.tracked = f[g + GI.usersTracked];
    this.applied = f[g + GI.eventsApplied];
    this.invalid = f[g + GI.invalid];
    this.late = f[g + GI.late];
    this.early = f[g + GI.early];
    this.evictions = f[g + GI.evictions];
    this.expirations = f[g + GI.expirations];
    this.bucketsClosed = f[g + GI.bucketsClosed];
    this.ticks = f[g + GI.ticks];
    this.countsApplied = f[g + GI.countsApplied];
    this.skippedBuckets = f[g + GI.skippedBuckets];
  }

  // ------------------------------------------------------------------ table

  private slotPtr(s: number): number {
    return this.rSlab + s * this.slotSize;
  }

  private prevOf(s: number): number {
    return this.u32[(this.slotPtr(s) + S.lruPrev) >> 2];
  }
  private nextOf(s: number): number {
    return this.u32[(this.slotPtr(s) + S.lruNext) >> 2];
  }
  private setPrev(s: number, v: number): void {
    this.u32[(this.slotPtr(s) + S.lruPrev) >> 2] = v;
  }
  private setNext(s: number, v: number): void {
    this.u32[(this.slotPtr(s) + S.lruNext) >> 2] = v;
  }

  private lruPushFront(s: number): void {
    const h = this.head;
    this.setPrev(s, NIL);
    this.setNext(s, h);
    if (h !== NIL) this.setPrev(h, s);
    else this.tail = s;
    this.head = s;
  }

  private lruUnlink(s: number): void {
    const p = this.prevOf(s);
    const n = this.nextOf(s);
    if (p !== NIL) this.setNext(p, n);
    else this.head = n;
    if (n !== NIL) this.setPrev(n, p);
    else this.tail = p;
  }

  private lruTouch(s: number): void {
    if (this.head === s) return;
    this.lruUnlink(s);
    this.lruPushFront(s);
  }

  private findSlot(lo: number, hi: number): number {
    if ((lo | hi) === 0) return -1;
    const u = this.u32;
    const tag = mixTag(lo, hi);
    let pos = tag & this.mask;
    for (;;) {
      const e = (this.rIndex >> 2) + pos * 2;
      const s1 = u[e + 1];
      if (s1 === 0) return -1;
      if (u[e] === tag) {
        const sp = this.slotPtr(s1 - 1) >> 2;
        if (u[sp] === lo && u[sp + 1] === hi) return s1 - 1;
      }
      pos = (pos + 1) & this.mask;
    }
  }

  private indexRemove(s: number): void {
    const u = this.u32;
    const sp = this.slotPtr(s) >> 2;
    const tag = mixTag(u[sp], u[sp + 1]);
    const mask = this.mask;
    const base = this.rIndex >> 2;
    let i = tag & mask;
    while (u[base + i * 2 + 1] !== s + 1) i = (i + 1) & mask;
    let j = i;
    for (;;) {
      j = (j + 1) & mask;
      const sj = u[base + j * 2 + 1];
      if (sj === 0) break;
      const home = u[base + j * 2] & mask;
      if (((j - home) & mask) >= ((j - i) & mask)) {
        u[base + i * 2] = u[base + j * 2];
        u[base + i * 2 + 1] = sj;
        i = j;
      }
    }
    u[base + i * 2] = 0;
    u[base + i * 2 + 1] = 0;
  }

  private removeUser(s: number): void {
    this.indexRemove(s);
    this.lruUnlink(s);
    const sp = this.slotPtr(s) >> 2;
    this.u32[sp] = 0;
    this.u32[sp + 1] = 0;
    this.setPrev(s, NIL);
    this.setNext(s, this.freeHead);
    this.freeHead = s;
    this.tracked--;
  }

  private slotReset(sp: number, lo: number, hi: number, b: number): void {
    this.u8.fill(0, sp, sp + this.slotSize);
    this.u32[(sp + S.hashLo) >> 2] = lo;
    this.u32[(sp + S.hashHi) >> 2] = hi;
    this.f64[(sp + S.lastTime) >> 3] = -1;
    this.u32[(sp + S.firstBucket) >> 2] = b;
    this.u32[(sp + S.lastSeen) >> 2] = b;
    this.f32[(sp + S.alpha) >> 2] = this.alpha;
    this.u8[sp + S.cIpZeros] = 128;
    this.u8[sp + S.cUaZeros] = 128;
    for (let i = 0; i < this.ring; i++) this.u32[(sp + this.cellOff[i] + C.bucket) >> 2] = NIL;
  }

  private findOrInsert(lo: number, hi: number, b: number): number {
    const u = this.u32;
    const tag = mixTag(lo, hi);
    const mask = this.mask;
    const base = this.rIndex >> 2;
    let pos = tag & mask;
    for (;;) {
      const e = base + pos * 2;
      const s1 = u[e + 1];
      if (s1 === 0) break;
      if (u[e] === tag) {
        const sp = this.slotPtr(s1 - 1) >> 2;
        if (u[sp] === lo && u[sp + 1] === hi) return s1 - 1;
      }
      pos = (pos + 1) & mask;
    }
    let s: number;
    if (this.freeHead !== NIL) {
      s = this.freeHead;
      this.freeHead = this.nextOf(s);
    } else if (this.used < this.capacity) {
      s = this.used++;
    } else {
      // Lazy promotion (assembly/table.ts findOrInsert).
      s = this.tail;
      while (this.u8[this.slotPtr(s) + S.promote] !== 0) {
        this.u8[this.slotPtr(s) + S.promote] = 0;
        this.lruTouch(s);
        s = this.tail;
      }
      this.removeUser(s);
      this.freeHead = this.nextOf(s);
      this.evictions += 1;
    }
    pos = tag & mask;
    while (u[base + pos * 2 + 1] !== 0) pos = (pos + 1) & mask;
    u[base + pos * 2] = tag;
    u[base + pos * 2 + 1] = s + 1;
    this.slotReset(this.slotPtr(s), lo, hi, b);
    this.lruPushFront(s);
    this.tracked++;
    return s;
  }

  // ------------------------------------------------------------------ ingest

  private startClock(t: number): void {
    const cf = Math.floor((t - this.latenessMs) / this.widthMs);
    this.closed = cf > 0 ? cf : 0;
    this.initialized = true;
  }

  private touch(s: number, sp: number, b: number): void {
    const u = this.u32;
    const last = u[(sp + S.lastSeen) >> 2];
    if (b > last) {
      u[(sp + S.lastSeen) >> 2] = b;
      this.u8[sp + S.promote] = 1;
    } else if (b < u[(sp + S.firstBucket) >> 2]) {
      u[(sp + S.firstBucket) >> 2] = b;
    }
  }

  private cellFor(sp: number, ri: number, b: number): number {
    const cell = sp + this.cellOff[ri];
    if (this.u32[cell >> 2] !== b) {
      this.u8.fill(0, cell, cell + CELL_BYTES);
      this.u32[cell >> 2] = b;
    }
    return cell;
  }

  ingest(n: number): number {
    if (!this.ready) return 0;
    if (n > this.rIngressCap) n = this.rIngressCap;
    const { u32, i32, u16, f64 } = this;
    const W = this.widthMs;
    const ring = this.ring;
    let closed = this.closed;
    let cm = closed % ring;
    let applied = 0, invalid = 0, late = 0, early = 0;
    const end = this.rIngress + n * EVENT_RECORD_BYTES;
    for (let p = this.rIngress; p < end; p += EVENT_RECORD_BYTES) {
      const lo = u32[(p + EV.userHashLo) >> 2];
      const hi = u32[(p + EV.userHashHi) >> 2];
      const t = f64[(p + EV.timeMs) >> 3];
      const inTok = i32[(p + EV.inputTokens) >> 2];
      const outTok = i32[(p + EV.outputTokens) >> 2];
      if ((lo | hi) === 0 || (inTok | outTok | i32[(p + EV.latencyMs) >> 2] | i32[(p + EV.bytes) >> 2]) < 0 || !(t >= 0)) {
        invalid++;
        continue;
      }
      const bf = Math.floor(t / W);
      if (!(bf < MAX_BUCKET)) {
        invalid++;
        continue;
      }
      const b = bf;
      if (!this.initialized) {
        this.startClock(t);
        closed = this.closed;
        cm = closed % ring;
      }
      if (b < closed) {
        late++;
        continue;
      }
      const d = b - closed;
      if (d >= ring) {
        early++;
        continue;
      }
      const s = this.findOrInsert(lo, hi, b);
      const sp = this.slotPtr(s);
      this.touch(s, sp, b);
      let ri = cm + d;
      if (ri >= ring) ri -= ring;
      const cell = this.cellFor(sp, ri, b);
      u32[(cell + C.count) >> 2] += 1;
      f64[(cell + C.inTok) >> 3] += inTok;
      f64[(cell + C.outTok) >> 3] += outTok;
      const ip = u32[(p + EV.ipHash) >> 2];
      if (ip !== 0) {
        const w = (cell + C.ipBits + ((ip >>> 3) & 12)) >> 2;
        u32[w] = u32[w] | (1 << (ip & 31));
      }
      const ua = u32[(p + EV.uaHash) >> 2];
      if (ua !== 0) {
        const w = (cell + C.uaBits + ((ua >>> 3) & 12)) >> 2;
        u32[w] = u32[w] | (1 << (ua & 31));
      }
      const route = u32[(p + EV.routeHash) >> 2];
      if (route !== 0) {
        const rp = (cell + C.route + ((route & 7) << 1)) >> 1;
        if (u16[rp] !== 0xffff) u16[rp] += 1;
      }
      const lt = f64[(sp + S.lastTime) >> 3];
      if (t >= lt) {
        if (lt >= 0) {
          const gap = t - lt;
          f64[(cell + C.gapSum) >> 3] += gap;
          f64[(cell + C.gapSq) >> 3] += gap * gap;
          u32[(cell + C.gapN) >> 2] += 1;
        }
        f64[(sp + S.lastTime) >> 3] = t;
      }
      const status = u16[(p + EV.status) >> 1];
      const flags = u16[(p + EV.flags) >> 1];
      if (status >= 500 || (flags & EventFlag.error) !== 0) u32[(cell + C.errors) >> 2] += 1;
      if ((flags & EventFlag.throttled) !== 0) u32[(cell + C.throttled) >> 2] += 1;
      applied++;
    }
    this.applied += applied;
    this.invalid += invalid;
    this.late += late;
    this.early += early;
    return applied;
  }

  ingestCounts(n: number): number {
    if (!this.ready) return 0;
    if (n > this.rCountsCap) n = this.rCountsCap;
    const { u32, f64 } = this;
    const W = this.widthMs;
    const ring = this.ring;
    let applied = 0;
    const end = this.rCounts + n * COUNTS_RECORD_BYTES;
    for (let p = this.rCounts; p < end; p += COUNTS_RECORD_BYTES) {
      const lo = u32[p >> 2];
      const hi = u32[(p + 4) >> 2];
      const t = f64[(p + 8) >> 3];
      const req = f64[(p + 16) >> 3];
      const inTok = f64[(p + 24) >> 3];
      const outTok = f64[(p + 32) >> 3];
      if ((lo | hi) === 0 || !(t >= 0) || !(req >= 0) || !(req <= 4294967295) || Math.floor(req) !== req ||
          !(inTok >= 0) || !(inTok < Infinity) || !(outTok >= 0) || !(outTok < Infinity)) {
        this.invalid += 1;
        continue;
      }
      const bf = Math.floor(t / W);
      if (!(bf < MAX_BUCKET)) {
        this.invalid += 1;
        continue;
      }
      const b = bf;
      if (!this.initialized) this.startClock(t);
      const closed = this.closed;
      if (b < closed) {
        this.late += 1;
        continue;
      }
      const d = b - closed;
      if (d >= ring) {
        this.early += 1;
        continue;
      }
      const s = this.findOrInsert(lo, hi, b);
      const sp = this.slotPtr(s);
      this.touch(s, sp, b);
      let ri = (closed % ring) + d;
      if (ri >= ring) ri -= ring;
      const cell = this.cellFor(sp, ri, b);
      const c = u32[(cell + C.count) >> 2] + req;
      u32[(cell + C.count) >> 2] = c < 4294967295 ? c : 0xffffffff;
      f64[(cell + C.inTok) >> 3] += inTok;
      f64[(cell + C.outTok) >> 3] += outTok;
      this.countsApplied += 1;
      applied++;
    }
    return applied;
  }

  // ------------------------------------------------------------------ Holt-Winters (assembly/hw.ts)

  private phiSum(h: number): number {
    let s = 0;
    let p = 1;
    for (let k = 1; k <= h; k++) {
      p *= this.phi;
      s += p;
    }
    return s;
  }

  private varMult(h: number): number {
    return 1 + this.alpha * this.alpha * (h > 0 ? h - 1 : 0);
  }

  private hwUpdate(sp: number, y: number, i0: number, i1: number, f: number): void {
    const { u32, f32, f64 } = this;
    const n = u32[(sp + S.hwN) >> 2];
    if (n === 0) {
      f64[(sp + S.level) >> 3] = y;
      f64[(sp + S.trend) >> 3] = 0;
      u32[(sp + S.hwN) >> 2] = 1;
      return;
    }
    const u16 = this.u16;
    const p0 = (sp + this.sSeason + (i0 << 1)) >> 1;
    const p1 = (sp + this.sSeason + (i1 << 1)) >> 1;
    const s0 = decI16(u16[p0]);
    const s1 = decI16(u16[p1]);
    const level = f64[(sp + S.level) >> 3];
    const trend = f64[(sp + S.trend) >> 3];
    const phi = this.phi;
    const seas = (1.0 - f) * s0 + f * s1;
    const e = y - (level + phi * trend + seas);
    const d = this.tsSmoothing;
    const E = d * e + (1.0 - d) * f32[(sp + S.smErr) >> 2];
    const M = d * Math.abs(e) + (1.0 - d) * f32[(sp + S.smAbs) >> 2];
    let a = f32[(sp + S.alpha) >> 2];
    if (M > 0 && Math.abs(E) > this.tsThreshold * M) a = a + (this.alphaMax - a) * 0.5;
    else a = a + (this.alpha - a) * this.alphaDecay;
    f64[(sp + S.level) >> 3] = level + phi * trend + a * e;
    f64[(sp + S.trend) >> 3] = phi * trend + this.beta * e;
    const ge = this.gamma * e;
    u16[p0] = encI16(s0 + ge * (1.0 - f));
    u16[p1] = encI16(s1 + ge * f);
    const vs = this.varSmoothing;
    f32[(sp + S.errVar) >> 2] = (1.0 - vs) * f32[(sp + S.errVar) >> 2] + vs * e * e;
    f32[(sp + S.smErr) >> 2] = E;
    f32[(sp + S.smAbs) >> 2] = M;
    f32[(sp + S.alpha) >> 2] = a;
    u32[(sp + S.hwN) >> 2] = n + 1;
  }

  private seasonAt(sp: number, i0: number, i1: number, f: number): number {
    const u16 = this.u16;
    return (1.0 - f) * decI16(u16[(sp + this.sSeason + (i0 << 1)) >> 1]) + f * decI16(u16[(sp + this.sSeason + (i1 << 1)) >> 1]);
  }

  private hwForecastAt(sp: number, ps: number, i0: number, i1: number, f: number): number {
    if (this.u32[(sp + S.hwN) >> 2] === 0) return 0;
    const v = this.f64[(sp + S.level) >> 3] + ps * this.f64[(sp + S.trend) >> 3] + this.seasonAt(sp, i0, i1, f);
    return v > 0 ? v : 0;
  }

  private hwUpperAt(sp: number, ps: number, vm: number, i0: number, i1: number, f: number): number {
    if (this.u32[(sp + S.hwN) >> 2] === 0) return 0;
    const v = this.f64[(sp + S.level) >> 3] + ps * this.f64[(sp + S.trend) >> 3] + this.seasonAt(sp, i0, i1, f);
    const u = v + this.z * Math.sqrt(this.f32[(sp + S.errVar) >> 2] * vm);
    return u > 0 ? u : 0;
  }

  // models.ts mirror
  private modelsOnBucketClose(sp: number, c: number, y: number, i0: number, i1: number, f: number): void {
    this.hwUpdate(sp, y, i0, i1, f);
    if (this.fc.enabled) this.fc.onClose(sp, c, y, (a, b, w) => this.hwForecastAt(sp, this.phiSumH, a, b, w));
  }

  // ------------------------------------------------------------------ tick

  private positionOf(c: number, e: number): void {
    const D = this.period;
    const P = this.seasonPoints;
    const phase = c % D;
    const x = (phase * P) / D;
    const fl = Math.floor(x);
    let i0 = fl;
    if (i0 >= P) i0 = P - 1;
    const i1 = i0 + 1 === P ? 0 : i0 + 1;
    this.u32[e >> 2] = i0;
    this.u32[(e + 4) >> 2] = i1;
    this.u32[(e + 8) >> 2] = Math.floor((phase * this.widthMs) / MS_PER_HOUR);
    this.f64[(e + 16) >> 3] = x - fl;
  }

  /** Adds a bucket leaving the window to the user's cumulative totals (assembly/engine.ts foldTotals). */
  private foldTotals(sp: number, cell: number): void {
    const { u32, f64 } = this;
    f64[(sp + S.totRequests) >> 3] = f64[(sp + S.totRequests) >> 3] + u32[(cell + C.count) >> 2];
    f64[(sp + S.totInTok) >> 3] = f64[(sp + S.totInTok) >> 3] + f64[(cell + C.inTok) >> 3];
    f64[(sp + S.totOutTok) >> 3] = f64[(sp + S.totOutTok) >> 3] + f64[(cell + C.outTok) >> 3];
  }

  private closeBucket(sp: number, c: number, ri: number, pos: number): void {
    const { u8, u32, f32, f64 } = this;
    const cell = sp + this.cellOff[ri];
    let count = 0;
    if (u32[cell >> 2] === c) {
      count = u32[(cell + C.count) >> 2];
      this.foldTotals(sp, cell);
      u32[(sp + S.cCount) >> 2] = count;
      u32[(sp + S.cErrors) >> 2] = u32[(cell + C.errors) >> 2];
      u32[(sp + S.cThrottled) >> 2] = u32[(cell + C.throttled) >> 2];
      f64[(sp + S.cInTok) >> 3] = f64[(cell + C.inTok) >> 3];
      f64[(sp + S.cOutTok) >> 3] = f64[(cell + C.outTok) >> 3];
      const ib = (cell + C.ipBits) >> 2;
      const ub = (cell + C.uaBits) >> 2;
      const ipOnes = popcnt(u32[ib]) + popcnt(u32[ib + 1]) + popcnt(u32[ib + 2]) + popcnt(u32[ib + 3]);
      const uaOnes = popcnt(u32[ub]) + popcnt(u32[ub + 1]) + popcnt(u32[ub + 2]) + popcnt(u32[ub + 3]);
      u8[sp + S.cIpZeros] = 128 - ipOnes;
      u8[sp + S.cUaZeros] = 128 - uaOnes;
      const gn = u32[(cell + C.gapN) >> 2];
      let cv = 0;
      if (gn >= 2) {
        const mean = f64[(cell + C.gapSum) >> 3] / gn;
        let v = f64[(cell + C.gapSq) >> 3] / gn - mean * mean;
        if (v < 0) v = 0;
        if (mean > 0) cv = Math.sqrt(v) / mean;
      }
      f32[(sp + S.cCv) >> 2] = cv;
    } else {
      u32[(sp + S.cCount) >> 2] = 0;
      u32[(sp + S.cErrors) >> 2] = 0;
      u32[(sp + S.cThrottled) >> 2] = 0;
      f64[(sp + S.cInTok) >> 3] = 0;
      f64[(sp + S.cOutTok) >> 3] = 0;
      u8[sp + S.cIpZeros] = 128;
      u8[sp + S.cUaZeros] = 128;
      f32[(sp + S.cCv) >> 2] = 0;
    }
    const y = count / this.widthSec;
    const tp = (sp + S.tod + (u32[(pos + 8) >> 2] << 1)) >> 1;
    const tv = decU16(this.u16[tp]);
    this.u16[tp] = encU16(tv + this.todAlpha * (y - tv));
    this.modelsOnBucketClose(sp, c, y, u32[pos >> 2], u32[(pos + 4) >> 2], f64[(pos + 16) >> 3]);
  }

  private dueToExpire(sp: number, newClosed: number, expire: number): boolean {
    const last = this.u32[(sp + S.lastSeen) >> 2];
    return newClosed > last && newClosed - last > expire;
  }

  tick(nowMs: number): number {
    if (!this.ready) return 0;
    const { u32, f64 } = this;
    let target = this.closed;
    if (nowMs >= 0) {
      const tf = Math.floor((nowMs - this.latenessMs) / this.widthMs);
      if (tf >= MAX_BUCKET) target = MAX_BUCKET;
      else if (tf > 0) target = tf;
      else target = 0;
    }
    if (!this.initialized) {
      this.closed = target;
      this.initialized = true;
    }
    const oldClosed = this.closed;
    let start = oldClosed;
    const end = target > start ? target : start;
    if (end - start > this.maxCatchUp) {
      this.skippedBuckets += end - this.maxCatchUp - start;
      start = end - this.maxCatchUp;
    }
    const nClose = end - start;
    if (nClose !== 0 && this.fc.enabled) this.fc.tickStart(start, this.tracked, this.capacity);
    for (let k = 0; k < nClose; k++) this.positionOf(start + k, this.rScratch + k * SCRATCH_BYTES);
    const newClosed = end;
    const fpos = this.rScratch + nClose * SCRATCH_BYTES;
    this.positionOf((newClosed - 1 + this.horizon) >>> 0, fpos);
    const fi0 = u32[fpos >> 2];
    const fi1 = u32[(fpos + 4) >> 2];
    const ff = f64[(fpos + 16) >> 3];
    const ring = this.ring;
    const startMod = start % ring;
    const expire = this.expireAfter;
    const widthSec = this.widthSec;
    let out = this.rOutput;
    let count = 0;
    let expired = 0;
    const used = this.used;
    for (let s = 0; s < used; s++) {
      const sp = this.slotPtr(s);
      const lo = u32[sp >> 2];
      const hi = u32[(sp + 4) >> 2];
      if ((lo | hi) === 0) continue;
      if (nClose !== 0) {
        // Skipped buckets are not closed, but their events count in the totals.
        if (start !== oldClosed) {
          for (let k = 0; k < ring; k++) {
            const cell = sp + this.cellOff[k];
            const cb = u32[cell >> 2];
            if (cb >= oldClosed && cb < start) this.foldTotals(sp, cell);
          }
        }
        const first = u32[(sp + S.firstBucket) >> 2];
        let ri = startMod;
        for (let k = 0; k < nClose; k++) {
          const c = start + k;
          if (c >= first) this.closeBucket(sp, c, ri, this.rScratch + k * SCRATCH_BYTES);
          ri++;
          if (ri === ring) ri = 0;
        }
        // A user due to expire gets no record; it is removed after the loop (assembly/engine.ts tickEnd).
        if (expire !== 0 && this.dueToExpire(sp, newClosed, expire)) {
          expired++;
          continue;
        }
      }
      u32[out >> 2] = lo;
      u32[(out + 4) >> 2] = hi;
      f64[(out + 8) >> 3] = this.fc.enabled ? this.fc.rate(sp) : this.hwForecastAt(sp, this.phiSumH, fi0, fi1, ff);
      f64[(out + 16) >> 3] = this.fc.enabled ? this.fc.upper(sp) : this.hwUpperAt(sp, this.phiSumH, this.varMultH, fi0, fi1, ff);
      f64[(out + 24) >> 3] = u32[(sp + S.cCount) >> 2] / widthSec;
      out += FORECAST_RECORD_BYTES;
      count++;
    }
    if (expired !== 0) {
      for (let s = 0; s < used; s++) {
        const sp = this.slotPtr(s);
        if ((u32[sp >> 2] | u32[(sp + 4) >> 2]) === 0) continue;
        if (this.dueToExpire(sp, newClosed, expire)) {
          this.removeUser(s);
          this.expirations += 1;
        }
      }
    }
    if (nClose !== 0 && this.fc.enabled) this.fc.tickEnd(nClose);
    this.bucketsClosed += nClose;
    this.closed = newClosed;
    this.ticks += 1;
    return count;
  }

  // ------------------------------------------------------------------ getters

  lookup(lo: number, hi: number): number {
    if (!this.ready) return -1;
    return this.findSlot(lo >>> 0, hi >>> 0);
  }

  private occupied(s: number): number {
    if (!this.ready || !(s >= 0 && s < this.used)) return -1;
    const sp = this.slotPtr(s);
    return (this.u32[sp >> 2] | this.u32[(sp + 4) >> 2]) !== 0 ? sp : -1;
  }

  private forecastAt(s: number, h: number, upper: boolean): number {
    const sp = this.occupied(s);
    if (sp < 0) return NaN;
    const e = this.rScratch;
    this.positionOf((this.closed - 1 + h) >>> 0, e);
    const ps = this.phiSum(h);
    const i0 = this.u32[e >> 2], i1 = this.u32[(e + 4) >> 2], f = this.f64[(e + 16) >> 3];
    return upper ? this.hwUpperAt(sp, ps, this.varMult(h), i0, i1, f) : this.hwForecastAt(sp, ps, i0, i1, f);
  }

  fcConfigure(enabled: number, quantile: number, trainPerBucket: number, learningRate: number, gradClip: number, minCountPerBucket: number): number {
    return this.fc.configure(enabled !== 0, quantile, trainPerBucket, learningRate, gradClip, minCountPerBucket);
  }
  fcTrainSteps(): number { return this.fc.trainSteps; }
  fcTrainLossSum(): number { return this.fc.trainLossSum; }
  fcDenseCloses(): number { return this.fc.denseCloses; }
  fcCloses(): number { return this.fc.closes; }
  fcTrainBlockPtr(): number { return this.rFcBlock; }
  fcTrainBlockBytes(): number { return FC_TRAIN_BLOCK_BYTES; }
  lstmForecast(s: number, h: number): number {
    const sp = this.occupied(s);
    return sp < 0 || !this.fc.enabled ? NaN : this.fc.lstmForecastCount(sp, h);
  }
  ingressPtr(): number { return this.rIngress; }
  ingressCapacity(): number { return this.rIngressCap; }
  countsPtr(): number { return this.rCounts; }
  countsCapacity(): number { return this.rCountsCap; }
  outputPtr(): number { return this.rOutput; }
  statePtr(): number { return this.rState; }
  stateBytes(): number { return this.rStateBytes; }
  slotBytes(): number { return this.slotSize; }
  slotExtOffset(): number { return this.sExt; }
  indexEntries(): number { return this.nIndex; }
  ringBuckets(): number { return this.ring; }
  periodBuckets(): number { return this.period; }
  closedBucket(): number { return this.closed; }
  usersTracked(): number { return this.tracked; }
  /** The reference has no bump allocator; the JS heap is measured by the caller instead. */
  heapTop(): number { return 0; }
  memoryPages(): number { return this.buf.byteLength / 65536; }

  hwForecast(s: number, h: number): number { return this.forecastAt(s, h, false); }
  hwUpper(s: number, h: number): number { return this.forecastAt(s, h, true); }
  private f64At(s: number, off: number): number { const sp = this.occupied(s); return sp < 0 ? NaN : this.f64[(sp + off) >> 3]; }
  private f32At(s: number, off: number): number { const sp = this.occupied(s); return sp < 0 ? NaN : this.f32[(sp + off) >> 2]; }
  private u32At(s: number, off: number): number { const sp = this.occupied(s); return sp < 0 ? NaN : this.u32[(sp + off) >> 2]; }
  hwLevel(s: number): number { return this.f64At(s, S.level); }
  hwTrend(s: number): number { return this.f64At(s, S.trend); }
  hwAlpha(s: number): number { return this.f32At(s, S.alpha); }
  hwErrVar(s: number): number { return this.f32At(s, S.errVar); }
  hwObservations(s: number): number { return this.u32At(s, S.hwN); }
  hwSeason(s: number, i: number): number { const sp = this.occupied(s); return sp < 0 || !(i < this.seasonPoints) ? NaN : decI16(this.u16[(sp + this.sSeason + i * 2) >> 1]); }
  todRate(s: number, hour: number): number { const sp = this.occupied(s); return sp < 0 || !(hour < 24) ? NaN : decU16(this.u16[(sp + S.tod + hour * 2) >> 1]); }
  featCount(s: number): number { return this.u32At(s, S.cCount); }
  featInputTokens(s: number): number { return this.f64At(s, S.cInTok); }
  featOutputTokens(s: number): number { return this.f64At(s, S.cOutTok); }
  featDistinctIps(s: number): number { const sp = this.occupied(s); return sp < 0 ? NaN : linearCount(this.u8[sp + S.cIpZeros]); }
  featDistinctUas(s: number): number { const sp = this.occupied(s); return sp < 0 ? NaN : linearCount(this.u8[sp + S.cUaZeros]); }
  featCv(s: number): number { return this.f32At(s, S.cCv); }
  featErrors(s: number): number { return this.u32At(s, S.cErrors); }
  featThrottled(s: number): number { return this.u32At(s, S.cThrottled); }
  /** Closed buckets' total plus the open cells (assembly/engine.ts userTotal). */
  private userTotal(s: number, off: number, cellOff: number, isCount: boolean): number {
    const sp = this.occupied(s);
    if (sp < 0) return NaN;
    let v = this.f64[(sp + off) >> 3];
    for (let k = 0; k < this.ring; k++) {
      const cell = sp + this.cellOff[k];
      const cb = this.u32[cell >> 2];
      if (cb === NIL || cb < this.closed) continue;
      v += isCount ? this.u32[(cell + cellOff) >> 2] : this.f64[(cell + cellOff) >> 3];
    }
    return v;
  }
  userRequests(s: number): number { return this.userTotal(s, S.totRequests, C.count, true); }
  userInputTokens(s: number): number { return this.userTotal(s, S.totInTok, C.inTok, false); }
  userOutputTokens(s: number): number { return this.userTotal(s, S.totOutTok, C.outTok, false); }
  cellRouteBin(s: number, b: number, bin: number): number {
    const sp = this.occupied(s);
    if (sp < 0 || bin >= 8) return -1;
    const cell = sp + this.cellOff[b % this.ring];
    return this.u32[cell >> 2] === b ? this.u16[(cell + C.route + bin * 2) >> 1] : -1;
  }
}
