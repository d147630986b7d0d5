// A synchronous, bounded, in-memory view of the user directory's plans and segments, for lookups
// on hot paths (every user of every forecast tick): the demand partials' and the grants' pool
// matching, and each grant's plan. It loads the KV bucket and follows it with a KV watch.
//
// Memory: an open-addressing table (linear probing, backward-shift deletion, no tombstones) of
// 12 bytes per slot — the 64-bit hash as two u32 and one u32 holding plan and segment codes — at
// most 3/4 full, so 16-32 B per user (measured: 25.2 B per user at 1M users, 2^21 slots; see
// docs/allocator-kube.md). Plan and segment names are interned (a handful of distinct names).
// Entries with neither plan nor segment are not held: they answer "unknown", as a missing one does.
//
// Following the bucket: one KV watch (last value per key, then updates, in stream order). Each
// entry's revision is its stream sequence; entries at or below the last one applied are ignored,
// so a resumed watch may overlap the old one. nats.js's ordered consumer recreates itself only
// after two missed idle heartbeats (30 s each), so on every reconnect the index restarts the watch
// itself from the last revision + 1; a stream that went backwards (bucket recreated) is reloaded
// from scratch.
import type { NatsConnection, QueuedIterator } from "@nats-io/transport-node";
import { Kvm, type KV, type KvWatchEntry } from "@nats-io/kv";
import { DEFAULT_DIRECTORY_BUCKET, DirectoryEntryError, parseDirectoryEntry } from "./directory.ts";
import { parseUserHashHex } from "./hash.ts";

/** Default most users the index holds (beyond it new users are counted and answer unknown). */
export const DEFAULT_DIRECTORY_INDEX_MAX_USERS = 4_194_304;
/** Default most distinct plan names and, separately, segment names (codes are 16 bits). */
export const DEFAULT_DIRECTORY_INDEX_MAX_NAMES = 4096;
/** First wait before a failed watch restart is retried, ms (doubles up to the maximum). */
export const DIRECTORY_WATCH_RETRY_MIN_MS = 100;
/** Longest wait between watch restart attempts, ms. */
export const DIRECTORY_WATCH_RETRY_MAX_MS = 5_000;

/** Highest code of a name (0 = none; the table's 32-bit attribute holds two 16-bit codes). */
const MAX_CODE = 0xffff;
const INITIAL_SLOTS = 1024;

/** The directory's attributes of a user that the policy reads (what {@link DirectoryIndex} answers). */
export interface UserAttributeLookup {
  /** The user's plan, or undefined when unknown. */
  planOf(userHashLo: number, userHashHi: number): string | undefined;
  /** The user's segment, or undefined when unknown. */
  segmentOf(userHashLo: number, userHashHi: number): string | undefined;
}

/** Options of {@link DirectoryIndex.open}. */
export interface DirectoryIndexOptions {
  /** KV bucket of the directory. Default {@link DEFAULT_DIRECTORY_BUCKET}. */
  bucket?: string;
  /**
   * Create the bucket when missing (as `UserDirectory.open` does). Default true. With false (a
   * reader without rights on the bucket's stream, as the deployed processor and allocator), a
   * missing bucket is waited for: lookups answer unknown until it exists.
   */
  create?: boolean;
  /** Replicas of the bucket when created. Default 1. */
  replicas?: number;
  /** Most users held, users. Default {@link DEFAULT_DIRECTORY_INDEX_MAX_USERS} (≈ 100 MiB at most). */
  maxUsers?: number;
  /** Most distinct plan names, and segment names, held. Default {@link DEFAULT_DIRECTORY_INDEX_MAX_NAMES}. */
  maxNames?: number;
  /** Called after every entry applied, removed or refused (tests; runs on the watch's callback). */
  onEntry?: (e: DirectoryIndexEvent) => void;
  /** Where a refused entry or a failed watch restart is reported. Default: nowhere (counted only). */
  log?: { warn(obj: object, msg: string): void };
}

/** What happened to one watched entry. */
export interface DirectoryIndexEvent {
  /** The entry's key (16 hex digits, lower case, or as received when refused). */
  key: string;
  /** The entry's revision (stream sequence). */
  revision: number;
  /** "put": held or updated; "delete": removed (DEL/PURGE, or a value without plan and segment); "bad": refused. */
  kind: "put" | "delete" | "bad";
}

/** Counters of a {@link DirectoryIndex}. */
export interface DirectoryIndexStats {
  /** Users held now (with a plan or a segment). */
  users: number;
  /** Slots of the table (12 bytes each). */
  slots: number;
  /** Entries applied (puts and removals). */
  applied: number;
  /** Entries refused, by reason: "key" (not 16 hex digits), "value" (not the documented JSON). */
  badEntries: { key: number; value: number };
  /** New users not held because the index was full (they answer unknown). */
  full: number;
  /** Names not held because maxNames distinct names were held (the attribute answers unknown). */
  namesOverflow: number;
  /** Watches started after the first (reconnects, ended watches, reloads). */
  watchRestarts: number;
  /** Full reloads (the bucket's stream went backwards: recreated). */
  reloads: number;
  /** Highest revision applied. */
  revision: number;
  /** True once the bucket's values at the first watch's start were all applied. */
  initialized: boolean;
}

/** Interned names: code 0 = none, 1..max. */
class NameTable {
  readonly names: (string | undefined)[] = [undefined];
  private readonly codes = new Map<string, number>();
  constructor(private readonly max: number) {}

  /** The name's code (interned on first use), 0 when absent, -1 when the table is full. */
  codeOf(name: string | undefined): number {
    if (name === undefined) return 0;
    let c = this.codes.get(name);
    if (c === undefined) {
      if (this.names.length > this.max) return -1;
      c = this.names.length;
      this.names.push(name);
      this.codes.set(name, c);
    }
    return c;
  }
}

/** Hash → (plan, segment), an open-addressing table over typed arrays. */
class AttributeTable {
  /** lo, hi per slot. */
  keys: Uint32Array;
  /** plan code << 16 | segment code per slot; 0 = empty slot. */
  attrs: Uint32Array;
  mask: number;
  size = 0;

  constructor(slots: number) {
    this.keys = new Uint32Array(slots * 2);
    this.attrs = new Uint32Array(slots);
    this.mask = slots - 1;
  }

  get slots(): number {
    return this.attrs.length;
  }

  private home(lo: number, hi: number): number {
    // The hash is already uniform; mixing both halves keeps it so for any probing mask.
    let h = Math.imul(lo ^ Math.imul(hi, 0x9e3779b1), 0x85ebca6b);
    h ^= h >>> 15;
    return h & this.mask;
  }

  find(lo: number, hi: number): number {
    for (let s = this.home(lo, hi); ; s = (s + 1) & this.mask) {
      if (this.attrs[s] === 0) return -1;
      if (this.keys[2 * s] === lo && this.keys[2 * s + 1] === hi) return s;
    }
  }

  /** Sets a user's attributes; false when the user is new and the table may not grow past `maxUsers`. */
  set(lo: number, hi: number, attr: number, maxUsers: number): boolean {
    const at = this.find(lo, hi);
    if (at >= 0) {
      this.attrs[at] = attr;
      return true;
    }
    if (this.size >= maxUsers) return false;
    if ((this.size + 1) * 4 > this.slots * 3) this.grow();
    let s = this.home(lo, hi);
    while (this.attrs[s] !== 0) s = (s + 1) & this.mask;
    this.keys[2 * s] = lo;
    this.keys[2 * s + 1] = hi;
    this.attrs[s] = attr;
    this.size++;
    return true;
  }

  /** Removes a user; backward-shift deletion keeps every probe chain unbroken without tombstones. */
  remove(lo: number, hi: number): boolean {
    let hole = this.find(lo, hi);
    if (hole < 0) return false;
    for (let s = (hole + 1) & this.mask; this.attrs[s] !== 0; s = (s + 1) & this.mask) {
      const h = this.home(this.keys[2 * s], this.keys[2 * s + 1]);
      // Move s into the hole unless its home lies cyclically in (hole, s].
      if (((s - h) & this.mask) >= ((s - hole) & this.mask)) {
        this.keys[2 * hole] = this.keys[2 * s];
        this.keys[2 * hole + 1] = this.keys[2 * s + 1];
        this.attrs[hole] = this.attrs[s];
        hole = s;
      }
    }
    this.attrs[hole] = 0;
    this.size--;
    return true;
  }

  private grow(): void {
    const { keys, attrs } = this;
    const slots = attrs.length * 2;
    this.keys = new Uint32Array(slots * 2);
    this.attrs = new Uint32Array(slots);
    this.mask = slots - 1;
    for (let s = 0; s < attrs.length; s++) {
      if (attrs[s] === 0) continue;
      let t = this.home(keys[2 * s], keys[2 * s + 1]);
      while (this.attrs[t] !== 0) t = (t + 1) & this.mask;
      this.keys[2 * t] = keys[2 * s];
      this.keys[2 * t + 1] = keys[2 * s + 1];
      this.attrs[t] = attrs[s];
    }
  }
}

/** See the module comment. */
export class DirectoryIndex implements UserAttributeLookup {
  private table = new AttributeTable(INITIAL_SLOTS);
  private readonly plans: NameTable;
  private readonly segments: NameTable;
  private readonly maxUsers: number;
  private readonly s: Omit<DirectoryIndexStats, "users" | "slots"> = {
    applied: 0, badEntries: { key: 0, value: 0 }, full: 0, namesOverflow: 0, watchRestarts: 0, reloads: 0, revision: 0, initialized: false,
  };
  private watcher: QueuedIterator<KvWatchEntry> | undefined;
  private stopped = false;
  /** True once a watch has started (later ones resume from the last revision). */
  private watching = false;
  private statusIterator: { stop?: () => void } | undefined;
  private restarting: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  /** Revision up to which the first watch's initial values run (its start's last sequence). */
  private initialThrough = 0;
  private readonly initializedWaiters: (() => void)[] = [];

  private constructor(private readonly nc: NatsConnection, private readonly kv: KV, readonly bucket: string, private readonly opts: DirectoryIndexOptions) {
    this.maxUsers = opts.maxUsers ?? DEFAULT_DIRECTORY_INDEX_MAX_USERS;
    this.plans = new NameTable(Math.min(MAX_CODE, opts.maxNames ?? DEFAULT_DIRECTORY_INDEX_MAX_NAMES));
    this.segments = new NameTable(Math.min(MAX_CODE, opts.maxNames ?? DEFAULT_DIRECTORY_INDEX_MAX_NAMES));
  }

  /**
   * Opens the bucket and starts following it. Resolves once the watch runs, not once the bucket is
   * loaded (lookups answer unknown until then): await {@link initialized} for that.
   */
  static async open(nc: NatsConnection, opts: DirectoryIndexOptions = {}): Promise<DirectoryIndex> {
    const bucket = opts.bucket ?? DEFAULT_DIRECTORY_BUCKET;
    const kvm = new Kvm(nc);
    const kv = opts.create === false ? await kvm.open(bucket) : await kvm.create(bucket, { replicas: opts.replicas ?? 1 });
    const ix = new DirectoryIndex(nc, kv, bucket, opts);
    void ix.followStatus();
    try {
      await ix.startWatch();
    } catch (err) {
      if (opts.create !== false) throw err;
      // A reader that does not own the bucket may start before its owner (the gateways) created
      // it: lookups answer unknown and the watch is retried until the bucket exists.
      opts.log?.warn({ err, bucket }, "user directory not readable yet; retrying");
      ix.restart();
    }
    return ix;
  }

  /** The user's plan, or undefined when unknown. */
  planOf(userHashLo: number, userHashHi: number): string | undefined {
    const s = this.table.find(userHashLo >>> 0, userHashHi >>> 0);
    return s < 0 ? undefined : this.plans.names[this.table.attrs[s] >>> 16];
  }

  /** The user's segment, or undefined when unknown. */
  segmentOf(userHashLo: number, userHashHi: number): string | undefined {
    const s = this.table.find(userHashLo >>> 0, userHashHi >>> 0);
    return s < 0 ? undefined : this.segments.names[this.table.attrs[s] & 0xffff];
  }

  stats(): DirectoryIndexStats {
    return { ...this.s, badEntries: { ...this.s.badEntries }, users: this.table.size, slots: this.table.slots };
  }

  /** Resolves once the bucket's values at the first watch's start are applied. */
  initialized(): Promise<void> {
    if (this.s.initialized) return Promise.resolve();
    return new Promise((resolve) => this.initializedWaiters.push(resolve));
  }

  /** Stops following the bucket (lookups keep answering from what was loaded). */
  async stop(): Promise<void> {
    this.stopped = true;
    this.statusIterator?.stop?.();
    this.watcher?.stop();
    this.watcher = undefined;
    this.wake?.();
    await this.restarting;
  }

  private markInitialized(): void {
    if (this.s.initialized) return;
    this.s.initialized = true;
    for (const w of this.initializedWaiters.splice(0)) w();
  }

  /**
   * Starts a watch: the last value of every key on the first start, else every entry after the
   * last revision applied. A bucket whose stream ends below that revision was recreated: the
   * table is cleared and loaded again.
   */
  private async startWatch(): Promise<void> {
    const first = !this.watching;
    const status = await this.kv.status();
    const lastSeq = status.streamInfo.state.last_seq;
    let resume = first ? 0 : this.s.revision + 1;
    if (!first && lastSeq < this.s.revision) {
      this.s.reloads++;
      this.table = new AttributeTable(INITIAL_SLOTS);
      this.s.revision = 0;
      resume = 0;
    }
    if (first) {
      this.initialThrough = lastSeq;
      if (status.streamInfo.state.messages === 0) this.markInitialized();
    }
    const w = await this.kv.watch(resume > 0 ? { resumeFromRevision: resume } : {});
    if (this.stopped) {
      w.stop();
      return;
    }
    this.watcher = w;
    if (!first) this.s.watchRestarts++;
    this.watching = true;
    void this.consume(w);
  }

  private async consume(w: QueuedIterator<KvWatchEntry>): Promise<void> {
    try {
      for await (const e of w) {
        this.apply(e);
        // The watch marks the last of its initial values (and everything after) as updates.
        if (e.isUpdate || e.revision >= this.initialThrough) this.markInitialized();
      }
    } catch (err) {
      this.opts.log?.warn({ err, bucket: this.bucket }, "user directory watch failed; restarting it");
    }
    // Ended without stop(): the consumer or connection went away; resume where it left off.
    if (!this.stopped && this.watcher === w) this.restart();
  }

  /** Applies one watched entry (bad ones are counted and skipped). */
  private apply(e: KvWatchEntry): void {
    if (e.revision <= this.s.revision) return; // an overlapping resumed watch
    this.s.revision = e.revision;
    let h;
    try {
      h = parseUserHashHex(e.key);
    } catch {
      this.s.badEntries.key++;
      this.opts.onEntry?.({ key: e.key, revision: e.revision, kind: "bad" });
      return;
    }
    const key = e.key.toLowerCase();
    if (e.operation !== "PUT" || e.value.length === 0) return this.remove(h.lo, h.hi, key, e.revision);
    let entry;
    try {
      entry = parseDirectoryEntry(key, e.value);
    } catch (err) {
      if (!(err instanceof DirectoryEntryError)) throw err;
      this.s.badEntries.value++;
      // The bucket holds this value now: answering from an older one would be stale.
      this.table.remove(h.lo, h.hi);
      this.opts.log?.warn({ key, revision: e.revision, err: err.message }, "user directory entry refused");
      this.opts.onEntry?.({ key, revision: e.revision, kind: "bad" });
      return;
    }
    let plan = this.plans.codeOf(entry.plan);
    let segment = this.segments.codeOf(entry.segment);
    if (plan < 0 || segment < 0) this.s.namesOverflow++;
    plan = Math.max(0, plan);
    segment = Math.max(0, segment);
    if (plan === 0 && segment === 0) return this.remove(h.lo, h.hi, key, e.revision);
    if (!this.table.set(h.lo, h.hi, (plan << 16) | segment, this.maxUsers)) this.s.full++;
    else this.s.applied++;
    this.opts.onEntry?.({ key, revision: e.revision, kind: "put" });
  }

  private remove(lo: number, hi: number, key: string, revision: number): void {
    this.table.remove(lo, hi);
    this.s.applied++;
    this.opts.onEntry?.({ key, revision, kind: "delete" });
  }

  /** Restarts the watch after a reconnect (single flight; retried with backoff until it runs or stop()). */
  private restart(): void {
    if (this.stopped || this.restarting) return;
    this.restarting = (async () => {
      this.watcher?.stop();
      this.watcher = undefined;
      let waitMs = DIRECTORY_WATCH_RETRY_MIN_MS;
      let lastMessage = "";
      while (!this.stopped) {
        try {
          await this.startWatch();
          return;
        } catch (err) {
          // JetStream may not answer yet right after a server restart, or the bucket may not exist
          // yet; logged when the reason changes, not at every attempt.
          const message = (err as Error)?.message ?? String(err);
          if (message !== lastMessage) this.opts.log?.warn({ err, bucket: this.bucket, retryInMs: waitMs }, "user directory watch not started; retrying");
          lastMessage = message;
          await new Promise<void>((resolve) => {
            const t = setTimeout(resolve, waitMs);
            t.unref();
            this.wake = () => (clearTimeout(t), resolve()); // stop() does not wait out the backoff
          });
          this.wake = undefined;
          waitMs = Math.min(DIRECTORY_WATCH_RETRY_MAX_MS, waitMs * 2);
        }
      }
    })().finally(() => (this.restarting = undefined));
  }

  private async followStatus(): Promise<void> {
    const it = this.nc.status();
    this.statusIterator = it as { stop?: () => void };
    for await (const s of it) {
      if (this.stopped) return;
      if (s.type === "reconnect") this.restart();
    }
  }
}
