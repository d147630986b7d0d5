// `foresight config ...`: print defaults, validate a file, and read, write, diff and list the
// central configuration in the NATS KV bucket. Exit codes: 0 ok, 1 connection or other failure,
// 2 invalid configuration (parse, validation, unreadable file, unknown path), 3 write conflict.
import { InvalidArgumentError, type Command } from "commander";
import { stringify as toYaml } from "yaml";
import type { NatsConnection } from "@nats-io/transport-node";
import { connectNats } from "../../nats/connect.ts";
import {
  applyModeOf,
  ConfigConflictError,
  ConfigFileError,
  ConfigParseError,
  ConfigStore,
  ConfigValidationError,
  decodeEntry,
  DEFAULT_CONFIG,
  diffConfigs,
  getPath,
  loadConfig,
  readConfigFile,
  validateConfig,
  type ConfigChange,
  type LoadedConfig,
} from "../../config/index.ts";

/** Exit code for an invalid configuration. */
export const EXIT_INVALID_CONFIG = 2;
/** Exit code for a lost compare-and-set. */
export const EXIT_CONFLICT = 3;

interface CommonOpts {
  servers?: string;
  config?: string;
  json?: boolean;
  showSecrets?: boolean;
}

/** Paths printed as "***" unless --show-secrets. */
const SECRET_PATHS = ["nats.connection.pass", "nats.connection.token"];

function redact<T>(doc: T, show: boolean | undefined): T {
  if (show) return doc;
  const copy = structuredClone(doc) as Record<string, unknown>;
  for (const p of SECRET_PATHS) {
    const parts = p.split(".");
    const parent = getPath(copy, parts.slice(0, -1).join(".")) as Record<string, unknown> | undefined;
    const leaf = parts[parts.length - 1];
    if (parent && parent[leaf] !== undefined) parent[leaf] = "***";
  }
  return copy as T;
}

function redactChanges(changes: ConfigChange[]): ConfigChange[] {
  return changes.map((c) =>
    SECRET_PATHS.includes(c.path)
      ? { ...c, ...(c.before !== undefined && { before: "***" }), ...(c.after !== undefined && { after: "***" }) }
      : c,
  );
}

function print(value: unknown, json: boolean | undefined): void {
  process.stdout.write(json ? JSON.stringify(value, null, 2) + "\n" : toYaml(value ?? null));
}

function fmt(v: unknown): string {
  return JSON.stringify(v);
}

/** One line per change: "~ path: a -> b", "+ path: b", "- path: a", "(restart)" when it needs one. */
function changeLines(changes: ConfigChange[], indent = ""): string {
  return changes
    .map((c) => {
      const tag = applyModeOf(c.path) === "restart" ? "  (restart)" : "";
      if (c.kind === "added") return `${indent}+ ${c.path}: ${fmt(c.after)}${tag}`;
      if (c.kind === "removed") return `${indent}- ${c.path}: ${fmt(c.before)}${tag}`;
      return `${indent}~ ${c.path}: ${fmt(c.before)} -> ${fmt(c.after)}${tag}`;
    })
    .map((l) => l + "\n")
    .join("");
}

/** Adds the options every subcommand that talks to NATS shares. */
function withConnection(cmd: Command): Command {
  return cmd
    .option("--servers <urls>", "NATS server URLs, comma-separated (overrides file and FORESIGHT_NATS_SERVERS)")
    .option("--config <file>", "config file (YAML or JSON) for connection settings and bucket name (default: $FORESIGHT_CONFIG)")
    .option("--json", "print JSON instead of YAML");
}

/** loadConfig options for the layers below KV, per the common options. */
function layerOptions(o: CommonOpts): { file?: string; overrides?: Record<string, unknown> } {
  const servers = o.servers?.split(",").map((s) => s.trim()).filter(Boolean);
  return {
    file: o.config ?? (process.env.FORESIGHT_CONFIG || undefined),
    overrides: servers?.length ? { nats: { connection: { servers } } } : undefined,
  };
}

/** Runs `fn` with a connection and the store per the options; always closes the connection. */
async function withStore<T>(
  o: CommonOpts,
  fn: (store: ConfigStore, nc: NatsConnection, local: LoadedConfig) => Promise<T>,
): Promise<T> {
  const local = await loadConfig(layerOptions(o));
  const nc = await connectNats({ ...local.config.nats.connection, maxReconnectAttempts: 0 });
  try {
    // replicas: a bucket this creates gets the cluster's replication (nats.replicas: 3 in production).
    const store = await ConfigStore.open(nc, { bucket: local.config.nats.kv.configBucket, replicas: local.config.nats.replicas });
    return await fn(store, nc, local);
  } finally {
    await nc.close();
  }
}

/** Wraps an action: maps each error class to its exit code and a one-line-per-issue message. */
function action<A extends unknown[]>(fn: (...args: A) => Promise<void>): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      await fn(...args);
    } catch (err) {
      const e = err as Error;
      process.stderr.write(`foresight config: ${e.name && e.name !== "Error" ? e.name + ": " : ""}${e.message}\n`);
      process.exitCode =
        err instanceof ConfigValidationError || err instanceof ConfigParseError || err instanceof ConfigFileError
          ? EXIT_INVALID_CONFIG
          : err instanceof ConfigConflictError
            ? EXIT_CONFLICT
            : 1;
    }
  };
}

/** Registers `foresight config`. */
export function register(program: Command): void {
  const config = program
    .command("config")
    .description("Show, validate and change the central configuration (NATS KV bucket, watched live)");

  config
    .command("defaults")
    .description("Print every setting with its built-in default")
    .option("--json", "print JSON instead of YAML")
    .action(action(async (o: CommonOpts) => print(DEFAULT_CONFIG, o.json)));

  config
    .command("validate <file>")
    .description("Validate a config file (YAML or JSON); prints each bad field with the reason")
    .option("--json", "print the resulting config as JSON")
    .option("--print", "print the resulting config (defaults filled in)")
    .action(
      action(async (file: string, o: CommonOpts & { print?: boolean }) => {
        const cfg = validateConfig(readConfigFile(file), `file ${file}`);
        if (o.print || o.json) print(redact(cfg, false), o.json);
        else process.stdout.write(`${file}: valid\n`);
      }),
    );

  withConnection(config.command("get"))
    .description("Print the effective config (defaults < --config file < env < KV) or one path of it")
    .option("--path <path>", "print only this dotted path, e.g. engine.horizonBuckets")
    .option("--stored", "print the document stored in KV as written (even if invalid), not the effective config")
    .option("--explain", "print each setting with the layer it came from (default, file, env, kv)")
    .option("--show-secrets", "print passwords and tokens instead of ***")
    .action(
      action(async (o: CommonOpts & { path?: string; stored?: boolean; explain?: boolean }) => {
        await withStore(o, async (store, nc) => {
          if (o.stored) {
            // As written, even when invalid (that is when one wants to see it); unparseable text raw.
            const e = await store.getEntry();
            process.stderr.write(`kv revision ${e?.revision ?? 0}${e && e.operation !== "PUT" ? ` (${e.operation})` : ""}\n`);
            if (!e || e.operation !== "PUT") return print({}, o.json);
            let stored: unknown;
            try {
              stored = redact(decodeEntry(e, store.bucket), o.showSecrets);
            } catch {
              process.stdout.write(e.string() + "\n");
              return;
            }
            return print(o.path ? getPath(stored, o.path) ?? null : stored, o.json);
          }
          const loaded = await loadConfig({ ...layerOptions(o), kv: { nc, bucket: store.bucket } });
          process.stderr.write(`kv revision ${loaded.kvRevision}\n`);
          const doc = redact(loaded.config, o.showSecrets);
          if (o.explain) {
            const rows = [...loaded.sources].map(([p, layer]) => ({ path: p, value: getPath(doc, p), layer }));
            if (o.json) print(rows, true);
            else process.stdout.write(rows.map((r) => `${r.path} = ${fmt(r.value)}  (${r.layer})\n`).join(""));
            return;
          }
          if (o.path !== undefined) {
            const v = getPath(doc, o.path);
            if (v === undefined) throw new ConfigValidationError([{ path: o.path, message: "no such setting" }], "--path");
            print(v, o.json);
          } else print(doc, o.json);
        });
      }),
    );

  withConnection(config.command("set <file>"))
    .description("Validate a config file and write it to the KV bucket (compare-and-set on the revision)")
    .option("--expect-revision <n>", "write only if the bucket is at this revision (0 = no document yet); default: the current one", (v) => {
      if (!/^\d+$/.test(v)) throw new InvalidArgumentError(`must be a non-negative integer, got "${v}"`);
      return Number(v);
    })
    .action(
      action(async (file: string, o: CommonOpts & { expectRevision?: number }) => {
        const doc = readConfigFile(file);
        const next = validateConfig(doc, `file ${file}`);
        await withStore(o, async (store) => {
          const current = await store.get().catch(() => undefined); // an invalid stored doc may be replaced
          const expected = o.expectRevision ?? (await store.getEntry())?.revision ?? 0;
          const revision = await store.set(doc, expected);
          const changes = current ? redactChanges(diffConfigs(current.config, next)) : [];
          if (o.json) print({ revision, changes }, true);
          else process.stdout.write(`revision ${revision}\n${changeLines(changes, "  ")}`);
        });
      }),
    );

  withConnection(config.command("diff <file>"))
    .description("Show what `config set <file>` would change in the stored config (with defaults filled in)")
    .action(
      action(async (file: string, o: CommonOpts) => {
        const next = validateConfig(readConfigFile(file), `file ${file}`);
        await withStore(o, async (store) => {
          const current = await store.get();
          const changes = redactChanges(diffConfigs(current.config, next));
          if (o.json) print({ revision: current.revision, changes }, true);
          else process.stdout.write(`revision ${current.revision} -> ${file}\n${changes.length ? changeLines(changes, "  ") : "  no changes\n"}`);
        });
      }),
    );

  withConnection(config.command("history"))
    .description("List the kept revisions with time, operation and the changes against the previous one")
    .action(
      action(async (o: CommonOpts) => {
        await withStore(o, async (store) => {
          const h = await store.history();
          if (o.json) {
            print(h.map((r) => ({ ...r, time: r.time.toISOString(), document: redact(r.document, false), changes: redactChanges(r.changes) })), true);
            return;
          }
          if (!h.length) process.stdout.write("no revisions\n");
          for (const r of h) {
            process.stdout.write(`revision ${r.revision}  ${r.time.toISOString()}  ${r.operation}${r.error ? "  INVALID" : ""}\n`);
            if (r.error) process.stdout.write(r.error.split("\n").map((l) => `  ! ${l}\n`).join(""));
            process.stdout.write(changeLines(redactChanges(r.changes), "  "));
          }
        });
      }),
    );
}
