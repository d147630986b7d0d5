// The model update schedule: retrain the shared LSTM-lite weights from the recent history in
// JetStream, score candidate and live weights on a held-out recent slice, store the candidate in
// the registry either way (with the verdict), and promote a winner by writing
// `engine.lstm.modelVersion` to the central config (compare-and-set), which running processors
// apply live. Rollback is one config change: set modelVersion to an older version.
import { readFileSync } from "node:fs";
import type { NatsConnection } from "@nats-io/transport-node";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { Logger } from "pino";
import type { ConfigStore } from "../config/store.ts";
import type { ForesightConfig } from "../config/index.ts";
import { LstmWeights } from "../forecast/lstm.ts";
import { readHistory } from "./history.ts";
import { decidePromotion, holdoutError, trainCandidate } from "./retrain.ts";
import type { ModelMeta, ModelRegistry } from "./registry.ts";

/** What one retraining run did. */
export interface RetrainReport {
  liveVersion: string;
  candidate: ModelMeta;
  promoted: boolean;
  reason: string;
  users: number;
  buckets: number;
  sequences: number;
  trainLoss: number;
  candidateError: number;
  liveError: number;
  elapsedMs: number;
  /** Config revision written when promoted. */
  configRevision?: number;
}

/** Not enough history to train or score. */
export class InsufficientHistoryError extends Error {
  override name = "InsufficientHistoryError";
}

/** Options of {@link ModelUpdater}. */
export interface ModelUpdaterOptions {
  nc: NatsConnection;
  registry: ModelRegistry;
  config: ConfigStore;
  /** Forecasts stream name (where the history is read). */
  forecastsStream: string;
  log: Logger;
}

/** Weights the engines run under `cfg` ("built-in" = LstmWeights.init(1), as the engine does). */
export async function liveWeights(cfg: ForesightConfig, registry: ModelRegistry): Promise<{ version: string; bytes: Uint8Array }> {
  const l = cfg.engine.lstm;
  if (l.modelVersion) return { version: l.modelVersion, bytes: await registry.get(l.modelVersion) };
  if (l.weightsFile) return { version: `file:${l.weightsFile}`, bytes: new Uint8Array(readFileSync(l.weightsFile)) };
  return { version: "built-in", bytes: LstmWeights.init(1).toBytes() };
}

/** Runs retraining once or on the configured schedule. */
export class ModelUpdater {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> | undefined;

  constructor(private readonly o: ModelUpdaterOptions) {}

  /** One retraining run against the stored config. */
  async runOnce(nowMs = Date.now()): Promise<RetrainReport> {
    const started = performance.now();
    const stored = await this.o.config.get();
    const cfg = stored.config;
    const r = cfg.engine.lstm.retrain;
    const live = await liveWeights(cfg, this.o.registry);
    const js = jetstream(this.o.nc);
    const jsm = await jetstreamManager(this.o.nc);
    const hist = await readHistory(js, jsm, {
      stream: this.o.forecastsStream,
      bucketWidthMs: cfg.engine.bucketWidthMs,
      allowedLatenessMs: cfg.engine.allowedLatenessMs,
      horizonBuckets: cfg.engine.horizonBuckets,
      historyBuckets: r.historyBuckets,
      maxUsers: r.maxUsers,
      nowMs,
    });
    const active = hist.users.filter((u) => u.counts.some((c) => c > 0));
    if (active.length === 0) throw new InsufficientHistoryError(`no user has history in ${this.o.forecastsStream} over the last ${r.historyBuckets} buckets (${hist.messages} messages read)`);
    const seasonBuckets = Math.max(1, Math.round(86_400_000 / cfg.engine.bucketWidthMs));
    const opts = { holdoutBuckets: r.holdoutBuckets, exceedanceWeight: r.exceedanceWeight, epochs: r.epochs, seasonBuckets };
    let cand;
    try {
      cand = trainCandidate(live.bytes, active, opts);
    } catch (err) {
      throw new InsufficientHistoryError((err as Error).message, { cause: err });
    }
    const candidateError = holdoutError(cand.weights, active, opts);
    const liveError = holdoutError(live.bytes, active, opts);
    const d = decidePromotion(candidateError, liveError, r.minImprovement);
    const meta = await this.o.registry.put(cand.weights, {
      source: "retrain",
      parent: live.version,
      trainLoss: cand.trainLoss,
      holdoutError: candidateError,
      liveHoldoutError: liveError,
      promoted: d.promote,
      note: d.reason,
    });
    let configRevision: number | undefined;
    if (d.promote) {
      // Compare-and-set on the revision read above: a concurrent config change wins, and this
      // promotion is reported as not applied rather than overwriting it.
      const doc = structuredClone(stored.document) as { engine?: { lstm?: Record<string, unknown> } };
      doc.engine ??= {};
      doc.engine.lstm ??= {};
      doc.engine.lstm.modelVersion = meta.version;
      configRevision = await this.o.config.set(doc as Record<string, unknown>, stored.revision);
    }
    const report: RetrainReport = {
      liveVersion: live.version,
      candidate: meta,
      promoted: d.promote,
      reason: d.reason,
      users: active.length,
      buckets: hist.buckets,
      sequences: cand.sequences,
      trainLoss: cand.trainLoss,
      candidateError,
      liveError,
      elapsedMs: performance.now() - started,
      configRevision,
    };
    this.o.log.info({ ...report, candidate: meta.version }, d.promote ? "model promoted" : "candidate kept, not promoted");
    return report;
  }

  /** Runs every `intervalMs` (0 = never) until {@link stop}; failures are logged, the schedule goes on. */
  start(intervalMs: number): void {
    this.stopTimer();
    if (intervalMs <= 0) return;
    this.timer = setInterval(() => {
      if (this.running) return;
      this.running = this.runOnce()
        .catch((err: Error) => this.o.log.warn({ err: err.message, name: err.name }, "retraining failed; the live model stays"))
        .finally(() => (this.running = undefined));
    }, intervalMs);
    this.timer.unref();
  }

  private stopTimer(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  async stop(): Promise<void> {
    this.stopTimer();
    await this.running;
  }
}
