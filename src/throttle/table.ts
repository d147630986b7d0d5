// An open-addressing table from a 64-bit user hash (two u32 words) to a slot index, in typed
// arrays so 1M users cost a few MB and a lookup is one or two cache lines. Slots are never
// removed (a gateway's user set only grows until restart; `maxUsers` bounds it), so probing needs
// no tombstones. Also: the user hash of a string computed straight from its UTF-16 code units
// for ASCII keys (no TextEncoder allocation on the hot path), equal to `userHash()`.
import { userHashInto } from "../telemetry/hash.ts";

/** The table has no free slot left for a new user. */
export class UserTableFullError extends Error {
  override name = "UserTableFullError";
  constructor(readonly capacity: number) {
    super(`user table is full (${capacity} slots); raise throttle.maxUsers`);
  }
}

/** Smallest power of two >= n. */
function pow2(n: number): number {
  let c = 1;
  while (c < n) c *= 2;
  return c;
}

/**
 * Hash → slot. Capacity is rounded up to a power of two; `insert` fails (returns -1) once
 * `size` reaches 7/8 of it, so probes stay short.
 */
export class UserTable {
  /** Slots (a power of two). */
  readonly capacity: number;
  private readonly mask: number;
  /** Interleaved [lo, hi] per slot; hi = lo = 0 marks an empty slot (userHash is never 0). */
  readonly keys: Uint32Array;
  /** Occupied slots. */
  size = 0;
  private readonly maxSize: number;

  constructor(minCapacity: number) {
    this.capacity = pow2(Math.max(16, minCapacity));
    this.mask = this.capacity - 1;
    this.keys = new Uint32Array(this.capacity * 2);
    this.maxSize = Math.floor((this.capacity * 7) / 8);
  }

  /** Slot of (lo, hi), or -1. */
  find(lo: number, hi: number): number {
    const keys = this.keys;
    let i = (Math.imul(lo ^ hi, 0x9e3779b1) >>> 0) & this.mask;
    for (;;) {
      const k = i << 1;
      const klo = keys[k];
      if (klo === lo && keys[k + 1] === hi) return i;
      if (klo === 0 && keys[k + 1] === 0) return -1;
      i = (i + 1) & this.mask;
    }
  }

  /** Slot of (lo, hi), inserting it if new; -1 when the table is full. `isNew` tells which. */
  findOrInsert(lo: number, hi: number): number {
    const keys = this.keys;
    let i = (Math.imul(lo ^ hi, 0x9e3779b1) >>> 0) & this.mask;
    for (;;) {
      const k = i << 1;
      const klo = keys[k];
      const khi = keys[k + 1];
      if (klo === lo && khi === hi) {
        this.isNew = false;
        return i;
      }
      if (klo === 0 && khi === 0) {
        if (this.size >= this.maxSize) return -1;
        keys[k] = lo;
        keys[k + 1] = hi;
        this.size++;
        this.isNew = true;
        return i;
      }
      i = (i + 1) & this.mask;
    }
  }
  /** Whether the last findOrInsert created the slot. */
  isNew = false;
}

/** Scratch result of {@link hashUserKey} (avoids an object per call on the hot path). */
export const hashOut = { lo: 0, hi: 0 };

/** Sets `hashOut` to `userHash(key)`; ASCII keys without allocation. */
export function hashUserKey(key: string): void {
  userHashInto(key, hashOut);
}
