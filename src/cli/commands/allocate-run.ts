// The body of `foresight allocate` (loaded only when the command runs: client-node and the
// allocator take seconds to import, which every other command would otherwise pay).
// `foresight allocate`: runs the allocator (leader lease, partial demand → policy → Kubernetes) until
// SIGTERM/SIGINT. Kubernetes access as client-node loads it: --kubeconfig <file>, else $KUBECONFIG /
// ~/.kube/config / the in-cluster service account; --sim starts the Kubernetes API test server
// in-process (seeded with the pools' workloads) for demos without a cluster.
// With the KV layer (the default; --no-kv turns it off) the allocator follows the config in KV
// live: each valid revision's pools, cluster budget and throttle settings are applied
// (AllocatorService.applySettings), settings that need a restart are logged; an invalid revision
// is refused by the watcher and the running settings stay.
import { KubeConfig } from "@kubernetes/client-node";
import type { Logger } from "pino";
import { waitForStopSignal } from "../signals.ts";
import { loadConfig, ConfigWatcher, type ForesightConfig, type LoadedConfig } from "../../config/index.ts";
import { createLogger } from "../../obs/logger.ts";
import { KubeSim } from "../../kube-sim/index.ts";
import { AllocatorService, type AllocatorServiceOptions } from "../../allocator/kube/service.ts";
import { allocatorSettings } from "../../allocator/kube/settings.ts";

export interface AllocateFlags {
  config?: string;
  servers?: string;
  prefix?: string;
  partitions?: string;
  kubeconfig?: string;
  context?: string;
  sim: boolean;
  httpPort?: string;
  processId?: string;
  leaseTtlMs?: string;
  decisionIntervalMs?: string;
  forceConflicts: boolean;
  logLevel?: string;
  kv: boolean;
  /** Run the grant service on the leader (`--no-grants` turns it off). Default true. */
  grants: boolean;
}

/** A command-line value that is not what it should be. */
export class AllocateOptionError extends Error {
  override name = "AllocateOptionError";
  constructor(message: string) {
    super(message);
  }
}

function int(name: string, v: string | undefined, min: number): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new AllocateOptionError(`--${name} must be an integer >= ${min}, got ${JSON.stringify(v)}`);
  return n;
}

/** Loads Kubernetes access the way client-node does: a file, else KUBECONFIG / ~/.kube/config / in-cluster. */
export function loadKubeConfig(file: string | undefined, context: string | undefined): KubeConfig {
  const kc = new KubeConfig();
  if (file) kc.loadFromFile(file);
  else kc.loadFromDefault();
  if (context) kc.setCurrentContext(context);
  if (!kc.getCurrentCluster()) throw new AllocateOptionError("no Kubernetes cluster configured: pass --kubeconfig, set KUBECONFIG, run in a pod with a service account, or use --sim");
  return kc;
}

/** Seeds the test server with each pool's workload (and its HPA in hpa-floor mode). */
export function seedSim(sim: KubeSim, config: ForesightConfig): void {
  for (const p of config.pools) {
    const w = p.workload;
    const labels = { app: w.name };
    sim.create({
      apiVersion: "apps/v1", kind: w.kind, metadata: { name: w.name, namespace: w.namespace, labels },
      spec: { replicas: Math.max(1, p.minReplicas), selector: { matchLabels: labels }, template: { metadata: { labels }, spec: { containers: [{ name: w.container ?? "server", image: "registry.example/server:demo" }] } } },
    });
    if (p.mode === "hpa-floor") {
      sim.create({
        apiVersion: "autoscaling/v2", kind: "HorizontalPodAutoscaler", metadata: { name: w.hpaName ?? w.name, namespace: w.namespace },
        spec: { scaleTargetRef: { apiVersion: "apps/v1", kind: w.kind, name: w.name }, minReplicas: Math.max(1, p.minReplicas), maxReplicas: p.maxReplicas },
      });
    }
  }
}

/** What {@link runAllocator} needs besides the loaded config. */
export interface RunAllocatorOptions {
  /** Kubernetes access. */
  kubeConfig: KubeConfig;
  /** Follow the config in KV live (the watcher starts on the allocator's connection). */
  followKv: boolean;
  /** Run the grant service on the leader. */
  grants: boolean;
  /** The allocator's logger (the watcher logs under it as component "config"); its level follows log.level live. */
  log: Logger;
  /** Options passed to the service as they are (process id, lease TTL, ports, actuator, clock…). */
  service?: Partial<Omit<AllocatorServiceOptions, "pools" | "cluster" | "grants" | "kubeConfig" | "log">>;
}

/** A running allocator and the watcher that keeps it on the config in KV. */
export interface RunningAllocator {
  service: AllocatorService;
  /** Absent without the KV layer. */
  watcher: ConfigWatcher | undefined;
  /** Stops the watcher, then the service. */
  stop(): Promise<void>;
}

/**
 * Starts the allocator on a loaded config and, with `followKv`, a ConfigWatcher on the
 * allocator's NATS connection (its counters on the allocator's /metrics) whose valid revisions
 * are applied live.
 */
export async function runAllocator(loaded: LoadedConfig, o: RunAllocatorOptions): Promise<RunningAllocator> {
  const config = loaded.config;
  const n = config.nats;
  const settings = allocatorSettings(config, { grants: o.grants });
  const service = await AllocatorService.start({
    nats: n.connection,
    prefix: n.subjectPrefix,
    leaseBucket: loaded.sources.get("nats.kv.leasesBucket") === "default" ? undefined : n.kv.leasesBucket,
    partitions: n.partitions,
    leaseTtlMs: config.schedule.leaseTtlMs,
    httpPort: config.http.metricsPort === 0 ? -1 : config.http.metricsPort,
    httpHost: config.http.host,
    // Users' plans and segments for the grants and the pools' plan/segment rules.
    directory: { bucket: n.kv.directoryBucket },
    ...o.service,
    ...settings,
    kubeConfig: o.kubeConfig,
    log: o.log,
  });
  let watcher: ConfigWatcher | undefined;
  if (o.followKv) {
    try {
      watcher = await ConfigWatcher.start({
        nc: service.connection,
        bucket: n.kv.configBucket,
        base: loaded.base,
        registry: service.metrics.registry,
        logger: o.log.child({ component: "config" }),
        onChange: async (u) => {
          o.log.level = u.config.log.level;
          // A refusal (AllocatorSettingsError) throws: the watcher logs and counts it.
          await service.applySettings(allocatorSettings(u.config, { grants: o.grants }));
          if (u.restartRequired.length) o.log.warn({ paths: u.restartRequired, revision: u.revision }, "config changes that apply after a restart");
        },
      });
      // A revision written between the load above and the watcher's first read is the watcher's
      // starting point, not a change: apply it here, or the allocator would run the older one.
      if (watcher.revision !== loaded.kvRevision) await service.applySettings(allocatorSettings(watcher.config, { grants: o.grants }));
    } catch (err) {
      await watcher?.stop();
      await service.stop();
      throw err;
    }
  }
  return {
    service,
    watcher,
    stop: async () => {
      await watcher?.stop();
      await service.stop();
    },
  };
}

/** Runs the allocator until SIGTERM/SIGINT. */
export async function allocate(f: AllocateFlags): Promise<void> {
  const overrides: Record<string, unknown> = {};
  const nats: Record<string, unknown> = {};
  if (f.servers) nats.connection = { servers: f.servers.split(",").map((s) => s.trim()).filter(Boolean) };
  if (f.prefix) nats.subjectPrefix = f.prefix;
  const partitions = int("partitions", f.partitions, 1);
  if (partitions !== undefined) nats.partitions = partitions;
  if (Object.keys(nats).length) overrides.nats = nats;
  if (f.logLevel) overrides.log = { level: f.logLevel };
  const loaded = await loadConfig({ file: f.config, overrides, kv: f.kv ? {} : undefined });
  const config = loaded.config;
  const log = createLogger({ level: config.log.level, name: "allocator" });
  if (config.pools.length === 0) throw new AllocateOptionError("the config has no pools: nothing to allocate (see docs/allocator-kube.md)");
  let sim: KubeSim | undefined;
  let kc: KubeConfig;
  if (f.sim) {
    sim = new KubeSim();
    await sim.start();
    seedSim(sim, config);
    kc = new KubeConfig();
    kc.loadFromOptions(sim.kubeConfigOptions());
    log.info({ url: sim.url }, "Kubernetes API test server started (--sim)");
  } else kc = loadKubeConfig(f.kubeconfig, f.context);
  const httpPortFlag = int("http-port", f.httpPort, 0);
  const leaseTtlMs = int("lease-ttl-ms", f.leaseTtlMs, 100);
  const running = await runAllocator(loaded, {
    kubeConfig: kc,
    followKv: f.kv,
    grants: f.grants !== false,
    log,
    service: {
      processId: f.processId,
      decisionIntervalMs: int("decision-interval-ms", f.decisionIntervalMs, 100),
      actuator: { forceConflicts: f.forceConflicts },
      ...(leaseTtlMs !== undefined ? { leaseTtlMs } : {}),
      ...(httpPortFlag !== undefined ? { httpPort: httpPortFlag } : {}),
    },
  });
  const service = running.service;
  log.info({ processId: service.processId, httpPort: service.httpPort, grants: f.grants !== false, followsKv: f.kv }, "allocator running");
  await waitForStopSignal(log);
  await running.stop();
  await sim?.stop();
  process.exit(0);
}

