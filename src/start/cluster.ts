// Where `foresight start`'s allocator acts: the in-process Kubernetes API test server (default), or
// the cluster of a kubeconfig the user names with --kubeconfig. On a cluster the pools' workloads
// are read once before anything starts, so a missing Deployment or a refused credential stops the
// run with a message instead of a run whose allocator only reports errors.
import { existsSync } from "node:fs";
import { KubeConfig } from "@kubernetes/client-node";
import { KubeClient, KubeUnreachableError, WorkloadGoneError } from "../allocator/kube/index.ts";
import { ClusterAccessError, KubeconfigError, WorkloadMissingError } from "./preconditions.ts";

/** How the summary names the in-process test server. */
export const SIM_TARGET = "test Kubernetes API server";
/** Longest a workload read may take before the cluster counts as unreachable, ms. */
export const WORKLOAD_CHECK_TIMEOUT_MS = 10_000;

/** Loads the kubeconfig as the allocator will (client-node), with `context` selected when given. */
export function loadClusterConfig(kubeconfigPath: string, context?: string): KubeConfig {
  if (!existsSync(kubeconfigPath)) throw new KubeconfigError(`kubeconfig not found at ${kubeconfigPath}`);
  const kc = new KubeConfig();
  try {
    kc.loadFromFile(kubeconfigPath);
    if (context) kc.setCurrentContext(context);
  } catch (err) {
    throw new KubeconfigError(`cannot load kubeconfig ${kubeconfigPath}: ${(err as Error).message}`, { cause: err });
  }
  if (context && !kc.getContextObject(context)) throw new KubeconfigError(`kubeconfig ${kubeconfigPath} has no context "${context}"`);
  if (!kc.getCurrentCluster()) throw new KubeconfigError(`kubeconfig ${kubeconfigPath} names no cluster for its current context`);
  return kc;
}

/**
 * Reads each pool's Deployment (`<namespace>/<pool>`) through the real client; throws
 * {@link WorkloadMissingError} or {@link ClusterAccessError}. Returns how the summary names the cluster.
 */
export async function requireWorkloads(cluster: { kubeconfigPath: string; context?: string }, namespace: string, pools: readonly string[]): Promise<string> {
  const kc = loadClusterConfig(cluster.kubeconfigPath, cluster.context);
  const server = kc.getCurrentCluster()!.server;
  const client = new KubeClient(kc);
  for (const name of pools) {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new ClusterAccessError(`${server} did not answer within ${WORKLOAD_CHECK_TIMEOUT_MS} ms`)), WORKLOAD_CHECK_TIMEOUT_MS);
    });
    try {
      await Promise.race([client.getScale("Deployment", namespace, name), timeout]);
    } catch (err) {
      if (err instanceof WorkloadGoneError) throw new WorkloadMissingError(namespace, name, server);
      if (err instanceof ClusterAccessError) throw err;
      const why = err instanceof KubeUnreachableError ? "is unreachable" : "refused the request";
      throw new ClusterAccessError(`${server} ${why} (reading Deployment ${namespace}/${name}): ${(err as Error).message}`, { cause: err });
    } finally {
      clearTimeout(timer);
    }
  }
  return `cluster ${server}, kubeconfig ${cluster.kubeconfigPath}${cluster.context ? `, context ${cluster.context}` : ""}`;
}
