// The model registry: every version of the shared LSTM-lite weights, kept in a NATS Object Store
// bucket (`nats.objectStore.models`). Objects: `lstm/v<N>` (the LSTL blob) and `lstm/v<N>.json`
// (its metadata). Versions are never deleted, so any of them can be rolled back to.
import { createHash } from "node:crypto";
import type { NatsConnection } from "@nats-io/transport-node";
import { StorageType } from "@nats-io/jetstream";
import { Objm, type ObjectStore } from "@nats-io/obj";
import { LstmWeights } from "../forecast/lstm.ts";

/** What the registry knows of one version. */
export interface ModelMeta {
  /** "v1", "v2", ... in creation order. */
  version: string;
  /** ISO time the version was stored. */
  createdAt: string;
  /** Where it came from. */
  source: "upload" | "retrain";
  /** Version it was trained from, if any. */
  parent?: string;
  /** Holdout error of this version / of the live version when it was scored (mean |log error|). */
  holdoutError?: number;
  liveHoldoutError?: number;
  /** Mean training loss of the last epoch. */
  trainLoss?: number;
  /** Whether the promotion test passed (a candidate that lost is kept, with false). */
  promoted: boolean;
  /** Free text (why it was or was not promoted). */
  note?: string;
  /** Size and SHA-256 of the blob. */
  bytes: number;
  sha256: string;
}

/** No such version in the registry. */
export class ModelNotFoundError extends Error {
  override name = "ModelNotFoundError";
  constructor(readonly version: string, bucket: string) {
    super(`model ${version} not found in object store ${bucket}`);
  }
}

/** Bytes that are not an LSTL weights blob. */
export class BadModelError extends Error {
  override name = "BadModelError";
}

/** The registry could not be read or written. */
export class ModelRegistryIoError extends Error {
  override name = "ModelRegistryIoError";
}

const blobName = (v: string) => `lstm/${v}`;
const metaName = (v: string) => `lstm/${v}.json`;
const versionNumber = (v: string) => Number(v.slice(1));

/** Reads and writes model versions. */
export class ModelRegistry {
  private constructor(private readonly os: ObjectStore, readonly bucket: string) {}

  /** Opens (creating if missing) the registry bucket. */
  static async open(nc: NatsConnection, bucket: string, opts: { replicas?: number } = {}): Promise<ModelRegistry> {
    try {
      const os = await new Objm(nc).create(bucket, { storage: StorageType.File, replicas: opts.replicas ?? 1 });
      return new ModelRegistry(os, bucket);
    } catch (err) {
      throw new ModelRegistryIoError(`cannot open model registry ${bucket}: ${(err as Error).message}`, { cause: err });
    }
  }

  /** Every version's metadata, oldest first. */
  async list(): Promise<ModelMeta[]> {
    const out: ModelMeta[] = [];
    for (const info of await this.os.list()) {
      if (!info.name.endsWith(".json") || info.deleted) continue;
      const bytes = await this.os.getBlob(info.name);
      if (bytes) out.push(JSON.parse(new TextDecoder().decode(bytes)) as ModelMeta);
    }
    return out.sort((a, b) => versionNumber(a.version) - versionNumber(b.version));
  }

  /** The weights of `version`; {@link ModelNotFoundError} when absent. */
  async get(version: string): Promise<Uint8Array> {
    const bytes = await this.os.getBlob(blobName(version));
    if (!bytes) throw new ModelNotFoundError(version, this.bucket);
    // A plain Uint8Array view (the client hands back a Buffer).
    return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  /** The metadata of `version`. */
  async meta(version: string): Promise<ModelMeta> {
    const bytes = await this.os.getBlob(metaName(version));
    if (!bytes) throw new ModelNotFoundError(version, this.bucket);
    return JSON.parse(new TextDecoder().decode(bytes)) as ModelMeta;
  }

  /**
   * Stores new weights as the next version. The blob is checked first ({@link BadModelError}).
   * One writer at a time (the retrainer is a single job); concurrent writers could pick one number.
   */
  async put(weights: Uint8Array, m: Omit<ModelMeta, "version" | "createdAt" | "bytes" | "sha256">): Promise<ModelMeta> {
    try {
      LstmWeights.fromBytes(weights);
    } catch (err) {
      throw new BadModelError(`not an LSTM-lite weights blob: ${(err as Error).message}`, { cause: err });
    }
    const last = (await this.list()).at(-1);
    const version = `v${last ? versionNumber(last.version) + 1 : 1}`;
    const meta: ModelMeta = { ...m, version, createdAt: new Date().toISOString(), bytes: weights.length, sha256: createHash("sha256").update(weights).digest("hex") };
    try {
      await this.os.putBlob({ name: blobName(version) }, weights);
      await this.os.putBlob({ name: metaName(version) }, new TextEncoder().encode(JSON.stringify(meta)));
    } catch (err) {
      throw new ModelRegistryIoError(`cannot store model ${version}: ${(err as Error).message}`, { cause: err });
    }
    return meta;
  }
}
