// The body of `foresight allocate` (loaded only when the command runs: client-node and the
// allocator take seconds to import, which every other command would otherwise pay).
// `foresight allocate`: runs the allocator (leader lease, partial demand → policy → Kubernetes) until
// SIGTERM/SIGINT. Kubernetes access as client-node loads it: --kubeconfig <file>, else $KUBECONFIG /
// ~/.kube/config / the in-cluster service account; --sim starts the Kubernetes API test server
// in-process (seeded with the pools' workloads) for demos without a cluster.
import { KubeConfig } from "@kubernetes/client-node";
import { waitForStopSignal } from "../signals.ts";
import { loadConfig, type ForesightConfig } from "../../config/index.ts";
import { createLogger } from "../../obs/logger.ts";
import { KubeSim } from "../../kube-sim/index.ts";
import { AllocatorService } from "../../allocator/kube/service.ts";
import { grantServiceOptions } from "../../throttle/config.ts";
import { grantUsersPerPartition } from "../../allocator/kube/grants.ts";

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
  const n = config.nats;
  const service = await AllocatorService.start({
    nats: n.connection,
    prefix: n.subjectPrefix,
    leaseBucket: loaded.sources.get("nats.kv.leasesBucket") === "default" ? undefined : n.kv.leasesBucket,
    partitions: n.partitions,
    pools: config.pools.map((p) => ({ ...p, workload: { kind: p.workload.kind, namespace: p.workload.namespace, name: p.workload.name, container: p.workload.container, hpaName: p.workload.hpaName } })),
    cluster: config.cluster,
    upperQuantile: config.engine.upperQuantile,
    horizonSec: (config.engine.horizonBuckets * config.engine.bucketWidthMs) / 1000,
    kubeConfig: kc,
    processId: f.processId,
    leaseTtlMs: int("lease-ttl-ms", f.leaseTtlMs, 100) ?? config.schedule.leaseTtlMs,
    decisionIntervalMs: int("decision-interval-ms", f.decisionIntervalMs, 100),
    httpPort: httpPortFlag ?? (config.http.metricsPort === 0 ? -1 : config.http.metricsPort),
    httpHost: config.http.host,
    log,
    actuator: { forceConflicts: f.forceConflicts },
    // The throttle section always exists (schema defaults), so grants are on unless --no-grants.
    grants: f.grants === false ? undefined : grantServiceOptions(config, { usersPerPartition: grantUsersPerPartition(config.engine.capacityUsers) }),
    // Users' plans and segments for the grants and the pools' plan/segment rules.
    directory: { bucket: n.kv.directoryBucket },
  });
  log.info({ processId: service.processId, httpPort: service.httpPort, grants: f.grants !== false }, "allocator running");
  await waitForStopSignal(log);
  await service.stop();
  await sim?.stop();
  process.exit(0);
}

