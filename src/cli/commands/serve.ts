// `foresight serve`: runs the processor until SIGTERM/SIGINT, then shuts down in order
// (stop consuming → final tick and checkpoint → release leases → drain NATS) and exits 0.
import type { Command } from "commander";
import { waitForStopSignal } from "../signals.ts";
import { loadConfig, ConfigWatcher, DEFAULT_LEASE_TTL_MS, type ForesightConfig } from "../../config/index.ts";
import { createLogger } from "../../obs/logger.ts";
import { Processor, createWasmEngineFactory, engineLiveOptionsFromConfig } from "../../processor/index.ts";
import { normalQuantile } from "../../engine/options.ts";
import { DemandPartialBuilder, demandSubject, encodeDemandPartial } from "../../allocator/kube/partials.ts";
import { ModelRegistry } from "../../models/index.ts";
import { canonicalJson } from "../../util/canonical-json.ts";
import { DirectoryIndex } from "../../telemetry/directory-index.ts";
import { registerDirectoryIndexMetrics } from "../../telemetry/directory-index-metrics.ts";

/** Longest a SIGTERM/SIGINT shutdown may take before the process exits anyway (code 1), ms. */
export const SHUTDOWN_TIMEOUT_MS = 25_000;

interface ServeFlags {
  config?: string;
  servers?: string;
  httpPort?: string;
  prefix?: string;
  partitions?: string;
  leaseTtlMs?: string;
  tickIntervalMs?: string;
  checkpointIntervalMs?: string;
  processId?: string;
  logLevel?: string;
  kv: boolean;
}

/** A command-line value that is not what it should be. */
export class ServeOptionError extends Error {
  override name = "ServeOptionError";
  constructor(message: string) {
    super(message);
  }
}

function int(name: string, v: string | undefined, min: number): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new ServeOptionError(`--${name} must be an integer >= ${min}, got ${JSON.stringify(v)}`);
  return n;
}

/** Turns flags into config overrides (validated with the rest of the config). */
function overridesOf(f: ServeFlags): Record<string, unknown> {
  const nats: Record<string, unknown> = {};
  if (f.servers) nats.connection = { servers: f.servers.split(",").map((s) => s.trim()).filter(Boolean) };
  if (f.prefix) nats.subjectPrefix = f.prefix;
  const partitions = int("partitions", f.partitions, 1);
  if (partitions !== undefined) nats.partitions = partitions;
  const schedule: Record<string, unknown> = {};
  const tick = int("tick-interval-ms", f.tickIntervalMs, 1);
  if (tick !== undefined) schedule.tickIntervalMs = tick;
  const cp = int("checkpoint-interval-ms", f.checkpointIntervalMs, 1);
  if (cp !== undefined) schedule.checkpointIntervalMs = cp;
  const o: Record<string, unknown> = {};
  if (Object.keys(nats).length) o.nats = nats;
  if (Object.keys(schedule).length) o.schedule = schedule;
  if (f.logLevel) o.log = { level: f.logLevel };
  return o;
}

async function serve(f: ServeFlags): Promise<void> {
  const loaded = await loadConfig({ file: f.config, overrides: overridesOf(f), kv: f.kv ? {} : undefined });
  let config: ForesightConfig = loaded.config;
  const log = createLogger({ level: config.log.level, name: "processor" });
  const httpPortFlag = int("http-port", f.httpPort, 0);
  // The flag's 0 means "any free port"; the config's metricsPort 0 means "disabled".
  const httpPort = httpPortFlag ?? (config.http.metricsPort === 0 ? -1 : config.http.metricsPort);
  const n = config.nats;
  // Names someone set are used as given; defaulted ones follow the subject prefix, so two
  // prefixes on one server never share (or overlap) streams and buckets.
  const explicit = (path: string, value: string) => (loaded.sources.get(path) === "default" ? undefined : value);
  // With pools configured, each tick's forecasts are also summed per pool and published as the
  // partition's partial demand for the allocator leader. Pools follow the config live: a new pool
  // list (or match rules, or quantile) rebuilds the builder, so the partials carry the pools the
  // allocator follows from the same revision. Pools matched by plans or segments read users'
  // directory entries from an in-memory index of the user directory (opened on the processor's
  // connection once a pool needs it; unknown until it loads).
  const needsDirectory = (c: ForesightConfig) => c.pools.some((p) => p.match.plans.length > 0 || p.match.segments.length > 0);
  let directory: DirectoryIndex | undefined;
  const lookup = {
    planOf: (lo: number, hi: number) => directory?.planOf(lo, hi),
    segmentOf: (lo: number, hi: number) => directory?.segmentOf(lo, hi),
  };
  const partialsOf = (c: ForesightConfig) => (c.pools.length ? new DemandPartialBuilder(c.pools, normalQuantile(c.engine.upperQuantile), needsDirectory(c) ? lookup : undefined) : undefined);
  const partialsKey = (c: ForesightConfig) => canonicalJson([c.pools.map((p) => ({ name: p.name, match: p.match })), c.engine.upperQuantile]);
  let partials = partialsOf(config);
  let processorRef: Processor | undefined;
  const processor = await Processor.start({
    nats: n.connection,
    prefix: n.subjectPrefix,
    names: {
      telemetryStream: explicit("nats.streams.telemetry", n.streams.telemetry),
      forecastsStream: explicit("nats.streams.forecasts", n.streams.forecasts),
      deadLetterStream: explicit("nats.streams.deadLetter", n.streams.deadLetter),
      leaseBucket: explicit("nats.kv.leasesBucket", n.kv.leasesBucket),
      checkpointBucket: explicit("nats.objectStore.checkpoints", n.objectStore.checkpoints),
    },
    partitions: n.partitions,
    streams: {
      replicas: n.replicas,
      telemetryMaxAgeMs: n.retention.maxAgeMs,
      telemetryMaxBytes: n.retention.maxBytes,
      // Retraining reads its history back from the forecasts stream: keep that much of it.
      ...(config.engine.lstm.retrain.intervalMs > 0
        ? { forecastsMaxAgeMs: Math.max(600_000, (config.engine.lstm.retrain.historyBuckets + config.engine.horizonBuckets + 2) * config.engine.bucketWidthMs) }
        : {}),
    },
    capacityUsers: config.engine.capacityUsers,
    engineFactory: createWasmEngineFactory(config.engine),
    tickIntervalMs: config.schedule.tickIntervalMs,
    checkpointIntervalMs: config.schedule.checkpointIntervalMs,
    leaseTtlMs: int("lease-ttl-ms", f.leaseTtlMs, 100) ?? config.schedule.leaseTtlMs,
    processId: f.processId,
    httpPort,
    httpHost: config.http.host,
    log,
    onForecasts: (p, tickTimeMs, records, count) => {
      if (partials) processorRef?.connection.publish(demandSubject(n.subjectPrefix, p), encodeDemandPartial(partials.build(p, tickTimeMs, records, count)));
    },
  });
  processorRef = processor;
  let directoryOpening: Promise<void> | undefined;
  const openDirectory = (): Promise<void> =>
    (directoryOpening ??= (async () => {
      // The gateways own the bucket; a processor waits for it (create: false) and never creates it.
      const index = await DirectoryIndex.open(processor.connection, { bucket: n.kv.directoryBucket, create: false, log: log.child({ component: "directory" }) });
      registerDirectoryIndexMetrics(processor.metrics.registry, () => index.stats());
      directory = index;
    })());
  if (needsDirectory(config)) await openDirectory();

  // Model hot swap: engine.lstm.modelVersion names registry weights; a change (or a rollback)
  // swaps them into every engine without losing state. A version that cannot be loaded is
  // refused and logged; the engines keep the weights they run.
  let registry: ModelRegistry | undefined;
  let modelWanted: string | undefined;
  const applyModelVersion = async (version: string | undefined): Promise<void> => {
    if (!version || version === processor.modelVersion || version === modelWanted) return;
    modelWanted = version;
    try {
      registry ??= await ModelRegistry.open(processor.connection, config.nats.objectStore.models, { replicas: n.replicas });
      const bytes = await registry.get(version);
      if (modelWanted !== version) return; // a newer change arrived meanwhile
      processor.applyModel(version, bytes);
    } catch (err) {
      log.error({ version, err: (err as Error).message, name: (err as Error).name }, "model version refused: engines keep their weights");
    } finally {
      if (modelWanted === version) modelWanted = undefined;
    }
  };
  await applyModelVersion(config.engine.lstm.modelVersion);

  let watcher: ConfigWatcher | undefined;
  if (f.kv) {
    watcher = await ConfigWatcher.start({
      nc: processor.connection,
      bucket: n.kv.configBucket,
      base: loaded.base,
      registry: processor.metrics.registry,
      logger: log.child({ component: "config" }),
      onChange: (u) => {
        const engineBefore = JSON.stringify(engineLiveOptionsFromConfig(config.engine));
        if (partialsKey(u.config) !== partialsKey(config)) {
          partials = partialsOf(u.config);
          if (needsDirectory(u.config)) openDirectory().catch((err: unknown) => log.error({ err }, "user directory index cannot be opened: plan and segment rules match no user until it is"));
        }
        config = u.config;
        log.level = config.log.level;
        const engineLive = engineLiveOptionsFromConfig(config.engine);
        void processor.applyLive({
          tickIntervalMs: config.schedule.tickIntervalMs,
          checkpointIntervalMs: config.schedule.checkpointIntervalMs,
          engine: JSON.stringify(engineLive) === engineBefore ? undefined : (engineLive as Record<string, unknown>),
        });
        void applyModelVersion(config.engine.lstm.modelVersion);
        if (u.restartRequired.length) log.warn({ paths: u.restartRequired, revision: u.revision }, "config changes that apply after a restart");
      },
    });
  }
  log.info({ processId: processor.processId, httpPort: processor.httpPort, partitions: n.partitions }, "processor started");

  await waitForStopSignal(log);
  // A clean stop writes a final checkpoint per partition; with NATS unreachable each write waits
  // out its timeout, so the whole shutdown is bounded (below Kubernetes' default 30 s grace).
  let deadline: NodeJS.Timeout | undefined;
  const clean = await Promise.race([
    (async () => {
      await watcher?.stop();
      await directory?.stop();
      await processor.stop();
      return true;
    })(),
    new Promise<false>((resolve) => (deadline = setTimeout(() => resolve(false), SHUTDOWN_TIMEOUT_MS))),
  ]);
  clearTimeout(deadline);
  if (!clean) log.error({ timeoutMs: SHUTDOWN_TIMEOUT_MS }, "shutdown did not finish in time: exiting; partitions resume from their last checkpoint");
  process.exit(clean ? 0 : 1);
}

/** Registers `foresight serve`. */
export function register(program: Command): void {
  program
    .command("serve")
    .description("Run the processor: consume telemetry partitions into engines, publish forecasts, checkpoint state.")
    .option("--config <file>", "config file (YAML or JSON)")
    .option("--servers <urls>", "NATS servers, comma-separated (overrides the config)")
    .option("--http-port <n>", "port of /metrics /healthz /readyz (0 = any free port; default: config http.metricsPort)")
    .option("--prefix <prefix>", "subject prefix (overrides nats.subjectPrefix)")
    .option("--partitions <n>", "number of partitions (overrides nats.partitions)")
    .option("--lease-ttl-ms <ms>", `partition lease TTL, overrides schedule.leaseTtlMs (default ${DEFAULT_LEASE_TTL_MS})`)
    .option("--tick-interval-ms <ms>", "forecast tick interval (overrides schedule.tickIntervalMs)")
    .option("--checkpoint-interval-ms <ms>", "checkpoint interval (overrides schedule.checkpointIntervalMs)")
    .option("--process-id <id>", "this process's id in leases and checkpoints (default host-pid-random)")
    .option("--log-level <level>", "log level (overrides log.level)")
    .option("--no-kv", "do not read or watch the config KV bucket")
    .action((flags: ServeFlags) => serve(flags));
}
