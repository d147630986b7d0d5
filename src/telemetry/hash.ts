/**
 * Hashes used on the wire and in the engine. Documented so that any gateway, in any language,
 * can produce them in a few lines:
 *
 * - `hash32(s)`: MurmurHash3 x86_32 of the UTF-8 bytes of `s`, seed 0. Used for route/parameter,
 *   source-IP and user-agent hashes.
 * - `userHash(key)`: a 64-bit user key hash, as two u32 words: low = MurmurHash3 x86_32 with seed 0,
 *   high = MurmurHash3 x86_32 with seed 0x9747b28c. The value 0 is reserved (an empty table slot)
 *   and maps to 1.
 */

/** Seed of the high word of {@link userHash}. */
export const USER_HASH_HIGH_SEED = 0x9747b28c;

const encoder = new TextEncoder();

/** One MurmurHash3 x86_32 block step: mixes the 4-byte block `k` into the state `h`. */
function mixBlock(k: number, h: number): number {
  h ^= mixTail(k);
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}

/** The scramble of a block or of the 1-3 tail bytes. */
function mixTail(k: number): number {
  k = Math.imul(k, 0xcc9e2d51);
  k = (k << 15) | (k >>> 17);
  return Math.imul(k, 0x1b873593);
}

/** The finalization: length, then the avalanche; an unsigned 32-bit result. */
function finalize(h: number, n: number): number {
  h ^= n;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** MurmurHash3 x86_32 over bytes, returning an unsigned 32-bit integer. */
export function murmur3(bytes: Uint8Array, seed = 0): number {
  let h = seed | 0;
  const n = bytes.length;
  const blocks = n & ~3;
  for (let i = 0; i < blocks; i += 4) h = mixBlock(bytes[i] | (bytes[i + 1] << 8) | (bytes[i + 2] << 16) | (bytes[i + 3] << 24), h);
  // Tail: the 1 to 3 bytes past the last whole block.
  const rest = n & 3;
  if (rest > 0) {
    let k = 0;
    if (rest === 3) k ^= bytes[blocks + 2] << 16;
    if (rest >= 2) k ^= bytes[blocks + 1] << 8;
    k ^= bytes[blocks];
    h ^= mixTail(k);
  }
  return finalize(h, n);
}

/** MurmurHash3 x86_32 of an ASCII string's code units (= its UTF-8 bytes) without encoding it; -1 if not ASCII. */
function murmurAscii(s: string, seed: number): number {
  let h = seed | 0;
  const n = s.length;
  const blocks = n & ~3;
  for (let i = 0; i < blocks; i += 4) {
    const a = s.charCodeAt(i), b = s.charCodeAt(i + 1), c = s.charCodeAt(i + 2), d = s.charCodeAt(i + 3);
    if ((a | b | c | d) > 0x7f) return -1;
    h = mixBlock(a | (b << 8) | (c << 16) | (d << 24), h);
  }
  const rest = n & 3;
  if (rest > 0) {
    let k = 0;
    for (let j = rest - 1; j >= 0; j--) {
      const c = s.charCodeAt(blocks + j);
      if (c > 0x7f) return -1;
      k ^= c << (8 * j);
    }
    h ^= mixTail(k);
  }
  return finalize(h, n);
}

/** MurmurHash3 x86_32 (seed 0) of a string's UTF-8 bytes; 0 for an empty or missing string. */
export function hash32(s: string | undefined | null): number {
  if (!s) return 0;
  return murmur3(encoder.encode(s), 0);
}

/** A 64-bit user hash as its two unsigned 32-bit words. */
export interface UserHash {
  lo: number;
  hi: number;
}

/** The 64-bit hash of a user key (see the module comment); never 0. */
export function userHash(key: string): UserHash {
  const bytes = encoder.encode(key);
  let lo = murmur3(bytes, 0);
  const hi = murmur3(bytes, USER_HASH_HIGH_SEED);
  if (lo === 0 && hi === 0) lo = 1;
  return { lo, hi };
}

/**
 * `userHash(key)` written into `out` (no allocation for ASCII keys: the hot paths that hash a key
 * per request, such as the gateway's check()).
 */
export function userHashInto(key: string, out: UserHash): void {
  let lo = murmurAscii(key, 0);
  if (lo < 0) {
    const h = userHash(key);
    out.lo = h.lo;
    out.hi = h.hi;
    return;
  }
  const hi = murmurAscii(key, USER_HASH_HIGH_SEED);
  if (lo === 0 && hi === 0) lo = 1;
  out.lo = lo;
  out.hi = hi;
}

/** The user hash as a BigInt (for maps and display). */
export function userHashBigInt(h: UserHash): bigint {
  return (BigInt(h.hi) << 32n) | BigInt(h.lo);
}

/** The user hash as 16 lowercase hex digits, the form used in subjects, KV keys and reports. */
export function userHashHex(h: UserHash): string {
  return h.hi.toString(16).padStart(8, "0") + h.lo.toString(16).padStart(8, "0");
}

/** Parses {@link userHashHex}'s form back. */
export function parseUserHashHex(hex: string): UserHash {
  if (!/^[0-9a-f]{16}$/i.test(hex)) throw new RangeError(`not a 16-hex-digit user hash: ${JSON.stringify(hex)}`);
  return { hi: parseInt(hex.slice(0, 8), 16) >>> 0, lo: parseInt(hex.slice(8), 16) >>> 0 };
}
