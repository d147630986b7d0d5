// Recent per-user history for retraining, read back from the forecasts stream in JetStream: every
// forecast record carries the observed rate of the bucket its tick just closed, and the upper
// bound for `horizonBuckets` later, so the stream holds each user's counts and whether each bucket
// went above the bound made for it. (The forecasts stream's max age must cover the history wanted:
// `serve` raises it when retraining is on.)
import { DeliverPolicy, type JetStreamClient, type JetStreamManager } from "@nats-io/jetstream";
import { decodeForecastMessage, forecastRecords } from "../processor/forecasts.ts";
import type { UserHistory } from "./retrain.ts";

/** Options of {@link readHistory}. */
export interface HistoryOptions {
  /** Forecasts stream name. */
  stream: string;
  /** Engine bucket width, ms. */
  bucketWidthMs: number;
  /** Engine allowed lateness, ms (ticks close buckets that far behind their clock). */
  allowedLatenessMs: number;
  /** Engine horizon, buckets (the upper bound in a record is for the bucket this far ahead). */
  horizonBuckets: number;
  /** Buckets of history wanted (ending at the last closed bucket). */
  historyBuckets: number;
  /** Users kept: the busiest over the history. */
  maxUsers: number;
  /** Clock, ms. Default Date.now. */
  nowMs?: number;
}

interface Acc {
  counts: Map<number, number>;
  uppers: Map<number, number>;
  total: number;
}

/** Reads the forecasts stream's last `historyBuckets` buckets into per-user histories. */
export async function readHistory(js: JetStreamClient, jsm: JetStreamManager, o: HistoryOptions): Promise<{ users: UserHistory[]; firstBucket: number; buckets: number; messages: number }> {
  const now = o.nowMs ?? Date.now();
  const widthSec = o.bucketWidthMs / 1000;
  const startMs = now - (o.historyBuckets + o.horizonBuckets + 2) * o.bucketWidthMs - o.allowedLatenessMs;
  const info = await jsm.streams.info(o.stream);
  const lastSeq = info.state.last_seq;
  const acc = new Map<string, Acc>();
  let messages = 0;
  let maxBucket = -1;
  if (info.state.messages > 0) {
    const consumer = await js.consumers.get(o.stream, { deliver_policy: DeliverPolicy.StartTime, opt_start_time: new Date(Math.max(0, startMs)).toISOString() });
    for (;;) {
      const batch = await consumer.fetch({ max_messages: 512, expires: 2000 });
      let got = 0;
      let done = false;
      for await (const m of batch) {
        got++;
        messages++;
        try {
          const msg = decodeForecastMessage(m.data);
          const closed = Math.floor((msg.tickTimeMs - o.allowedLatenessMs) / o.bucketWidthMs) - 1;
          maxBucket = Math.max(maxBucket, closed);
          for (const r of forecastRecords(msg)) {
            const key = `${r.userHashLo}:${r.userHashHi}`;
            let a = acc.get(key);
            if (!a) acc.set(key, (a = { counts: new Map(), uppers: new Map(), total: 0 }));
            // Several ticks may report the same closed bucket: the first report is kept.
            if (!a.counts.has(closed)) {
              const c = Math.round(r.observedPerSec * widthSec);
              a.counts.set(closed, c);
              a.total += c;
            }
            a.uppers.set(closed + o.horizonBuckets, r.upperPerSec * widthSec);
          }
        } catch {
          /* a message that does not decode is skipped: history is best effort */
        }
        if (m.seq >= lastSeq) done = true;
      }
      if (done || got === 0) break;
    }
  }
  const buckets = o.historyBuckets;
  const firstBucket = maxBucket - buckets + 1;
  const users: UserHistory[] = [...acc.entries()]
    .sort((a, b) => b[1].total - a[1].total || (a[0] < b[0] ? -1 : 1))
    .slice(0, o.maxUsers)
    .map(([key, a]) => {
      const counts = new Float64Array(buckets);
      const exceeded = new Uint8Array(buckets);
      for (let i = 0; i < buckets; i++) {
        const b = firstBucket + i;
        counts[i] = a.counts.get(b) ?? 0;
        const u = a.uppers.get(b);
        if (u !== undefined && counts[i] > u) exceeded[i] = 1;
      }
      return { key, counts, exceeded };
    });
  return { users, firstBucket, buckets, messages };
}
