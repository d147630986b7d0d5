// Prometheus metrics of the processor, in one registry per process (so tests can run several
// processors in one process without clashes). Names carry the `foresight_` prefix and units.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

/** Prefix of every Foresight metric. */
export const METRIC_PREFIX = "foresight_";

/** Buckets of the tick duration histogram, seconds (0.1 ms to 2.5 s). */
export const TICK_DURATION_BUCKETS_SEC = [0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

/** The processor's metrics; `registry` is what /metrics serves. */
export class ProcessorMetrics {
  readonly registry: Registry;
  /** Events applied to an engine, per partition. */
  readonly eventsIn: Counter<"partition">;
  /** Telemetry frames (messages) consumed, per partition. */
  readonly framesIn: Counter<"partition">;
  /** Payload bytes consumed, per partition. */
  readonly bytesIn: Counter<"partition">;
  /** Frames that failed to decode, by reason (each is dead-lettered). */
  readonly badFrames: Counter<"reason">;
  /** Dead-letter publishes that failed (the bad frame is then only logged). */
  readonly deadLetterFailures: Counter;
  /** Events the engine refused as too late (older than its lateness allowance). */
  readonly lateEvents: Counter<"partition">;
  /** Events the engine refused as invalid (negative counts, zero user hash, bad time). */
  readonly invalidEvents: Counter<"partition">;
  /** Users evicted from an engine's table (capacity pressure or idleness). */
  readonly evictions: Counter<"partition">;
  /** Messages left in the stream for a partition after the last one consumed. */
  readonly consumerLag: Gauge<"partition">;
  /** Users currently tracked by a partition's engine. */
  readonly usersTracked: Gauge<"partition">;
  /** Seconds since a partition's last successful checkpoint. */
  readonly checkpointAge: Gauge<"partition">;
  /** Duration of one engine tick for one partition (run + forecast publish). */
  readonly tickDuration: Histogram;
  /** Forecast records published. */
  readonly forecastsOut: Counter<"partition">;
  /** Checkpoints written, by result (ok / error). */
  readonly checkpoints: Counter<"result">;
  /** Partitions this process owns now. */
  readonly ownedPartitions: Gauge;
  /** Partition leases acquired / lost / released. */
  readonly leaseChanges: Counter<"change">;
  /** Errors routed to the processor's error handler, by where they came from. */
  readonly errors: Counter<"source">;
  /** Source of last checkpoint times per partition (ms since the epoch), read at scrape time. */
  checkpointTimes: (() => Iterable<[partition: number, timeMs: number]>) | undefined;

  constructor(opts: { registry?: Registry; defaultMetrics?: boolean } = {}) {
    const registry = (this.registry = opts.registry ?? new Registry());
    if (opts.defaultMetrics) collectDefaultMetrics({ register: registry, prefix: METRIC_PREFIX });
    const p = METRIC_PREFIX;
    const r = [registry];
    this.eventsIn = new Counter({ name: `${p}events_in_total`, help: "Events applied to the engine.", labelNames: ["partition"], registers: r });
    this.framesIn = new Counter({ name: `${p}frames_in_total`, help: "Telemetry frames consumed.", labelNames: ["partition"], registers: r });
    this.bytesIn = new Counter({ name: `${p}bytes_in_total`, help: "Telemetry payload bytes consumed.", labelNames: ["partition"], registers: r });
    this.badFrames = new Counter({ name: `${p}bad_frames_total`, help: "Frames that failed to decode, by reason (dead-lettered).", labelNames: ["reason"], registers: r });
    this.deadLetterFailures = new Counter({ name: `${p}deadletter_failures_total`, help: "Dead-letter publishes that failed.", registers: r });
    this.lateEvents = new Counter({ name: `${p}late_events_total`, help: "Events refused by the engine as too late.", labelNames: ["partition"], registers: r });
    this.invalidEvents = new Counter({ name: `${p}invalid_events_total`, help: "Events refused by the engine as invalid.", labelNames: ["partition"], registers: r });
    this.evictions = new Counter({ name: `${p}evictions_total`, help: "Users evicted from the engine's table.", labelNames: ["partition"], registers: r });
    this.consumerLag = new Gauge({ name: `${p}consumer_lag_messages`, help: "Messages pending in the stream for the partition.", labelNames: ["partition"], registers: r });
    this.usersTracked = new Gauge({ name: `${p}users_tracked`, help: "Users tracked by the partition's engine.", labelNames: ["partition"], registers: r });
    const self = this;
    this.checkpointAge = new Gauge({
      name: `${p}checkpoint_age_seconds`,
      help: "Seconds since the partition's last checkpoint.",
      labelNames: ["partition"],
      registers: r,
      // Ages grow between checkpoints, so they are computed when scraped.
      collect() {
        const source = self.checkpointTimes;
        if (!source) return;
        this.reset();
        const now = Date.now();
        for (const [partition, timeMs] of source()) this.set({ partition: String(partition) }, (now - timeMs) / 1000);
      },
    });
    this.tickDuration = new Histogram({ name: `${p}tick_duration_seconds`, help: "Engine tick duration per partition, including forecast publish.", buckets: TICK_DURATION_BUCKETS_SEC, registers: r });
    this.forecastsOut = new Counter({ name: `${p}forecasts_out_total`, help: "Forecast records published.", labelNames: ["partition"], registers: r });
    this.checkpoints = new Counter({ name: `${p}checkpoints_total`, help: "Checkpoints written, by result.", labelNames: ["result"], registers: r });
    this.ownedPartitions = new Gauge({ name: `${p}owned_partitions`, help: "Partitions owned by this process.", registers: r });
    this.leaseChanges = new Counter({ name: `${p}lease_changes_total`, help: "Partition leases acquired, lost or released.", labelNames: ["change"], registers: r });
    this.errors = new Counter({ name: `${p}errors_total`, help: "Errors handled, by source.", labelNames: ["source"], registers: r });
  }
}
