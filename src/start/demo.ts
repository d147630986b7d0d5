// The configuration `npm start` runs the processor with: the served defaults, except that time is
// compressed (the load replays trace time 60× faster, so buckets are 5 s instead of 60 s) and the
// state is small (a few hundred users).
import type { ForesightConfig } from "../config/index.ts";

/** Options of {@link demoConfig}. */
export interface DemoConfigOptions {
  /** Subject prefix. */
  prefix: string;
  /** Telemetry partitions. */
  partitions: number;
  /** Engine bucket width, ms. */
  bucketWidthMs: number;
  /** Tick period of the processor, ms. */
  tickIntervalMs: number;
  /** Checkpoint period, ms (short, so a killed processor loses little). */
  checkpointIntervalMs: number;
  /** Partition lease TTL, ms (short, so a restarted processor takes its partitions back quickly). */
  leaseTtlMs: number;
}

/** A partial config (validated by the processor's own loader). */
export function demoConfig(o: DemoConfigOptions): Record<string, unknown> {
  const cfg: Record<string, unknown> = {
    engine: {
      bucketWidthMs: o.bucketWidthMs,
      allowedLatenessMs: o.bucketWidthMs,
      capacityUsers: 4096,
      horizonBuckets: 6,
    },
    schedule: { tickIntervalMs: o.tickIntervalMs, checkpointIntervalMs: o.checkpointIntervalMs, leaseTtlMs: o.leaseTtlMs },
    nats: { subjectPrefix: o.prefix, partitions: o.partitions },
    http: { host: "127.0.0.1", metricsPort: 0 },
    log: { level: "info" },
  };
  return cfg satisfies Partial<Record<keyof ForesightConfig, unknown>>;
}
