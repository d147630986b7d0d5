// TelemetryPublisher: the gateway SDK. record() writes one 48-byte record straight into the open
// frame buffer of the user's partition (O(1), no allocation on the hot path once hashes are
// cached); full or timed-out buffers become sealed frames that are published with JetStream acks
// and a stable Nats-Msg-Id, so retries after a disconnect are stored once. Memory is bounded: past
// maxBufferedEvents the oldest not-yet-sent events are dropped and counted; the caller never blocks.
import { randomBytes } from "node:crypto";
import type { NatsConnection, Status } from "@nats-io/transport-node";
import { jetstream, type JetStreamClient, type PubAck } from "@nats-io/jetstream";
import { hash32, userHash, userHashHex } from "./hash.ts";
import { checkUser, writeEventRecord, type TelemetryEvent } from "./event.ts";
import {
  DEFAULT_PARTITIONS,
  DEFAULT_SUBJECT_PREFIX,
  FRAME_HEADER_BYTES,
  FRAME_RECORD_BYTES,
  partitionOf,
  telemetrySubject,
  writeFrameHeader,
} from "./frame.ts";
import type { UserDirectory } from "./directory.ts";

/** Default events per frame: a frame is sealed when it holds this many. */
export const DEFAULT_MAX_EVENTS_PER_FRAME = 1024;
/** Default flush interval, ms: non-empty frames are sealed at least this often. */
export const DEFAULT_FLUSH_INTERVAL_MS = 100;
/** Default frames published and awaiting their JetStream ack at once. */
export const DEFAULT_MAX_IN_FLIGHT = 64;
/** Default bound on events held (open + sealed + in flight). */
export const DEFAULT_MAX_BUFFERED_EVENTS = 262_144;
/** Default wait for one JetStream ack, ms. */
export const DEFAULT_ACK_TIMEOUT_MS = 5_000;
/** Default first retry delay after a failed publish, ms (doubles per attempt, ±20 % jitter). */
export const DEFAULT_RETRY_MIN_MS = 100;
/** Default longest retry delay, ms. */
export const DEFAULT_RETRY_MAX_MS = 5_000;
/** Default entries of the user-key → hash cache. */
export const DEFAULT_USER_CACHE_SIZE = 65_536;
/** Default entries of each route / IP / user-agent hash cache. */
export const DEFAULT_STRING_CACHE_SIZE = 4_096;
/** Default directory writes in flight at once; more new users wait for a later event. */
export const DEFAULT_MAX_PENDING_DIRECTORY_WRITES = 256;
/** Default time close() waits for the last frames, ms. */
export const DEFAULT_CLOSE_TIMEOUT_MS = 30_000;

/** Options of {@link TelemetryPublisher}. */
export interface TelemetryPublisherOptions {
  /** Subject prefix: frames go to `<prefix>.telemetry.<partition>`. Default "foresight". */
  subjectPrefix?: string;
  /** Number of partitions P; partition = userHash.lo % P. Must match the processors'. Default 8. */
  partitions?: number;
  /**
   * Id of this publisher instance in Nats-Msg-Id values (`<id>.<partition>.<frameSeq>`); letters,
   * digits, '_' and '-'. Must be unique per instance: a restarted process reusing an id would have
   * its first frames discarded as duplicates within the stream's duplicate window. Default: 16
   * random hex digits.
   */
  publisherId?: string;
  /** Events per frame (a frame is sealed when full). Default {@link DEFAULT_MAX_EVENTS_PER_FRAME}. */
  maxEventsPerFrame?: number;
  /** Non-empty frames are sealed at least this often, ms. Default {@link DEFAULT_FLUSH_INTERVAL_MS}. */
  flushIntervalMs?: number;
  /** Frames awaiting acks at once (retrying frames included). Default {@link DEFAULT_MAX_IN_FLIGHT}. */
  maxInFlight?: number;
  /**
   * Events held at most (open + sealed + in flight). Beyond it the oldest sealed, not yet sent
   * events are dropped and counted. Must exceed (maxInFlight + partitions) × maxEventsPerFrame.
   * Default {@link DEFAULT_MAX_BUFFERED_EVENTS}.
   */
  maxBufferedEvents?: number;
  /** Wait for one JetStream ack, ms. Default {@link DEFAULT_ACK_TIMEOUT_MS}. */
  ackTimeoutMs?: number;
  /** First retry delay, ms. Default {@link DEFAULT_RETRY_MIN_MS}. */
  retryMinMs?: number;
  /** Longest retry delay, ms. Default {@link DEFAULT_RETRY_MAX_MS}. */
  retryMaxMs?: number;
  /** User-key → hash cache entries. Default {@link DEFAULT_USER_CACHE_SIZE}. */
  userCacheSize?: number;
  /** Route / IP / user-agent hash cache entries (each). Default {@link DEFAULT_STRING_CACHE_SIZE}. */
  stringCacheSize?: number;
  /** Where to record hash → user key once per user. Default none (no directory writes). */
  directory?: UserDirectory;
  /** Directory writes in flight at once. Default {@link DEFAULT_MAX_PENDING_DIRECTORY_WRITES}. */
  maxPendingDirectoryWrites?: number;
  /**
   * Receives every background failure (publish errors before a retry, directory write errors).
   * Never throw from it. Default: ignore (the counters in stats() still count them).
   */
  onError?: (err: Error) => void;
}

/** Counters of a publisher (all since construction). */
export interface TelemetryPublisherStats {
  /** Events accepted by record(). */
  recordedEvents: number;
  /** Events whose frame JetStream acknowledged. */
  ackedEvents: number;
  /** Frames JetStream acknowledged (including duplicates). */
  ackedFrames: number;
  /** Acks that reported a duplicate (a retry of a frame already stored): stored once. */
  duplicateFrames: number;
  /** Events dropped by the buffer bound (or abandoned by a timed-out close). */
  droppedEvents: number;
  /** Publish attempts that failed and were retried (timeout, disconnect, no stream). */
  retries: number;
  /** Events held now (open + sealed + in flight). */
  bufferedEvents: number;
  /** Publish attempts made (first sends and retries). */
  publishAttempts: number;
  /** Frames awaiting an ack, in retry backoff, or parked until the connection is back, now. */
  inFlightFrames: number;
  /** False between the client's "disconnect" and "reconnect": no publish is attempted meanwhile. */
  connected: boolean;
  /** Sealed frames waiting for an in-flight slot now. */
  queuedFrames: number;
  /** Directory entries created by this publisher. */
  directoryWrites: number;
  /** New users not written because maxPendingDirectoryWrites were in flight (retried on a later event). */
  directoryOverflow: number;
  /** Directory writes that failed (retried on a later event). */
  directoryErrors: number;
}

/** record() after close(). */
export class PublisherClosedError extends Error {
  override name = "PublisherClosedError";
  constructor() {
    super("telemetry publisher is closed");
  }
}

/** flush() or close() did not finish within its timeout. */
export class FlushTimeoutError extends Error {
  override name = "FlushTimeoutError";
  constructor(readonly timeoutMs: number, readonly pendingEvents: number) {
    super(`telemetry publisher: ${pendingEvents} events still unacknowledged after ${timeoutMs} ms`);
  }
}

/** Contradictory or out-of-range publisher options. */
export class PublisherConfigError extends Error {
  override name = "PublisherConfigError";
  constructor(readonly option: string, message: string) {
    super(`telemetry publisher option ${option}: ${message}`);
  }
}

/** A publish that failed; `cause` holds the client's error, `msgId` the frame. */
export class PublishFailedError extends Error {
  override name = "PublishFailedError";
  constructor(readonly msgId: string, readonly attempt: number, cause: unknown) {
    super(`publish of frame ${msgId} failed (attempt ${attempt}), retrying: ${(cause as Error)?.message ?? cause}`, { cause });
  }
}

/** A directory write that failed; the user is retried on a later event. */
export class DirectoryWriteError extends Error {
  override name = "DirectoryWriteError";
  constructor(readonly hashHex: string, cause: unknown) {
    super(`user directory write for ${hashHex} failed: ${(cause as Error)?.message ?? cause}`, { cause });
  }
}

// Directory state of a cached user.
const DIR_UNKNOWN = 0;
const DIR_PENDING = 1;
const DIR_DONE = 2;

interface CachedUser {
  lo: number;
  hi: number;
  partition: number;
  dir: number;
}

/**
 * A bounded two-generation cache: lookups hit the young map, then the old one (promoting); when
 * the young map reaches half the capacity it becomes the old one. O(1), at most `capacity` entries,
 * and recently used keys survive a rotation.
 */
class TwoGenCache<V> {
  private young = new Map<string, V>();
  private old = new Map<string, V>();
  private readonly half: number;
  constructor(capacity: number) {
    this.half = Math.max(1, Math.floor(capacity / 2));
  }
  get(key: string): V | undefined {
    const v = this.young.get(key);
    if (v !== undefined) return v;
    const o = this.old.get(key);
    if (o !== undefined) this.set(key, o);
    return o;
  }
  set(key: string, v: V): void {
    if (this.young.size >= this.half) {
      this.old = this.young;
      this.young = new Map();
    }
    this.young.set(key, v);
  }
  get size(): number {
    return this.young.size + this.old.size;
  }
}

interface Frame {
  /** Global seal order (flush watermark). */
  seq: number;
  partition: number;
  msgId: string;
  /** Backing buffer; the frame is bytes[start, start + 16 + count × 48). */
  bytes: Uint8Array;
  start: number;
  count: number;
  attempts: number;
  retryTimer: NodeJS.Timeout | undefined;
  abandoned: boolean;
}

interface OpenBuffer {
  bytes: Uint8Array;
  view: DataView;
  count: number;
  frameSeq: number;
}

interface FlushWaiter {
  seq: number;
  resolve: () => void;
}

/** Publishes request telemetry to JetStream in binary frames, partitioned by user. */
export class TelemetryPublisher {
  readonly subjectPrefix: string;
  readonly partitions: number;
  readonly publisherId: string;
  private readonly maxEventsPerFrame: number;
  private readonly maxInFlight: number;
  private readonly maxBufferedEvents: number;
  private readonly ackTimeoutMs: number;
  private readonly retryMinMs: number;
  private readonly retryMaxMs: number;
  private readonly maxPendingDirectoryWrites: number;
  private readonly directory: UserDirectory | undefined;
  private readonly onError: (err: Error) => void;
  private readonly js: JetStreamClient;
  private readonly subjects: string[];
  private readonly open: OpenBuffer[];
  private readonly users: TwoGenCache<CachedUser>;
  private readonly routeHashes: TwoGenCache<number>;
  private readonly ipHashes: TwoGenCache<number>;
  private readonly uaHashes: TwoGenCache<number>;
  /** Sealed frames waiting for a slot, oldest first (a queue with a moving head). */
  private queue: Frame[] = [];
  private queueHead = 0;
  private readonly inFlight = new Set<Frame>();
  /** In-flight frames whose retry came due while disconnected; re-sent on reconnect. */
  private parked: Frame[] = [];
  private connected = true;
  private readonly statusIter: AsyncIterable<Status>;
  private readonly directoryWrites = new Set<Promise<void>>();
  private flushWaiters: FlushWaiter[] = [];
  private readonly timer: NodeJS.Timeout;
  private sealSeq = 0;
  private closed = false;
  private readonly counters = {
    recordedEvents: 0,
    ackedEvents: 0,
    ackedFrames: 0,
    duplicateFrames: 0,
    droppedEvents: 0,
    retries: 0,
    publishAttempts: 0,
    bufferedEvents: 0,
    directoryWrites: 0,
    directoryOverflow: 0,
    directoryErrors: 0,
  };

  constructor(nc: NatsConnection, opts: TelemetryPublisherOptions = {}) {
    this.subjectPrefix = opts.subjectPrefix ?? DEFAULT_SUBJECT_PREFIX;
    this.partitions = positiveInt("partitions", opts.partitions ?? DEFAULT_PARTITIONS);
    this.publisherId = opts.publisherId ?? randomId();
    if (!/^[A-Za-z0-9_-]+$/.test(this.publisherId)) {
      throw new PublisherConfigError("publisherId", `use letters, digits, '_' and '-' only, got ${JSON.stringify(this.publisherId)}`);
    }
    this.maxEventsPerFrame = positiveInt("maxEventsPerFrame", opts.maxEventsPerFrame ?? DEFAULT_MAX_EVENTS_PER_FRAME);
    this.maxInFlight = positiveInt("maxInFlight", opts.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT);
    this.maxBufferedEvents = positiveInt("maxBufferedEvents", opts.maxBufferedEvents ?? DEFAULT_MAX_BUFFERED_EVENTS);
    const floor = (this.maxInFlight + this.partitions) * this.maxEventsPerFrame;
    if (this.maxBufferedEvents <= floor) {
      // Below this the bound could be reached with nothing droppable (all open or in flight).
      throw new PublisherConfigError(
        "maxBufferedEvents",
        `must exceed (maxInFlight + partitions) × maxEventsPerFrame = ${floor}, got ${this.maxBufferedEvents}`,
      );
    }
    const maxPayload = nc.info?.max_payload;
    const frameBytes = FRAME_HEADER_BYTES + this.maxEventsPerFrame * FRAME_RECORD_BYTES;
    if (maxPayload && frameBytes > maxPayload) {
      throw new PublisherConfigError("maxEventsPerFrame", `a full frame (${frameBytes} bytes) exceeds the server's max_payload ${maxPayload}`);
    }
    this.ackTimeoutMs = positiveInt("ackTimeoutMs", opts.ackTimeoutMs ?? DEFAULT_ACK_TIMEOUT_MS);
    this.retryMinMs = positiveInt("retryMinMs", opts.retryMinMs ?? DEFAULT_RETRY_MIN_MS);
    this.retryMaxMs = Math.max(this.retryMinMs, positiveInt("retryMaxMs", opts.retryMaxMs ?? DEFAULT_RETRY_MAX_MS));
    this.maxPendingDirectoryWrites = positiveInt(
      "maxPendingDirectoryWrites",
      opts.maxPendingDirectoryWrites ?? DEFAULT_MAX_PENDING_DIRECTORY_WRITES,
    );
    this.directory = opts.directory;
    const onError = opts.onError ?? (() => {});
    // A throwing handler must not break the publisher's loops.
    this.onError = (err) => {
      try {
        onError(err);
      } catch {
        /* the handler's own problem */
      }
    };
    this.js = jetstream(nc);
    this.subjects = Array.from({ length: this.partitions }, (_, p) => telemetrySubject(this.subjectPrefix, p));
    this.open = Array.from({ length: this.partitions }, () => this.newOpenBuffer(0));
    this.users = new TwoGenCache(positiveInt("userCacheSize", opts.userCacheSize ?? DEFAULT_USER_CACHE_SIZE));
    const stringCacheSize = positiveInt("stringCacheSize", opts.stringCacheSize ?? DEFAULT_STRING_CACHE_SIZE);
    this.routeHashes = new TwoGenCache(stringCacheSize);
    this.ipHashes = new TwoGenCache(stringCacheSize);
    this.uaHashes = new TwoGenCache(stringCacheSize);
    const flushIntervalMs = positiveInt("flushIntervalMs", opts.flushIntervalMs ?? DEFAULT_FLUSH_INTERVAL_MS);
    this.timer = setInterval(() => this.tick(), flushIntervalMs);
    this.timer.unref();
    // While disconnected the client would buffer every publish (and every retry) in memory
    // without bound; pausing instead keeps the bound at maxBufferedEvents.
    this.statusIter = nc.status();
    void this.watchStatus();
  }

  /**
   * Records one request. Synchronous and O(1); never blocks. Throws InvalidEventError (nothing
   * recorded) for a bad field, PublisherClosedError after close().
   */
  record(e: TelemetryEvent): void {
    if (this.closed) throw new PublisherClosedError();
    const key = checkUser(e.user);
    let u = this.users.get(key);
    if (u === undefined) {
      const h = userHash(key);
      u = { lo: h.lo, hi: h.hi, partition: partitionOf(h.lo, this.partitions), dir: DIR_UNKNOWN };
      this.users.set(key, u);
    }
    const buf = this.open[u.partition];
    writeEventRecord(
      buf.view,
      FRAME_HEADER_BYTES + buf.count * FRAME_RECORD_BYTES,
      e,
      u.lo,
      u.hi,
      cachedHash(this.routeHashes, e.route),
      cachedHash(this.ipHashes, e.sourceIp),
      cachedHash(this.uaHashes, e.userAgent),
      e.timeMs === undefined ? Date.now() : 0,
    );
    buf.count++;
    this.counters.recordedEvents++;
    this.counters.bufferedEvents++;
    if (buf.count === this.maxEventsPerFrame) {
      this.seal(u.partition);
      this.pump();
    }
    if (this.counters.bufferedEvents > this.maxBufferedEvents) this.dropOldest();
    if (u.dir === DIR_UNKNOWN && this.directory) this.registerUser(key, u, e);
  }

  /**
   * Resolves when every event recorded before the call is acknowledged by JetStream (or dropped
   * by the buffer bound), and the directory writes started before it have finished. Rejects with
   * FlushTimeoutError after `timeoutMs` (default: no timeout).
   */
  async flush(timeoutMs = Infinity): Promise<void> {
    for (let p = 0; p < this.partitions; p++) this.seal(p);
    this.pump();
    const target = this.sealSeq;
    const frames = new Promise<void>((resolve) => {
      if (this.minPendingSeq() > target) resolve();
      else this.flushWaiters.push({ seq: target, resolve });
    });
    const all = Promise.all([frames, Promise.all([...this.directoryWrites])]).then(() => {});
    if (timeoutMs === Infinity) return all;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new FlushTimeoutError(timeoutMs, this.counters.bufferedEvents)), timeoutMs);
      timer.unref();
    });
    try {
      await Promise.race([all, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Stops accepting events, publishes what is buffered and stops the timers. After `timeoutMs`
   * (default {@link DEFAULT_CLOSE_TIMEOUT_MS}) the rest is abandoned (counted as dropped) and the
   * FlushTimeoutError is thrown. Does not close the NATS connection (the caller owns it).
   */
  async close(timeoutMs = DEFAULT_CLOSE_TIMEOUT_MS): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    try {
      await this.flush(timeoutMs);
    } catch (err) {
      this.abandonAll();
      throw err;
    } finally {
      // The client's iterator has stop() (not in the public type): it ends watchStatus() and
      // unregisters the listener.
      (this.statusIter as { stop?: () => void }).stop?.();
    }
  }

  /** Current counters. */
  stats(): TelemetryPublisherStats {
    return {
      ...this.counters,
      inFlightFrames: this.inFlight.size,
      queuedFrames: this.queue.length - this.queueHead,
      connected: this.connected,
    };
  }

  // ---- internals ---------------------------------------------------------------------------------

  private newOpenBuffer(frameSeq: number): OpenBuffer {
    const bytes = new Uint8Array(FRAME_HEADER_BYTES + this.maxEventsPerFrame * FRAME_RECORD_BYTES);
    return { bytes, view: new DataView(bytes.buffer), count: 0, frameSeq };
  }

  /** The flush timer: seal every non-empty buffer and publish. Never throws. */
  private tick(): void {
    try {
      for (let p = 0; p < this.partitions; p++) this.seal(p);
      this.pump();
    } catch (err) {
      this.onError(err as Error);
    }
  }

  /** Turns a partition's open buffer into a queued frame (no-op when empty). */
  private seal(partition: number): void {
    const buf = this.open[partition];
    if (buf.count === 0) return;
    writeFrameHeader(buf.bytes, buf.count);
    this.queue.push({
      seq: ++this.sealSeq,
      partition,
      msgId: `${this.publisherId}.${partition}.${buf.frameSeq}`,
      bytes: buf.bytes,
      start: 0,
      count: buf.count,
      attempts: 0,
      retryTimer: undefined,
      abandoned: false,
    });
    this.open[partition] = this.newOpenBuffer(buf.frameSeq + 1);
  }

  /** Follows the connection: pause on disconnect, resume (parked retries first) on reconnect. */
  private async watchStatus(): Promise<void> {
    try {
      for await (const s of this.statusIter) {
        if (s.type === "disconnect") this.connected = false;
        else if (s.type === "reconnect") {
          this.connected = true;
          const parked = this.parked;
          this.parked = [];
          for (const f of parked) if (!f.abandoned) this.send(f);
          this.pump();
        }
      }
    } catch (err) {
      this.onError(err as Error);
    }
  }

  /** Starts publishes while slots are free (none while disconnected). */
  private pump(): void {
    while (this.connected && this.inFlight.size < this.maxInFlight && this.queueHead < this.queue.length) {
      const f = this.queue[this.queueHead++];
      this.compactQueue();
      this.inFlight.add(f);
      this.send(f);
    }
  }

  private compactQueue(): void {
    if (this.queueHead === this.queue.length) {
      this.queue = [];
      this.queueHead = 0;
    } else if (this.queueHead > 1024 && this.queueHead * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.queueHead);
      this.queueHead = 0;
    }
  }

  /** One publish attempt of an in-flight frame; on failure, schedules the next with backoff. */
  private send(f: Frame): void {
    f.attempts++;
    this.counters.publishAttempts++;
    const payload = f.bytes.subarray(f.start, f.start + FRAME_HEADER_BYTES + f.count * FRAME_RECORD_BYTES);
    let attempt: Promise<PubAck>;
    try {
      attempt = this.js.publish(this.subjects[f.partition], payload, { msgID: f.msgId, timeout: this.ackTimeoutMs });
    } catch (err) {
      attempt = Promise.reject(err);
    }
    attempt.then(
      (ack) => this.acked(f, ack),
      (err) => this.failed(f, err),
    );
  }

  private acked(f: Frame, ack: PubAck): void {
    if (f.abandoned) return;
    this.inFlight.delete(f);
    this.counters.ackedFrames++;
    this.counters.ackedEvents += f.count;
    if (ack.duplicate) this.counters.duplicateFrames++;
    this.counters.bufferedEvents -= f.count;
    this.frameDone();
  }

  private failed(f: Frame, err: unknown): void {
    if (f.abandoned) return;
    this.counters.retries++;
    this.onError(new PublishFailedError(f.msgId, f.attempts, err));
    const base = Math.min(this.retryMaxMs, this.retryMinMs * 2 ** Math.min(20, f.attempts - 1));
    const delayMs = base * (0.8 + 0.4 * Math.random());
    // The frame keeps its slot and its msgID during backoff: the retry is the same message.
    f.retryTimer = setTimeout(() => {
      f.retryTimer = undefined;
      if (f.abandoned) return;
      if (this.connected) this.send(f);
      else this.parked.push(f);
    }, delayMs);
    f.retryTimer.unref();
  }

  /** After a frame left the pipeline: refill slots and release flush waiters. */
  private frameDone(): void {
    this.pump();
    if (this.flushWaiters.length === 0) return;
    const min = this.minPendingSeq();
    const still: FlushWaiter[] = [];
    for (const w of this.flushWaiters) {
      if (w.seq < min) w.resolve();
      else still.push(w);
    }
    this.flushWaiters = still;
  }

  /** Smallest seal sequence still queued or in flight (Infinity when none). */
  private minPendingSeq(): number {
    let min = this.queueHead < this.queue.length ? this.queue[this.queueHead].seq : Infinity;
    for (const f of this.inFlight) if (f.seq < min) min = f.seq;
    return min;
  }

  /**
   * Drops the oldest queued (never sent) event: the first record of the oldest queued frame. The
   * header moves forward one record, so the frame stays valid; an emptied frame leaves the queue.
   * The constructor's bound check guarantees a queued frame exists here.
   */
  private dropOldest(): void {
    if (this.queueHead >= this.queue.length) return;
    const f = this.queue[this.queueHead];
    f.start += FRAME_RECORD_BYTES;
    f.count--;
    this.counters.droppedEvents++;
    this.counters.bufferedEvents--;
    if (f.count === 0) {
      this.queueHead++;
      this.compactQueue();
      this.frameDone();
    } else {
      writeFrameHeader(f.bytes.subarray(f.start), f.count);
    }
  }

  /** close() timed out: give up on everything still held. */
  private abandonAll(): void {
    const give = (f: Frame) => {
      f.abandoned = true;
      if (f.retryTimer) clearTimeout(f.retryTimer);
      this.counters.droppedEvents += f.count;
      this.counters.bufferedEvents -= f.count;
    };
    for (let i = this.queueHead; i < this.queue.length; i++) give(this.queue[i]);
    for (const f of this.inFlight) give(f);
    this.queue = [];
    this.queueHead = 0;
    this.inFlight.clear();
    this.parked = [];
    for (const w of this.flushWaiters) w.resolve();
    this.flushWaiters = [];
  }

  /** Fire-and-forget directory write, bounded by maxPendingDirectoryWrites. */
  private registerUser(key: string, u: CachedUser, e: TelemetryEvent): void {
    const dir = this.directory!;
    if (this.directoryWrites.size >= this.maxPendingDirectoryWrites) {
      this.counters.directoryOverflow++; // stays DIR_UNKNOWN: a later event of this user retries
      return;
    }
    u.dir = DIR_PENDING;
    const hashHex = userHashHex(u);
    const entry = { user: key, segment: e.segment, plan: e.plan, firstSeenMs: e.timeMs ?? Date.now() };
    const p: Promise<void> = dir.register(hashHex, entry).then(
      (created) => {
        u.dir = DIR_DONE;
        if (created) this.counters.directoryWrites++;
      },
      (err) => {
        u.dir = DIR_UNKNOWN;
        this.counters.directoryErrors++;
        this.onError(new DirectoryWriteError(hashHex, err));
      },
    );
    this.directoryWrites.add(p);
    void p.finally(() => this.directoryWrites.delete(p));
  }
}

function cachedHash(cache: TwoGenCache<number>, s: string | undefined): number {
  if (!s) return 0;
  let h = cache.get(s);
  if (h === undefined) {
    h = hash32(s);
    cache.set(s, h);
  }
  return h;
}

function positiveInt(option: string, v: number): number {
  if (!Number.isInteger(v) || v <= 0) throw new PublisherConfigError(option, `expected a positive integer, got ${v}`);
  return v;
}

function randomId(): string {
  return randomBytes(8).toString("hex");
}
