// The actuator: each pool's decision goes to Kubernetes by the pool's mode (types.ts), through a
// per-object single-flight queue (queue.ts). Failures are classified (errors.ts) and handled per
// class: 409 re-read and retry; SSA conflict reported with the owner, never forced by default;
// 422 dropped with the server's message; 403 reported once with the missing rule; 429/5xx and
// no answer retried after Retry-After (or an exponential backoff), keeping the current
// allocation meanwhile; 404 stops acting on the pool and says so.
import type { Logger } from "pino";
import { createLogger } from "../../obs/logger.ts";
import { cpuQuantity, FIELD_MANAGER, memoryQuantity, type KubeClient, type ScaleState } from "./client.ts";
import {
  ApiThrottledError, FieldManagerConflictError, InvalidDecisionError, KubeRequestError, KubeUnreachableError,
  RbacForbiddenError, ResourceVersionConflictError, WorkloadGoneError,
} from "./errors.ts";
import type { AllocatorMetrics } from "./metrics.ts";
import { parseQuantity } from "./quantity.ts";
import { SingleFlightQueue, type RunResult } from "./queue.ts";
import type { ActuationOutcome, DesiredPoolState, PoolTarget } from "./types.ts";

/** Default number of re-reads after 409 resourceVersion conflicts before a decision is given up. */
export const DEFAULT_MAX_CONFLICT_RETRIES = 5;
/** Default first backoff after 429/5xx without Retry-After, or no answer, ms (doubles per attempt). */
export const DEFAULT_BACKOFF_BASE_MS = 250;
/** Default longest backoff, ms. */
export const DEFAULT_BACKOFF_MAX_MS = 30_000;

/** The workload has no container of the configured name. */
export class ContainerNotFoundError extends Error {
  override name = "ContainerNotFoundError";
  constructor(readonly pool: string, readonly container: string, readonly workload: string, readonly available: string[]) {
    super(`pool ${pool}: workload ${workload} has no container "${container}" (containers: ${available.join(", ") || "none"})`);
  }
}

export interface ActuatorOptions {
  /** Kubernetes calls. */
  client: KubeClient;
  /** Metrics; default none. */
  metrics?: AllocatorMetrics;
  /** Logger; default pino "allocator". */
  log?: Logger;
  /** Take fields owned by another field manager (`force=true`) instead of reporting the conflict. Default false. */
  forceConflicts?: boolean;
  /** Re-reads after 409 resourceVersion conflicts per decision. Default {@link DEFAULT_MAX_CONFLICT_RETRIES}. */
  maxConflictRetries?: number;
  /** First backoff without Retry-After, ms. Default {@link DEFAULT_BACKOFF_BASE_MS}. */
  backoffBaseMs?: number;
  /** Longest backoff, ms (also caps Retry-After). Default {@link DEFAULT_BACKOFF_MAX_MS}. */
  backoffMaxMs?: number;
  /** Record decisions and changes as Kubernetes Events on the workload. Default true. */
  events?: boolean;
  /** Called after each actuation (tests, benchmarks). */
  onOutcome?: (pool: string, outcome: ActuationOutcome, error?: Error) => void;
}

/** What the actuator knows about one pool. */
export interface PoolActuationStatus {
  pool: string;
  mode: PoolTarget["mode"];
  /** ok; backoff (429/5xx); unreachable (no answer); forbidden; gone; field-conflict; invalid. */
  state: "ok" | "backoff" | "unreachable" | "forbidden" | "gone" | "field-conflict" | "invalid";
  /** Replicas the workload runs, as last read (undefined before the first read). */
  currentReplicas: number | undefined;
  /** The last decision's replicas that reached the cluster (or matched it). */
  appliedReplicas: number | undefined;
  lastOutcome: ActuationOutcome | undefined;
  /** The last error's message, if the last actuation failed. */
  lastError: string | undefined;
}

interface Job {
  target: PoolTarget;
  desired: DesiredPoolState;
}

/** See the module comment. */
export class Actuator {
  private readonly targets = new Map<string, PoolTarget>();
  private readonly status = new Map<string, PoolActuationStatus>();
  /** The last message logged per pool, so a repeated failure is logged once, not every tick. */
  private readonly lastReported = new Map<string, string>();
  /** Replicas of the last Event per pool (shadow mode records a decision once, not every tick). */
  private readonly lastEvent = new Map<string, string>();
  private readonly queue: SingleFlightQueue<Job>;
  private readonly log: Logger;
  private readonly maxConflictRetries: number;
  private readonly backoffBaseMs: number;
  private readonly backoffMaxMs: number;

  constructor(private readonly opts: ActuatorOptions) {
    this.log = opts.log ?? createLogger({ name: "allocator" });
    this.maxConflictRetries = opts.maxConflictRetries ?? DEFAULT_MAX_CONFLICT_RETRIES;
    this.backoffBaseMs = opts.backoffBaseMs ?? DEFAULT_BACKOFF_BASE_MS;
    this.backoffMaxMs = opts.backoffMaxMs ?? DEFAULT_BACKOFF_MAX_MS;
    this.queue = new SingleFlightQueue<Job>({
      run: (_key, job, attempt) => this.run(job, attempt),
      onError: (err, key) => this.log.error({ err, key }, "actuation failed unexpectedly"),
    });
  }

  /**
   * Sets the pools acted on. A pool whose target changed (or is new) is acted on again even if it
   * was gone; when its workload is the same one (a mode change), the replicas last read are kept,
   * so the next decision starts from what the workload runs.
   */
  setTargets(targets: PoolTarget[]): void {
    const next = new Map(targets.map((t) => [t.pool, t]));
    for (const [pool, old] of this.targets) {
      const t = next.get(pool);
      if (!t || JSON.stringify(t) !== JSON.stringify(old)) {
        const kept = t && workloadKey(t) === workloadKey(old) ? this.status.get(pool)?.currentReplicas : undefined;
        this.status.delete(pool);
        this.lastReported.delete(pool);
        this.opts.metrics?.poolStopped.set({ pool }, 0);
        if (t && kept !== undefined) this.statusOf(t).currentReplicas = kept;
      }
    }
    this.targets.clear();
    for (const [pool, t] of next) this.targets.set(pool, t);
  }

  /**
   * Reads the replicas a target's workload runs (a pool about to be acted on for the first time),
   * and records them when the pool is a target; undefined when the read fails (the error is
   * logged; the actuation that follows reports it properly).
   */
  async readReplicas(t: PoolTarget): Promise<number | undefined> {
    try {
      const scale = await this.opts.client.getScale(t.kind, t.namespace, t.name);
      if (this.targets.get(t.pool) === t) this.current(t, this.statusOf(t), scale);
      return scale.replicas;
    } catch (err) {
      this.log.warn({ pool: t.pool, workload: `${t.kind} ${t.namespace}/${t.name}`, err: (err as Error).message }, "cannot read the workload's replicas");
      return undefined;
    }
  }

  /**
   * Reads the replicas every target's workload runs now (recorded as its current replicas); the
   * pools whose workload could not be read are missing from the result.
   */
  async readAllReplicas(): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    for (const t of [...this.targets.values()]) {
      const r = await this.readReplicas(t);
      if (r !== undefined) out.set(t.pool, r);
    }
    return out;
  }

  /** Records replicas read before the pool became a target (see {@link readReplicas}). */
  noteReplicas(pool: string, replicas: number): void {
    const t = this.targets.get(pool);
    if (t && this.statusOf(t).currentReplicas === undefined) this.statusOf(t).currentReplicas = replicas;
  }

  /** Pools' actuation status. */
  statuses(): PoolActuationStatus[] {
    return [...this.targets.values()].map((t) => this.statusOf(t));
  }

  statusOf(t: PoolTarget): PoolActuationStatus {
    let s = this.status.get(t.pool);
    if (!s) this.status.set(t.pool, (s = { pool: t.pool, mode: t.mode, state: "ok", currentReplicas: undefined, appliedReplicas: undefined, lastOutcome: undefined, lastError: undefined }));
    return s;
  }

  /** The queue's counters (single-flight and coalescing evidence). */
  get queueStats() {
    return this.queue.stats;
  }

  /**
   * Hands a decision to its pool's object queue. Returns "skipped" for an unknown pool or one
   * that is no longer acted on (gone), else how the queue took it.
   */
  submit(desired: DesiredPoolState): "started" | "queued" | "replaced" | "skipped" {
    const target = this.targets.get(desired.pool);
    if (!target) return "skipped";
    this.opts.metrics?.recordDecision(desired);
    const s = this.statusOf(target);
    if (s.state === "gone") {
      this.opts.metrics?.actuations.inc({ pool: target.pool, mode: target.mode, outcome: "skipped" });
      return "skipped";
    }
    const r = this.queue.submit(objectKey(target), { target, desired });
    if (r === "replaced") this.opts.metrics?.decisionsCoalesced.inc();
    return r;
  }

  /** Resolves when no request is in flight or waiting. */
  idle(): Promise<void> {
    return this.queue.idle();
  }

  /** Drops pending decisions and waits for the requests in flight. */
  stop(): Promise<void> {
    return this.queue.stop();
  }

  private report(pool: string, level: "info" | "warn" | "error", obj: Record<string, unknown>, msg: string): void {
    const key = `${level}:${msg}:${String(obj.error ?? "")}`;
    if (this.lastReported.get(pool) === key) {
      this.log.debug({ pool, ...obj }, msg);
      return;
    }
    this.lastReported.set(pool, key);
    this.log[level]({ pool, ...obj }, msg);
  }

  private backoffMs(attempt: number, retryAfterMs: number | undefined): number {
    if (retryAfterMs !== undefined) return Math.min(this.backoffMaxMs, retryAfterMs);
    const exp = Math.min(this.backoffMaxMs, this.backoffBaseMs * 2 ** Math.min(attempt, 20));
    return exp / 2 + Math.random() * (exp / 2); // jitter: instances do not retry in step
  }

  private async run(job: Job, attempt: number): Promise<RunResult> {
    const { target, desired } = job;
    const s = this.statusOf(target);
    const m = this.opts.metrics;
    const done = (outcome: ActuationOutcome, err?: Error) => {
      s.lastOutcome = outcome;
      m?.actuations.inc({ pool: target.pool, mode: target.mode, outcome });
      this.opts.onOutcome?.(target.pool, outcome, err);
    };
    try {
      const outcome = await this.actuate(target, desired, s);
      s.state = "ok";
      s.lastError = undefined;
      if (outcome !== "shadow") s.appliedReplicas = desired.replicas;
      if (this.lastReported.has(target.pool) && !this.lastReported.get(target.pool)!.startsWith("info")) this.report(target.pool, "info", {}, "actuation recovered");
      done(outcome);
      return;
    } catch (e) {
      const err = e as Error;
      m?.actuationErrors.inc({ pool: target.pool, error: err.name });
      s.lastError = err.message;
      const where = `${target.kind} ${target.namespace}/${target.name}`;
      if (err instanceof ApiThrottledError || err instanceof KubeUnreachableError) {
        const unreachable = err instanceof KubeUnreachableError;
        s.state = unreachable ? "unreachable" : "backoff";
        const delayMs = this.backoffMs(attempt, err instanceof ApiThrottledError ? err.retryAfterMs : undefined);
        this.report(target.pool, "warn", { error: err.name, code: err.code, retryInMs: Math.round(delayMs), workload: where }, unreachable ? "Kubernetes API unreachable: keeping the current allocation, retrying" : "Kubernetes API asked to back off: retrying after the wait");
        this.opts.onOutcome?.(target.pool, "skipped", err);
        return { retryAfterMs: delayMs };
      }
      if (err instanceof WorkloadGoneError) {
        s.state = "gone";
        m?.poolStopped.set({ pool: target.pool }, 1);
        this.report(target.pool, "error", { error: err.name, workload: where, request: err.request }, `pool ${target.pool}: ${err.request.resource} "${err.request.name}" in namespace "${err.request.namespace}" is gone: no longer acting on this pool until its config changes`);
        done("gone", err);
        return;
      }
      if (err instanceof RbacForbiddenError) {
        s.state = "forbidden";
        this.report(target.pool, "error", { error: err.name, missingRule: err.missingRule, workload: where }, err.message);
        done("forbidden", err);
        return;
      }
      if (err instanceof InvalidDecisionError) {
        s.state = "invalid";
        this.log.warn({ pool: target.pool, error: err.name, serverMessage: err.serverMessage, replicas: desired.replicas, workload: where }, "decision refused by the API server (422): dropped");
        await this.event(target, "Warning", "ForesightDecisionInvalid", `decision dropped: ${err.serverMessage}`);
        done("invalid", err);
        return;
      }
      if (err instanceof FieldManagerConflictError) {
        s.state = "field-conflict";
        this.report(target.pool, "warn", { error: err.name, owners: err.owners, fieldManager: FIELD_MANAGER, workload: where }, err.message);
        if (this.lastEvent.get(`${target.pool}:conflict`) !== err.message) {
          this.lastEvent.set(`${target.pool}:conflict`, err.message);
          await this.event(target, "Warning", "ForesightFieldConflict", err.message);
        }
        done("field-conflict", err);
        return;
      }
      if (err instanceof ResourceVersionConflictError) {
        this.report(target.pool, "warn", { error: err.name, retries: this.maxConflictRetries, workload: where }, "resourceVersion conflicts persisted: decision given up; the next one retries");
        done("conflict", err);
        return;
      }
      this.report(target.pool, "error", { err, workload: where }, "actuation failed: decision dropped");
      done("invalid", err);
      return;
    }
  }

  /** Records an Event; a failure to do so is logged, never fails the actuation. */
  private async event(target: PoolTarget, type: "Normal" | "Warning", reason: string, message: string): Promise<void> {
    if (this.opts.events === false) return;
    try {
      await this.opts.client.createEvent(target.kind, target.namespace, target.name, type, reason, message);
    } catch (err) {
      const e = err as KubeRequestError;
      this.report(`${target.pool}:event`, "warn", { error: e.name }, `cannot record Event: ${e.message}`);
    }
  }

  private async actuate(target: PoolTarget, d: DesiredPoolState, s: PoolActuationStatus): Promise<ActuationOutcome> {
    switch (target.mode) {
      case "shadow": {
        const scale = await this.opts.client.getScale(target.kind, target.namespace, target.name);
        this.current(target, s, scale);
        const key = `${d.replicas}`;
        if (this.lastEvent.get(target.pool) !== key) {
          this.lastEvent.set(target.pool, key);
          await this.event(target, "Normal", "ForesightShadowDecision", `shadow: would set replicas ${scale.replicas} -> ${d.replicas} (predictive ${d.predictiveReplicas}, reactive floor ${d.reactiveReplicas}): ${d.reason}`);
        }
        return "shadow";
      }
      case "scale": {
        const [scaled, from] = await this.scaleReplicas(target, d.replicas, s);
        const resourced = await this.applyResources(target, d);
        if (scaled) await this.event(target, "Normal", "ForesightScaled", `replicas ${from} -> ${d.replicas} (predictive ${d.predictiveReplicas}, reactive floor ${d.reactiveReplicas}): ${d.reason}`);
        return scaled || resourced ? "applied" : "unchanged";
      }
      case "hpa-floor":
        return (await this.hpaFloor(target, d)) ? "applied" : "unchanged";
      case "resize": {
        const [scaled] = await this.scaleReplicas(target, d.replicas, s);
        const resized = await this.resizePods(target, d);
        return scaled || resized ? "applied" : "unchanged";
      }
    }
  }

  private current(target: PoolTarget, s: PoolActuationStatus, scale: ScaleState): void {
    s.currentReplicas = scale.replicas;
    this.opts.metrics?.replicasCurrent.set({ pool: target.pool }, scale.replicas);
  }

  /** Reads the scale, patches it conditionally on its resourceVersion; 409 → re-read and retry. */
  private async scaleReplicas(target: PoolTarget, replicas: number, s: PoolActuationStatus): Promise<[changed: boolean, from: number]> {
    for (let i = 0; ; i++) {
      const scale = await this.opts.client.getScale(target.kind, target.namespace, target.name);
      this.current(target, s, scale);
      if (scale.replicas === replicas) return [false, scale.replicas];
      try {
        const after = await this.opts.client.patchScale(target.kind, target.namespace, target.name, replicas, scale.resourceVersion);
        this.current(target, s, after);
        return [true, scale.replicas];
      } catch (err) {
        if (!(err instanceof ResourceVersionConflictError) || i >= this.maxConflictRetries) throw err;
        this.opts.metrics?.conflictRetries.inc({ pool: target.pool });
      }
    }
  }

  /** Server-side apply of the container's requests and template annotations, when they differ. */
  private async applyResources(target: PoolTarget, d: DesiredPoolState): Promise<boolean> {
    if (d.cpuMillicores === undefined && d.memoryMiB === undefined && !d.annotations) return false;
    const w = await this.opts.client.getWorkload(target.kind, target.namespace, target.name);
    const containers = w.spec?.template?.spec?.containers ?? [];
    const name = target.container ?? containers[0]?.name;
    const c = containers.find((x) => x.name === name);
    if (!c || !name) throw new ContainerNotFoundError(target.pool, name ?? "(first)", `${target.kind} ${target.namespace}/${target.name}`, containers.map((x) => x.name));
    const req = c.resources?.requests ?? {};
    const have = w.spec?.template?.metadata?.annotations ?? {};
    const same =
      (d.cpuMillicores === undefined || parseQuantity(req.cpu) === d.cpuMillicores / 1000) &&
      (d.memoryMiB === undefined || parseQuantity(req.memory) === d.memoryMiB * 2 ** 20) &&
      Object.entries(d.annotations ?? {}).every(([k, v]) => have[k] === v);
    if (same) return false;
    await this.opts.client.applyContainerResources(
      target.kind, target.namespace, target.name, name,
      { cpu: d.cpuMillicores !== undefined ? cpuQuantity(d.cpuMillicores) : undefined, memory: d.memoryMiB !== undefined ? memoryQuantity(d.memoryMiB) : undefined },
      d.annotations, this.opts.forceConflicts ?? false,
    );
    return true;
  }

  /** Sets the HPA's minReplicas to the predictive requirement (within 1..maxReplicas); 409 → re-read and retry. */
  private async hpaFloor(target: PoolTarget, d: DesiredPoolState): Promise<boolean> {
    const hpa = target.hpaName ?? target.name;
    for (let i = 0; ; i++) {
      const h = await this.opts.client.getHpa(target.namespace, hpa);
      const floor = Math.min(h.maxReplicas, Math.max(1, Math.round(d.predictiveReplicas)));
      if (floor < d.predictiveReplicas) this.report(target.pool, "warn", { predictive: d.predictiveReplicas, maxReplicas: h.maxReplicas }, `HPA ${hpa}: predictive requirement above the HPA's maxReplicas; floor capped`);
      if (h.minReplicas === floor) return false;
      try {
        await this.opts.client.patchHpaMinReplicas(target.namespace, hpa, floor, h.resourceVersion);
        return true;
      } catch (err) {
        if (!(err instanceof ResourceVersionConflictError) || i >= this.maxConflictRetries) throw err;
        this.opts.metrics?.conflictRetries.inc({ pool: target.pool });
      }
    }
  }

  /** In-place resize of the running pods whose requests differ (pods/resize). */
  private async resizePods(target: PoolTarget, d: DesiredPoolState): Promise<boolean> {
    if (d.cpuMillicores === undefined && d.memoryMiB === undefined) return false;
    const w = await this.opts.client.getWorkload(target.kind, target.namespace, target.name);
    const labels = w.spec?.selector?.matchLabels ?? {};
    const selector = Object.entries(labels).map(([k, v]) => `${k}=${v}`).join(",");
    const containers = w.spec?.template?.spec?.containers ?? [];
    const name = target.container ?? containers[0]?.name;
    if (!name || !containers.some((c) => c.name === name)) throw new ContainerNotFoundError(target.pool, name ?? "(first)", `${target.kind} ${target.namespace}/${target.name}`, containers.map((x) => x.name));
    const cpu = d.cpuMillicores !== undefined ? cpuQuantity(d.cpuMillicores) : undefined;
    const memory = d.memoryMiB !== undefined ? memoryQuantity(d.memoryMiB) : undefined;
    let changed = false;
    for (const pod of await this.opts.client.listPods(target.namespace, selector)) {
      const r = pod.requests.get(name);
      const same = (cpu === undefined || parseQuantity(r?.cpu) === parseQuantity(cpu)) && (memory === undefined || parseQuantity(r?.memory) === parseQuantity(memory));
      if (same) continue;
      try {
        await this.opts.client.resizePod(target.namespace, pod.name, name, { cpu, memory });
        changed = true;
      } catch (err) {
        // A pod that went away between list and resize (scaled down, evicted) is no reason to stop.
        if (err instanceof WorkloadGoneError) continue;
        throw err;
      }
    }
    return changed;
  }
}

/** The workload a pool's replicas are read from. */
function workloadKey(t: PoolTarget): string {
  return `${t.kind}/${t.namespace}/${t.name}`;
}

/** The object a pool's requests go to: one queue per object. */
export function objectKey(t: PoolTarget): string {
  return t.mode === "hpa-floor" ? `autoscaling/horizontalpodautoscalers/${t.namespace}/${t.hpaName ?? t.name}` : `apps/${t.kind}/${t.namespace}/${t.name}`;
}
