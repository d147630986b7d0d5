// Required resources of a pool from its demand: replicas from the cost model and target
// utilization, CPU and memory requests, bandwidth annotations. Pure.

/** The cost model of a pool (config `pools[].costModel`). */
export interface CostModel {
  /** Requests/s one replica serves at full utilization. */
  requestsPerSecPerReplica: number;
  /** Tokens/s one replica serves at full utilization (LLM pools); absent = requests only. */
  tokensPerSecPerReplica?: number;
  /** Tokens per request, when the demand carries requests only. */
  tokensPerRequest?: number;
  /** CPU one replica requests, millicores. */
  cpuPerReplicaMillicores: number;
  /** Memory one replica requests, MiB. */
  memoryPerReplicaMiB: number;
}

/** Bandwidth settings (config `pools[].bandwidth`). */
export interface BandwidthConfig {
  /** Fixed ingress per pod, bits/s quantity ("10M"). */
  ingress?: string;
  /** Fixed egress per pod, bits/s quantity. */
  egress?: string;
  /** Bytes per request in; derives ingress from a replica's request rate. */
  ingressBytesPerRequest?: number;
  /** Bytes per response out; derives egress from a replica's request rate. */
  egressBytesPerRequest?: number;
}

/** What {@link calculateRequiredResources} reads of a pool's config. */
export interface ResourcePoolConfig {
  costModel: CostModel;
  /** Utilization replicas aim at, in (0, 1]. */
  targetUtilization: number;
  /** Extra capacity over the demand, fraction (0.1 = +10 %). */
  headroom: number;
  bandwidth?: BandwidthConfig;
}

/** Demand to cover (usually the pool's upper bound at the chosen horizon). */
export interface DemandToCover {
  requestsPerSec: number;
  /** Tokens/s; absent = requests × costModel.tokensPerRequest when set, else not a constraint. */
  tokensPerSec?: number;
}

/** Pod annotations the bandwidth CNI plugin reads. */
export const INGRESS_BANDWIDTH_ANNOTATION = "kubernetes.io/ingress-bandwidth";
export const EGRESS_BANDWIDTH_ANNOTATION = "kubernetes.io/egress-bandwidth";

/** The resources a demand needs. */
export interface RequiredResources {
  /** Replicas covering the demand (not yet bounded by min/max). */
  replicas: number;
  /** Replicas the request rate alone needs. */
  replicasByRequests: number;
  /** Replicas the token rate alone needs (0 when tokens are not a constraint). */
  replicasByTokens: number;
  /** CPU request per replica, millicores. */
  cpuMillicores: number;
  /** Memory request per replica, MiB. */
  memoryMiB: number;
  /** Totals over `replicas`. */
  totalCpuMillicores: number;
  totalMemoryMiB: number;
  /** Pod annotations (bandwidth), empty when not configured. */
  annotations: Record<string, string>;
}

/** Bad resource input. */
export class ResourceInputError extends Error {
  override name = "ResourceInputError";
}

// Replicas are ceil() of a ratio; a float residue (7.000000000001) must not add a replica.
const EPS = 1e-9;

/** Formats bits/s as a Kubernetes quantity with the smallest unit keeping it an integer ≥ 1 ("12M"). */
export function bitsQuantity(bitsPerSec: number): string {
  const units: [string, number][] = [["G", 1e9], ["M", 1e6], ["k", 1e3]];
  for (const [u, f] of units) if (bitsPerSec >= f * 10) return `${Math.ceil(bitsPerSec / f)}${u}`;
  return `${Math.max(1, Math.ceil(bitsPerSec))}`;
}

/**
 * Replicas, CPU, memory and bandwidth annotations for `demand`: replicas = ceil(demand × (1 +
 * headroom) / (capacity × targetUtilization)), the larger of the request and token constraints.
 * A derived bandwidth annotation is what one replica moves at full utilization, with headroom.
 */
export function calculateRequiredResources(demand: DemandToCover, pool: ResourcePoolConfig): RequiredResources {
  const c = pool.costModel;
  if (!(demand.requestsPerSec >= 0) || !Number.isFinite(demand.requestsPerSec)) throw new ResourceInputError(`requestsPerSec must be a finite number >= 0 (got ${demand.requestsPerSec})`);
  if (!(c.requestsPerSecPerReplica > 0)) throw new ResourceInputError(`costModel.requestsPerSecPerReplica must be > 0 (got ${c.requestsPerSecPerReplica})`);
  if (!(pool.targetUtilization > 0 && pool.targetUtilization <= 1)) throw new ResourceInputError(`targetUtilization must be in (0, 1] (got ${pool.targetUtilization})`);
  if (!(pool.headroom >= 0)) throw new ResourceInputError(`headroom must be >= 0 (got ${pool.headroom})`);
  const scale = (1 + pool.headroom) / pool.targetUtilization;
  const byRequests = Math.max(0, Math.ceil((demand.requestsPerSec * scale) / c.requestsPerSecPerReplica - EPS));
  let byTokens = 0;
  if (c.tokensPerSecPerReplica !== undefined) {
    const tokens = demand.tokensPerSec ?? (c.tokensPerRequest !== undefined ? demand.requestsPerSec * c.tokensPerRequest : undefined);
    if (tokens !== undefined) {
      if (!(tokens >= 0) || !Number.isFinite(tokens)) throw new ResourceInputError(`tokensPerSec must be a finite number >= 0 (got ${tokens})`);
      byTokens = Math.max(0, Math.ceil((tokens * scale) / c.tokensPerSecPerReplica - EPS));
    }
  }
  const replicas = Math.max(byRequests, byTokens);
  const annotations: Record<string, string> = {};
  const bw = pool.bandwidth;
  if (bw) {
    const perReplicaRate = c.requestsPerSecPerReplica * (1 + pool.headroom);
    const ingress = bw.ingress ?? (bw.ingressBytesPerRequest !== undefined ? bitsQuantity(perReplicaRate * bw.ingressBytesPerRequest * 8) : undefined);
    const egress = bw.egress ?? (bw.egressBytesPerRequest !== undefined ? bitsQuantity(perReplicaRate * bw.egressBytesPerRequest * 8) : undefined);
    if (ingress !== undefined) annotations[INGRESS_BANDWIDTH_ANNOTATION] = ingress;
    if (egress !== undefined) annotations[EGRESS_BANDWIDTH_ANNOTATION] = egress;
  }
  return {
    replicas,
    replicasByRequests: byRequests,
    replicasByTokens: byTokens,
    cpuMillicores: c.cpuPerReplicaMillicores,
    memoryMiB: c.memoryPerReplicaMiB,
    totalCpuMillicores: replicas * c.cpuPerReplicaMillicores,
    totalMemoryMiB: replicas * c.memoryPerReplicaMiB,
    annotations,
  };
}

/** Seconds ahead a decision must see: pod start-up plus one decision period. */
export function requiredHorizonSec(podStartDelaySec: number, decisionIntervalMs: number): number {
  return podStartDelaySec + decisionIntervalMs / 1000;
}

/**
 * Index of the horizon to size from: the shortest of `horizonsSec` that covers `neededSec`, else
 * the longest (the best available). Throws on an empty list.
 */
export function pickHorizon(horizonsSec: readonly number[], neededSec: number): number {
  if (horizonsSec.length === 0) throw new ResourceInputError("no forecast horizons to choose from");
  let best = -1;
  let longest = 0;
  for (let i = 0; i < horizonsSec.length; i++) {
    if (horizonsSec[i] >= neededSec && (best < 0 || horizonsSec[i] < horizonsSec[best])) best = i;
    if (horizonsSec[i] > horizonsSec[longest]) longest = i;
  }
  return best >= 0 ? best : longest;
}
