// Foresight engine: exports of the WASM module (scalars only; batches in linear memory).
// See docs/engine.md. The TypeScript reference (src/engine/reference.ts) implements the same.
import { G, Params, Regions } from "./params";
import * as E from "./engine";
import {
  C_ROUTE, S_ALPHA, S_C_COUNT, S_C_CV, S_C_ERRORS, S_C_IN_TOK, S_C_IP_ZEROS, S_C_OUT_TOK,
  S_C_THROTTLED, S_C_UA_ZEROS, S_ERR_VAR, S_HW_N, S_LEVEL, S_TOD, S_TREND, Slot,
} from "./slot";
import { decI16, decLog, decU16, decU16Lanes, decU8, decU8Lanes, encI16, encLog, encU16, encU16Lanes, encU8, encU8Lanes } from "./codec";

export { init, attach, ingest, ingestCounts, tick, tickBegin, tickChunks, tickEnd, lookup, saveGlobals, loadGlobals } from "./engine";

export function ingressPtr(): usize { return Regions.ingress; }
export function ingressCapacity(): u32 { return Regions.ingressCap; }
export function countsPtr(): usize { return Regions.counts; }
export function countsCapacity(): u32 { return Regions.countsCap; }
export function outputPtr(): usize { return Regions.output; }
export function statePtr(): usize { return Regions.state; }
export function stateBytes(): usize { return Regions.stateBytes; }
export function slotBytes(): u32 { return Params.slotBytes; }
export function slotExtOffset(): u32 { return Slot.ext; }
export function indexEntries(): u32 { return Params.indexEntries; }
export function ringBuckets(): u32 { return Params.ring; }
export function periodBuckets(): u32 { return Params.periodBuckets; }
export function closedBucket(): f64 { return <f64>G.closed; }
export function usersTracked(): u32 { return G.tracked; }

/** Bump-allocator top of the runtime stub (alloc + free of a 1-byte block): moves iff something allocated. */
export function heapTop(): usize {
  const p = heap.alloc(1);
  heap.free(p);
  return p;
}
export function memoryPages(): i32 { return memory.size(); }

/** The slot codecs (assembly/codec.ts), for the tests that hold them equal to src/engine/codec.ts: kind 0 encU16, 1 encLog, 2 encI16, 3 encU8. */
export function codecEncode(kind: u32, v: f64): u32 {
  return kind == 0 ? encU16(v) : kind == 1 ? encLog(v) : kind == 2 ? encI16(v) : encU8(v);
}
export function codecDecode(kind: u32, c: u32): f64 {
  return kind == 0 ? decU16(c) : kind == 1 ? decLog(c) : kind == 2 ? decI16(c) : decU8(c);
}
/**
 * The lane forms of the codecs the tick runs on SIMD lanes (kind 0 U16, 3 U8), for the test that
 * holds them equal to the scalar ones: the code of lane `lane` of the four values v0..v3, and the
 * value of lane `lane` of the four codes c0..c3.
 */
export function codecEncodeLane(kind: u32, v0: f64, v1: f64, v2: f64, v3: f64, lane: u32): u32 {
  if (!ASC_FEATURE_SIMD) return codecEncode(kind, lane == 0 ? v0 : lane == 1 ? v1 : lane == 2 ? v2 : v3);
  const a = f64x2.replace_lane(f64x2.splat(v0), 1, v1), b = f64x2.replace_lane(f64x2.splat(v2), 1, v3);
  const c = kind == 0 ? encU16Lanes(a, b) : encU8Lanes(a, b);
  return lane == 0 ? i32x4.extract_lane(c, 0) : lane == 1 ? i32x4.extract_lane(c, 1) : lane == 2 ? i32x4.extract_lane(c, 2) : i32x4.extract_lane(c, 3);
}
export function codecDecodeLane(kind: u32, c0: u32, c1: u32, c2: u32, c3: u32, lane: u32): f64 {
  if (!ASC_FEATURE_SIMD) return codecDecode(kind, lane == 0 ? c0 : lane == 1 ? c1 : lane == 2 ? c2 : c3);
  const c = i32x4.replace_lane(i32x4.replace_lane(i32x4.replace_lane(i32x4.splat(c0), 1, c1), 2, c2), 3, c3);
  const v = kind == 0 ? decU16Lanes(c, lane >= 2) : decU8Lanes(c, lane >= 2);
  return (lane & 1) == 0 ? f64x2.extract_lane(v, 0) : f64x2.extract_lane(v, 1);
}

// --- per-slot getters (cold path). Invalid or free slot: NaN.
export function hwForecast(s: u32, h: u32): f64 { return E.forecastAt(s, h, false); }
export function hwUpper(s: u32, h: u32): f64 { return E.forecastAt(s, h, true); }
export function hwLevel(s: u32): f64 { const sp = E.occupied(s); return sp ? load<f64>(sp, S_LEVEL) : NaN; }
export function hwTrend(s: u32): f64 { const sp = E.occupied(s); return sp ? load<f64>(sp, S_TREND) : NaN; }
export function hwAlpha(s: u32): f64 { const sp = E.occupied(s); return sp ? <f64>load<f32>(sp, S_ALPHA) : NaN; }
export function hwErrVar(s: u32): f64 { const sp = E.occupied(s); return sp ? <f64>load<f32>(sp, S_ERR_VAR) : NaN; }
export function hwObservations(s: u32): f64 { const sp = E.occupied(s); return sp ? <f64>load<u32>(sp, S_HW_N) : NaN; }
export function hwSeason(s: u32, i: u32): f64 {
  const sp = E.occupied(s);
  return sp && i < Params.seasonPoints ? decI16(load<u16>(sp + Slot.season + (<usize>i << 1))) : NaN;
}
export function todRate(s: u32, hour: u32): f64 {
  const sp = E.occupied(s);
  return sp && hour < 24 ? decU16(load<u16>(sp + S_TOD + (<usize>hour << 1))) : NaN;
}
export function featCount(s: u32): f64 { const sp = E.occupied(s); return sp ? <f64>load<u32>(sp, S_C_COUNT) : NaN; }
export function featInputTokens(s: u32): f64 { const sp = E.occupied(s); return sp ? load<f64>(sp, S_C_IN_TOK) : NaN; }
export function featOutputTokens(s: u32): f64 { const sp = E.occupied(s); return sp ? load<f64>(sp, S_C_OUT_TOK) : NaN; }
export function featDistinctIps(s: u32): f64 { const sp = E.occupied(s); return sp ? E.linearCount(load<u8>(sp, S_C_IP_ZEROS)) : NaN; }
export function featDistinctUas(s: u32): f64 { const sp = E.occupied(s); return sp ? E.linearCount(load<u8>(sp, S_C_UA_ZEROS)) : NaN; }
export function featCv(s: u32): f64 { const sp = E.occupied(s); return sp ? <f64>load<f32>(sp, S_C_CV) : NaN; }
export function featErrors(s: u32): f64 { const sp = E.occupied(s); return sp ? <f64>load<u32>(sp, S_C_ERRORS) : NaN; }
export function featThrottled(s: u32): f64 { const sp = E.occupied(s); return sp ? <f64>load<u32>(sp, S_C_THROTTLED) : NaN; }
// Cumulative per-user totals (closed buckets plus the open ones; see engine.ts userTotal).
export function userRequests(s: u32): f64 { return E.userTotal(s, 0); }
export function userInputTokens(s: u32): f64 { return E.userTotal(s, 1); }
export function userOutputTokens(s: u32): f64 { return E.userTotal(s, 2); }
/** Route histogram bin of the (open or last closed) bucket b, or -1 if the ring does not hold b. */
export function cellRouteBin(s: u32, b: u32, bin: u32): i32 {
  const cell = E.cellOf(s, b);
  return cell && bin < 8 ? <i32>load<u16>(cell + C_ROUTE + (<usize>bin << 1)) : -1;
}
export { fcConfigure, fcDenseCloses, fcCloses, fcTrainSteps, fcTrainLossSum, fcTrainBlockPtr, fcTrainBlockBytes, lstmForecast, fcMember } from "./fc-exports";
