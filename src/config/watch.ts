// Live configuration: watches the KV key and turns each new revision into either an applied
// update (with its changes classified live / restart-required) or a rejection. A rejected
// revision (unparseable JSON, or a document that fails validation once merged onto the lower
// layers) never replaces the running config: it is logged and counted, and the watcher waits
// for the next revision.
import type { NatsConnection } from "@nats-io/transport-node";
import type { KV, KvEntry } from "@nats-io/kv";
import { pino, type Logger } from "pino";
import { Counter, Gauge, register as globalRegistry, type Registry } from "prom-client";
import { ConfigParseError, ConfigValidationError } from "./errors.ts";
import { deepMerge, diffConfigs, type ConfigChange } from "./merge.ts";
import { applyModeOf, type ForesightConfig } from "./schema.ts";
import { ConfigStore, decodeEntry } from "./store.ts";
import { validateConfig } from "./validate.ts";

/** How long an onChange handler may run before a warning is logged, ms (it is still awaited). */
export const DEFAULT_CHANGE_HANDLER_WARN_MS = 10_000;

/** An applied revision. */
export interface ConfigUpdate {
  /** The new effective configuration. */
  config: ForesightConfig;
  /** KV revision it came from. */
  revision: number;
  /** Path-level changes of the effective config against the previous one. */
  changes: ConfigChange[];
  /** Paths among `changes` that take effect only after a restart (see CONFIG_APPLY_MODES). */
  restartRequired: string[];
}

/** Why a revision was not applied (the `reason` label of foresight_config_rejected_total). */
export type ConfigRejectReason = "invalid_json" | "invalid_schema";

/** A revision that was not applied. */
export interface ConfigRejection {
  revision: number;
  reason: ConfigRejectReason;
  error: ConfigParseError | ConfigValidationError;
}

export interface ConfigWatcherOptions {
  /** Connection to watch on. Required. */
  nc: NatsConnection;
  /** KV bucket. Default `DEFAULT_CONFIG.nats.kv.configBucket` (or `base`'s, when set there). */
  bucket?: string;
  /** Key of the document. Default "config". */
  key?: string;
  /** The layers below KV merged (LoadedConfig.base); each revision is merged onto it. Default `{}`. */
  base?: Record<string, unknown>;
  /** Registry the metrics register on. Default prom-client's global registry. */
  registry?: Registry;
  /** Logger for applied and rejected revisions. Default a pino logger on stdout. */
  logger?: Logger;
  /** Called with each applied revision, one at a time, in revision order. */
  onChange?: (update: ConfigUpdate) => void | Promise<void>;
  /** Called with each rejected revision (after it is logged and counted). */
  onReject?: (rejection: ConfigRejection) => void;
  /** Handler run time after which a warning is logged, ms. Default DEFAULT_CHANGE_HANDLER_WARN_MS. */
  changeHandlerWarnMs?: number;
}

function counter(registry: Registry): Counter<"reason"> {
  const name = "foresight_config_rejected_total";
  return (
    (registry.getSingleMetric(name) as Counter<"reason"> | undefined) ??
    new Counter({ name, help: "Config revisions rejected (not applied), by reason", labelNames: ["reason"], registers: [registry] })
  );
}

/** A counter without labels, shared when the registry already has it (two watchers, one process). */
function plainCounter(registry: Registry, name: string, help: string): Counter {
  return (registry.getSingleMetric(name) as Counter | undefined) ?? new Counter({ name, help, registers: [registry] });
}

function gauge(registry: Registry, name: string, help: string): Gauge {
  return (registry.getSingleMetric(name) as Gauge | undefined) ?? new Gauge({ name, help, registers: [registry] });
}

/** Applies the central config live; see the file comment. */
export class ConfigWatcher {
  private cfg!: ForesightConfig;
  private appliedRevision = 0;
  /** Highest revision looked at (applied or rejected), so nothing is handled twice. */
  private seenRevision = 0;
  private startConfig!: ForesightConfig;
  private iter: Awaited<ReturnType<KV["watch"]>> | undefined;
  private loop: Promise<void> = Promise.resolve();
  private stopped = false;
  private readonly base: Record<string, unknown>;
  private readonly log: Logger;
  private readonly rejected: Counter<"reason">;
  private readonly applied: Counter;
  private readonly handlerFailures: Counter;
  private readonly revisionGauge: Gauge;
  private readonly restartPendingGauge: Gauge;

  private constructor(
    private readonly opts: ConfigWatcherOptions,
    private readonly store: ConfigStore,
  ) {
    const registry = opts.registry ?? globalRegistry;
    this.base = opts.base ?? {};
    this.log = (opts.logger ?? pino()).child({ component: "config-watcher", bucket: store.bucket });
    this.rejected = counter(registry);
    this.applied = plainCounter(registry, "foresight_config_applied_total", "Config revisions validated and applied (the one read at start included)");
    this.handlerFailures = plainCounter(
      registry,
      "foresight_config_apply_failures_total",
      "Applied config revisions whose change handler failed (the component may still run the previous settings)",
    );
    this.revisionGauge = gauge(registry, "foresight_config_revision", "KV revision of the applied config (0 = none)");
    this.restartPendingGauge = gauge(
      registry,
      "foresight_config_restart_pending",
      "1 when the applied config changed settings that need a restart, else 0",
    );
  }

  /**
   * Reads the current revision, then watches for newer ones. Resolves once the current config is
   * known. An invalid current revision is rejected like any other: the config is then the base.
   */
  static async start(opts: ConfigWatcherOptions): Promise<ConfigWatcher> {
    const baseBucket = (opts.base?.nats as { kv?: { configBucket?: string } } | undefined)?.kv?.configBucket;
    const store = await ConfigStore.open(opts.nc, { bucket: opts.bucket ?? baseBucket, key: opts.key });
    const w = new ConfigWatcher(opts, store);
    w.cfg = w.startConfig = validateConfig(w.base, "base layers");
    const entry = await store.getEntry();
    if (entry) w.consider(entry, true);
    w.revisionGauge.set(w.appliedRevision);
    w.iter = await store.kvBucket.watch({ key: store.key, resumeFromRevision: w.seenRevision + 1 });
    const iter = w.iter;
    w.loop = (async () => {
      for await (const e of iter) {
        if (w.stopped) break;
        await w.handle(e);
      }
    })().catch((err: unknown) => w.log.error({ err }, "config watch ended with an error"));
    return w;
  }

  /** The running configuration. */
  get config(): ForesightConfig {
    return this.cfg;
  }

  /** KV revision of the running configuration (0 = only the base layers). */
  get revision(): number {
    return this.appliedRevision;
  }

  /** Paths changed since start that need a restart to take effect. */
  get restartPending(): string[] {
    return diffConfigs(this.startConfig, this.cfg)
      .map((c) => c.path)
      .filter((p) => applyModeOf(p) === "restart");
  }

  /** Stops watching and waits for the handler in flight. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.iter?.stop();
    await this.loop;
  }

  private async handle(e: KvEntry): Promise<void> {
    let update: ConfigUpdate | undefined;
    try {
      update = this.consider(e, false);
    } catch (err) {
      // Not a config problem (a bug, or a store failure): keep watching, keep the running config.
      this.log.error({ err, revision: e.revision }, "config revision could not be handled");
      return;
    }
    if (!update || !this.opts.onChange) return;
    const warnMs = this.opts.changeHandlerWarnMs ?? DEFAULT_CHANGE_HANDLER_WARN_MS;
    const warn = setTimeout(
      () => this.log.warn({ revision: update.revision, warnMs }, "config change handler still running"),
      warnMs,
    );
    warn.unref();
    try {
      await this.opts.onChange(update);
    } catch (err) {
      this.handlerFailures.inc();
      this.log.error({ err, revision: update.revision }, `config change handler failed for revision ${update.revision}: ${(err as Error).message}`);
    } finally {
      clearTimeout(warn);
    }
  }

  /** Validates one entry and applies or rejects it; returns the update when applied. */
  private consider(e: KvEntry, initial: boolean): ConfigUpdate | undefined {
    if (e.revision <= this.seenRevision) return undefined;
    this.seenRevision = e.revision;
    let next: ForesightConfig;
    try {
      const doc = e.operation === "PUT" ? decodeEntry(e, this.store.bucket) : {};
      next = validateConfig(deepMerge(this.base, doc), `${this.store.bucket} revision ${e.revision}`);
    } catch (err) {
      if (!(err instanceof ConfigParseError || err instanceof ConfigValidationError)) throw err;
      const reason: ConfigRejectReason = err instanceof ConfigParseError ? "invalid_json" : "invalid_schema";
      this.rejected.inc({ reason });
      this.log.error(
        { revision: e.revision, reason, runningRevision: this.appliedRevision, issues: (err as ConfigValidationError).issues },
        `config revision ${e.revision} rejected, keeping revision ${this.appliedRevision}: ${err.message}`,
      );
      try {
        this.opts.onReject?.({ revision: e.revision, reason, error: err });
      } catch (hookErr) {
        this.log.error({ err: hookErr }, "config reject handler failed");
      }
      return undefined;
    }
    const changes = diffConfigs(this.cfg, next);
    const restartRequired = changes.map((c) => c.path).filter((p) => applyModeOf(p) === "restart");
    this.cfg = next;
    this.appliedRevision = e.revision;
    if (initial) this.startConfig = next; // the process starts with it: nothing pending
    this.applied.inc();
    this.revisionGauge.set(e.revision);
    this.restartPendingGauge.set(this.restartPending.length ? 1 : 0);
    if (!initial) {
      this.log.info(
        { revision: e.revision, changed: changes.map((c) => c.path), restartRequired },
        restartRequired.length
          ? `config revision ${e.revision} applied; restart needed for ${restartRequired.join(", ")}`
          : `config revision ${e.revision} applied`,
      );
    }
    return { config: next, revision: e.revision, changes, restartRequired };
  }
}
