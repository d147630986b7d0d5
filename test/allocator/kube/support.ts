// Shared set-up of the actuation tests: a KubeSim with a Deployment, its pods and an HPA, driven by
// the real client-node over HTTP.
import { KubeConfig } from "@kubernetes/client-node";
import { pino, type Logger } from "pino";
import { Registry } from "prom-client";
import { KubeSim, type KubeSimOptions } from "../../../src/kube-sim/index.ts";
import { KubeClient } from "../../../src/allocator/kube/client.ts";
import { Actuator, type ActuatorOptions } from "../../../src/allocator/kube/actuator.ts";
import { AllocatorMetrics } from "../../../src/allocator/kube/metrics.ts";
import type { ActuationOutcome, DesiredPoolState, PoolTarget } from "../../../src/allocator/kube/types.ts";

export const NS = "shop";

/** A Deployment as `kubectl create` would leave it (manager owns what it set). */
export function deployment(name: string, opts: { replicas?: number; requests?: Record<string, string>; limits?: Record<string, string> } = {}): Record<string, any> {
  const resources: Record<string, unknown> = {};
  if (opts.requests) resources.requests = opts.requests;
  if (opts.limits) resources.limits = opts.limits;
  return {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name, namespace: NS, labels: { app: name } },
    spec: {
      replicas: opts.replicas ?? 2,
      selector: { matchLabels: { app: name } },
      template: { metadata: { labels: { app: name } }, spec: { containers: [{ name: "server", image: "registry.example/server:1.0", resources }] } },
    },
  };
}

export function hpa(name: string, min: number, max: number): Record<string, any> {
  return {
    apiVersion: "autoscaling/v2",
    kind: "HorizontalPodAutoscaler",
    metadata: { name, namespace: NS },
    spec: { scaleTargetRef: { apiVersion: "apps/v1", kind: "Deployment", name }, minReplicas: min, maxReplicas: max, metrics: [{ type: "Resource", resource: { name: "cpu", target: { type: "Utilization", averageUtilization: 70 } } }] },
  };
}

export function decision(pool: string, replicas: number, extra: Partial<DesiredPoolState> = {}): DesiredPoolState {
  return { pool, replicas, predictiveReplicas: replicas, reactiveReplicas: Math.max(1, replicas - 1), reason: "test", direction: "up", ...extra };
}

export function target(pool: string, mode: PoolTarget["mode"], name = pool): PoolTarget {
  return { pool, mode, kind: "Deployment", namespace: NS, name };
}

/** A quiet logger that keeps what was logged (tests assert on messages). */
export function memoryLogger(): { log: Logger; lines: Record<string, any>[] } {
  const lines: Record<string, any>[] = [];
  const log: Logger = pino({ level: "debug" }, { write: (s: string) => void lines.push(JSON.parse(s)) });
  return { log, lines };
}

export interface Rig {
  sim: KubeSim;
  client: KubeClient;
  actuator: Actuator;
  metrics: AllocatorMetrics;
  outcomes: { pool: string; outcome: ActuationOutcome; error?: Error }[];
  lines: Record<string, any>[];
  /** Resolves at the next outcome of `pool` that satisfies `pred`. */
  next(pool: string, pred?: (o: ActuationOutcome) => boolean): Promise<{ outcome: ActuationOutcome; error?: Error }>;
  close(): Promise<void>;
}

/** Starts a sim and an actuator on it. `token` picks the RBAC user when `sim.rbac` is set. */
export async function rig(opts: { sim?: KubeSimOptions; token?: string; actuator?: Partial<ActuatorOptions>; targets?: PoolTarget[]; start?: boolean } = {}): Promise<Rig> {
  const sim = new KubeSim(opts.sim);
  if (opts.start !== false) await sim.start();
  const kc = new KubeConfig();
  kc.loadFromOptions(sim.kubeConfigOptions(opts.token));
  const client = new KubeClient(kc);
  const metrics = new AllocatorMetrics(new Registry());
  const outcomes: Rig["outcomes"] = [];
  const waiters: { pool: string; pred: (o: ActuationOutcome) => boolean; resolve: (v: { outcome: ActuationOutcome; error?: Error }) => void }[] = [];
  const { log, lines } = memoryLogger();
  const actuator = new Actuator({
    client, metrics, log, backoffBaseMs: 20,
    ...opts.actuator,
    onOutcome: (pool, outcome, error) => {
      outcomes.push({ pool, outcome, error });
      for (const w of [...waiters]) if (w.pool === pool && w.pred(outcome)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve({ outcome, error });
      }
      opts.actuator?.onOutcome?.(pool, outcome, error);
    },
  });
  actuator.setTargets(opts.targets ?? []);
  return {
    sim, client, actuator, metrics, outcomes, lines,
    next: (pool, pred = () => true) => new Promise((resolve) => waiters.push({ pool, pred, resolve })),
    close: async () => {
      await actuator.stop();
      await sim.stop();
    },
  };
}

/** Value of a counter/gauge with labels from a registry. */
export async function metricValue(metrics: AllocatorMetrics, name: string, labels: Record<string, string>): Promise<number> {
  const m = await metrics.registry.getSingleMetric(name)?.get();
  const v = m?.values.find((x) => Object.entries(labels).every(([k, val]) => String(x.labels[k]) === val));
  return v?.value ?? 0;
}
