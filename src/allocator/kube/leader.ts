// One active allocator: a leader lease under key `allocator.leader` in the processors' lease
// bucket, in the same form and with the same compare-and-set rules as the partition leases
// (src/processor/leases.ts): acquired with `create` (absent) or `update(observed revision)`
// (expired or released), renewed with `update(own revision)`, released by writing it expired.
import type { NatsConnection } from "@nats-io/transport-node";
import { Kvm, type KV } from "@nats-io/kv";
import { LeaseIoError, leaseSafeId, type LeaseValue } from "../../processor/leases.ts";
import { DEFAULT_LEASE_TTL_MS } from "../../config/schema.ts";
import { isRevisionConflict } from "../../nats/errors.ts";

/** KV key of the allocator leader lease. */
export const LEADER_KEY = "allocator.leader";

export interface LeaderLeaseOptions {
  /** This process's id (KV-key-safe characters kept). */
  processId: string;
  /** Lease TTL, ms; renew every TTL/3. Default {@link DEFAULT_LEASE_TTL_MS}. */
  ttlMs?: number;
  /** Replicas of the lease bucket when it is created. Default 1. */
  replicas?: number;
  /** Wall clock, ms since the epoch. Default Date.now. */
  now?: () => number;
}

/** The allocator leader lease. */
export class LeaderLease {
  readonly processId: string;
  readonly ttlMs: number;
  private readonly now: () => number;
  private revision = 0;
  private expiresAtMs = 0;

  private constructor(private readonly kv: KV, opts: LeaderLeaseOptions) {
    this.processId = leaseSafeId(opts.processId);
    this.ttlMs = opts.ttlMs ?? DEFAULT_LEASE_TTL_MS;
    this.now = opts.now ?? Date.now;
  }

  static async open(nc: NatsConnection, bucket: string, opts: LeaderLeaseOptions): Promise<LeaderLease> {
    try {
      const kv = await new Kvm(nc).create(bucket, { history: 1, replicas: opts.replicas ?? 1 });
      return new LeaderLease(kv, opts);
    } catch (err) {
      throw new LeaseIoError(`cannot open lease bucket ${bucket}: ${(err as Error).message}`, { cause: err });
    }
  }

  /** True while this process holds an unexpired lease. */
  isLeader(): boolean {
    return this.revision > 0 && this.expiresAtMs > this.now();
  }

  private value(expiresAtMs: number, owner = this.processId): Uint8Array {
    return new TextEncoder().encode(JSON.stringify({ owner, expiresAtMs } satisfies LeaseValue));
  }

  /**
   * Renews the lease if held, else tries to take it. Returns whether this process leads now.
   * A transient error keeps a held lease until its known expiry (then it lapses by itself).
   */
  async round(): Promise<boolean> {
    const expiresAtMs = this.now() + this.ttlMs;
    try {
      if (this.revision > 0) {
        try {
          this.revision = await this.kv.update(LEADER_KEY, this.value(expiresAtMs), this.revision);
          this.expiresAtMs = expiresAtMs;
          return true;
        } catch (err) {
          if (!isRevisionConflict(err)) throw err;
          this.revision = 0; // someone else wrote the key: check below whether it is ours (lost reply) or theirs
        }
      }
      const e = await this.kv.get(LEADER_KEY);
      if (!e || e.operation !== "PUT") {
        this.revision = await this.kv.create(LEADER_KEY, this.value(expiresAtMs));
      } else {
        let v: LeaseValue;
        try {
          v = JSON.parse(e.string()) as LeaseValue;
        } catch {
          v = { owner: "", expiresAtMs: 0 };
        }
        if (v.owner !== "" && v.owner !== this.processId && v.expiresAtMs > this.now()) {
          this.revision = 0;
          return false;
        }
        this.revision = await this.kv.update(LEADER_KEY, this.value(expiresAtMs), e.revision);
      }
      this.expiresAtMs = expiresAtMs;
      return true;
    } catch (err) {
      if (isRevisionConflict(err)) {
        this.revision = 0;
        return false;
      }
      if (this.expiresAtMs <= this.now()) this.revision = 0;
      throw new LeaseIoError(`allocator leader lease: ${(err as Error).message}`, { cause: err });
    }
  }

  /** The current leader's id per the KV entry ("" when none or expired). */
  async leader(): Promise<string> {
    const e = await this.kv.get(LEADER_KEY);
    if (!e || e.operation !== "PUT") return "";
    try {
      const v = JSON.parse(e.string()) as LeaseValue;
      return v.expiresAtMs > this.now() ? v.owner : "";
    } catch {
      return "";
    }
  }

  /** Releases the lease (marks it expired), so another allocator takes over at once. */
  async release(): Promise<void> {
    if (this.revision === 0) return;
    const rev = this.revision;
    this.revision = 0;
    this.expiresAtMs = 0;
    try {
      await this.kv.update(LEADER_KEY, this.value(0, ""), rev);
    } catch {
      /* lost meanwhile or unreachable: it expires on its own */
    }
  }
}
