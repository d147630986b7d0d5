// The user directory: hash → plain user key (and segment/plan) in a NATS KV bucket, so forecasts,
// grants and reports that only carry the 64-bit hash can name users. Publishers write each user
// once (KV create: the first writer wins, later writers see "exists" and stop); readers look up.
import type { NatsConnection } from "@nats-io/transport-node";
import { Kvm, type KV } from "@nats-io/kv";
import { isRevisionConflict } from "../nats/errors.ts";
import { parseUserHashHex } from "./hash.ts";

/** Default KV bucket of the user directory. */
export const DEFAULT_DIRECTORY_BUCKET = "foresight-users";
/** Default number of names `UserDirectory.name()` keeps cached. */
export const DEFAULT_DIRECTORY_CACHE_SIZE = 10_000;

/** One directory entry, the JSON value stored under the 16-hex user hash. */
export interface UserDirectoryEntry {
  /** The plain user key. */
  user: string;
  /** Customer segment, when the first publisher that saw the user knew it. */
  segment?: string;
  /** Plan / tier, likewise. */
  plan?: string;
  /** When the first publisher saw the user, ms since the epoch. */
  firstSeenMs: number;
}

/** Options of {@link UserDirectory.open}. */
export interface UserDirectoryOptions {
  /** KV bucket name. Default {@link DEFAULT_DIRECTORY_BUCKET}. */
  bucket?: string;
  /** Create the bucket when missing (needs JetStream admin rights). Default true. */
  create?: boolean;
  /** Replicas of the bucket when created (3 in a cluster). Default 1. */
  replicas?: number;
  /** Names cached by `name()` (bounded; older half dropped when full). Default {@link DEFAULT_DIRECTORY_CACHE_SIZE}. */
  cacheSize?: number;
}

/** A directory value that is not the documented JSON; `key` names the entry. */
export class DirectoryEntryError extends Error {
  override name = "DirectoryEntryError";
  constructor(readonly key: string, message: string, options?: { cause?: unknown }) {
    super(`user directory entry ${key}: ${message}`, options);
  }
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * Parses a directory value (the JSON {@link UserDirectoryEntry}); `key` names the entry in the
 * error. Throws {@link DirectoryEntryError} for anything else (not JSON, fields of other types).
 */
export function parseDirectoryEntry(key: string, value: Uint8Array): UserDirectoryEntry {
  let v: unknown;
  try {
    v = JSON.parse(decoder.decode(value));
  } catch (err) {
    throw new DirectoryEntryError(key, "value is not JSON", { cause: err });
  }
  const o = v as Partial<UserDirectoryEntry>;
  if (
    typeof o !== "object" || o === null || typeof o.user !== "string" || typeof o.firstSeenMs !== "number" ||
    (o.plan !== undefined && typeof o.plan !== "string") || (o.segment !== undefined && typeof o.segment !== "string")
  ) {
    throw new DirectoryEntryError(key, "expected {user: string, firstSeenMs: number, segment?: string, plan?: string}");
  }
  return o as UserDirectoryEntry;
}

/** The user directory over a KV bucket. */
export class UserDirectory {
  private young = new Map<string, string>();
  private old = new Map<string, string>();

  private constructor(
    /** The underlying KV bucket. */
    readonly kv: KV,
    /** The bucket name. */
    readonly bucket: string,
    private readonly cacheSize: number,
  ) {}

  /** Opens (and by default creates) the directory bucket. */
  static async open(nc: NatsConnection, opts: UserDirectoryOptions = {}): Promise<UserDirectory> {
    const bucket = opts.bucket ?? DEFAULT_DIRECTORY_BUCKET;
    const kvm = new Kvm(nc);
    const kv = opts.create === false ? await kvm.open(bucket) : await kvm.create(bucket, { replicas: opts.replicas ?? 1 });
    return new UserDirectory(kv, bucket, Math.max(2, opts.cacheSize ?? DEFAULT_DIRECTORY_CACHE_SIZE));
  }

  /**
   * Records a user once: true if this call created the entry, false if it already existed (the
   * first writer's entry is kept). Other failures (disconnect, timeout) reject.
   */
  async register(hashHex: string, entry: UserDirectoryEntry): Promise<boolean> {
    parseUserHashHex(hashHex); // validates the key form
    const value: UserDirectoryEntry = { user: entry.user, firstSeenMs: entry.firstSeenMs };
    if (entry.segment !== undefined) value.segment = entry.segment;
    if (entry.plan !== undefined) value.plan = entry.plan;
    try {
      await this.kv.create(hashHex.toLowerCase(), encoder.encode(JSON.stringify(value)));
      return true;
    } catch (err) {
      // A create conflicts exactly when the key exists: the expected outcome for a known user.
      if (isRevisionConflict(err)) return false;
      throw err;
    }
  }

  /** The entry of a 16-hex user hash, or null when unknown. */
  async lookup(hashHex: string): Promise<UserDirectoryEntry | null> {
    parseUserHashHex(hashHex);
    const key = hashHex.toLowerCase();
    const e = await this.kv.get(key);
    if (!e || e.operation !== "PUT" || e.value.length === 0) return null;
    return parseDirectoryEntry(key, e.value);
  }

  /** A display name for a user hash: the user key when known, else the hash itself. Cached. */
  async name(hashHex: string): Promise<string> {
    const key = hashHex.toLowerCase();
    const cached = this.young.get(key) ?? this.old.get(key);
    if (cached !== undefined) return cached;
    const e = await this.lookup(key);
    if (!e) return key; // unknown now; not cached so a later write is seen
    if (this.young.size >= this.cacheSize / 2) {
      this.old = this.young;
      this.young = new Map();
    }
    this.young.set(key, e.user);
    return e.user;
  }
}
