// The per-bucket-close model hook and the forecast the tick writes. This is the extension point
// for more models (assembly/lstm.ts, assembly/ensemble.ts): add their update to
// modelsOnBucketClose and their combination to modelsRate/modelsUpper. Keep the TypeScript
// reference (src/engine/reference.ts, same function names) in step.
import { Params } from "./params";
import { hwForecastAt, hwUpdate, hwUpperAt } from "./hw";
import { Fc, fcExtBytes, fcOnClose, fcRangeStart, fcRate, fcThreadInit, fcTickEnd, fcTickShare, fcTickStart, fcUpper } from "./ensemble";
import { Lstm, lstmSampleRoomFor, lstmSamplesBytes } from "./lstm";

/** Bytes the models need after the slot's ring (Slot.ext) for P season points. */
export function modelsExtBytes(seasonPoints: u32): u32 {
  return Fc.enabled ? fcExtBytes(seasonPoints) : 0;
}

/** Bytes of tick scratch the models need (training samples), allocated once by init. */
export function modelsScratchBytes(capacity: u32): u64 {
  return Fc.enabled ? lstmSamplesBytes(lstmSampleRoomFor(Fc.trainPerBucket, capacity)) : 0;
}

/** Where init placed the models' tick scratch (for `capacity` users). */
export function modelsSetScratch(p: usize, capacity: u32): void {
  Lstm.samples = p;
  Lstm.room = lstmSampleRoomFor(Fc.trainPerBucket, capacity);
}

/** Points this instance's scratch at tick thread t's copies (once, before its first range). */
export function modelsThreadInit(t: u32): void {
  fcThreadInit(t);
}

/** Called once (main instance) at the start of a tick that closes buckets, before any modelsOnBucketClose. */
export function modelsTickStart(): void {
  if (Fc.enabled) fcTickStart();
}

/** Writes the models' live settings into the tick block (main instance, every tick). */
export function modelsTickShare(block: usize): void {
  fcTickShare(block);
}

/** Start of a tick range on any thread (live settings from the block, counters cleared). */
export function modelsRangeStart(block: usize, tickStart: u32, tracked: u32): void {
  fcRangeStart(block, tickStart, tracked);
}

/** This thread's bucket closes in its range, and those that ran the GRU. */
export function modelsRangeCloses(): u32 {
  return Fc.rangeCloses;
}
export function modelsRangeDenseCloses(): u32 {
  return Fc.rangeDenseCloses;
}

/** End of a tick that closed `buckets` buckets (main instance): counters summed over threads, training applied. */
export function modelsTickEnd(threads: u32, buckets: u32, closes: u32, denseCloses: u32): void {
  if (Fc.enabled) fcTickEnd(threads, buckets, closes, denseCloses);
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
