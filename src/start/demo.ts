// The configuration `npm start` runs the processor and the allocator with: the served defaults,
// except that time is compressed (the load replays trace time `speedup`× faster, so buckets are
// 5 s and the allocator's windows shrink by the same factor) and the state is small.
import type { ForesightConfig } from "../config/index.ts";

/** Engine horizon of the demo, buckets (ticks and buckets are both 5 s). */
export const DEMO_HORIZON_BUCKETS = 6;

/** What the allocator does with the pools' workloads: only compute and record ("shadow") or act ("scale"). */
export type StartMode = "shadow" | "scale";
/** The modes `foresight start --mode` accepts. */
export const START_MODES: readonly StartMode[] = ["shadow", "scale"];

/** One pool of the demo: a model and its clients. */
export interface DemoPool {
  /** Pool (and workload) name: the model. */
  name: string;
  /** Client keys served by the pool. */
  users: string[];
  /** Requests per second one replica serves at full utilization. */
  requestsPerSecPerReplica: number;
}

/** Options of {@link demoConfig}. */
export interface DemoConfigOptions {
  prefix: string;
  partitions: number;
  /** Engine bucket width, ms. */
  bucketWidthMs: number;
  /** Processor tick period, ms. */
  tickIntervalMs: number;
  /** Checkpoint period, ms (short, so a killed processor loses little). */
  checkpointIntervalMs: number;
  /** Partition and leader lease TTL, ms (short, so a restarted process takes over quickly). */
  leaseTtlMs: number;
  /** Trace seconds per wall second: the allocator's windows are divided by it. */
  speedup: number;
  pools: DemoPool[];
  /** Plan limit of every user, requests/s (the demo has one plan). */
  planRequestsPerSec: number;
  /** Safe limit (no valid grant), requests/s. */
  safeRequestsPerSec: number;
  /** What the allocator does with the workloads. */
  mode: StartMode;
  /** Namespace of the pools' Deployments (each named after its pool). */
  namespace: string;
}

/** A partial config (validated by each process's own loader). */
export function demoConfig(o: DemoConfigOptions): Record<string, unknown> {
  const scaled = (sec: number, min: number) => Math.max(min, Math.round(sec / o.speedup));
  const cfg: Record<string, unknown> = {
    engine: { bucketWidthMs: o.bucketWidthMs, allowedLatenessMs: o.bucketWidthMs, capacityUsers: 4096, horizonBuckets: DEMO_HORIZON_BUCKETS },
    schedule: { tickIntervalMs: o.tickIntervalMs, checkpointIntervalMs: o.checkpointIntervalMs, leaseTtlMs: o.leaseTtlMs },
    nats: { subjectPrefix: o.prefix, partitions: o.partitions },
    http: { host: "127.0.0.1", metricsPort: 0 },
    pools: o.pools.map((p) => ({
      name: p.name,
      workload: { kind: "Deployment", namespace: o.namespace, name: p.name },
      costModel: { requestsPerSecPerReplica: p.requestsPerSecPerReplica },
      match: { users: p.users },
      minReplicas: 1,
      maxReplicas: 200,
      // The Kubernetes-time windows, compressed like the traffic: 300 s stabilization, 120 s pod
      // start-up, 15 s decisions (at least 1 s, the schema's floor), 60 s HPA metric window.
      stabilizationWindowSec: scaled(300, 1),
      podStartDelaySec: scaled(120, 1),
      decisionIntervalMs: Math.max(1000, Math.round(15_000 / o.speedup)),
      reactive: { metricWindowSec: scaled(60, 1) },
      // "scale" on the test API server (it stands in for a cluster); "shadow" unless asked on a real one.
      mode: o.mode,
    })),
    cluster: { maxReplicasTotal: 200 * o.pools.length, maxCpuMillicores: 1_000_000, maxMemoryMiB: 4_000_000 },
    throttle: {
      plans: { default: { requestsPerSec: o.planRequestsPerSec } },
      safeLimits: { default: { requestsPerSec: o.safeRequestsPerSec } },
    },
    log: { level: "info" },
  };
  return cfg satisfies Partial<Record<keyof ForesightConfig, unknown>>;
}
