// Engine core: init (memory sized once), the hot paths (ingest, tick) and the cold paths
// (aggregate ingest, getters, globals sync). Exported through assembly/index.ts.
import * as R from "./records";
import { EVENT_BYTES, COUNTS_BYTES, FORECAST_BYTES, MAX_BUCKET, NIL } from "./records";
import { G, Params, Regions } from "./params";
import {
  CELL_BYTES, C_BUCKET, C_COUNT, C_ERRORS, C_GAP_N, C_GAP_SQ, C_GAP_SUM, C_IN_TOK, C_IP_BITS,
  C_OUT_TOK, C_ROUTE, C_THROTTLED, C_UA_BITS, S_C_COUNT, S_C_CV, S_C_ERRORS, S_C_IN_TOK,
  S_C_IP_ZEROS, S_C_OUT_TOK, S_C_THROTTLED, S_C_UA_ZEROS, S_FIRST_BUCKET, S_HASH_HI, S_HASH_LO,
  S_LAST_SEEN, S_LAST_TIME, S_PROMOTE, S_TOD, S_T_IN_TOK, S_T_OUT_TOK, S_T_REQ, Slot, cellOffset,
  slotLayout,
} from "./slot";
import { decU16, encU16 } from "./codec";
import { findOrInsert, findSlot, mixTag, removeUser, slotPtr } from "./table";
import { hwForecastAt, hwUpperAt, phiSum, varMult } from "./hw";
import {
  modelsExtBytes, modelsOnBucketClose, modelsRangeCloses, modelsRangeDenseCloses, modelsRangeStart, modelsRate,
  modelsScratchBytes, modelsSetScratch, modelsThreadInit, modelsTickEnd, modelsTickShare, modelsTickStart, modelsUpper,
} from "./models";
import * as T from "./threads";

/** Bytes per scratch entry (season position of one bucket closed in a tick). */
const SCRATCH_BYTES: u32 = 24;
/** Events per prefetch group of the ingest loop (see touchGroup). */
const GROUP: u32 = 128;
/** Per-event hint written by touchGroup: slot guess (NIL = none), tag, floor(t / width), addresses. */
const HINT_BYTES: u32 = 32;
const H_SLOT: u32 = 0;
const H_TAG: u32 = 4;
const H_BUCKET: u32 = 8;
/** Addresses the touch passes load from (index entry, then slot line 0), and the ring cell. */
const H_A0: u32 = 16;
const H_A1: u32 = 20;

/** Sink for the loads of the touch passes, so the optimiser keeps them. */
let sink: u32 = 0;
const MS_PER_DAY: f64 = 86400000.0;
const MS_PER_HOUR: f64 = 3600000.0;

let ready = false;
/** Set by attach: init computes this instance's globals only and writes no memory. */
let attaching = false;

// @ts-ignore: decorator
@inline function align(n: u64, a: u64): u64 {
  return (n + a - 1) & ~(a - 1);
}

/**
 * Sizes and places every region, grows memory once, writes the params block.
 * Returns 0, or -1 already initialised, -2 memory.grow failed, -3 larger than 4 GiB, -4 bad params.
 */
export function init(
  capacity: u32, widthMs: f64, latenessMs: f64, seasonPoints: u32, horizon: u32, z: f64,
  alpha: f64, beta: f64, gamma: f64, phi: f64, alphaMax: f64, tsThreshold: f64,
  tsSmoothing: f64, alphaDecay: f64, varSmoothing: f64, todAlpha: f64, expireAfter: u32,
  maxCatchUp: u32, ingressCap: u32, countsCap: u32,
): i32 {
  if (ready) return -1;
  if (capacity < 1 || !(widthMs >= 1000.0) || !(latenessMs >= 0.0) || seasonPoints < 2 ||
      ingressCap < 1 || countsCap < 1 || maxCatchUp < 1) return -4;
  let ring = <u32>Math.ceil(latenessMs / widthMs) + 2;
  if (ring > 8) ring = 8;
  let indexEntries: u32 = 16;
  while (<u64>indexEntries < <u64>capacity * 2) indexEntries <<= 1;
  const slotBytes = slotLayout(seasonPoints, ring, modelsExtBytes(seasonPoints));

  // Regions: [stub heap reserve][ingress][counts][output][scratch][hints][state: params, globals, index, slab]
  const base = align(<u64>__heap_base + 65536, 65536);
  const ingress = base;
  const counts = align(ingress + <u64>ingressCap * EVENT_BYTES, 64);
  const output = align(counts + <u64>countsCap * COUNTS_BYTES, 64);
  const scratch = align(output + <u64>capacity * FORECAST_BYTES, 64);
  const hints = align(scratch + (<u64>maxCatchUp + 1) * SCRATCH_BYTES, 64);
  const modelScratch = align(hints + <u64>GROUP * HINT_BYTES, 64);
  const state = align(modelScratch + modelsScratchBytes(capacity), 64);
  const index = state + R.PARAMS_BYTES + R.GLOBALS_BYTES;
  const slab = align(index + <u64>indexEntries * 8, 64);
  const end = slab + <u64>capacity * <u64>slotBytes;
  if (end > 0xffff0000) return -3;
  const pagesNeeded = <i32>((end + 65535) >> 16);
  const have = memory.size();
  if (attaching) {
    // A tick thread's instance: the main instance has sized and written the memory already.
    if (pagesNeeded > have) return -2;
  } else if (pagesNeeded > have && memory.grow(pagesNeeded - have) < 0) return -2;
  modelsSetScratch(<usize>modelScratch, capacity);

  Regions.ingress = <usize>ingress;
  Regions.ingressCap = ingressCap;
  Regions.counts = <usize>counts;
  Regions.countsCap = countsCap;
  Regions.output = <usize>output;
  Regions.scratch = <usize>scratch;
  Regions.hints = <usize>hints;
  Regions.state = <usize>state;
  Regions.params = <usize>state;
  Regions.globals = <usize>state + R.PARAMS_BYTES;
  Regions.index = <usize>index;
  Regions.slab = <usize>slab;
  Regions.end = <usize>end;
  Regions.stateBytes = <usize>(end - state);

  Params.capacity = capacity;
  Params.indexEntries = indexEntries;
  Params.indexMask = indexEntries - 1;
  Params.slotBytes = slotBytes;
  Params.widthMs = widthMs;
  Params.widthSec = widthMs / 1000.0;
  Params.latenessMs = latenessMs;
  Params.ring = ring;
  Params.seasonPoints = seasonPoints;
  Params.periodBuckets = <u32>Math.floor(MS_PER_DAY / widthMs);
  Params.horizon = horizon;
  Params.z = z;
  Params.alpha = alpha;
  Params.beta = beta;
  Params.gamma = gamma;
  Params.phi = phi;
  Params.alphaMax = alphaMax;
  Params.tsThreshold = tsThreshold;
  Params.tsSmoothing = tsSmoothing;
  Params.alphaDecay = alphaDecay;
  Params.varSmoothing = varSmoothing;
  Params.todAlpha = todAlpha;
  Params.expireAfter = expireAfter;
  Params.maxCatchUp = maxCatchUp;
  Params.phiSumH = phiSum(horizon);
  Params.varMultH = varMult(horizon);
  if (attaching) {
    ready = true;
    return 0;
  }

  const pb = Regions.params;
  store<f64>(pb + (R.P_VERSION << 3), R.LAYOUT_VERSION);
  store<f64>(pb + (R.P_CAPACITY << 3), <f64>capacity);
  store<f64>(pb + (R.P_INDEX_ENTRIES << 3), <f64>indexEntries);
  store<f64>(pb + (R.P_SLOT_BYTES << 3), <f64>slotBytes);
  store<f64>(pb + (R.P_WIDTH_MS << 3), widthMs);
  store<f64>(pb + (R.P_LATENESS_MS << 3), latenessMs);
  store<f64>(pb + (R.P_RING << 3), <f64>ring);
  store<f64>(pb + (R.P_SEASON_POINTS << 3), <f64>seasonPoints);
  store<f64>(pb + (R.P_PERIOD_BUCKETS << 3), <f64>Params.periodBuckets);
  store<f64>(pb + (R.P_HORIZON << 3), <f64>horizon);
  store<f64>(pb + (R.P_Z << 3), z);
  store<f64>(pb + (R.P_ALPHA << 3), alpha);
  store<f64>(pb + (R.P_BETA << 3), beta);
  store<f64>(pb + (R.P_GAMMA << 3), gamma);
  store<f64>(pb + (R.P_PHI << 3), phi);
  store<f64>(pb + (R.P_ALPHA_MAX << 3), alphaMax);
  store<f64>(pb + (R.P_TS_THRESHOLD << 3), tsThreshold);
  store<f64>(pb + (R.P_TS_SMOOTHING << 3), tsSmoothing);
  store<f64>(pb + (R.P_ALPHA_DECAY << 3), alphaDecay);
  store<f64>(pb + (R.P_VAR_SMOOTHING << 3), varSmoothing);
  store<f64>(pb + (R.P_TOD_ALPHA << 3), todAlpha);
  store<f64>(pb + (R.P_EXPIRE_AFTER << 3), <f64>expireAfter);
  store<f64>(pb + (R.P_MAX_CATCH_UP << 3), <f64>maxCatchUp);

  G.initialized = false;
  G.closed = 0;
  G.used = 0;
  G.freeHead = NIL;
  G.head = NIL;
  G.tail = NIL;
  G.tracked = 0;
  saveGlobals();
  ready = true;
  return 0;
}

/**
 * Makes this instance tick thread t (1..MAX_THREADS-1) of an engine whose main instance was
 * initialised over the same (shared) memory with the same arguments: computes the same layout and
 * parameters into this instance's globals, writes no memory. Returns init's codes, -5 for a bad t.
 */
export function attach(
  t: u32, capacity: u32, widthMs: f64, latenessMs: f64, seasonPoints: u32, horizon: u32, z: f64,
  alpha: f64, beta: f64, gamma: f64, phi: f64, alphaMax: f64, tsThreshold: f64,
  tsSmoothing: f64, alphaDecay: f64, varSmoothing: f64, todAlpha: f64, expireAfter: u32,
  maxCatchUp: u32, ingressCap: u32, countsCap: u32,
): i32 {
  if (ready) return -1;
  if (t == 0 || t >= T.MAX_THREADS) return -5;
  attaching = true;
  const rc = init(capacity, widthMs, latenessMs, seasonPoints, horizon, z, alpha, beta, gamma, phi, alphaMax,
    tsThreshold, tsSmoothing, alphaDecay, varSmoothing, todAlpha, expireAfter, maxCatchUp, ingressCap, countsCap);
  attaching = false;
  if (rc != 0) return rc;
  T.Thread.id = t;
  modelsThreadInit(t);
  return 0;
}

/** Writes the wasm globals into the globals block of the state region. */
export function saveGlobals(): void {
  const g = Regions.globals;
  store<f64>(g + (R.G_INITIALIZED << 3), G.initialized ? 1.0 : 0.0);
  store<f64>(g + (R.G_CLOSED << 3), <f64>G.closed);
  store<f64>(g + (R.G_USED << 3), <f64>G.used);
  store<f64>(g + (R.G_FREE_HEAD << 3), <f64>G.freeHead);
  store<f64>(g + (R.G_LRU_HEAD << 3), <f64>G.head);
  store<f64>(g + (R.G_LRU_TAIL << 3), <f64>G.tail);
  store<f64>(g + (R.G_TRACKED << 3), <f64>G.tracked);
  store<f64>(g + (R.G_APPLIED << 3), G.applied);
  store<f64>(g + (R.G_INVALID << 3), G.invalid);
  store<f64>(g + (R.G_LATE << 3), G.late);
  store<f64>(g + (R.G_EARLY << 3), G.early);
  store<f64>(g + (R.G_EVICTIONS << 3), G.evictions);
  store<f64>(g + (R.G_EXPIRATIONS << 3), G.expirations);
  store<f64>(g + (R.G_BUCKETS_CLOSED << 3), G.bucketsClosed);
  store<f64>(g + (R.G_TICKS << 3), G.ticks);
  store<f64>(g + (R.G_COUNTS_APPLIED << 3), G.countsApplied);
  store<f64>(g + (R.G_SKIPPED_BUCKETS << 3), G.skippedBuckets);
}

/** Reads the globals block back into the wasm globals (after a restore). */
export function loadGlobals(): void {
  const g = Regions.globals;
  G.initialized = load<f64>(g + (R.G_INITIALIZED << 3)) != 0.0;
  G.closed = <u32>load<f64>(g + (R.G_CLOSED << 3));
  G.used = <u32>load<f64>(g + (R.G_USED << 3));
  G.freeHead = <u32>load<f64>(g + (R.G_FREE_HEAD << 3));
  G.head = <u32>load<f64>(g + (R.G_LRU_HEAD << 3));
  G.tail = <u32>load<f64>(g + (R.G_LRU_TAIL << 3));
  G.tracked = <u32>load<f64>(g + (R.G_TRACKED << 3));
  G.applied = load<f64>(g + (R.G_APPLIED << 3));
  G.invalid = load<f64>(g + (R.G_INVALID << 3));
  G.late = load<f64>(g + (R.G_LATE << 3));
  G.early = load<f64>(g + (R.G_EARLY << 3));
  G.evictions = load<f64>(g + (R.G_EVICTIONS << 3));
  G.expirations = load<f64>(g + (R.G_EXPIRATIONS << 3));
  G.bucketsClosed = load<f64>(g + (R.G_BUCKETS_CLOSED << 3));
  G.ticks = load<f64>(g + (R.G_TICKS << 3));
  G.countsApplied = load<f64>(g + (R.G_COUNTS_APPLIED << 3));
  G.skippedBuckets = load<f64>(g + (R.G_SKIPPED_BUCKETS << 3));
}

/** First valid record sets the clock: closed = floor((t - lateness) / width), at least 0. */
// @ts-ignore: decorator
@inline function startClock(t: f64): void {
  const cf = Math.floor((t - Params.latenessMs) / Params.widthMs);
  G.closed = cf > 0.0 ? <u32>cf : 0;
  G.initialized = true;
}

/**
 * Recency at bucket resolution: an event in a later bucket than the user's last-seen one advances
 * it and marks the user for promotion; the LRU list itself is only reordered when a user must be
 * evicted (lazy promotion, see findOrInsert), so the per-event cost is two stores to a line
 * already in cache.
 */
// @ts-ignore: decorator
@inline function touch(s: u32, sp: usize, b: u32): void {
  const last = load<u32>(sp, S_LAST_SEEN);
  if (b > last) {
    store<u32>(sp, b, S_LAST_SEEN);
    store<u8>(sp, 1, S_PROMOTE);
  } else if (b < load<u32>(sp, S_FIRST_BUCKET)) {
    store<u32>(sp, b, S_FIRST_BUCKET);
  }
}

/** Ring cell for bucket b, cleared if it held another bucket. */
// @ts-ignore: decorator
@inline function cellFor(sp: usize, ri: u32, b: u32): usize {
  const cell = sp + cellOffset(ri);
  if (load<u32>(cell, C_BUCKET) != b) {
    // Unrolled clear (memory.fill is an out-of-line call in V8, too slow once per event).
    // CELL_BYTES = 100: the bucket, then 12 aligned u64 (a cell starts 4 past an 8-byte boundary).
    store<u32>(cell, b, C_BUCKET);
    store<u64>(cell, 0, 4);
    store<u64>(cell, 0, 12);
    store<u64>(cell, 0, 20);
    store<u64>(cell, 0, 28);
    store<u64>(cell, 0, 36);
    store<u64>(cell, 0, 44);
    store<u64>(cell, 0, 52);
    store<u64>(cell, 0, 60);
    store<u64>(cell, 0, 68);
    store<u64>(cell, 0, 76);
    store<u64>(cell, 0, 84);
    store<u64>(cell, 0, 92);
  }
  return cell;
}

/**
 * Group prefetching for the ingest loop: the per-event work is bound by cache misses on the index
 * entry, the slot header and the ring cell of a user, each depending on the previous. Before a
 * group of GROUP events is applied, read-only passes issue those loads for the whole group
 * (independent loads, so the CPU overlaps the misses) and record each event's slot guess, tag and
 * bucket as a hint. Semantics are untouched: the apply loop re-validates every slot hint.
 */
function touchGroup(from: usize, to: usize, closed: u32, cm: u32): void {
  const mask = Params.indexMask;
  const index = Regions.index;
  const W = Params.widthMs;
  const hints = Regions.hints;
  let acc: u32 = 0;
  // The passes that may miss (B, D) do nothing but load from addresses computed before, so the
  // whole group's loads fit in the out-of-order window at once (a miss blocks retirement; a pass
  // with more work per event would let fewer misses overlap).
  // Pass A: tag, bucket floor(t / W) and index entry address of each event.
  let h = hints;
  for (let p = from; p < to; p += EVENT_BYTES, h += HINT_BYTES) {
    const tag = mixTag(load<u32>(p, R.EV_HASH_LO), load<u32>(p, R.EV_HASH_HI));
    store<u32>(h, tag, H_TAG);
    store<f64>(h, Math.floor(load<f64>(p, R.EV_TIME) / W), H_BUCKET);
    store<u32>(h, <u32>(index + (<usize>(tag & mask) << 3)), H_A0);
  }
  const hEnd = h;
  // Pass B: the index entries.
  for (h = hints; h < hEnd; h += HINT_BYTES) acc += load<u32>(<usize>load<u32>(h, H_A0), 4);
  // Pass C: the slot of the first index entry with the event's tag becomes its hint (the key is
  // checked when applying); addresses of the slot's line 0 and of the ring cell's two lines.
  const ring = Params.ring;
  for (h = hints; h < hEnd; h += HINT_BYTES) {
    const tag = load<u32>(h, H_TAG);
    let pos = tag & mask;
    let slot: u32 = NIL;
    while (true) {
      const e = index + (<usize>pos << 3);
      const s1 = load<u32>(e, 4);
      if (s1 == 0) break;
      if (load<u32>(e) == tag) {
        slot = s1 - 1;
        break;
      }
      pos = (pos + 1) & mask;
    }
    store<u32>(h, slot, H_SLOT);
    let a0 = <u32>h;
    let a1 = a0;
    if (slot != NIL) {
      const sp = slotPtr(slot);
      a0 = <u32>sp;
      a1 = a0;
      const bf = load<f64>(h, H_BUCKET);
      if (bf >= <f64>closed && bf < <f64>closed + <f64>ring) {
        let ri = cm + (<u32>bf - closed);
        if (ri >= ring) ri -= ring;
        a1 = <u32>(sp + cellOffset(ri));
      }
    }
    store<u32>(h, a0, H_A0);
    store<u32>(h, a1, H_A1);
  }
  // Pass D: line 0 and both lines of the cell (bucket at 0, count at 36).
  for (h = hints; h < hEnd; h += HINT_BYTES) {
    const a1 = <usize>load<u32>(h, H_A1);
    acc += load<u32>(<usize>load<u32>(h, H_A0)) + load<u32>(a1, C_BUCKET) + load<u32>(a1, C_COUNT);
  }
  sink += acc;
}

/** Applies the first n event records of the ingress buffer; returns how many were applied. */
export function ingest(n: u32): u32 {
  if (!ready) return 0;
  if (n > Regions.ingressCap) n = Regions.ingressCap;
  const ring = Params.ring;
  let closed = G.closed;
  let cm = closed % ring;
  let applied: u32 = 0;
  let invalid: u32 = 0;
  let late: u32 = 0;
  let early: u32 = 0;
  let p = Regions.ingress;
  const end = p + <usize>n * EVENT_BYTES;
  let hint = Regions.hints;
  let groupEnd = p;
  for (; p < end; p += EVENT_BYTES, hint += HINT_BYTES) {
    if (p == groupEnd) {
      groupEnd = p + <usize>GROUP * EVENT_BYTES;
      if (groupEnd > end) groupEnd = end;
      touchGroup(p, groupEnd, closed, cm);
      hint = Regions.hints;
    }
    const lo = load<u32>(p, R.EV_HASH_LO);
    const hi = load<u32>(p, R.EV_HASH_HI);
    const t = load<f64>(p, R.EV_TIME);
    const inTok = load<i32>(p, R.EV_IN_TOK);
    const outTok = load<i32>(p, R.EV_OUT_TOK);
    if ((lo | hi) == 0 || (inTok | outTok | load<i32>(p, R.EV_LATENCY) | load<i32>(p, R.EV_BYTES)) < 0 || !(t >= 0.0)) {
      invalid++;
      continue;
    }
    const bf = load<f64>(hint, H_BUCKET); // floor(t / W), computed by touchGroup
    if (!(bf < MAX_BUCKET)) {
      invalid++;
      continue;
    }
    const b = <u32>bf;
    if (!G.initialized) {
      startClock(t);
      closed = G.closed;
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
    // The hint from touchGroup is only a guess (an eviction earlier in the group may have
    // reused that slot): it is taken only if the slot still holds this user.
    let s = load<u32>(hint, H_SLOT);
    if (s >= Params.capacity || load<u32>(slotPtr(s), S_HASH_LO) != lo || load<u32>(slotPtr(s), S_HASH_HI) != hi) {
      s = findOrInsert(lo, hi, b);
    }
    const sp = slotPtr(s);
    touch(s, sp, b);
    let ri = cm + d;
    if (ri >= ring) ri -= ring;
    const cell = cellFor(sp, ri, b);
    store<u32>(cell, load<u32>(cell, C_COUNT) + 1, C_COUNT);
    store<f64>(cell, load<f64>(cell, C_IN_TOK) + <f64>inTok, C_IN_TOK);
    store<f64>(cell, load<f64>(cell, C_OUT_TOK) + <f64>outTok, C_OUT_TOK);
    const ip = load<u32>(p, R.EV_IP);
    if (ip != 0) {
      const w = cell + C_IP_BITS + ((ip >>> 3) & 12);
      store<u32>(w, load<u32>(w) | (<u32>1 << (ip & 31)));
    }
    const ua = load<u32>(p, R.EV_UA);
    if (ua != 0) {
      const w = cell + C_UA_BITS + ((ua >>> 3) & 12);
      store<u32>(w, load<u32>(w) | (<u32>1 << (ua & 31)));
    }
    const route = load<u32>(p, R.EV_ROUTE);
    if (route != 0) {
      const rp = cell + C_ROUTE + ((route & 7) << 1);
      const v = load<u16>(rp);
      if (v != 0xffff) store<u16>(rp, v + 1);
    }
    const lt = load<f64>(sp, S_LAST_TIME);
    if (t >= lt) {
      if (lt >= 0.0) {
        const gap = t - lt;
        store<f64>(cell, load<f64>(cell, C_GAP_SUM) + gap, C_GAP_SUM);
        store<f64>(cell, load<f64>(cell, C_GAP_SQ) + gap * gap, C_GAP_SQ);
        store<u32>(cell, load<u32>(cell, C_GAP_N) + 1, C_GAP_N);
      }
      store<f64>(sp, t, S_LAST_TIME);
    }
    const status = <u32>load<u16>(p, R.EV_STATUS);
    const flags = <u32>load<u16>(p, R.EV_FLAGS);
    if (status >= 500 || (flags & R.FLAG_ERROR) != 0) store<u32>(cell, load<u32>(cell, C_ERRORS) + 1, C_ERRORS);
    if ((flags & R.FLAG_THROTTLED) != 0) store<u32>(cell, load<u32>(cell, C_THROTTLED) + 1, C_THROTTLED);
    applied++;
  }
  G.applied += <f64>applied;
  G.invalid += <f64>invalid;
  G.late += <f64>late;
  G.early += <f64>early;
  return applied;
}

/**
 * Applies the first n aggregate records of the counts buffer (cold replay path): adds `requests`
 * and the token sums to the record's bucket; per-event features are left untouched.
 */
export function ingestCounts(n: u32): u32 {
  if (!ready) return 0;
  if (n > Regions.countsCap) n = Regions.countsCap;
  const W = Params.widthMs;
  const ring = Params.ring;
  let applied: u32 = 0;
  let p = Regions.counts;
  const end = p + <usize>n * COUNTS_BYTES;
  for (; p < end; p += COUNTS_BYTES) {
    const lo = load<u32>(p, 0);
    const hi = load<u32>(p, 4);
    const t = load<f64>(p, 8);
    const req = load<f64>(p, 16);
    const inTok = load<f64>(p, 24);
    const outTok = load<f64>(p, 32);
    if ((lo | hi) == 0 || !(t >= 0.0) || !(req >= 0.0) || !(req <= 4294967295.0) || Math.floor(req) != req ||
        !(inTok >= 0.0) || !(inTok < Infinity) || !(outTok >= 0.0) || !(outTok < Infinity)) {
      G.invalid += 1;
      continue;
    }
    const bf = Math.floor(t / W);
    if (!(bf < MAX_BUCKET)) {
      G.invalid += 1;
      continue;
    }
    const b = <u32>bf;
    if (!G.initialized) startClock(t);
    const closed = G.closed;
    if (b < closed) {
      G.late += 1;
      continue;
    }
    const d = b - closed;
    if (d >= ring) {
      G.early += 1;
      continue;
    }
    const s = findOrInsert(lo, hi, b);
    const sp = slotPtr(s);
    touch(s, sp, b);
    let ri = closed % ring + d;
    if (ri >= ring) ri -= ring;
    const cell = cellFor(sp, ri, b);
    const c = <f64>load<u32>(cell, C_COUNT) + req;
    store<u32>(cell, c < 4294967295.0 ? <u32>c : 0xffffffff, C_COUNT);
    store<f64>(cell, load<f64>(cell, C_IN_TOK) + inTok, C_IN_TOK);
    store<f64>(cell, load<f64>(cell, C_OUT_TOK) + outTok, C_OUT_TOK);
    G.countsApplied += 1;
    applied++;
  }
  return applied;
}

/** Writes bucket c's season position (i0, i1, hour, f) at scratch address e. */
function positionOf(c: u32, e: usize): void {
  const D = Params.periodBuckets;
  const P = Params.seasonPoints;
  const phase = c % D;
  const x = <f64>phase * <f64>P / <f64>D;
  const fl = Math.floor(x);
  let i0 = <u32>fl;
  if (i0 >= P) i0 = P - 1;
  const i1 = i0 + 1 == P ? 0 : i0 + 1;
  store<u32>(e, i0, 0);
  store<u32>(e, i1, 4);
  store<u32>(e, <u32>Math.floor(<f64>phase * Params.widthMs / MS_PER_HOUR), 8);
  store<f64>(e, x - fl, 16);
}

/**
 * Adds a bucket's requests and token sums to the user's cumulative totals. Called once per bucket
 * as it leaves the window (closed, or skipped by a long catch-up), so the totals cost nothing per
 * event; the getter adds the cells still open.
 */
// @ts-ignore: decorator
@inline function foldTotals(sp: usize, cell: usize): void {
  store<f64>(sp, load<f64>(sp, S_T_REQ) + <f64>load<u32>(cell, C_COUNT), S_T_REQ);
  store<f64>(sp, load<f64>(sp, S_T_IN_TOK) + load<f64>(cell, C_IN_TOK), S_T_IN_TOK);
  store<f64>(sp, load<f64>(sp, S_T_OUT_TOK) + load<f64>(cell, C_OUT_TOK), S_T_OUT_TOK);
}

/** Closes bucket c (ring index ri) of the user at sp: summary, time-of-day profile, models. */
function closeBucket(sp: usize, c: u32, ri: u32, pos: usize): void {
  const cell = sp + cellOffset(ri);
  let count: u32 = 0;
  if (load<u32>(cell, C_BUCKET) == c) {
    count = load<u32>(cell, C_COUNT);
    foldTotals(sp, cell);
    store<u32>(sp, count, S_C_COUNT);
    store<u32>(sp, load<u32>(cell, C_ERRORS), S_C_ERRORS);
    store<u32>(sp, load<u32>(cell, C_THROTTLED), S_C_THROTTLED);
    store<f64>(sp, load<f64>(cell, C_IN_TOK), S_C_IN_TOK);
    store<f64>(sp, load<f64>(cell, C_OUT_TOK), S_C_OUT_TOK);
    const ipOnes = popcnt(load<u32>(cell, C_IP_BITS)) + popcnt(load<u32>(cell, C_IP_BITS + 4)) +
      popcnt(load<u32>(cell, C_IP_BITS + 8)) + popcnt(load<u32>(cell, C_IP_BITS + 12));
    const uaOnes = popcnt(load<u32>(cell, C_UA_BITS)) + popcnt(load<u32>(cell, C_UA_BITS + 4)) +
      popcnt(load<u32>(cell, C_UA_BITS + 8)) + popcnt(load<u32>(cell, C_UA_BITS + 12));
    store<u8>(sp, <u8>(128 - ipOnes), S_C_IP_ZEROS);
    store<u8>(sp, <u8>(128 - uaOnes), S_C_UA_ZEROS);
    const gn = load<u32>(cell, C_GAP_N);
    let cv = 0.0;
    if (gn >= 2) {
      const nf = <f64>gn;
      const mean = load<f64>(cell, C_GAP_SUM) / nf;
      let v = load<f64>(cell, C_GAP_SQ) / nf - mean * mean;
      if (v < 0.0) v = 0.0;
      if (mean > 0.0) cv = Math.sqrt(v) / mean;
    }
    store<f32>(sp, <f32>cv, S_C_CV);
  } else {
    store<u32>(sp, 0, S_C_COUNT);
    store<u32>(sp, 0, S_C_ERRORS);
    store<u32>(sp, 0, S_C_THROTTLED);
    store<f64>(sp, 0.0, S_C_IN_TOK);
    store<f64>(sp, 0.0, S_C_OUT_TOK);
    store<u8>(sp, 128, S_C_IP_ZEROS);
    store<u8>(sp, 128, S_C_UA_ZEROS);
    store<f32>(sp, 0.0, S_C_CV);
  }
  const y = <f64>count / Params.widthSec;
  const tp = sp + S_TOD + (<usize>load<u32>(pos, 8) << 1);
  const tv = decU16(load<u16>(tp));
  store<u16>(tp, <u16>encU16(tv + Params.todAlpha * (y - tv)));
  modelsOnBucketClose(sp, c, y, load<u32>(pos, 0), load<u32>(pos, 4), load<f64>(pos, 16));
}

/**
 * Advances event time to nowMs: closes buckets closed..target-1 for every user (at most
 * maxCatchUp of them per tick; older ones are skipped and counted), feeds the models, expires
 * idle users, then writes one forecast record per tracked user. Returns the record count.
 * The same as tickBegin, tickChunks, tickEnd(1) (the facade's tick threads run tickChunks at once).
 */
export function tick(nowMs: f64): u32 {
  if (!ready) return 0;
  tickBegin(nowMs);
  tickChunks();
  return tickEnd(1);
}

/**
 * First part of a tick (main instance): moves the plan of the tick (buckets to close, the forecast
 * target's position, the live settings, the chunks) into the tick block and the season scratch,
 * and prepares the models (packed weights). Returns the slots to scan.
 */
export function tickBegin(nowMs: f64): u32 {
  if (!ready) return 0;
  let target = G.closed;
  if (nowMs >= 0.0) {
    const tf = Math.floor((nowMs - Params.latenessMs) / Params.widthMs);
    if (tf >= MAX_BUCKET) target = <u32>MAX_BUCKET;
    else if (tf > 0.0) target = <u32>tf;
    else target = 0;
  }
  if (!G.initialized) {
    G.closed = target;
    G.initialized = true;
  }
  const oldClosed = G.closed;
  let start = oldClosed;
  let end = target > start ? target : start;
  if (end - start > Params.maxCatchUp) {
    G.skippedBuckets += <f64>(end - Params.maxCatchUp - start);
    start = end - Params.maxCatchUp;
  }
  const nClose = end - start;
  if (nClose != 0) modelsTickStart();
  for (let k: u32 = 0; k < nClose; k++) positionOf(start + k, Regions.scratch + <usize>k * SCRATCH_BYTES);
  const newClosed = end;
  // Season position of the forecast target bucket (newClosed - 1 + horizon).
  const fpos = Regions.scratch + <usize>nClose * SCRATCH_BYTES;
  positionOf(newClosed - 1 + Params.horizon, fpos);
  const tb = T.TICK_BLOCK;
  store<u32>(tb, start, T.TK_START);
  store<u32>(tb, nClose, T.TK_N_CLOSE);
  store<u32>(tb, oldClosed, T.TK_OLD_CLOSED);
  store<u32>(tb, newClosed, T.TK_NEW_CLOSED);
  store<u32>(tb, load<u32>(fpos, 0), T.TK_FI0);
  store<u32>(tb, load<u32>(fpos, 4), T.TK_FI1);
  store<f64>(tb, load<f64>(fpos, 16), T.TK_FF);
  store<u32>(tb, G.tracked, T.TK_TRACKED);
  modelsTickShare(tb + T.TK_MODELS);
  const used = G.used;
  let per = (used + T.MAX_CHUNKS - 1) / T.MAX_CHUNKS;
  if (per < T.MIN_CHUNK_SLOTS) per = T.MIN_CHUNK_SLOTS;
  store<u32>(tb, used, T.TK_SLOTS);
  store<u32>(tb, per, T.TK_CHUNK_SLOTS);
  store<u32>(tb, (used + per - 1) / per, T.TK_CHUNKS);
  atomic.store<u32>(tb + T.TK_CHUNK_NEXT, 0);
  return used;
}

/** Users due to expire met by this thread's scans since its tickChunks began. */
let rangeExpired: u32 = 0;

/**
 * The per-user part of a tick (any thread, after tickBegin): takes chunks of the tick's slots from
 * the shared counter until none is left; for each, closes the tick's buckets of every user in it
 * and writes its forecast records from record index (the chunk's first slot) on, and their count
 * into CHUNK_RECORDS. A user due to expire gets no record and is counted; tickEnd removes it.
 * Sums in the thread's result block. Returns the records this thread wrote.
 */
export function tickChunks(): u32 {
  if (!ready) return 0;
  const tb = T.TICK_BLOCK;
  modelsRangeStart(tb + T.TK_MODELS, load<u32>(tb, T.TK_START), load<u32>(tb, T.TK_TRACKED));
  rangeExpired = 0;
  const slots = load<u32>(tb, T.TK_SLOTS);
  const per = load<u32>(tb, T.TK_CHUNK_SLOTS);
  const chunks = load<u32>(tb, T.TK_CHUNKS);
  let records: u32 = 0;
  while (true) {
    const i = atomic.add<u32>(tb + T.TK_CHUNK_NEXT, 1);
    if (i >= chunks) break;
    const b = i * per;
    const n = scan(b, b + per < slots ? b + per : slots);
    store<u32>(T.CHUNK_RECORDS + (<usize>i << 2), n);
    records += n;
  }
  const r = T.resultOf(T.Thread.id);
  store<u32>(r, rangeExpired, T.RS_EXPIRED);
  store<u32>(r, modelsRangeCloses(), T.RS_CLOSES);
  store<u32>(r, modelsRangeDenseCloses(), T.RS_DENSE);
  return records;
}

/** Closes the tick's buckets of the users in slots [sBegin, sEnd) and writes their records from record index sBegin; returns the records. */
function scan(sBegin: u32, sEnd: u32): u32 {
  const tb = T.TICK_BLOCK;
  const start = load<u32>(tb, T.TK_START);
  const nClose = load<u32>(tb, T.TK_N_CLOSE);
  const oldClosed = load<u32>(tb, T.TK_OLD_CLOSED);
  const newClosed = load<u32>(tb, T.TK_NEW_CLOSED);
  const fi0 = load<u32>(tb, T.TK_FI0);
  const fi1 = load<u32>(tb, T.TK_FI1);
  const ff = load<f64>(tb, T.TK_FF);
  const ring = Params.ring;
  const startMod = start % ring;
  const expire = Params.expireAfter;
  const widthSec = Params.widthSec;
  let out = Regions.output + <usize>sBegin * FORECAST_BYTES;
  let count: u32 = 0;
  let expired: u32 = 0;
  for (let s: u32 = sBegin; s < sEnd; s++) {
    const sp = slotPtr(s);
    const lo = load<u32>(sp, S_HASH_LO);
    const hi = load<u32>(sp, S_HASH_HI);
    if ((lo | hi) == 0) continue;
    if (nClose != 0) {
      // Buckets skipped by a long catch-up are not closed, but their events were applied: fold
      // any cell still holding one into the totals before the window moves past it.
      if (start != oldClosed) {
        for (let k: u32 = 0; k < ring; k++) {
          const cell = sp + cellOffset(k);
          const cb = load<u32>(cell, C_BUCKET);
          if (cb >= oldClosed && cb < start) foldTotals(sp, cell);
        }
      }
      const first = load<u32>(sp, S_FIRST_BUCKET);
      let ri = startMod;
      for (let k: u32 = 0; k < nClose; k++) {
        const c = start + k;
        if (c >= first) closeBucket(sp, c, ri, Regions.scratch + <usize>k * SCRATCH_BYTES);
        ri++;
        if (ri == ring) ri = 0;
      }
      if (expire != 0 && dueToExpire(sp, newClosed, expire)) {
        expired++;
        continue;
      }
    }
    store<u32>(out, lo, 0);
    store<u32>(out, hi, 4);
    store<f64>(out, modelsRate(sp, fi0, fi1, ff), 8);
    store<f64>(out, modelsUpper(sp, fi0, fi1, ff), 16);
    store<f64>(out, <f64>load<u32>(sp, S_C_COUNT) / widthSec, 24);
    out += FORECAST_BYTES;
    count++;
  }
  rangeExpired += expired;
  return count;
}

// @ts-ignore: decorator
@inline function dueToExpire(sp: usize, newClosed: u32, expire: u32): bool {
  const last = load<u32>(sp, S_LAST_SEEN);
  return newClosed > last && newClosed - last > expire;
}

/**
 * Last part of a tick (main instance), after tickChunks ran on `threads` threads: moves each
 * chunk's records down behind the previous chunk's, removes the users due to expire (slot order),
 * applies the models' training samples, advances the clock. Returns the records of the tick.
 */
export function tickEnd(threads: u32): u32 {
  if (!ready) return 0;
  const tb = T.TICK_BLOCK;
  const nClose = load<u32>(tb, T.TK_N_CLOSE);
  const newClosed = load<u32>(tb, T.TK_NEW_CLOSED);
  const per = load<u32>(tb, T.TK_CHUNK_SLOTS);
  const chunks = load<u32>(tb, T.TK_CHUNKS);
  let records: u32 = 0;
  for (let i: u32 = 0; i < chunks; i++) {
    const n = load<u32>(T.CHUNK_RECORDS + (<usize>i << 2));
    const from = i * per;
    if (from != records && n != 0) {
      memory.copy(Regions.output + <usize>records * FORECAST_BYTES, Regions.output + <usize>from * FORECAST_BYTES, <usize>n * FORECAST_BYTES);
    }
    records += n;
  }
  let expired: u32 = 0;
  let closes: u32 = 0;
  let dense: u32 = 0;
  for (let t: u32 = 0; t < threads; t++) {
    const r = T.resultOf(t);
    expired += load<u32>(r, T.RS_EXPIRED);
    closes += load<u32>(r, T.RS_CLOSES);
    dense += load<u32>(r, T.RS_DENSE);
  }
  if (expired != 0) {
    const expire = Params.expireAfter;
    const used = G.used;
    for (let s: u32 = 0; s < used; s++) {
      const sp = slotPtr(s);
      if ((load<u32>(sp, S_HASH_LO) | load<u32>(sp, S_HASH_HI)) == 0) continue;
      if (dueToExpire(sp, newClosed, expire)) {
        removeUser(s);
        G.expirations += 1;
      }
    }
  }
  if (nClose != 0) modelsTickEnd(threads, nClose, closes, dense);
  G.bucketsClosed += <f64>nClose;
  G.closed = newClosed;
  G.ticks += 1;
  return records;
}

// ---------------------------------------------------------------- cold-path getters

export function lookup(lo: u32, hi: u32): i32 {
  if (!ready) return -1;
  return findSlot(lo, hi);
}

/** Slot address if s holds a user, else 0. */
export function occupied(s: u32): usize {
  if (!ready || s >= G.used) return 0;
  const sp = slotPtr(s);
  return (load<u32>(sp, S_HASH_LO) | load<u32>(sp, S_HASH_HI)) != 0 ? sp : 0;
}

/** Forecast (req/s) h buckets after the last closed bucket. */
export function forecastAt(s: u32, h: u32, upper: bool): f64 {
  const sp = occupied(s);
  if (sp == 0) return NaN;
  const e = Regions.scratch;
  positionOf(G.closed - 1 + h, e);
  const ps = phiSum(h);
  if (upper) return hwUpperAt(sp, ps, varMult(h), load<u32>(e, 0), load<u32>(e, 4), load<f64>(e, 16));
  return hwForecastAt(sp, ps, load<u32>(e, 0), load<u32>(e, 4), load<f64>(e, 16));
}

/** Linear-counting estimate from the number of zero bits of a 128-bit bitmap. */
export function linearCount(zeros: u32): f64 {
  if (zeros >= 128) return 0.0;
  if (zeros == 0) return 128.0 * Math.log(128.0); // saturated: the estimator's upper end
  return 128.0 * Math.log(128.0 / <f64>zeros);
}

/** Cell address holding bucket b for slot s, or 0. */
export function cellOf(s: u32, b: u32): usize {
  const sp = occupied(s);
  if (sp == 0) return 0;
  const cell = sp + cellOffset(b % Params.ring);
  return load<u32>(cell, C_BUCKET) == b ? cell : 0;
}


/**
 * Cumulative total of one quantity for slot s (which: 0 requests, 1 input tokens, 2 output
 * tokens): the closed buckets' sum in the slot plus the cells of the buckets still open; NaN if s
 * holds no user.
 */
export function userTotal(s: u32, which: u32): f64 {
  const sp = occupied(s);
  if (sp == 0 || which > 2) return NaN;
  let v = load<f64>(sp + (which == 0 ? S_T_REQ : which == 1 ? S_T_IN_TOK : S_T_OUT_TOK));
  const closed = G.closed;
  const ring = Params.ring;
  for (let k: u32 = 0; k < ring; k++) {
    const cell = sp + cellOffset(k);
    const cb = load<u32>(cell, C_BUCKET);
    if (cb == NIL || cb < closed) continue; // empty, or a closed bucket already folded in
    v += which == 0 ? <f64>load<u32>(cell, C_COUNT) : load<f64>(cell + (which == 1 ? C_IN_TOK : C_OUT_TOK));
  }
  return v;
}
