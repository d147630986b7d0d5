// Threads of a tick. The per-user work of a tick (closing buckets, forecasting) depends only on
// the user's own slot and on values fixed for the whole tick (the tick block below, the packed
// weights), so the facade may split the slots into ranges run at once by several instances of this
// module over one shared memory (src/engine/tick-pool.ts). Each instance has its own wasm globals;
// the values every thread must see are written into the tick block by tickBegin (main instance) and
// read back by tickChunks (every instance). Scratch that a thread writes per user has one copy per
// thread (each file offsets its scratch addresses by the thread id at threadInit). What depends on
// other users (removing expired users, the online training of the shared weights) waits for
// tickEnd, on the main instance, in slot order, so the result is the same for any split.

/** Most threads of a tick (the main instance is thread 0). */
export const MAX_THREADS: u32 = 4;

/**
 * Bytes between two threads' copies of a per-thread scratch block (each block is at most this
 * long): whole cache lines, so two threads never write the same line (false sharing would cost a
 * miss per user).
 */
export const SCRATCH_STRIDE: i32 = 128;

/** This instance's thread id (0 = the main instance). */
export class Thread {
  static id: u32 = 0;
}

// Tick block offsets (written by tickBegin, read by tickChunks).
export const TK_START: u32 = 0; // u32 first bucket closed
export const TK_N_CLOSE: u32 = 4; // u32 buckets closed
export const TK_OLD_CLOSED: u32 = 8; // u32 closedBucket before the tick
export const TK_NEW_CLOSED: u32 = 12; // u32 closedBucket after the tick
export const TK_FI0: u32 = 16; // u32 forecast target's season point i0
export const TK_FI1: u32 = 20; // u32 ... i1
export const TK_FF: u32 = 24; // f64 ... weight f
export const TK_TRACKED: u32 = 32; // u32 users tracked at the tick's start
export const TK_MODELS: u32 = 40; // models' live settings (models.ts modelsTickShare), 3 x f64
export const TK_SLOTS: u32 = 64; // u32 slots to scan (slots in use at the tick's start)
export const TK_CHUNK_SLOTS: u32 = 68; // u32 slots per chunk (the last chunk may be shorter)
export const TK_CHUNKS: u32 = 72; // u32 chunks
// The counter threads take chunks from (atomic), in a line of its own: every take writes it.
export const TK_CHUNK_NEXT: u32 = 128;
export const TICK_BLOCK: usize = memory.data(192, 64);

/**
 * The slots of a tick are cut into at most MAX_CHUNKS chunks of at least MIN_CHUNK_SLOTS slots,
 * which the threads take one at a time from a shared counter (tickChunks): a thread slowed down
 * (a busy core, another process) takes fewer chunks instead of holding up the tick, as a fixed
 * split into one range per thread did (one range ran 1.5x longer than the other in measured ticks).
 * The tick waits at most about one chunk for the last thread: 256 chunks keep that wait near 1 ms
 * at 1M dense users (64 chunks: about 4 ms).
 */
export const MAX_CHUNKS: u32 = 256;
export const MIN_CHUNK_SLOTS: u32 = 2048;
/** Records written by each chunk of the current tick (their first record index is the chunk's first slot). */
export const CHUNK_RECORDS: usize = memory.data(<i32>(MAX_CHUNKS * 4), 64);

// Per-thread results of tickChunks: users due to expire, bucket closes, dense closes (sums over the
// chunks the thread took; the records of each chunk are in CHUNK_RECORDS).
export const RS_EXPIRED: u32 = 4;
export const RS_CLOSES: u32 = 8;
export const RS_DENSE: u32 = 12;
export const RESULT_BYTES: u32 = 64;
export const RESULTS: usize = memory.data(<i32>(MAX_THREADS * RESULT_BYTES), 64);

/** Result block of thread t. */
// @ts-ignore: decorator
@inline export function resultOf(t: u32): usize {
  return RESULTS + <usize>(t * RESULT_BYTES);
}
