// Per-partition checkpoints in a JetStream Object Store: `partition-<n>` holds the engine
// snapshot, the last applied stream sequence and the time. The checkpoint (not consumer acks) is
// the source of truth: whoever owns a partition restores it and consumes from lastSeq + 1, so no
// event is applied twice and none is lost.
//
// Object layout (little-endian): "FSCK" magic, u32 format version, u32 meta length, meta JSON
// (UTF-8), then the engine snapshot. Version 2 elides all-zero pages of the snapshot: a bitmap of
// its 4 KiB pages (bit set = page stored), then the stored pages in order. An engine's state is
// sized for its full capacity up front, so a partition with few users snapshots mostly zeros
// (tens of MB that would otherwise be written at every checkpoint). Version 1 (raw) still reads.
import type { NatsConnection } from "@nats-io/transport-node";
import { StorageType } from "@nats-io/jetstream";
import { Objm, type ObjectStore } from "@nats-io/obj";
import type { ProcessorNames } from "./names.ts";

/** Magic of a checkpoint object ("FSCK" as little-endian u32). */
export const CHECKPOINT_MAGIC = 0x4b435346;
/** Format version written by this code (1, raw snapshot, is still read). */
export const CHECKPOINT_VERSION = 2;
/** Page size of the zero-page elision, bytes. */
export const CHECKPOINT_PAGE_BYTES = 4096;

/** True when bytes[from, to) are all zero. */
function isZero(bytes: Uint8Array, from: number, to: number): boolean {
  let i = from;
  // Word-wise where aligned (snapshots are fresh buffers, so this is the common path).
  if ((bytes.byteOffset + i) % 4 === 0) {
    const words = new Uint32Array(bytes.buffer, bytes.byteOffset + i, (to - i) >> 2);
    for (let k = 0; k < words.length; k++) if (words[k] !== 0) return false;
    i += words.length << 2;
  }
  for (; i < to; i++) if (bytes[i] !== 0) return false;
  return true;
}

/** The snapshot as a page bitmap followed by its non-zero pages. */
function elideZeroPages(state: Uint8Array): Uint8Array {
  const pages = Math.ceil(state.length / CHECKPOINT_PAGE_BYTES);
  const bitmap = new Uint8Array(Math.ceil(pages / 8));
  let kept = 0;
  for (let p = 0; p < pages; p++) {
    const from = p * CHECKPOINT_PAGE_BYTES;
    const to = Math.min(state.length, from + CHECKPOINT_PAGE_BYTES);
    if (!isZero(state, from, to)) {
      bitmap[p >> 3] |= 1 << (p & 7);
      kept += to - from;
    }
  }
  const out = new Uint8Array(bitmap.length + kept);
  out.set(bitmap);
  let at = bitmap.length;
  for (let p = 0; p < pages; p++) {
    if (!(bitmap[p >> 3] & (1 << (p & 7)))) continue;
    const from = p * CHECKPOINT_PAGE_BYTES;
    const to = Math.min(state.length, from + CHECKPOINT_PAGE_BYTES);
    out.set(state.subarray(from, to), at);
    at += to - from;
  }
  return out;
}

/** Inverse of {@link elideZeroPages}; throws {@link CheckpointCorruptError} on a size mismatch. */
function restoreZeroPages(body: Uint8Array, stateBytes: number): Uint8Array {
  const pages = Math.ceil(stateBytes / CHECKPOINT_PAGE_BYTES);
  const bitmapBytes = Math.ceil(pages / 8);
  if (body.length < bitmapBytes) throw new CheckpointCorruptError(`checkpoint page map truncated (${body.length} of ${bitmapBytes} bytes)`);
  const state = new Uint8Array(stateBytes);
  let at = bitmapBytes;
  for (let p = 0; p < pages; p++) {
    if (!(body[p >> 3] & (1 << (p & 7)))) continue;
    const from = p * CHECKPOINT_PAGE_BYTES;
    const to = Math.min(stateBytes, from + CHECKPOINT_PAGE_BYTES);
    if (at + (to - from) > body.length) throw new CheckpointCorruptError(`checkpoint pages truncated at page ${p}`);
    state.set(body.subarray(at, at + (to - from)), from);
    at += to - from;
  }
  if (at !== body.length) throw new CheckpointCorruptError(`checkpoint has ${body.length - at} bytes past its last page`);
  return state;
}

/** The durable state of one partition. */
export interface Checkpoint {
  partition: number;
  /** Stream sequence of the last telemetry message applied to the engine (0 = none). */
  lastSeq: number;
  /** When it was taken, ms since the epoch (the processor's clock). */
  timeMs: number;
  /** Process id of the owner that wrote it. */
  owner: string;
  /** The engine's snapshot (`Engine.snapshot()`). */
  engineState: Uint8Array;
}

/** A checkpoint object exists but cannot be parsed (wrong magic, version or truncated). */
export class CheckpointCorruptError extends Error {
  override name = "CheckpointCorruptError";
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** A checkpoint could not be read or written (NATS error, timeout). */
export class CheckpointIoError extends Error {
  override name = "CheckpointIoError";
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** Object name of a partition's checkpoint. */
export function checkpointObjectName(partition: number): string {
  return `partition-${partition}`;
}

/** Serializes a checkpoint (pure). */
export function encodeCheckpoint(cp: Checkpoint): Uint8Array {
  const meta = new TextEncoder().encode(
    JSON.stringify({ partition: cp.partition, lastSeq: cp.lastSeq, timeMs: cp.timeMs, owner: cp.owner, engineBytes: cp.engineState.length }),
  );
  const body = elideZeroPages(cp.engineState);
  const out = new Uint8Array(12 + meta.length + body.length);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, CHECKPOINT_MAGIC, true);
  dv.setUint32(4, CHECKPOINT_VERSION, true);
  dv.setUint32(8, meta.length, true);
  out.set(meta, 12);
  out.set(body, 12 + meta.length);
  return out;
}

/** Parses {@link encodeCheckpoint}'s bytes; throws {@link CheckpointCorruptError}. */
export function decodeCheckpoint(bytes: Uint8Array): Checkpoint {
  if (bytes.length < 12) throw new CheckpointCorruptError(`checkpoint too short: ${bytes.length} bytes`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = dv.getUint32(0, true);
  if (magic !== CHECKPOINT_MAGIC) throw new CheckpointCorruptError(`bad checkpoint magic 0x${magic.toString(16)}`);
  const version = dv.getUint32(4, true);
  if (version !== 1 && version !== CHECKPOINT_VERSION) throw new CheckpointCorruptError(`unsupported checkpoint version ${version}`);
  const metaLen = dv.getUint32(8, true);
  if (12 + metaLen > bytes.length) throw new CheckpointCorruptError(`checkpoint meta (${metaLen} bytes) past the end`);
  let meta: { partition: number; lastSeq: number; timeMs: number; owner: string; engineBytes: number };
  try {
    meta = JSON.parse(new TextDecoder().decode(bytes.subarray(12, 12 + metaLen)));
  } catch (err) {
    throw new CheckpointCorruptError(`checkpoint meta is not JSON`, { cause: err });
  }
  if (!Number.isInteger(meta.engineBytes) || meta.engineBytes < 0) throw new CheckpointCorruptError(`checkpoint meta has no valid engineBytes`);
  const engineState = version === 1 ? bytes.subarray(12 + metaLen) : restoreZeroPages(bytes.subarray(12 + metaLen), meta.engineBytes);
  if (engineState.length !== meta.engineBytes) {
    throw new CheckpointCorruptError(`checkpoint engine state is ${engineState.length} bytes, meta says ${meta.engineBytes}`);
  }
  return { partition: meta.partition, lastSeq: meta.lastSeq, timeMs: meta.timeMs, owner: meta.owner, engineState };
}

/** Longest one checkpoint read may wait for its chunks before it is retried or refused, ms. */
export const DEFAULT_CHECKPOINT_READ_TIMEOUT_MS = 10_000;
/** Reads of a checkpoint that a concurrent write replaced before they finished, retried this many times. */
const CHECKPOINT_READ_ATTEMPTS = 3;
/** How often a read that waits for chunks checks whether its object was replaced, ms. */
const REPLACED_CHECK_MS = 1000;

/** Options of {@link CheckpointStore.open}. */
export interface CheckpointStoreOptions {
  /** Replicas of the bucket's stream. Default 1. */
  replicas?: number;
  /** Longest one read waits for the object's chunks, ms. Default {@link DEFAULT_CHECKPOINT_READ_TIMEOUT_MS}. */
  readTimeoutMs?: number;
}

/** Reads and writes partition checkpoints. */
export class CheckpointStore {
  private constructor(
    private readonly os: ObjectStore,
    private readonly readTimeoutMs: number,
  ) {}

  /** Opens (creating if missing) the checkpoint bucket. */
  static async open(nc: NatsConnection, names: ProcessorNames, opts: CheckpointStoreOptions = {}): Promise<CheckpointStore> {
    try {
      const os = await new Objm(nc).create(names.checkpointBucket, { storage: StorageType.File, replicas: opts.replicas ?? 1 });
      return new CheckpointStore(os, opts.readTimeoutMs ?? DEFAULT_CHECKPOINT_READ_TIMEOUT_MS);
    } catch (err) {
      throw new CheckpointIoError(`cannot open checkpoint bucket ${names.checkpointBucket}: ${(err as Error).message}`, { cause: err });
    }
  }

  /**
   * The partition's checkpoint, or null when none was written yet. A write that replaces the
   * object while it is read purges the chunks being read, and the object store's reader then
   * waits for them forever; so each read is bounded, and retried when the object changed meanwhile.
   */
  async load(partition: number): Promise<Checkpoint | null> {
    const name = checkpointObjectName(partition);
    for (let attempt = 1; ; attempt++) {
      let read: ReadOutcome;
      try {
        read = await this.readOnce(name);
      } catch (err) {
        throw new CheckpointIoError(`cannot read checkpoint of partition ${partition}: ${(err as Error).message}`, { cause: err });
      }
      if (read.kind === "missing") return null;
      if (read.kind === "bytes") {
        const cp = decodeCheckpoint(read.bytes);
        if (cp.partition !== partition) throw new CheckpointCorruptError(`object for partition ${partition} holds partition ${cp.partition}`);
        return cp;
      }
      const why = `cannot read checkpoint of partition ${partition}`;
      if (read.kind === "timeout") throw new CheckpointIoError(`${why}: chunks stopped arriving (read timeout ${this.readTimeoutMs} ms)`);
      // A failed read (a digest mismatch is how a purge mid-read shows) is retried, like a read cut
      // short by a newer version, only when a newer version replaced the one read.
      if (read.kind === "failed") {
        const now = await this.currentNuid(name);
        if (now === undefined || now === read.nuid) throw new CheckpointIoError(`${why}: ${read.error.message}`, { cause: read.error });
      }
      if (attempt >= CHECKPOINT_READ_ATTEMPTS) throw new CheckpointIoError(`${why}: replaced by a newer write ${attempt} times in a row`);
    }
  }

  /** The nuid of the object's current version; undefined when it cannot be read (then nothing counts as replaced). */
  private async currentNuid(name: string): Promise<string | undefined> {
    return (await this.os.info(name).catch(() => null))?.nuid;
  }

  /**
   * One bounded read of the object's current version. While chunks do not come, the object's
   * info is checked every {@link REPLACED_CHECK_MS}: a newer version ends the read at once.
   */
  private async readOnce(name: string): Promise<ReadOutcome> {
    const r = await this.os.get(name);
    if (!r) return { kind: "missing" };
    const nuid = r.info.nuid;
    const reader = r.data.getReader();
    const parts: Uint8Array[] = [];
    let size = 0;
    const deadline = Date.now() + this.readTimeoutMs;
    let pending = reader.read();
    try {
      for (;;) {
        let timer: NodeJS.Timeout | undefined;
        const slice = new Promise<"slice">((resolve) => (timer = setTimeout(() => resolve("slice"), Math.min(REPLACED_CHECK_MS, Math.max(1, deadline - Date.now())))));
        const step = await Promise.race([pending, slice]).finally(() => clearTimeout(timer));
        if (step === "slice") {
          const timedOut = Date.now() >= deadline;
          const now = timedOut ? undefined : await this.currentNuid(name);
          if (!timedOut && (now === undefined || now === nuid)) continue;
          // Cancelling the stream stops the object store's consumer of the chunks.
          await reader.cancel().catch(() => {});
          return timedOut ? { kind: "timeout" } : { kind: "replaced" };
        }
        if (step.done) break;
        parts.push(step.value);
        size += step.value.length;
        pending = reader.read();
      }
    } catch (err) {
      // A digest mismatch (chunks purged mid-read) or a consumer error.
      return { kind: "failed", nuid, error: err as Error };
    }
    const bytes = new Uint8Array(size);
    let at = 0;
    for (const p of parts) {
      bytes.set(p, at);
      at += p.length;
    }
    return { kind: "bytes", bytes };
  }

  /** Writes the partition's checkpoint (replacing the previous one). */
  async save(cp: Checkpoint): Promise<void> {
    try {
      await this.os.putBlob({ name: checkpointObjectName(cp.partition) }, encodeCheckpoint(cp));
    } catch (err) {
      throw new CheckpointIoError(`cannot write checkpoint of partition ${cp.partition}: ${(err as Error).message}`, { cause: err });
    }
  }
}

/** What one read of a checkpoint object gave. */
type ReadOutcome =
  | { kind: "missing" }
  | { kind: "bytes"; bytes: Uint8Array }
  | { kind: "timeout" }
  | { kind: "replaced" }
  | { kind: "failed"; nuid: string; error: Error };
