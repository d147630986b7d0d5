// The user table: an open-addressing index (linear probing, backward-shift deletion) from the
// 64-bit user hash to a slot in a fixed slab, an LRU list over slots (prev/next u32 links in the
// slot's first cache line) reordered lazily at eviction time (see findOrInsert), and a free list
// of slots released by expiry (chained through the next link).
// Nothing here allocates; every array was placed by init.
import { NIL } from "./records";
import { G, Params, Regions } from "./params";
import { S_HASH_HI, S_HASH_LO, S_LRU_NEXT, S_LRU_PREV, S_PROMOTE, slotReset } from "./slot";

/** 32-bit mix of the two hash words: index home position (low bits) and tag. */
// @ts-ignore: decorator
@inline export function mixTag(lo: u32, hi: u32): u32 {
  let h: u32 = lo ^ (hi * 0x9e3779b1);
  h ^= h >>> 16;
  h *= 0x85ebca6b;
  h ^= h >>> 13;
  h *= 0xc2b2ae35;
  h ^= h >>> 16;
  return h;
}

// @ts-ignore: decorator
@inline export function slotPtr(s: u32): usize {
  return Regions.slab + <usize>s * <usize>Params.slotBytes;
}

// @ts-ignore: decorator
@inline function prevOf(s: u32): u32 {
  return load<u32>(slotPtr(s), S_LRU_PREV);
}
// @ts-ignore: decorator
@inline function nextOf(s: u32): u32 {
  return load<u32>(slotPtr(s), S_LRU_NEXT);
}
// @ts-ignore: decorator
@inline function setPrev(s: u32, v: u32): void {
  store<u32>(slotPtr(s), v, S_LRU_PREV);
}
// @ts-ignore: decorator
@inline function setNext(s: u32, v: u32): void {
  store<u32>(slotPtr(s), v, S_LRU_NEXT);
}

export function lruPushFront(s: u32): void {
  const h = G.head;
  setPrev(s, NIL);
  setNext(s, h);
  if (h != NIL) setPrev(h, s);
  else G.tail = s;
  G.head = s;
}

export function lruUnlink(s: u32): void {
  const p = prevOf(s);
  const n = nextOf(s);
  if (p != NIL) setNext(p, n);
  else G.head = n;
  if (n != NIL) setPrev(n, p);
  else G.tail = p;
}

/** Moves slot s to the most-recent end of the LRU list. */
export function lruTouch(s: u32): void {
  if (G.head == s) return;
  lruUnlink(s);
  lruPushFront(s);
}

/** Slot of the user, or -1. */
export function findSlot(lo: u32, hi: u32): i32 {
  if ((lo | hi) == 0) return -1;
  const tag = mixTag(lo, hi);
  const mask = Params.indexMask;
  let pos = tag & mask;
  while (true) {
    const e = Regions.index + (<usize>pos << 3);
    const s1 = load<u32>(e, 4);
    if (s1 == 0) return -1;
    if (load<u32>(e) == tag) {
      const sp = slotPtr(s1 - 1);
      if (load<u32>(sp, S_HASH_LO) == lo && load<u32>(sp, S_HASH_HI) == hi) return <i32>(s1 - 1);
    }
    pos = (pos + 1) & mask;
  }
}

/** Removes slot s's index entry (backward-shift deletion keeps probe chains intact). */
function indexRemove(s: u32): void {
  const sp = slotPtr(s);
  const tag = mixTag(load<u32>(sp, S_HASH_LO), load<u32>(sp, S_HASH_HI));
  const mask = Params.indexMask;
  const base = Regions.index;
  let i = tag & mask;
  while (load<u32>(base + (<usize>i << 3), 4) != s + 1) i = (i + 1) & mask;
  let j = i;
  while (true) {
    j = (j + 1) & mask;
    const ej = base + (<usize>j << 3);
    const sj = load<u32>(ej, 4);
    if (sj == 0) break;
    const home = load<u32>(ej) & mask;
    // The entry at j may fill the hole at i unless its home lies cyclically in (i, j].
    if (((j - home) & mask) >= ((j - i) & mask)) {
      store<u64>(base + (<usize>i << 3), load<u64>(ej));
      i = j;
    }
  }
  store<u64>(base + (<usize>i << 3), 0);
}

/** Drops a user: index entry, LRU link, slot marked free and pushed on the free list. */
export function removeUser(s: u32): void {
  indexRemove(s);
  lruUnlink(s);
  const sp = slotPtr(s);
  store<u32>(sp, 0, S_HASH_LO);
  store<u32>(sp, 0, S_HASH_HI);
  setPrev(s, NIL);
  setNext(s, G.freeHead);
  G.freeHead = s;
  G.tracked--;
}

/** Finds the user's slot or takes one (free list, then fresh, else evicting the LRU tail). */
export function findOrInsert(lo: u32, hi: u32, b: u32): u32 {
  const tag = mixTag(lo, hi);
  const mask = Params.indexMask;
  const base = Regions.index;
  let pos = tag & mask;
  while (true) {
    const e = base + (<usize>pos << 3);
    const s1 = load<u32>(e, 4);
    if (s1 == 0) break;
    if (load<u32>(e) == tag) {
      const sp = slotPtr(s1 - 1);
      if (load<u32>(sp, S_HASH_LO) == lo && load<u32>(sp, S_HASH_HI) == hi) return s1 - 1;
    }
    pos = (pos + 1) & mask;
  }
  let s: u32;
  if (G.freeHead != NIL) {
    s = G.freeHead;
    G.freeHead = nextOf(s);
  } else if (G.used < Params.capacity) {
    s = G.used++;
  } else {
    // Lazy promotion: a tail user whose last-seen bucket advanced since it was put at the front
    // goes back to the front (flag cleared); the first tail user without the flag is the least
    // recently seen one and is evicted. Each user is promoted at most once per advance.
    s = G.tail;
    while (load<u8>(slotPtr(s), S_PROMOTE) != 0) {
      store<u8>(slotPtr(s), 0, S_PROMOTE);
      lruTouch(s);
      s = G.tail;
    }
    removeUser(s);
    G.freeHead = nextOf(s); // take it straight back off the free list
    G.evictions += 1;
  }
  // The eviction may have shifted entries: probe again for an empty entry from home.
  pos = tag & mask;
  while (load<u32>(base + (<usize>pos << 3), 4) != 0) pos = (pos + 1) & mask;
  const e = base + (<usize>pos << 3);
  store<u32>(e, tag);
  store<u32>(e, s + 1, 4);
  slotReset(slotPtr(s), lo, hi, b, Params.ring, Params.alpha);
  lruPushFront(s);
  G.tracked++;
  return s;
}
