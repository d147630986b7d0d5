// What the processor needs from one partition's engine. The real implementation wraps the WASM
// `Engine` facade (src/engine/engine.ts, see ./engine-adapter.ts); keeping the processor on this
// narrow interface keeps it independent of the engine's internals.

/** Counters and gauges of one engine, as the processor reports them. */
export interface PartitionEngineStats {
  /** Events applied since the engine was created (or restored: cumulative over restores). */
  eventsApplied: number;
  /** Events refused as too late. */
  lateEvents: number;
  /** Events refused as invalid. */
  invalidEvents: number;
  /** Users evicted from the table. */
  evictions: number;
  /** Users tracked now. */
  usersTracked: number;
}

/** One partition's engine. */
export interface PartitionEngine {
  /** Applies `count` 48-byte event records (src/wire/layout.ts) from `records`. */
  ingest(records: Uint8Array, count: number): void;
  /** Largest `count` one {@link ingest} call accepts. */
  readonly ingressCapacityRecords: number;
  /**
   * Optional zero-copy path: the engine's own ingress buffer (ingressCapacityRecords × 48 bytes);
   * the caller writes records there and calls {@link ingestStaged}. Re-read after every call (the
   * buffer may move when memory grows).
   */
  ingressBytes?(): Uint8Array;
  /** Applies the first `count` records written into {@link ingressBytes}. */
  ingestStaged?(count: number): void;
  /** Closes buckets up to `nowMs` and computes forecasts. */
  tick(nowMs: number): void;
  /** The forecast records of the last tick (32 bytes each); valid until the next engine call. */
  forecasts(): { records: Uint8Array; count: number };
  stats(): PartitionEngineStats;
  /** Serialized state (for checkpoints). */
  snapshot(): Uint8Array;
  /** Replaces the state with a snapshot's. */
  restore(bytes: Uint8Array): void;
  /** Frees the engine's memory. */
  dispose?(): void;
  /**
   * Optional live reconfiguration (horizon, quantile, smoothing, ...): builds an engine with the
   * changed options and resolves to a function that, called synchronously between batches, moves
   * this engine's state into the new one and returns it. Rejects options that need a restart.
   */
  reconfigure?(options: Record<string, unknown>): Promise<() => PartitionEngine>;
  /** Optional model hot swap: replaces the shared LSTM-lite weights, keeping every user's state. */
  setLstmWeights?(bytes: Uint8Array): void;
}

/** Makes the engine of one partition; `capacityUsers` = ceil(total capacity / partitions). */
export type PartitionEngineFactory = (partition: number, capacityUsers: number) => PartitionEngine | Promise<PartitionEngine>;
