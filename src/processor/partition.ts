// One owned partition: an ordered pull consumer on `<prefix>.telemetry.<n>` starting right after
// the checkpoint's last applied sequence, frames decoded zero-copy and their records staged into
// one buffer so many frames reach the engine in one call, bad frames dead-lettered with a reason
// (the good frames beside them are applied), forecasts published at every tick.
//
// Ordered consumers are ephemeral, ack-none and re-create themselves from the last stream
// sequence seen after a gap or a lost server, so with the checkpoint as the source of truth every
// event is applied exactly once across restarts and reconnects.
import { DeliverPolicy, type Consumer, type JetStreamClient, type JsMsg, type ConsumerMessages } from "@nats-io/jetstream";
import { headers, type NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "pino";
import { EVENT_RECORD_BYTES } from "../wire/layout.ts";
import { BadFrameError, decodeFrame, DEAD_LETTER_DETAIL_HEADER, DEAD_LETTER_REASON_HEADER, deadLetterHeaderValues } from "../telemetry/frame.ts";
import type { ProcessorMetrics } from "../obs/metrics.ts";
import type { PartitionEngine, PartitionEngineStats } from "./engine-port.ts";
import { encodeForecastMessages } from "./forecasts.ts";
import type { ProcessorNames } from "./names.ts";

/** Default messages per pull request of the consumer. */
export const DEFAULT_BATCH_MAX_MESSAGES = 512;
/** Default records staged before one engine call (also bounded by the engine's ingress capacity). */
export const DEFAULT_STAGING_RECORDS = 16_384;
/**
 * Default lifetime of one pull request, ms. The server sends idle heartbeats every half of it and
 * a consumer that misses two re-creates itself, so this bounds how long a lost consumer (its
 * server died) goes unnoticed.
 */
export const DEFAULT_PULL_EXPIRES_MS = 4_000;
/**
 * A partition that received nothing for this long gets its consumer checked (ms); a consumer
 * that is gone, does not answer, or has messages pending but delivers none is re-opened.
 */
export const DEFAULT_STALL_CHECK_MS = 8_000;
/** Wait before re-opening a consumer that ended unexpectedly, ms. */
export const REOPEN_DELAY_MS = 1_000;
/**
 * Longest stop() waits for the consumer to report it closed, ms. A consumer whose server died can
 * stay silent; without a bound, the lease loop that stops a lost partition would wait forever.
 */
export const CONSUMER_CLOSE_TIMEOUT_MS = 5_000;
/** Header of a dead letter naming the original subject. */
export const DEAD_LETTER_SUBJECT_HEADER = "Foresight-Original-Subject";
/** Header of a dead letter naming the original stream sequence. */
export const DEAD_LETTER_SEQ_HEADER = "Foresight-Original-Seq";

/** Everything a partition worker needs. */
export interface PartitionWorkerDeps {
  partition: number;
  nc: NatsConnection;
  js: JetStreamClient;
  names: ProcessorNames;
  engine: PartitionEngine;
  /** Stream sequence of the last event already in the engine (from the checkpoint); 0 = none. */
  lastSeq: number;
  metrics: ProcessorMetrics;
  log: Logger;
  /** Messages per pull. Default {@link DEFAULT_BATCH_MAX_MESSAGES}. */
  batchMaxMessages?: number;
  /** Silence after which the consumer is checked, ms. Default {@link DEFAULT_STALL_CHECK_MS}. */
  stallCheckMs?: number;
  /** Pull request lifetime, ms. Default {@link DEFAULT_PULL_EXPIRES_MS}. */
  pullExpiresMs?: number;
  /** Records staged per engine call. Default {@link DEFAULT_STAGING_RECORDS}. */
  stagingRecords?: number;
  /** Max forecast message payload, bytes (the server's max_payload bounds it). */
  maxPayloadBytes: number;
  /** Error sink (never throws). */
  onError: (err: unknown, source: string) => void;
  /** Called after records reached the engine (benchmarks measure latency here). */
  onApplied?: (partition: number, records: Uint8Array, count: number) => void;
  /** Called with every tick's forecast records after they were published (the allocator's demand partials). */
  onForecasts?: (partition: number, tickTimeMs: number, records: Uint8Array, count: number) => void;
}

/** Consumes one partition into its engine. */
export class PartitionWorker {
  readonly partition: number;
  /** The partition's engine (replaced, state and all, by {@link reconfigureEngine}). */
  engine: PartitionEngine;
  /** Sequence of the last message whose events are in the engine. */
  lastAppliedSeq: number;
  /** Messages still in the stream after the last one consumed (from the delivery info). */
  lag = 0;
  /** Wall time of the last successful checkpoint, ms (0 = none yet). */
  lastCheckpointMs = 0;
  private stagedSeq: number;
  private staging: Uint8Array;
  /** True when `staging` is the engine's own ingress buffer (zero-copy path). */
  private readonly direct: boolean;
  private stagingCapacity: number;
  private stagedRecords = 0;
  private stagedFrames = 0;
  private stagedBytes = 0;
  private flushScheduled = false;
  private messages: ConsumerMessages | undefined;
  private stopped = false;
  private stopping = false;
  private consumer: Consumer | undefined;
  private lastMessageMs = Date.now();
  private watchdog: NodeJS.Timeout | undefined;
  private checking = false;
  private lastStats: PartitionEngineStats;
  private readonly label: { partition: string };
  private readonly log: Logger;

  constructor(private readonly d: PartitionWorkerDeps) {
    this.partition = d.partition;
    this.engine = d.engine;
    this.lastAppliedSeq = this.stagedSeq = d.lastSeq;
    this.stagingCapacity = Math.max(1, Math.min(d.stagingRecords ?? DEFAULT_STAGING_RECORDS, d.engine.ingressCapacityRecords));
    this.direct = typeof d.engine.ingressBytes === "function" && typeof d.engine.ingestStaged === "function";
    if (this.direct) this.stagingCapacity = d.engine.ingressCapacityRecords;
    this.staging = this.direct ? d.engine.ingressBytes!() : new Uint8Array(this.stagingCapacity * EVENT_RECORD_BYTES);
    this.label = { partition: String(d.partition) };
    this.log = d.log.child({ partition: d.partition });
    this.lastStats = d.engine.stats();
  }

  /** Starts consuming at lastSeq + 1. */
  async start(): Promise<void> {
    await this.openConsumer();
    const every = this.d.stallCheckMs ?? DEFAULT_STALL_CHECK_MS;
    this.watchdog = setInterval(() => void this.checkStall(every), every);
    this.watchdog.unref();
  }

  // The client notices a lost consumer through missed heartbeats, but a consumer whose server
  // died during a reconnect can stay silent; this check catches that case. Never throws.
  private async checkStall(silenceMs: number): Promise<void> {
    if (this.stopping || this.checking || !this.consumer || !this.messages) return;
    if (Date.now() - this.lastMessageMs < silenceMs) return;
    this.checking = true;
    const consumer = this.consumer;
    try {
      let reason: string | undefined;
      try {
        const info = await consumer.info(false);
        if (info.num_pending > 0) reason = `${info.num_pending} messages pending but none delivered for ${silenceMs} ms`;
      } catch (err) {
        reason = `consumer info failed: ${(err as Error).message}`;
      }
      if (reason && !this.stopping && consumer === this.consumer) {
        this.log.warn({ reason }, "consumer stalled: re-opening");
        const messages = this.messages;
        this.messages = undefined;
        messages?.stop();
        this.scheduleReopen();
      }
    } catch (err) {
      this.d.onError(err, "stall-check");
    } finally {
      this.checking = false;
    }
  }

  private async openConsumer(): Promise<void> {
    const { js, names, partition } = this.d;
    const startSeq = this.lastAppliedSeq + 1;
    const consumer = await js.consumers.get(names.telemetryStream, {
      // A single string becomes `filter_subject`, which nats-server 2.9 understands (filter_subjects needs 2.10).
      filter_subjects: names.telemetrySubject(partition),
      ...(this.lastAppliedSeq > 0 ? { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: startSeq } : { deliver_policy: DeliverPolicy.All }),
    });
    const messages = await consumer.consume({
      max_messages: this.d.batchMaxMessages ?? DEFAULT_BATCH_MAX_MESSAGES,
      expires: this.d.pullExpiresMs ?? DEFAULT_PULL_EXPIRES_MS,
      callback: (m) => this.onMessage(m),
    });
    if (this.stopping) {
      // stop() ran while this (re-)open was in flight.
      messages.stop();
      return;
    }
    this.messages = messages;
    this.consumer = consumer;
    this.lastMessageMs = Date.now();
    void this.watchStatus(messages);
    void messages.closed().then(
      (err) => this.onConsumerClosed(messages, err),
      (err) => this.onConsumerClosed(messages, err),
    );
    this.log.info({ startSeq }, "partition consuming");
  }

  // The ordered consumer re-creates itself after gaps and lost servers, but gives up after many
  // failed re-creations (a long cluster outage). Then it is opened again here, from the last
  // applied sequence, until the worker is stopped.
  private onConsumerClosed(messages: ConsumerMessages, err: unknown): void {
    if (this.stopping || messages !== this.messages) return;
    this.messages = undefined;
    this.log.warn({ err }, "consumer ended unexpectedly: re-opening");
    this.scheduleReopen();
  }

  /** Applies what is staged (so lastAppliedSeq is exact), then re-opens from lastAppliedSeq + 1 (retrying). */
  private scheduleReopen(): void {
    try {
      this.flush();
    } catch (e) {
      this.d.onError(e, "ingest");
    }
    const retry = (): void => {
      if (this.stopping) return;
      this.openConsumer().catch((e) => {
        this.d.onError(e, "consumer-reopen");
        setTimeout(retry, REOPEN_DELAY_MS).unref();
      });
    };
    setTimeout(retry, REOPEN_DELAY_MS).unref();
  }

  private async watchStatus(messages: ConsumerMessages): Promise<void> {
    try {
      for await (const s of messages.status()) {
        if (s.type === "debug" || s.type === "next") continue;
        this.log.debug({ status: s }, "consumer status");
      }
    } catch (err) {
      this.d.onError(err, "consumer-status");
    }
  }

  // Called by the client for every message; must not throw (a throw would stop the consumer).
  private onMessage(m: JsMsg): void {
    if (this.stopped) return;
    try {
      this.lastMessageMs = Date.now();
      const seq = m.info.streamSequence;
      if (seq <= this.stagedSeq) return; // already applied (cannot happen with an ordered consumer; cheap guard)
      this.lag = m.info.pending;
      const data = m.data;
      this.stagedFrames++;
      this.stagedBytes += data.length;
      let frame;
      try {
        frame = decodeFrame(data);
      } catch (err) {
        if (!(err instanceof BadFrameError)) throw err;
        this.deadLetter(m, err);
        this.stagedSeq = seq;
        this.scheduleFlush();
        return;
      }
      this.stage(frame.records, frame.count);
      this.stagedSeq = seq;
      this.scheduleFlush();
    } catch (err) {
      this.d.onError(err, "consume");
    }
  }

  private stage(records: Uint8Array, count: number): void {
    // Common case: the whole frame fits; copy it without making a sub-view first.
    if (count <= this.stagingCapacity - this.stagedRecords) {
      this.staging.set(records, this.stagedRecords * EVENT_RECORD_BYTES);
      this.stagedRecords += count;
      return;
    }
    let done = 0;
    while (done < count) {
      if (this.stagedRecords === this.stagingCapacity) this.flushRecords();
      const n = Math.min(count - done, this.stagingCapacity - this.stagedRecords);
      this.staging.set(records.subarray(done * EVENT_RECORD_BYTES, (done + n) * EVENT_RECORD_BYTES), this.stagedRecords * EVENT_RECORD_BYTES);
      this.stagedRecords += n;
      done += n;
    }
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    // Everything delivered in this I/O turn goes to the engine in one call.
    setImmediate(() => {
      this.flushScheduled = false;
      try {
        this.flush();
      } catch (err) {
        this.d.onError(err, "ingest");
      }
    });
  }

  private flushRecords(): void {
    const n = this.stagedRecords;
    if (n === 0) return;
    const records = this.staging.subarray(0, n * EVENT_RECORD_BYTES);
    if (this.direct) this.engine.ingestStaged!(n);
    else this.engine.ingest(records, n);
    this.stagedRecords = 0;
    this.d.metrics.eventsIn.inc(this.label, n);
    this.d.onApplied?.(this.partition, records, n);
    // The engine's memory may have grown (and moved): take a fresh view for the next batch.
    if (this.direct) this.staging = this.engine.ingressBytes!();
  }

  /** Applies everything staged; afterwards lastAppliedSeq covers every message received. */
  flush(): void {
    this.flushRecords();
    if (this.stagedFrames) {
      this.d.metrics.framesIn.inc(this.label, this.stagedFrames);
      this.d.metrics.bytesIn.inc(this.label, this.stagedBytes);
      this.stagedFrames = this.stagedBytes = 0;
    }
    this.lastAppliedSeq = this.stagedSeq;
  }

  private deadLetter(m: JsMsg, err: BadFrameError): void {
    const { reason, detail } = deadLetterHeaderValues(err);
    this.d.metrics.badFrames.inc({ reason });
    const h = headers();
    h.set(DEAD_LETTER_REASON_HEADER, reason);
    h.set(DEAD_LETTER_DETAIL_HEADER, detail);
    h.set(DEAD_LETTER_SUBJECT_HEADER, m.subject);
    h.set(DEAD_LETTER_SEQ_HEADER, String(m.info.streamSequence));
    this.log.warn({ reason, detail, seq: m.info.streamSequence }, "bad frame dead-lettered");
    // The msgID makes a re-delivery after a restart (before the next checkpoint) a duplicate.
    this.d.js
      .publish(this.d.names.deadLetterSubject(this.partition), m.data, { headers: h, msgID: `${m.info.stream}:${m.info.streamSequence}` })
      .catch((e) => {
        this.d.metrics.deadLetterFailures.inc();
        this.d.onError(e, "deadletter");
      });
  }

  /** Applies what is staged, runs the engine's tick and publishes its forecasts; returns their count. */
  tick(nowMs: number): number {
    const t0 = performance.now();
    this.flush();
    this.engine.tick(nowMs);
    const { records, count } = this.engine.forecasts();
    for (const msg of encodeForecastMessages(this.partition, nowMs, records, count, this.d.maxPayloadBytes)) {
      this.d.nc.publish(this.d.names.forecastsSubject(this.partition), msg);
    }
    this.d.metrics.forecastsOut.inc(this.label, count);
    if (this.d.onForecasts) {
      try {
        this.d.onForecasts(this.partition, nowMs, records, count);
      } catch (err) {
        this.d.onError(err, "on-forecasts");
      }
    }
    this.updateStats();
    this.d.metrics.tickDuration.observe((performance.now() - t0) / 1000);
    return count;
  }

  private updateStats(): void {
    const s = this.engine.stats();
    const m = this.d.metrics;
    const prev = this.lastStats;
    if (s.lateEvents > prev.lateEvents) m.lateEvents.inc(this.label, s.lateEvents - prev.lateEvents);
    if (s.invalidEvents > prev.invalidEvents) m.invalidEvents.inc(this.label, s.invalidEvents - prev.invalidEvents);
    if (s.evictions > prev.evictions) m.evictions.inc(this.label, s.evictions - prev.evictions);
    m.usersTracked.set(this.label, s.usersTracked);
    m.consumerLag.set(this.label, this.lag);
    this.lastStats = s;
  }

  /**
   * Moves the partition onto an engine with changed live options without losing state: the new
   * engine is built first; then, in one synchronous step, what is staged is applied to the old one
   * and its state moves over, so no event is applied twice or lost. False when the engine cannot
   * be reconfigured (or the worker is stopping).
   */
  /** Swaps the model weights between batches (staged records go in first); false when unsupported. */
  setLstmWeights(bytes: Uint8Array): boolean {
    if (!this.engine.setLstmWeights || this.stopping) return false;
    this.flush();
    this.engine.setLstmWeights(bytes);
    return true;
  }

  async reconfigureEngine(options: Record<string, unknown>): Promise<boolean> {
    if (!this.engine.reconfigure || this.stopping) return false;
    const adopt = await this.engine.reconfigure(options);
    if (this.stopping) return false;
    this.flush();
    const old = this.engine;
    this.engine = adopt();
    if (this.direct) this.staging = this.engine.ingressBytes!();
    this.lastStats = this.engine.stats();
    old.dispose?.();
    return true;
  }

  /** Flushes and captures the state to checkpoint (synchronous, so state and sequence agree). */
  captureState(): { lastSeq: number; engineState: Uint8Array } {
    this.flush();
    return { lastSeq: this.lastAppliedSeq, engineState: this.engine.snapshot() };
  }

  /** Stops consuming and waits until no more messages arrive; then applies what was staged. */
  async stop(): Promise<void> {
    this.stopping = true;
    if (this.watchdog) clearInterval(this.watchdog);
    const messages = this.messages;
    this.messages = undefined;
    if (messages) {
      messages.stop();
      let timer: NodeJS.Timeout | undefined;
      const closed = await Promise.race([
        messages.closed().then(
          () => true,
          () => true, // a consumer that ended with an error is stopped all the same
        ),
        new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), CONSUMER_CLOSE_TIMEOUT_MS))),
      ]);
      clearTimeout(timer);
      if (!closed) this.log.warn({ timeoutMs: CONSUMER_CLOSE_TIMEOUT_MS }, "consumer did not report closing: stopped without it");
    }
    // After this, late callbacks are ignored, so lastAppliedSeq is final.
    this.stopped = true;
    this.flush();
    this.d.metrics.consumerLag.remove(this.label);
    this.d.metrics.usersTracked.remove(this.label);
  }

  /** True once {@link stop} finished. */
  get isStopped(): boolean {
    return this.stopped;
  }
}
