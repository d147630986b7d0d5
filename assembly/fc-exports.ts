// Exports of LSTM-lite and the ensemble (scalars only), re-exported by assembly/index.ts.
import { G, Params } from "./params";
import { occupied } from "./engine";
import { Fc, fcConfigure } from "./ensemble";
import { lastCount, lstmForecastCount, median3Count, profileForecastCount, seasonalLastCount, slotMedian3Count, TRAIN_BLOCK, TRAIN_BLOCK_BYTES } from "./lstm";

export { fcConfigure };
/** Online training steps taken so far, and the sum of their absolute errors (log space). */
export function fcTrainSteps(): f64 { return Fc.trainSteps; }
export function fcTrainLossSum(): f64 { return Fc.trainLossSum; }
/** Bucket closes of the last tick that closed buckets: those that ran the GRU (dense tier), and all. */
export function fcDenseCloses(): u32 { return Fc.denseCloses; }
export function fcCloses(): u32 { return Fc.closes; }
/** The shared training block (weights, Adam moments, step count): address and size in bytes. */
export function fcTrainBlockPtr(): usize { return TRAIN_BLOCK; }
export function fcTrainBlockBytes(): u32 { return <u32>TRAIN_BLOCK_BYTES; }
/** LSTM-lite forecast of the count h buckets after the last closed one (NaN: no such slot or disabled). */
export function lstmForecast(s: u32, h: u32): f64 {
  const sp = occupied(s);
  return sp && Fc.enabled ? lstmForecastCount(sp, h) : NaN;
}
/** Member j's current forecast of the count at the configured horizon: 0 naive, 1 median-3, 3 LSTM, 4 profile, 5 seasonal naive, 6 3-day slot median (2 = HW: use hwForecast). */
export function fcMember(s: u32, j: u32): f64 {
  const sp = occupied(s);
  if (!sp || !Fc.enabled) return NaN;
  if (j == 0) return lastCount(sp);
  if (j == 1) return median3Count(sp);
  if (j == 3) return lstmForecastCount(sp, Params.horizon);
  const target = G.closed - 1 + Params.horizon;
  const D = Params.periodBuckets;
  if (j == 5) return seasonalLastCount(sp, target % D, (target / D) % 3, D, Params.seasonPoints);
  if (j == 6) return slotMedian3Count(sp, target % D, D, Params.seasonPoints);
  if (j == 4) return profileForecastCount(sp, (G.closed - 1 + Params.horizon) % Params.periodBuckets, Params.periodBuckets, Params.seasonPoints);
  return NaN;
}
