// The per-bucket-close model hook and the forecast the tick writes. This is the extension point
// for more models (assembly/lstm.ts, assembly/ensemble.ts): add their update to
// modelsOnBucketClose and their combination to modelsRate/modelsUpper. Keep the TypeScript
// reference (src/engine/reference.ts, same function names) in step.
import { Params } from "./params";
import { hwForecastAt, hwUpdate, hwUpperAt } from "./hw";
import { Fc, fcExtBytes, fcOnClose, fcRate, fcTickStart, fcUpper } from "./ensemble";

/** Bytes the models need after the slot's ring (Slot.ext) for P season points. */
export function modelsExtBytes(seasonPoints: u32): u32 {
  return Fc.enabled ? fcExtBytes(seasonPoints) : 0;
}

/** Called once at the start of a tick that closes buckets, before any modelsOnBucketClose. */
export function modelsTickStart(): void {
  if (Fc.enabled) fcTickStart();
}

/**
 * Runs every model on one closed bucket of one user.
 * sp: slot address; c: the bucket closed; y: its rate in req/s (absent bucket = 0);
 * (i0, i1, f): its position in the daily season profile.
 */
export function modelsOnBucketClose(sp: usize, c: u32, y: f64, i0: u32, i1: u32, f: f64): void {
  hwUpdate(sp, y, i0, i1, f);
  if (Fc.enabled) fcOnClose(sp, c, y);
}

/** Forecast rate (req/s) at the configured horizon; (i0, i1, f) is the target bucket's position. */
export function modelsRate(sp: usize, i0: u32, i1: u32, f: f64): f64 {
  if (Fc.enabled) return fcRate(sp);
  return hwForecastAt(sp, Params.phiSumH, i0, i1, f);
}

/** Upper bound (req/s) at the configured horizon and quantile. */
export function modelsUpper(sp: usize, i0: u32, i1: u32, f: f64): f64 {
  if (Fc.enabled) return fcUpper(sp);
  return hwUpperAt(sp, Params.phiSumH, Params.varMultH, i0, i1, f);
}
