// The Kubernetes requests the actuator makes, through @kubernetes/client-node, each classified
// into one error class (errors.ts). Patch content types are set per call with setHeaderOptions;
// server-side apply always uses one field manager and never sends resourceVersion or managedFields.
import {
  AppsV1Api, AutoscalingV2Api, CoreV1Api, KubeConfig, PatchStrategy, setHeaderOptions,
  type V1Container, type V1Deployment, type V1StatefulSet,
} from "@kubernetes/client-node";
import { classifyKubeError, type KubeRequest } from "./errors.ts";

/** Field manager of every server-side apply Foresight makes. */
export const FIELD_MANAGER = "foresight";

/** Component named as the source of Foresight's Events. */
export const EVENT_SOURCE = "foresight-allocator";

export interface ScaleState {
  replicas: number;
  resourceVersion: string;
  /** Label selector of the workload's pods (status.selector). */
  selector: string;
}

export interface HpaState {
  minReplicas: number;
  maxReplicas: number;
  resourceVersion: string;
}

export interface PodState {
  name: string;
  /** Requests of each container, by container name. */
  requests: Map<string, { cpu?: string; memory?: string }>;
}

export type WorkloadKind = "Deployment" | "StatefulSet";

/** One Kubernetes call: runs it and rethrows its failure classified. */
async function call<T>(req: KubeRequest, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw classifyKubeError(err, req);
  }
}

const resourceOf = (kind: WorkloadKind) => (kind === "Deployment" ? "deployments" : "statefulsets");

/** Typed wrapper over the calls the actuator makes. */
export class KubeClient {
  private readonly apps: AppsV1Api;
  private readonly autoscaling: AutoscalingV2Api;
  private readonly core: CoreV1Api;
  private eventSeq = 0;

  constructor(readonly kubeConfig: KubeConfig) {
    this.apps = kubeConfig.makeApiClient(AppsV1Api);
    this.autoscaling = kubeConfig.makeApiClient(AutoscalingV2Api);
    this.core = kubeConfig.makeApiClient(CoreV1Api);
  }

  async getScale(kind: WorkloadKind, namespace: string, name: string): Promise<ScaleState> {
    const req: KubeRequest = { verb: "get", group: "apps", resource: resourceOf(kind), subresource: "scale", namespace, name };
    const s = await call(req, () => (kind === "Deployment" ? this.apps.readNamespacedDeploymentScale({ name, namespace }) : this.apps.readNamespacedStatefulSetScale({ name, namespace })));
    return { replicas: s.spec?.replicas ?? 0, resourceVersion: s.metadata?.resourceVersion ?? "", selector: s.status?.selector ?? "" };
  }

  /** Sets replicas through the scale subresource; `resourceVersion` makes it conditional (409 if it moved). */
  async patchScale(kind: WorkloadKind, namespace: string, name: string, replicas: number, resourceVersion: string): Promise<ScaleState> {
    const req: KubeRequest = { verb: "patch", group: "apps", resource: resourceOf(kind), subresource: "scale", namespace, name };
    const body = { metadata: { resourceVersion }, spec: { replicas } };
    const opts = setHeaderOptions("Content-Type", PatchStrategy.MergePatch);
    const s = await call(req, () =>
      kind === "Deployment"
        ? this.apps.patchNamespacedDeploymentScale({ name, namespace, body, fieldManager: FIELD_MANAGER }, opts)
        : this.apps.patchNamespacedStatefulSetScale({ name, namespace, body, fieldManager: FIELD_MANAGER }, opts),
    );
    return { replicas: s.spec?.replicas ?? 0, resourceVersion: s.metadata?.resourceVersion ?? "", selector: s.status?.selector ?? "" };
  }

  async getWorkload(kind: WorkloadKind, namespace: string, name: string): Promise<V1Deployment | V1StatefulSet> {
    const req: KubeRequest = { verb: "get", group: "apps", resource: resourceOf(kind), subresource: "", namespace, name };
    return call(req, () => (kind === "Deployment" ? this.apps.readNamespacedDeployment({ name, namespace }) : this.apps.readNamespacedStatefulSet({ name, namespace })));
  }

  /**
   * Server-side apply of one container's requests (and pod-template annotations) with field
   * manager `foresight`. `force` takes the fields from their owners: off unless configured.
   */
  async applyContainerResources(
    kind: WorkloadKind, namespace: string, name: string, container: string,
    requests: { cpu?: string; memory?: string }, annotations: Record<string, string> | undefined, force: boolean,
  ): Promise<void> {
    const req: KubeRequest = { verb: "patch", group: "apps", resource: resourceOf(kind), subresource: "", namespace, name };
    const c: V1Container = { name: container, resources: { requests: Object.fromEntries(Object.entries(requests).filter(([, v]) => v !== undefined)) as Record<string, string> } } as V1Container;
    const body = {
      apiVersion: "apps/v1",
      kind,
      metadata: { name, namespace },
      spec: { template: { ...(annotations && Object.keys(annotations).length ? { metadata: { annotations } } : {}), spec: { containers: [c] } } },
    };
    const opts = setHeaderOptions("Content-Type", PatchStrategy.ServerSideApply);
    await call(req, () =>
      kind === "Deployment"
        ? this.apps.patchNamespacedDeployment({ name, namespace, body, fieldManager: FIELD_MANAGER, force: force || undefined }, opts)
        : this.apps.patchNamespacedStatefulSet({ name, namespace, body, fieldManager: FIELD_MANAGER, force: force || undefined }, opts),
    );
  }

  async getHpa(namespace: string, name: string): Promise<HpaState> {
    const req: KubeRequest = { verb: "get", group: "autoscaling", resource: "horizontalpodautoscalers", subresource: "", namespace, name };
    const h = await call(req, () => this.autoscaling.readNamespacedHorizontalPodAutoscaler({ name, namespace }));
    return { minReplicas: h.spec?.minReplicas ?? 1, maxReplicas: h.spec?.maxReplicas ?? 1, resourceVersion: h.metadata?.resourceVersion ?? "" };
  }

  /** Sets the HPA's spec.minReplicas, conditional on `resourceVersion`. */
  async patchHpaMinReplicas(namespace: string, name: string, minReplicas: number, resourceVersion: string): Promise<void> {
    const req: KubeRequest = { verb: "patch", group: "autoscaling", resource: "horizontalpodautoscalers", subresource: "", namespace, name };
    const body = { metadata: { resourceVersion }, spec: { minReplicas } };
    await call(req, () => this.autoscaling.patchNamespacedHorizontalPodAutoscaler({ name, namespace, body, fieldManager: FIELD_MANAGER }, setHeaderOptions("Content-Type", PatchStrategy.MergePatch)));
  }

  async listPods(namespace: string, labelSelector: string): Promise<PodState[]> {
    const req: KubeRequest = { verb: "list", group: "", resource: "pods", subresource: "", namespace, name: "" };
    const list = await call(req, () => this.core.listNamespacedPod({ namespace, labelSelector }));
    return list.items.map((p) => ({
      name: p.metadata?.name ?? "",
      requests: new Map((p.spec?.containers ?? []).map((c) => [c.name, { cpu: c.resources?.requests?.cpu, memory: c.resources?.requests?.memory }])),
    }));
  }

  /** In-place resize of one pod's container requests (pods/resize, strategic merge). */
  async resizePod(namespace: string, name: string, container: string, requests: { cpu?: string; memory?: string }): Promise<void> {
    const req: KubeRequest = { verb: "patch", group: "", resource: "pods", subresource: "resize", namespace, name };
    const body = { spec: { containers: [{ name: container, resources: { requests: Object.fromEntries(Object.entries(requests).filter(([, v]) => v !== undefined)) } }] } };
    await call(req, () => this.core.patchNamespacedPodResize({ name, namespace, body, fieldManager: FIELD_MANAGER }, setHeaderOptions("Content-Type", PatchStrategy.StrategicMergePatch)));
  }

  /** Records a core/v1 Event on a workload (what `kubectl describe` shows). */
  async createEvent(kind: WorkloadKind, namespace: string, name: string, type: "Normal" | "Warning", reason: string, message: string): Promise<void> {
    const req: KubeRequest = { verb: "create", group: "", resource: "events", subresource: "", namespace, name: "" };
    const now = new Date();
    const body = {
      apiVersion: "v1",
      kind: "Event",
      // Event names follow the `<object>.<hex time>` convention of client-go's recorder.
      metadata: { name: `${name}.${(now.getTime() * 1000 + (this.eventSeq++ % 1000)).toString(16)}`, namespace },
      involvedObject: { apiVersion: "apps/v1", kind, name, namespace },
      reason,
      message: message.slice(0, 1024),
      type,
      source: { component: EVENT_SOURCE },
      reportingComponent: EVENT_SOURCE,
      firstTimestamp: now,
      lastTimestamp: now,
      count: 1,
    };
    await call(req, () => this.core.createNamespacedEvent({ namespace, body: body as never }));
  }
}

/** `1500` → "1500m". */
export function cpuQuantity(millicores: number): string {
  return `${Math.round(millicores)}m`;
}

/** `512` → "512Mi". */
export function memoryQuantity(mib: number): string {
  return `${Math.round(mib)}Mi`;
}
