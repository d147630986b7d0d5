// Retraining the shared LSTM-lite weights from recent history, and the promotion test. Pure (no
// I/O): the updater feeds it the history it read from JetStream. A candidate continues training
// from the live weights on the history minus the held-out recent slice, with the windows around
// exceedances repeated `exceedanceWeight` times (the periods the live model got wrong count more);
// it is promoted only if its one-step error on the held-out slice beats the live weights' by
// `minImprovement`.
import { LstmWeights, LstmLiteModel, trainLstm, type TrainSequence } from "../forecast/lstm.ts";
import type { BucketContext } from "../forecast/models.ts";

/** One user's recent history, oldest bucket first. */
export interface UserHistory {
  key: string;
  /** Requests per bucket. */
  counts: Float64Array;
  /** 1 where the bucket's count was above the upper bound forecast for it. */
  exceeded: Uint8Array;
}

/** Options of {@link trainCandidate} and {@link holdoutError}. */
export interface RetrainOptions {
  /** Most recent buckets held out of training. */
  holdoutBuckets: number;
  /** Repetitions of the windows around exceedances (1 = no extra weight). */
  exceedanceWeight: number;
  /** Training passes. */
  epochs: number;
  /** Buckets per day of the history (the seasonal period). */
  seasonBuckets: number;
  /** Seed of the shuffling. Default 1. */
  seed?: number;
}

/** Buckets before / after an exceedance that its extra training window covers. */
const EXCEEDANCE_WINDOW_BEFORE = 24;
const EXCEEDANCE_WINDOW_AFTER = 6;

/** The training sequences: each user's history up to the holdout, plus the weighted exceedance windows. */
export function trainingSequences(hist: readonly UserHistory[], o: Pick<RetrainOptions, "holdoutBuckets" | "exceedanceWeight">): TrainSequence[] {
  const seqs: TrainSequence[] = [];
  for (const u of hist) {
    const end = u.counts.length - o.holdoutBuckets;
    if (end < 8) continue;
    seqs.push({ counts: u.counts.subarray(0, end) });
    if (o.exceedanceWeight <= 1) continue;
    let t = 0;
    while (t < end) {
      if (!u.exceeded[t]) {
        t++;
        continue;
      }
      // One window per run of exceedances less than EXCEEDANCE_WINDOW_AFTER buckets apart.
      const from = Math.max(0, t - EXCEEDANCE_WINDOW_BEFORE);
      let last = t;
      for (let j = t + 1; j < end && j <= last + EXCEEDANCE_WINDOW_AFTER; j++) if (u.exceeded[j]) last = j;
      const to = Math.min(end, last + EXCEEDANCE_WINDOW_AFTER + 1);
      for (let k = 1; k < o.exceedanceWeight; k++) seqs.push({ counts: u.counts.subarray(from, to) });
      t = to;
    }
  }
  return seqs;
}

/** Trains a candidate from `live` weights; returns its blob and the last epoch's loss. */
export function trainCandidate(live: Uint8Array, hist: readonly UserHistory[], o: RetrainOptions): { weights: Uint8Array; trainLoss: number; sequences: number } {
  const w = LstmWeights.fromBytes(live);
  const seqs = trainingSequences(hist, o);
  if (seqs.length === 0) throw new RangeError(`no user has more than ${o.holdoutBuckets + 8} buckets of history: nothing to train on`);
  const trainLoss = trainLstm(w, seqs, { epochs: o.epochs, seasonBuckets: o.seasonBuckets, seed: o.seed ?? 1 });
  return { weights: w.toBytes(), trainLoss, sequences: seqs.length };
}

/**
 * Mean one-step |log1p(forecast) − log1p(actual)| over the held-out slice of every user, the
 * model having observed each user's whole history before it (as a running engine would).
 */
export function holdoutError(weights: Uint8Array, hist: readonly UserHistory[], o: Pick<RetrainOptions, "holdoutBuckets" | "seasonBuckets">): number {
  const w = LstmWeights.fromBytes(weights);
  let sum = 0;
  let n = 0;
  const ctx: BucketContext = { index: 0, slotOfDay: 0, dayOfWeek: 0, iatCv: 0, tokensPerRequest: 0, throttledShare: 0 };
  for (const u of hist) {
    const T = u.counts.length;
    const start = T - o.holdoutBuckets;
    if (start < 1) continue;
    const m = new LstmLiteModel(w, o.seasonBuckets);
    for (let t = 0; t < T; t++) {
      if (t >= start) {
        sum += Math.abs(Math.log1p(m.forecast(1)) - Math.log1p(u.counts[t]));
        n++;
      }
      ctx.index = t;
      ctx.slotOfDay = t % o.seasonBuckets;
      ctx.dayOfWeek = Math.floor(t / o.seasonBuckets) % 7;
      m.observe(u.counts[t], ctx);
    }
  }
  return n ? sum / n : NaN;
}

/** The promotion decision. */
export interface PromotionDecision {
  promote: boolean;
  candidateError: number;
  liveError: number;
  reason: string;
}

/** Promote when the candidate's holdout error is at least `minImprovement` (relative) below the live one's. */
export function decidePromotion(candidateError: number, liveError: number, minImprovement: number): PromotionDecision {
  if (!Number.isFinite(candidateError)) return { promote: false, candidateError, liveError, reason: "candidate error is not finite" };
  const needed = liveError * (1 - minImprovement);
  const promote = candidateError <= needed;
  return {
    promote,
    candidateError,
    liveError,
    reason: promote
      ? `holdout error ${candidateError.toFixed(4)} <= ${needed.toFixed(4)} (live ${liveError.toFixed(4)} − ${(minImprovement * 100).toFixed(1)} %)`
      : `holdout error ${candidateError.toFixed(4)} does not beat live ${liveError.toFixed(4)} by ${(minImprovement * 100).toFixed(1)} %`,
  };
}
