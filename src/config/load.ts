// Assembles the effective configuration from its layers, lowest to highest precedence:
// built-in defaults < config file (YAML/JSON) < environment (connection settings) < the KV bucket.
// Objects merge key by key, arrays replace; the merged document is validated once, at the end,
// so cross-field rules (min <= max, refresh < TTL) see the values that will actually run.
import { readFileSync } from "node:fs";
import type { NatsConnection } from "@nats-io/transport-node";
import { connectNats } from "../nats/connect.ts";
import { ConfigFileError } from "./errors.ts";
import { deepMerge, leafPaths } from "./merge.ts";
import { type ForesightConfig } from "./schema.ts";
import { ConfigStore } from "./store.ts";
import { parseConfigText, validateConfig } from "./validate.ts";

/** Where a value of the effective configuration came from. */
export type ConfigLayer = "default" | "file" | "env" | "kv";

/** Environment variables read for connection settings, and the field each sets. */
export const CONFIG_ENV_VARS = Object.freeze({
  FORESIGHT_NATS_SERVERS: "nats.connection.servers (comma-separated)",
  FORESIGHT_NATS_USER: "nats.connection.user",
  FORESIGHT_NATS_PASS: "nats.connection.pass",
  FORESIGHT_NATS_TOKEN: "nats.connection.token",
  FORESIGHT_NATS_CREDS: "nats.connection.credsFile",
  FORESIGHT_NATS_NKEY_SEED: "nats.connection.nkeySeedFile",
  FORESIGHT_NATS_TLS_CA: "nats.connection.tls.caFile",
  FORESIGHT_NATS_TLS_CERT: "nats.connection.tls.certFile",
  FORESIGHT_NATS_TLS_KEY: "nats.connection.tls.keyFile",
} as const);

/** The environment layer: only variables that are set (and non-empty) appear. */
export function envLayer(env: Record<string, string | undefined>): Record<string, unknown> {
  const c: Record<string, unknown> = {};
  const tls: Record<string, string> = {};
  const set = (v: string | undefined, f: (s: string) => void) => {
    if (v !== undefined && v.trim() !== "") f(v.trim());
  };
  set(env.FORESIGHT_NATS_SERVERS, (v) => (c.servers = v.split(",").map((s) => s.trim()).filter(Boolean)));
  set(env.FORESIGHT_NATS_USER, (v) => (c.user = v));
  set(env.FORESIGHT_NATS_PASS, (v) => (c.pass = v));
  set(env.FORESIGHT_NATS_TOKEN, (v) => (c.token = v));
  set(env.FORESIGHT_NATS_CREDS, (v) => (c.credsFile = v));
  set(env.FORESIGHT_NATS_NKEY_SEED, (v) => (c.nkeySeedFile = v));
  set(env.FORESIGHT_NATS_TLS_CA, (v) => (tls.caFile = v));
  set(env.FORESIGHT_NATS_TLS_CERT, (v) => (tls.certFile = v));
  set(env.FORESIGHT_NATS_TLS_KEY, (v) => (tls.keyFile = v));
  if (Object.keys(tls).length) c.tls = tls;
  return Object.keys(c).length ? { nats: { connection: c } } : {};
}

/** Reads and parses a config file (YAML, or JSON when it ends in .json). */
export function readConfigFile(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new ConfigFileError(file, { cause: err });
  }
  return parseConfigText(text, file);
}

export interface LoadConfigOptions {
  /** Config file (YAML or JSON). Default: none. */
  file?: string;
  /** Environment to read connection variables from (CONFIG_ENV_VARS). Default: `process.env`. */
  env?: Record<string, string | undefined>;
  /**
   * Read the KV layer. `{ nc }` uses that connection; `{}` connects with the settings of the
   * lower layers and closes afterwards. Default: no KV layer.
   */
  kv?: { nc?: NatsConnection; bucket?: string };
  /** Extra highest-precedence overrides below KV (e.g. CLI flags), merged after env. Default: none. */
  overrides?: Record<string, unknown>;
}

export interface LoadedConfig {
  /** The validated effective configuration. */
  config: ForesightConfig;
  /** Merged document of the layers below KV (what the watcher merges each KV revision onto). */
  base: Record<string, unknown>;
  /** The KV document (only the keys its writer set); `{}` without a KV layer. */
  kvDocument: Record<string, unknown>;
  /** KV revision the config reflects (0 = no KV document, or no KV layer). */
  kvRevision: number;
  /** The layer each leaf path of the effective config came from. */
  sources: Map<string, ConfigLayer>;
}

/** Loads and validates the effective configuration; errors name the source and every bad field. */
export async function loadConfig(opts: LoadConfigOptions = {}): Promise<LoadedConfig> {
  const layers: [ConfigLayer, Record<string, unknown>][] = [];
  if (opts.file) {
    const doc = readConfigFile(opts.file);
    validateConfig(doc, `file ${opts.file}`); // name the file when the file itself is wrong
    layers.push(["file", doc]);
  }
  layers.push(["env", deepMerge(envLayer(opts.env ?? process.env), opts.overrides ?? {}) as Record<string, unknown>]);
  const base = layers.reduce<Record<string, unknown>>((acc, [, d]) => deepMerge(acc, d) as Record<string, unknown>, {});
  const baseConfig = validateConfig(base, opts.file ? `file ${opts.file} + environment` : "environment");

  let kvDocument: Record<string, unknown> = {};
  let kvRevision = 0;
  if (opts.kv) {
    const nc = opts.kv.nc ?? (await connectNats(baseConfig.nats.connection));
    try {
      const store = await ConfigStore.open(nc, { bucket: opts.kv.bucket ?? baseConfig.nats.kv.configBucket });
      const stored = await store.get();
      kvDocument = stored.document;
      kvRevision = stored.revision;
    } finally {
      if (!opts.kv.nc) await nc.close();
    }
    layers.push(["kv", kvDocument]);
  }
  const merged = deepMerge(base, kvDocument) as Record<string, unknown>;
  const config = validateConfig(merged, kvRevision ? `merged with kv revision ${kvRevision}` : "merged layers");

  const sources = new Map<string, ConfigLayer>();
  for (const p of leafPaths(config)) sources.set(p, "default");
  for (const [layer, doc] of layers) {
    for (const p of leafPaths(doc)) {
      // A layer that sets a whole array or object owns every leaf below it.
      for (const q of sources.keys()) if (q === p || q.startsWith(p + ".")) sources.set(q, layer);
      if (!sources.has(p)) sources.set(p, layer);
    }
  }
  return { config, base, kvDocument, kvRevision, sources };
}
