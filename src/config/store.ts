// The central configuration in a NATS KV bucket: one key holds the whole JSON document, and the
// KV revision is its version. Writes validate first and compare-and-set on the revision, so of
// two concurrent writers based on the same revision exactly one wins.
import type { NatsConnection } from "@nats-io/transport-node";
import { Kvm, type KV, type KvEntry } from "@nats-io/kv";
import { isRevisionConflict } from "../nats/errors.ts";
import { ConfigConflictError, ConfigStoreError } from "./errors.ts";
import { diffConfigs, type ConfigChange } from "./merge.ts";
import { DEFAULT_CONFIG, type ForesightConfig } from "./schema.ts";
import { parseConfigText, validateConfig } from "./validate.ts";

/** Key that holds the configuration document. */
export const DEFAULT_CONFIG_KEY = "config";
/** Revisions the bucket keeps (64 is the most a NATS KV bucket keeps per key). */
export const DEFAULT_CONFIG_HISTORY = 64;

export interface ConfigStoreOptions {
  /** KV bucket name. Default `DEFAULT_CONFIG.nats.kv.configBucket` ("foresight-config"). */
  bucket?: string;
  /** Key of the document. Default DEFAULT_CONFIG_KEY ("config"). */
  key?: string;
  /** Revisions kept when the bucket is created (1..64). Default DEFAULT_CONFIG_HISTORY (64). */
  history?: number;
  /** Bucket replicas when the bucket is created. Default `DEFAULT_CONFIG.nats.replicas` (1). */
  replicas?: number;
}

/** The stored document at one revision. */
export interface StoredConfig {
  /** KV revision (0 = nothing stored yet). */
  revision: number;
  /** The document as written (only the keys its writer set). */
  document: Record<string, unknown>;
  /** The document validated, defaults filled in. */
  config: ForesightConfig;
  /** When the revision was written (absent when nothing is stored). */
  time?: Date;
}

/** One revision in the bucket's history. */
export interface ConfigRevision {
  revision: number;
  /** When it was written. */
  time: Date;
  /** "PUT" a write, "DEL"/"PURGE" a removal of the document. */
  operation: "PUT" | "DEL" | "PURGE";
  /** The document; null when removed or unreadable. */
  document: Record<string, unknown> | null;
  /** Why the document is unreadable or invalid (written by another tool); absent when valid. */
  error?: string;
  /** Revision the diff is against (the previous readable one; 0 = empty document). */
  baseRevision: number;
  /** Path-level changes of the stored documents against baseRevision. */
  changes: ConfigChange[];
}

/** Read and compare-and-set access to the central configuration document. */
export class ConfigStore {
  private constructor(
    private readonly kv: KV,
    /** Bucket name. */
    readonly bucket: string,
    /** Key of the document. */
    readonly key: string,
  ) {}

  /** Opens the bucket, creating it (with history) when it does not exist. */
  static async open(nc: NatsConnection, opts: ConfigStoreOptions = {}): Promise<ConfigStore> {
    const bucket = opts.bucket ?? DEFAULT_CONFIG.nats.kv.configBucket;
    try {
      const kv = await new Kvm(nc).create(bucket, {
        history: opts.history ?? DEFAULT_CONFIG_HISTORY,
        replicas: opts.replicas ?? DEFAULT_CONFIG.nats.replicas,
      });
      return new ConfigStore(kv, bucket, opts.key ?? DEFAULT_CONFIG_KEY);
    } catch (err) {
      throw new ConfigStoreError(`cannot open config bucket ${bucket}: ${(err as Error).message}`, { cause: err });
    }
  }

  /** The underlying KV (for watchers). */
  get kvBucket(): KV {
    return this.kv;
  }

  /** The latest entry, or null when the key was never written. */
  async getEntry(): Promise<KvEntry | null> {
    try {
      return await this.kv.get(this.key);
    } catch (err) {
      throw new ConfigStoreError(`cannot read ${this.bucket}/${this.key}: ${(err as Error).message}`, { cause: err });
    }
  }

  /**
   * The stored document and its revision; `{revision: 0, document: {}}` with the defaults when
   * nothing is stored or the document was deleted. Throws ConfigParseError/ConfigValidationError
   * when the stored document is unreadable or invalid.
   */
  async get(): Promise<StoredConfig> {
    const e = await this.getEntry();
    if (!e) return { revision: 0, document: {}, config: DEFAULT_CONFIG };
    if (e.operation !== "PUT") return { revision: e.revision, document: {}, config: DEFAULT_CONFIG, time: e.created };
    const document = decodeEntry(e, this.bucket);
    return { revision: e.revision, document, config: validateConfig(document, `${this.bucket} revision ${e.revision}`), time: e.created };
  }

  /**
   * Validates `document` and writes it if the bucket is still at `expectedRevision` (0 = no
   * document yet). Returns the new revision. Throws ConfigValidationError before writing anything,
   * ConfigConflictError when another writer got there first.
   */
  async set(document: Record<string, unknown>, expectedRevision: number): Promise<number> {
    validateConfig(document, "document to write");
    const data = JSON.stringify(document);
    try {
      return expectedRevision === 0
        ? await this.kv.create(this.key, data)
        : await this.kv.update(this.key, data, expectedRevision);
    } catch (err) {
      if (isRevisionConflict(err)) {
        const actual = (await this.getEntry())?.revision ?? 0;
        throw new ConfigConflictError(expectedRevision, actual, { cause: err });
      }
      throw new ConfigStoreError(`cannot write ${this.bucket}/${this.key}: ${(err as Error).message}`, { cause: err });
    }
  }

  /** Every kept revision, oldest first, each with a diff against the previous readable one. */
  async history(): Promise<ConfigRevision[]> {
    const out: ConfigRevision[] = [];
    let base: Record<string, unknown> = {};
    let baseRevision = 0;
    try {
      const it = await this.kv.history({ key: this.key });
      for await (const e of it) {
        let document: Record<string, unknown> | null = null;
        let error: string | undefined;
        if (e.operation === "PUT") {
          try {
            document = decodeEntry(e, this.bucket);
            validateConfig(document, `revision ${e.revision}`);
          } catch (err) {
            error = (err as Error).message;
          }
        }
        // A removal reads as the empty document; an unparseable write has no document to diff.
        const next = e.operation === "PUT" ? document : {};
        const changes = next ? diffConfigs(base, next) : [];
        out.push({ revision: e.revision, time: e.created, operation: e.operation, document, error, baseRevision, changes });
        if (next) {
          base = next;
          baseRevision = e.revision;
        }
      }
    } catch (err) {
      throw new ConfigStoreError(`cannot read history of ${this.bucket}/${this.key}: ${(err as Error).message}`, { cause: err });
    }
    return out;
  }
}

/** The JSON document of a KV entry; ConfigParseError when it is not a JSON object. */
export function decodeEntry(e: KvEntry, bucket: string): Record<string, unknown> {
  return parseConfigText(e.string(), `${bucket} revision ${e.revision}`, "json");
}
