// `foresight models`: the model registry (every version of the shared LSTM-lite weights, in the
// NATS Object Store) and the retraining schedule. Promotion and rollback are config changes
// (`engine.lstm.modelVersion`), which running processors apply live.
import { readFileSync } from "node:fs";
import type { Command } from "commander";
import { connectNats } from "../../nats/connect.ts";
import { loadConfig, ConfigStore } from "../../config/index.ts";
import { createLogger } from "../../obs/logger.ts";
import { processorNames } from "../../processor/index.ts";
import { ModelRegistry, ModelUpdater } from "../../models/index.ts";

interface Common {
  servers?: string;
  config?: string;
  prefix?: string;
}

async function withRegistry<T>(o: Common, fn: (r: { registry: ModelRegistry; store: ConfigStore; nc: Awaited<ReturnType<typeof connectNats>>; prefix: string }) => Promise<T>): Promise<T> {
  const servers = o.servers?.split(",").map((s) => s.trim()).filter(Boolean);
  const local = await loadConfig({ file: o.config ?? (process.env.FORESIGHT_CONFIG || undefined), overrides: servers?.length ? { nats: { connection: { servers } } } : undefined });
  const cfg = local.config;
  const nc = await connectNats({ ...cfg.nats.connection, maxReconnectAttempts: 0 });
  try {
    const registry = await ModelRegistry.open(nc, cfg.nats.objectStore.models, { replicas: cfg.nats.replicas });
    const store = await ConfigStore.open(nc, { bucket: cfg.nats.kv.configBucket });
    return await fn({ registry, store, nc, prefix: o.prefix ?? cfg.nats.subjectPrefix });
  } finally {
    await nc.close();
  }
}

function common(cmd: Command): Command {
  return cmd
    .option("--servers <urls>", "NATS server URLs, comma-separated")
    .option("--config <file>", "config file for connection settings and bucket names (default: $FORESIGHT_CONFIG)")
    .option("--prefix <prefix>", "subject prefix of the processors (default: the config's)");
}

/** Registers `foresight models`. */
export function register(program: Command): void {
  const models = program.command("models").description("Model registry (LSTM-lite weights in the NATS Object Store) and scheduled retraining");

  common(models.command("list"))
    .description("Every stored version with its scores and verdict; * marks the one the config runs")
    .option("--json", "print JSON")
    .action(async (o: Common & { json?: boolean }) => {
      await withRegistry(o, async ({ registry, store }) => {
        const list = await registry.list();
        const live = (await store.get()).config.engine.lstm.modelVersion;
        if (o.json) {
          process.stdout.write(JSON.stringify({ live: live ?? null, versions: list }, null, 2) + "\n");
          return;
        }
        if (list.length === 0) process.stdout.write("no model versions stored\n");
        for (const m of list) {
          const err = m.holdoutError === undefined ? "" : ` holdout ${m.holdoutError.toFixed(4)} (live then ${m.liveHoldoutError?.toFixed(4) ?? "?"})`;
          process.stdout.write(`${m.version === live ? "*" : " "} ${m.version}  ${m.createdAt}  ${m.source}${m.parent ? ` from ${m.parent}` : ""}${err}  ${m.promoted ? "promoted" : "not promoted"}${m.note ? ` — ${m.note}` : ""}\n`);
        }
      });
    });

  common(models.command("upload <file>"))
    .description("Store a weights file (from `foresight train`) as the next version (not promoted: set engine.lstm.modelVersion to run it)")
    .action(async (file: string, o: Common) => {
      await withRegistry(o, async ({ registry }) => {
        const m = await registry.put(new Uint8Array(readFileSync(file)), { source: "upload", promoted: false, note: `uploaded from ${file}` });
        process.stdout.write(`stored ${m.version} (${m.bytes} bytes, sha256 ${m.sha256.slice(0, 12)}…)\n`);
      });
    });

  common(models.command("retrain"))
    .description("Retrain from the recent history in JetStream, score against the live weights on a held-out slice, store the candidate, promote it if it wins")
    .option("--every <ms>", "keep running, retraining at this period (default: engine.lstm.retrain.intervalMs; once when 0)")
    .action(async (o: Common & { every?: string }) => {
      await withRegistry(o, async ({ registry, store, nc, prefix }) => {
        const log = createLogger({ level: "info", name: "models" });
        const updater = new ModelUpdater({ nc, registry, config: store, forecastsStream: processorNames(prefix).forecastsStream, log });
        const every = o.every !== undefined ? Number(o.every) : (await store.get()).config.engine.lstm.retrain.intervalMs;
        if (!Number.isInteger(every) || every < 0) throw new Error(`--every must be an integer >= 0 ms, got ${o.every}`);
        if (every === 0) {
          const r = await updater.runOnce();
          process.stdout.write(`${r.candidate.version}: ${r.promoted ? "promoted" : "not promoted"} — ${r.reason}; ${r.users} users × ${r.buckets} buckets, ${(r.elapsedMs / 1000).toFixed(1)} s\n`);
          return;
        }
        updater.start(every);
        await new Promise<void>((resolve) => {
          process.once("SIGTERM", resolve);
          process.once("SIGINT", resolve);
        });
        await updater.stop();
      });
    });
}
