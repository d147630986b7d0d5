// Forecaster 1: online additive damped-trend Holt-Winters (ETS(A,Ad,A), error-correction form)
// with a daily seasonal profile of P points (f32, linearly interpolated), a Trigg-Leach
// adaptive level smoothing rate and an exponentially weighted one-step error variance.
// All arithmetic is f64; values stored as f32 are rounded only when stored (the reference
// does the same with Math.fround).
import { Params } from "./params";
import { decI16, encI16 } from "./codec";
import {
  S_ALPHA, S_ERR_VAR, S_HW_N, S_LEVEL, S_SM_ABS, S_SM_ERR, S_TREND, Slot,
} from "./slot";

/** Interpolated seasonal value between points i0 and i1 with weight f on i1. */
// @ts-ignore: decorator
@inline function seasonAt(sp: usize, i0: u32, i1: u32, f: f64): f64 {
  const sa = sp + Slot.season;
  return (1.0 - f) * decI16(load<u16>(sa + (<usize>i0 << 1))) + f * decI16(load<u16>(sa + (<usize>i1 << 1)));
}

/** Feeds one closed bucket's rate y (req/s) whose season position is (i0, i1, f). */
export function hwUpdate(sp: usize, y: f64, i0: u32, i1: u32, f: f64): void {
  const n = load<u32>(sp, S_HW_N);
  if (n == 0) {
    // Initialisation from one observation: level = y, trend 0, season 0 (already zero).
    store<f64>(sp, y, S_LEVEL);
    store<f64>(sp, 0.0, S_TREND);
    store<u32>(sp, 1, S_HW_N);
    return;
  }
  const sa = sp + Slot.season;
  const p0 = sa + (<usize>i0 << 1);
  const p1 = sa + (<usize>i1 << 1);
  const s0 = decI16(load<u16>(p0));
  const s1 = decI16(load<u16>(p1));
  const level = load<f64>(sp, S_LEVEL);
  const trend = load<f64>(sp, S_TREND);
  const phi = Params.phi;
  const seas = (1.0 - f) * s0 + f * s1;
  const e = y - (level + phi * trend + seas);
  // Trigg-Leach tracking signal TS = E / M.
  const d = Params.tsSmoothing;
  const E = d * e + (1.0 - d) * <f64>load<f32>(sp, S_SM_ERR);
  const M = d * Math.abs(e) + (1.0 - d) * <f64>load<f32>(sp, S_SM_ABS);
  let a = <f64>load<f32>(sp, S_ALPHA);
  if (M > 0.0 && Math.abs(E) > Params.tsThreshold * M) a = a + (Params.alphaMax - a) * 0.5;
  else a = a + (Params.alpha - a) * Params.alphaDecay;
  store<f64>(sp, level + phi * trend + a * e, S_LEVEL);
  store<f64>(sp, phi * trend + Params.beta * e, S_TREND);
  const ge = Params.gamma * e;
  store<u16>(p0, <u16>encI16(s0 + ge * (1.0 - f)));
  store<u16>(p1, <u16>encI16(s1 + ge * f));
  const vs = Params.varSmoothing;
  store<f32>(sp, <f32>((1.0 - vs) * <f64>load<f32>(sp, S_ERR_VAR) + vs * e * e), S_ERR_VAR);
  store<f32>(sp, <f32>E, S_SM_ERR);
  store<f32>(sp, <f32>M, S_SM_ABS);
  store<f32>(sp, <f32>a, S_ALPHA);
  store<u32>(sp, n + 1, S_HW_N);
}

/** Point forecast (req/s, clipped at 0) with damped-trend sum phiSum and season position. */
export function hwForecastAt(sp: usize, phiSum: f64, i0: u32, i1: u32, f: f64): f64 {
  if (load<u32>(sp, S_HW_N) == 0) return 0.0;
  const v = load<f64>(sp, S_LEVEL) + phiSum * load<f64>(sp, S_TREND) + seasonAt(sp, i0, i1, f);
  return v > 0.0 ? v : 0.0;
}

/** Upper bound: forecast + z * sqrt(errVar * varMult), clipped at 0. */
export function hwUpperAt(sp: usize, phiSum: f64, varMult: f64, i0: u32, i1: u32, f: f64): f64 {
  if (load<u32>(sp, S_HW_N) == 0) return 0.0;
  const v = load<f64>(sp, S_LEVEL) + phiSum * load<f64>(sp, S_TREND) + seasonAt(sp, i0, i1, f);
  const u = v + Params.z * Math.sqrt(<f64>load<f32>(sp, S_ERR_VAR) * varMult);
  return u > 0.0 ? u : 0.0;
}

/** sum_{k=1..h} phi^k (loop, so the reference reproduces it bit for bit). */
export function phiSum(h: u32): f64 {
  let s = 0.0;
  let p = 1.0;
  for (let k: u32 = 1; k <= h; k++) {
    p *= Params.phi;
    s += p;
  }
  return s;
}

/** h-step variance multiplier 1 + alpha^2 (h - 1) (the ETS(A,N,N) form, used as an approximation). */
export function varMult(h: u32): f64 {
  return 1.0 + Params.alpha * Params.alpha * <f64>(h > 0 ? h - 1 : 0);
}
