// What the actuator is told to do. `DesiredPoolState` has the shape of the policy's
// `PoolDecision` (src/allocator/policy.ts): a decision is passed through as it is.

/** How a pool's decisions reach Kubernetes. */
export type ActuationMode = "shadow" | "scale" | "hpa-floor" | "resize";

/** Every mode, in the order the docs list them. */
export const ACTUATION_MODES: readonly ActuationMode[] = ["shadow", "scale", "hpa-floor", "resize"];

/** One pool's decision for one tick. */
export interface DesiredPoolState {
  /** Pool name. */
  pool: string;
  /** Replicas to run: max(predictive after safeguards, reactive floor), within the pool's bounds. */
  replicas: number;
  /** What the forecast alone requires (the HPA floor in `hpa-floor` mode). */
  predictiveReplicas: number;
  /** What a reactive HPA would run on the observed rate. */
  reactiveReplicas: number;
  /** CPU request per replica (container request), millicores; absent = not managed. */
  cpuMillicores?: number;
  /** Memory request per replica (container request), MiB; absent = not managed. */
  memoryMiB?: number;
  /** Pod-template annotations (e.g. `kubernetes.io/ingress-bandwidth`); absent = not managed. */
  annotations?: Record<string, string>;
  /** Why (for logs and Events). */
  reason: string;
  /** Direction relative to the current allocation (the policy's ScaleDirection). */
  direction: "up" | "down" | "none";
}

/** Where a pool lives in the cluster and how it is actuated. */
export interface PoolTarget {
  pool: string;
  mode: ActuationMode;
  kind: "Deployment" | "StatefulSet";
  namespace: string;
  /** Workload name. */
  name: string;
  /** Container whose resources are managed; default: the first container. */
  container?: string;
  /** HPA managing the workload (`hpa-floor` mode). Default: the workload's name. */
  hpaName?: string;
}

/** What one actuation of a decision did. */
export type ActuationOutcome =
  /** Shadow mode: recorded and reported, nothing patched. */
  | "shadow"
  /** Patched (replicas, resources, HPA floor or pods resized). */
  | "applied"
  /** The cluster already matched the decision: no patch sent. */
  | "unchanged"
  /** 422: the server refused the change; the decision was dropped. */
  | "invalid"
  /** Server-side apply conflict with another field manager; not forced. */
  | "field-conflict"
  /** 403: RBAC denies a request the mode needs. */
  | "forbidden"
  /** 404: the workload (or HPA) is gone; the pool is no longer acted on. */
  | "gone"
  /** 409 retries exhausted. */
  | "conflict"
  /** Dropped: the pool is stopped (gone) or the actuator is stopping. */
  | "skipped";
