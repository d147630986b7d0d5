// Partition ownership through KV leases. Key `partition.<n>` holds {owner, expiresAtMs}; a lease
// is acquired with `create` (key absent) or `update(observed revision)` (lease expired or
// released), renewed with `update(own revision)`. The revision makes every change a
// compare-and-set, so two processes never both believe they own a partition for longer than one
// TTL. Live processes announce themselves under `member.<id>`; each process takes at most
// ceil(partitions / live members) partitions and releases the rest, so ownership spreads out.
// Expiry is judged on wall clocks, so processes need roughly synchronized clocks (NTP; a skew
// well under the TTL).
import type { NatsConnection } from "@nats-io/transport-node";
import { Kvm, type KV } from "@nats-io/kv";
import { DEFAULT_LEASE_TTL_MS } from "../config/schema.ts";
import { isRevisionConflict } from "../nats/errors.ts";
import { hash32 } from "../telemetry/hash.ts";
import type { ProcessorNames } from "./names.ts";

/** The value stored under `partition.<n>`. */
/** The owner named by a lease entry's JSON ("" when unreadable). */
function ownerOf(json: string): string {
  try {
    return String((JSON.parse(json) as LeaseValue).owner ?? "");
  } catch {
    return "";
  }
}

export interface LeaseValue {
  /** Owning process id ("" = released). */
  owner: string;
  /** Wall-clock expiry, ms since the epoch. */
  expiresAtMs: number;
}

/** The lease bucket could not be opened or read. */
export class LeaseIoError extends Error {
  override name = "LeaseIoError";
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** What one {@link LeaseManager.round} changed. */
export interface LeaseRoundResult {
  /** Partitions newly acquired: start consuming them. */
  acquired: number[];
  /** Partitions whose lease another process took (or that expired unrenewed): stop at once. */
  lost: number[];
  /** Partitions above the fair share: stop, checkpoint, then {@link LeaseManager.release}. */
  surplus: number[];
  /** Live members seen (including this process). */
  liveMembers: number;
  /** What failed in this round (renewals of held leases still ran; nothing was acquired). */
  errors: LeaseIoError[];
}

export interface LeaseManagerOptions {
  /** This process's id (KV-key safe characters are kept, others become `_`). */
  processId: string;
  /** Number of partitions. */
  partitions: number;
  /** Lease TTL, ms. Default {@link DEFAULT_LEASE_TTL_MS}. */
  ttlMs?: number;
  /** Replicas of the lease bucket. Default 1. */
  replicas?: number;
  /** Wall clock, ms since the epoch. Default Date.now. */
  now?: () => number;
}

interface Held {
  revision: number;
  expiresAtMs: number;
}

/** Sanitizes a process id into KV-key-safe characters. */
export function leaseSafeId(id: string): string {
  return id.replace(/[^A-Za-z0-9_=-]/g, "_");
}

/** Acquires, renews and releases this process's partition leases. */
export class LeaseManager {
  private readonly held = new Map<number, Held>();
  readonly processId: string;
  readonly ttlMs: number;
  private readonly now: () => number;

  private constructor(private readonly kv: KV, private readonly opts: LeaseManagerOptions) {
    this.processId = leaseSafeId(opts.processId);
    this.ttlMs = opts.ttlMs ?? DEFAULT_LEASE_TTL_MS;
    this.now = opts.now ?? Date.now;
  }

  static async open(nc: NatsConnection, names: ProcessorNames, opts: LeaseManagerOptions): Promise<LeaseManager> {
    try {
      const kv = await new Kvm(nc).create(names.leaseBucket, { history: 1, replicas: opts.replicas ?? 1 });
      return new LeaseManager(kv, opts);
    } catch (err) {
      throw new LeaseIoError(`cannot open lease bucket ${names.leaseBucket}: ${(err as Error).message}`, { cause: err });
    }
  }

  /** Partitions this process holds a lease on now. */
  owned(): number[] {
    return [...this.held.keys()].sort((a, b) => a - b);
  }

  /** True while this process holds the partition's lease and it has not expired. */
  holds(partition: number): boolean {
    const h = this.held.get(partition);
    return h !== undefined && h.expiresAtMs > this.now();
  }

  private value(expiresAtMs: number, owner = this.processId): Uint8Array {
    return new TextEncoder().encode(JSON.stringify({ owner, expiresAtMs } satisfies LeaseValue));
  }

  /**
   * Renews one lease now (compare-and-set on its revision). False when the lease was lost; a
   * transient error keeps the lease until its known expiry. Used before writing a checkpoint, so
   * only the owner writes one.
   */
  async renew(partition: number): Promise<boolean> {
    const h = this.held.get(partition);
    if (!h) return false;
    const key = `partition.${partition}`;
    const expiresAtMs = this.now() + this.ttlMs;
    try {
      h.revision = await this.kv.update(key, this.value(expiresAtMs), h.revision);
      h.expiresAtMs = expiresAtMs;
      return true;
    } catch (err) {
      if (isRevisionConflict(err)) {
        // A renewal of ours may have been stored though its reply was lost (a node died
        // mid-request), leaving us with a stale revision: the lease is still ours if the entry
        // names this process. Only another owner's write means it was lost.
        try {
          const e = await this.kv.get(key);
          if (e && e.operation === "PUT" && ownerOf(e.string()) === this.processId) {
            h.revision = await this.kv.update(key, this.value(expiresAtMs), e.revision);
            h.expiresAtMs = expiresAtMs;
            return true;
          }
        } catch {
          if (h.expiresAtMs > this.now()) return true; // unknown for now: decided at the next round
        }
        this.held.delete(partition);
        return false;
      }
      if (h.expiresAtMs <= this.now()) {
        this.held.delete(partition);
        return false;
      }
      return true;
    }
  }

  private async liveMembers(): Promise<number> {
    const now = this.now();
    let live = 0;
    const keys = await this.kv.keys("member.>");
    for await (const key of keys) {
      if (key === `member.${this.processId}`) continue;
      const e = await this.kv.get(key);
      if (!e || e.operation !== "PUT") continue;
      try {
        if ((JSON.parse(e.string()) as LeaseValue).expiresAtMs > now) live++;
      } catch {
        /* a malformed member entry is not a live member */
      }
    }
    return live + 1;
  }

  /**
   * One renewal round (run every TTL/3): announce this member, renew held leases, then acquire
   * free or expired partitions up to the fair share, and name the surplus above it.
   */
  async round(): Promise<LeaseRoundResult> {
    const result: LeaseRoundResult = { acquired: [], lost: [], surplus: [], liveMembers: 1, errors: [] };
    // Renew first: held leases must not lapse because the membership key could not be written.
    for (const p of this.owned()) if (!(await this.renew(p))) result.lost.push(p);
    try {
      await this.kv.put(`member.${this.processId}`, this.value(this.now() + this.ttlMs));
      result.liveMembers = await this.liveMembers();
    } catch (err) {
      result.errors.push(new LeaseIoError(`cannot announce member ${this.processId} or list members: ${(err as Error).message}`, { cause: err }));
      return result;
    }
    const P = this.opts.partitions;
    const share = Math.ceil(P / result.liveMembers);
    const owned = this.owned();
    if (owned.length > share) {
      result.surplus = owned.slice(share);
      return result;
    }
    // Start the scan at a per-process offset so simultaneous starters do not all race for 0.
    const offset = hash32(this.processId) % P;
    for (let i = 0; i < P && this.held.size < share; i++) {
      const p = (offset + i) % P;
      if (this.held.has(p)) continue;
      try {
        if (await this.tryAcquire(p)) result.acquired.push(p);
      } catch (err) {
        result.errors.push(err as LeaseIoError);
        break;
      }
    }
    return result;
  }

  private async tryAcquire(partition: number): Promise<boolean> {
    const key = `partition.${partition}`;
    const expiresAtMs = this.now() + this.ttlMs;
    try {
      const e = await this.kv.get(key);
      let revision: number;
      if (!e || e.operation !== "PUT") {
        revision = await this.kv.create(key, this.value(expiresAtMs));
      } else {
        let v: LeaseValue;
        try {
          v = JSON.parse(e.string()) as LeaseValue;
        } catch {
          v = { owner: "", expiresAtMs: 0 };
        }
        if (v.owner !== "" && v.owner !== this.processId && v.expiresAtMs > this.now()) return false;
        revision = await this.kv.update(key, this.value(expiresAtMs), e.revision);
      }
      this.held.set(partition, { revision, expiresAtMs });
      return true;
    } catch (err) {
      if (isRevisionConflict(err)) return false;
      throw new LeaseIoError(`cannot acquire partition ${partition}: ${(err as Error).message}`, { cause: err });
    }
  }

  /** Releases a held lease (marks it expired, compare-and-set), so another process may take it now. */
  async release(partition: number): Promise<void> {
    const h = this.held.get(partition);
    if (!h) return;
    this.held.delete(partition);
    try {
      await this.kv.update(`partition.${partition}`, this.value(0, ""), h.revision);
    } catch {
      /* lost meanwhile or unreachable: it expires on its own */
    }
  }

  /** Releases every lease and withdraws the member announcement (clean shutdown). */
  async releaseAll(): Promise<void> {
    for (const p of this.owned()) await this.release(p);
    try {
      await this.kv.delete(`member.${this.processId}`);
    } catch {
      /* expires on its own */
    }
  }
}

