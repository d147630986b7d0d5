// The processor (`foresight serve`): connects, ensures streams, takes partition leases, restores
// each owned partition from its checkpoint and consumes it into its own engine, ticks the engines
// and publishes forecasts, checkpoints periodically, and serves /metrics /healthz /readyz.
// Shutdown order: stop leasing/ticking/checkpointing → stop consuming → final tick and checkpoint
// per partition → release leases → drain NATS → close HTTP.
import { hostname } from "node:os";
import { randomBytes } from "node:crypto";
import { jetstream, jetstreamManager, type JetStreamClient } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "pino";
// Every default of a setting the config schema has comes from the schema (one source of truth).
import { DEFAULT_CHECKPOINT_INTERVAL_MS, DEFAULT_CONFIG, DEFAULT_LEASE_TTL_MS, DEFAULT_TICK_INTERVAL_MS } from "../config/schema.ts";
import { connectNats, type NatsConnectionSettings } from "../nats/connect.ts";
import { createLogger } from "../obs/logger.ts";
import { ProcessorMetrics } from "../obs/metrics.ts";
import { ObsServer, DEFAULT_HTTP_HOST, DEFAULT_HTTP_PORT, type CheckResult } from "../obs/http.ts";
import { DEFAULT_PARTITIONS } from "../telemetry/frame.ts";
import { CheckpointStore, type Checkpoint } from "./checkpoints.ts";
import type { PartitionEngineFactory } from "./engine-port.ts";
import { DEFAULT_FORECAST_MAX_PAYLOAD_BYTES } from "./forecasts.ts";
import { LeaseManager } from "./leases.ts";
import { processorNames, type ProcessorNameOverrides, type ProcessorNames } from "./names.ts";
import { PartitionWorker } from "./partition.ts";
import { PeriodicTask } from "./periodic.ts";
import { ensureStreams, type StreamSettings } from "./streams.ts";

/** Longest one checkpoint or lease round may take before it is reported as stuck, ms. */
export const DEFAULT_TASK_TIMEOUT_MS = 30_000;

/** Options of {@link Processor.start}. */
export interface ProcessorOptions {
  /** NATS connection settings. Default: nats://127.0.0.1:4222. */
  nats?: NatsConnectionSettings;
  /** Subject prefix. Default "foresight". */
  prefix?: string;
  /** Explicit stream and bucket names (config `nats.streams`, `nats.kv.leasesBucket`, `nats.objectStore.checkpoints`). Default: derived from the prefix. */
  names?: ProcessorNameOverrides;
  /** Number of partitions P (must match the publishers'). Default 8 (DEFAULT_PARTITIONS). */
  partitions?: number;
  /** Stream limits and replicas. */
  streams?: StreamSettings;
  /** Total users tracked over all partitions; each engine gets ceil(capacityUsers / P). Default: the schema's `engine.capacityUsers`. */
  capacityUsers?: number;
  /** Makes one partition's engine (the WASM engine adapter in production). */
  engineFactory: PartitionEngineFactory;
  /** Engine tick interval, ms. Default {@link DEFAULT_TICK_INTERVAL_MS}. */
  tickIntervalMs?: number;
  /** Checkpoint interval, ms. Default {@link DEFAULT_CHECKPOINT_INTERVAL_MS}. */
  checkpointIntervalMs?: number;
  /** Lease TTL, ms; leases are renewed every TTL/3. Default {@link DEFAULT_LEASE_TTL_MS}. */
  leaseTtlMs?: number;
  /** This process's id in leases and checkpoints. Default `<hostname>-<pid>-<random>`. */
  processId?: string;
  /** Messages per consumer pull. Default 512. */
  batchMaxMessages?: number;
  /** HTTP port for /metrics /healthz /readyz; 0 = a free port; -1 = no HTTP server. Default 9464. */
  httpPort?: number;
  /** HTTP bind address. Default "0.0.0.0". */
  httpHost?: string;
  /** Clock for engine ticks, ms since the epoch (tests drive time with it). Default Date.now. */
  clock?: () => number;
  /** Logger. Default: pino at level info on stdout. */
  log?: Logger;
  /** Called after records reached an engine (benchmarks). */
  onApplied?: (partition: number, records: Uint8Array, count: number) => void;
  /** Called with each partition's forecast records at every tick, after they were published (the allocator's demand partials; see src/allocator/kube/partials.ts). */
  onForecasts?: (partition: number, tickTimeMs: number, records: Uint8Array, count: number) => void;
}

/** Processor state for readiness. */
interface State {
  connected: boolean;
  streamsEnsured: boolean;
  leasesRound: boolean;
  stopping: boolean;
}

/** A running processor. */
export class Processor {
  readonly names: ProcessorNames;
  readonly metrics: ProcessorMetrics;
  readonly log: Logger;
  readonly processId: string;
  /** Bound HTTP port (0 when disabled). */
  httpPort = 0;
  private readonly workers = new Map<number, PartitionWorker>();
  /** Live engine options applied since start (also given to engines of partitions acquired later). */
  private engineLive: Record<string, unknown> | undefined;
  private model: { version: string; weights: Uint8Array } | undefined;
  /** Partitions being started (restored) but not yet consuming. */
  private readonly starting = new Set<number>();
  /** Per-partition chain of checkpoint writes, so they land in the order they were taken. */
  private readonly saveChains = new Map<number, Promise<void>>();
  private readonly state: State = { connected: false, streamsEnsured: false, leasesRound: false, stopping: false };
  private nc!: NatsConnection;
  private js!: JetStreamClient;
  private leases!: LeaseManager;
  private checkpoints!: CheckpointStore;
  private http: ObsServer | undefined;
  private tasks: PeriodicTask[] = [];
  private stopPromise: Promise<void> | undefined;
  private readonly clock: () => number;
  private readonly P: number;

  private constructor(private readonly opts: ProcessorOptions) {
    this.names = processorNames(opts.prefix, opts.names);
    this.P = opts.partitions ?? DEFAULT_PARTITIONS;
    if (!Number.isInteger(this.P) || this.P < 1 || this.P > 65535) throw new RangeError(`partitions must be an integer in 1..65535, got ${opts.partitions}`);
    this.metrics = new ProcessorMetrics({ defaultMetrics: true });
    this.log = opts.log ?? createLogger({ name: "processor" });
    this.processId = opts.processId ?? `${hostname()}-${process.pid}-${randomBytes(3).toString("hex")}`;
    this.clock = opts.clock ?? Date.now;
  }

  /** Connects, sets everything up and starts consuming; resolves once the first lease round ran. */
  static async start(opts: ProcessorOptions): Promise<Processor> {
    const p = new Processor(opts);
    try {
      await p.init();
    } catch (err) {
      await p.stop().catch(() => undefined);
      throw err;
    }
    return p;
  }

  /** Routes an error to the log and the error counter; never throws. */
  private readonly onError = (err: unknown, source: string): void => {
    try {
      this.metrics.errors.inc({ source });
      this.log.error({ err, source }, "processor error");
    } catch {
      /* logging must not break the caller */
    }
  };

  private async init(): Promise<void> {
    const o = this.opts;
    if (o.httpPort !== -1) {
      this.http = new ObsServer({
        port: o.httpPort ?? DEFAULT_HTTP_PORT,
        host: o.httpHost ?? DEFAULT_HTTP_HOST,
        registry: this.metrics.registry,
        health: () => this.health(),
        ready: () => this.readiness(),
      });
      this.httpPort = await this.http.start();
      this.log.info({ httpPort: this.httpPort }, "http listening");
    }
    this.nc = await connectNats({ name: `foresight-processor-${this.processId}`, ...o.nats });
    this.state.connected = true;
    void this.watchConnection();
    this.js = jetstream(this.nc);
    const jsm = await jetstreamManager(this.nc);
    const actions = await ensureStreams(jsm, this.names, o.streams);
    this.state.streamsEnsured = true;
    this.log.info({ streams: actions }, "streams ensured");
    const replicas = o.streams?.replicas ?? 1;
    this.checkpoints = await CheckpointStore.open(this.nc, this.names, { replicas });
    this.leases = await LeaseManager.open(this.nc, this.names, {
      processId: this.processId,
      partitions: this.P,
      ttlMs: o.leaseTtlMs ?? DEFAULT_LEASE_TTL_MS,
      replicas,
    });
    const ttl = this.leases.ttlMs;
    const leaseTask = new PeriodicTask({ name: "lease-round", intervalMs: Math.max(50, Math.floor(ttl / 3)), timeoutMs: ttl, run: () => this.leaseRound(), onError: this.onError });
    const tickTask = new PeriodicTask({ name: "tick", intervalMs: o.tickIntervalMs ?? DEFAULT_TICK_INTERVAL_MS, timeoutMs: DEFAULT_TASK_TIMEOUT_MS, run: () => this.tickAll(), onError: this.onError });
    const cpTask = new PeriodicTask({ name: "checkpoint", intervalMs: o.checkpointIntervalMs ?? DEFAULT_CHECKPOINT_INTERVAL_MS, timeoutMs: DEFAULT_TASK_TIMEOUT_MS, run: () => this.checkpointAll(), onError: this.onError });
    this.tasks = [leaseTask, tickTask, cpTask];
    await leaseTask.runNow();
    this.state.leasesRound = true;
    leaseTask.start();
    tickTask.start();
    cpTask.start();
    this.metrics.checkpointTimes = () =>
      [...this.workers.values()].filter((w) => w.lastCheckpointMs > 0).map((w) => [w.partition, w.lastCheckpointMs] as [number, number]);
  }

  private async watchConnection(): Promise<void> {
    try {
      await this.followStatus();
    } catch (err) {
      this.onError(err, "nats-status");
    }
  }

  private async followStatus(): Promise<void> {
    for await (const s of this.nc.status()) {
      if (s.type === "disconnect") {
        this.state.connected = false;
        this.log.warn({ server: s.server }, "nats disconnected");
      } else if (s.type === "reconnect") {
        this.state.connected = true;
        this.log.info({ server: s.server }, "nats reconnected");
      }
    }
  }

  /** Liveness: the process runs and NATS is connected. */
  health(): CheckResult {
    const nats = this.state.connected && this.nc !== undefined && !this.nc.isClosed();
    return { ok: nats && !this.state.stopping, checks: { nats, stopping: this.state.stopping } };
  }

  /** Readiness: connected, streams ensured, leases evaluated, and every owned partition restored. */
  readiness(): CheckResult {
    const h = this.health();
    const restored = this.starting.size === 0;
    const ok = h.ok && this.state.streamsEnsured && this.state.leasesRound && restored;
    return {
      ok,
      checks: { nats: Boolean(h.checks.nats), streams: this.state.streamsEnsured, leases: this.state.leasesRound, restored, ownedPartitions: this.workers.size },
    };
  }

  /** Partitions consuming now. */
  ownedPartitions(): number[] {
    return [...this.workers.keys()].sort((a, b) => a - b);
  }

  /** The worker of an owned partition (tests, benchmarks). */
  worker(partition: number): PartitionWorker | undefined {
    return this.workers.get(partition);
  }

  private async leaseRound(): Promise<void> {
    if (this.state.stopping) return;
    const r = await this.leases.round();
    for (const err of r.errors) this.onError(err, "lease-round");
    for (const p of r.lost) {
      this.metrics.leaseChanges.inc({ change: "lost" });
      this.log.warn({ partition: p }, "partition lease lost: stopping without checkpoint");
      const w = this.workers.get(p);
      this.workers.delete(p);
      if (w) await w.stop();
      w?.engine.dispose?.();
    }
    for (const p of r.surplus) {
      this.metrics.leaseChanges.inc({ change: "released" });
      this.log.info({ partition: p, liveMembers: r.liveMembers }, "releasing partition above fair share");
      await this.stopPartition(p, true);
      await this.leases.release(p);
    }
    for (const p of r.acquired) {
      this.metrics.leaseChanges.inc({ change: "acquired" });
      try {
        await this.startPartition(p);
      } catch (err) {
        this.onError(err, "partition-start");
        await this.leases.release(p);
      }
    }
    this.metrics.ownedPartitions.set(this.workers.size);
  }

  private async startPartition(p: number): Promise<void> {
    this.starting.add(p);
    try {
      const cap = this.capacityPerPartition();
      let engine = await this.opts.engineFactory(p, cap);
      if (this.engineLive && engine.reconfigure) {
        try {
          engine = (await engine.reconfigure(this.engineLive))();
        } catch (err) {
          this.onError(err, "reconfigure");
        }
      }
      const cp = await this.checkpoints.load(p);
      if (cp) engine.restore(cp.engineState);
      // The model the processor runs now, not the one in the checkpoint (it may have changed since).
      if (this.model) engine.setLstmWeights?.(this.model.weights);
      const w = new PartitionWorker({
        partition: p,
        nc: this.nc,
        js: this.js,
        names: this.names,
        engine,
        lastSeq: cp?.lastSeq ?? 0,
        metrics: this.metrics,
        log: this.log,
        batchMaxMessages: this.opts.batchMaxMessages,
        maxPayloadBytes: Math.min(DEFAULT_FORECAST_MAX_PAYLOAD_BYTES, this.nc.info?.max_payload ?? DEFAULT_FORECAST_MAX_PAYLOAD_BYTES),
        onError: this.onError,
        onApplied: this.opts.onApplied,
        onForecasts: this.opts.onForecasts,
      });
      if (cp) w.lastCheckpointMs = cp.timeMs;
      this.log.info({ partition: p, restoredSeq: cp?.lastSeq ?? 0, checkpointTimeMs: cp?.timeMs }, "partition acquired");
      await w.start();
      this.workers.set(p, w);
    } finally {
      this.starting.delete(p);
    }
  }

  /** Stops one partition; with `checkpoint`, writes its final state first (only while the lease holds). */
  private async stopPartition(p: number, checkpoint: boolean): Promise<void> {
    const w = this.workers.get(p);
    if (!w) return;
    this.workers.delete(p);
    await w.stop();
    if (checkpoint) {
      try {
        w.tick(this.clock());
      } catch (err) {
        this.onError(err, "tick");
      }
      await this.checkpoint(w);
    }
    w.engine.dispose?.();
  }

  private tickAll(): void {
    const now = this.clock();
    for (const w of this.workers.values()) {
      try {
        w.tick(now);
      } catch (err) {
        this.onError(err, "tick");
      }
    }
  }

  /** Writes a checkpoint of one partition; the lease is renewed first so only its owner writes. */
  private checkpoint(w: PartitionWorker): Promise<void> {
    const { lastSeq, engineState } = w.captureState();
    const cp: Checkpoint = { partition: w.partition, lastSeq, timeMs: Date.now(), owner: this.processId, engineState };
    const prev = this.saveChains.get(w.partition) ?? Promise.resolve();
    const next = prev.then(async () => {
      try {
        if (!(await this.leases.renew(w.partition))) {
          this.log.warn({ partition: w.partition }, "checkpoint skipped: lease lost");
          this.metrics.checkpoints.inc({ result: "skipped" });
          return;
        }
        await this.checkpoints.save(cp);
        w.lastCheckpointMs = cp.timeMs;
        this.metrics.checkpoints.inc({ result: "ok" });
        this.log.debug({ partition: w.partition, lastSeq }, "checkpoint written");
      } catch (err) {
        this.metrics.checkpoints.inc({ result: "error" });
        this.onError(err, "checkpoint");
      }
    });
    this.saveChains.set(w.partition, next);
    return next;
  }

  private async checkpointAll(): Promise<void> {
    await Promise.all([...this.workers.values()].map((w) => this.checkpoint(w)));
  }

  /** The processor's NATS connection (for the config watcher; do not close it). */
  get connection(): NatsConnection {
    return this.nc;
  }

  /**
   * The intervals in effect (after defaults and live changes), ms, and the user capacity each
   * partition's engine is created with.
   */
  get settings(): { tickIntervalMs: number; checkpointIntervalMs: number; leaseTtlMs: number; capacityUsersPerPartition: number } {
    const [, tick, cp] = this.tasks;
    return {
      tickIntervalMs: tick?.intervalMs ?? this.opts.tickIntervalMs ?? DEFAULT_TICK_INTERVAL_MS,
      checkpointIntervalMs: cp?.intervalMs ?? this.opts.checkpointIntervalMs ?? DEFAULT_CHECKPOINT_INTERVAL_MS,
      leaseTtlMs: this.leases?.ttlMs ?? this.opts.leaseTtlMs ?? DEFAULT_LEASE_TTL_MS,
      capacityUsersPerPartition: this.capacityPerPartition(),
    };
  }

  private capacityPerPartition(): number {
    return Math.ceil((this.opts.capacityUsers ?? DEFAULT_CONFIG.engine.capacityUsers) / this.P);
  }

  /** The model version engines run (set by {@link applyModel}); undefined = from the engine options. */
  get modelVersion(): string | undefined {
    return this.model?.version;
  }

  /**
   * Hot-swaps the shared LSTM-lite weights into every owned partition's engine (and partitions
   * acquired later), keeping all per-user state. Throws when an engine refuses the blob; the
   * engines that took it keep it and the error names the partition.
   */
  applyModel(version: string, weights: Uint8Array): void {
    for (const w of this.workers.values()) {
      try {
        w.setLstmWeights(weights);
      } catch (err) {
        throw new Error(`partition ${w.partition}: model ${version} refused: ${(err as Error).message}`, { cause: err });
      }
    }
    this.model = { version, weights };
    this.log.info({ version, partitions: [...this.workers.keys()] }, "model swapped");
  }

  /** Applies live settings (config changes that need no restart). */
  applyLive(s: { tickIntervalMs?: number; checkpointIntervalMs?: number; engine?: Record<string, unknown> }): Promise<void> {
    const [, tick, cp] = this.tasks;
    if (s.tickIntervalMs !== undefined && tick && tick.intervalMs !== s.tickIntervalMs) {
      tick.setIntervalMs(s.tickIntervalMs);
      this.log.info({ tickIntervalMs: s.tickIntervalMs }, "tick interval changed");
    }
    if (s.checkpointIntervalMs !== undefined && cp && cp.intervalMs !== s.checkpointIntervalMs) {
      cp.setIntervalMs(s.checkpointIntervalMs);
      this.log.info({ checkpointIntervalMs: s.checkpointIntervalMs }, "checkpoint interval changed");
    }
    if (!s.engine) return Promise.resolve();
    // Engine options (horizon, quantile, smoothing): each owned partition moves onto a
    // reconfigured engine; partitions acquired later start with them too.
    const options = s.engine;
    const previous = this.engineLive;
    this.engineLive = options;
    let refused = false;
    return Promise.all(
      [...this.workers.values()].map(async (w) => {
        try {
          if (await w.reconfigureEngine(options)) this.log.info({ partition: w.partition, options }, "engine reconfigured");
        } catch (err) {
          refused = true;
          this.onError(err, "reconfigure");
        }
      }),
    ).then(() => {
      // Options the engine refused are not given to partitions acquired later either.
      if (refused) this.engineLive = previous;
    });
  }

  /** Clean shutdown (idempotent); see the module comment for the order. */
  stop(): Promise<void> {
    this.stopPromise ??= this.doStop();
    return this.stopPromise;
  }

  private async doStop(): Promise<void> {
    this.state.stopping = true;
    this.log.info("stopping");
    for (const t of this.tasks) await t.stop();
    const parts = [...this.workers.keys()];
    // Partitions stop in parallel: each waits about a second for its consumer to close.
    await Promise.all(
      parts.map(async (p) => {
        try {
          await this.stopPartition(p, true);
        } catch (err) {
          this.onError(err, "shutdown");
        }
      }),
    );
    if (this.leases) await this.leases.releaseAll();
    if (this.nc && !this.nc.isClosed()) {
      try {
        await this.nc.drain();
      } catch (err) {
        this.onError(err, "drain");
      }
    }
    await this.http?.stop();
    this.log.info({ partitions: parts }, "stopped");
  }
}
