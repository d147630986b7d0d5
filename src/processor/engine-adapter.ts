// The production PartitionEngine: one WASM `Engine` (src/engine/engine.ts) per partition. Records
// are staged straight into the engine's ingress buffer in linear memory (no intermediate copy),
// and the forecast output is read through a zero-copy view.
import { readFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { Engine, EngineOptionsError, MAX_TICK_THREADS, type EngineOptions } from "../engine/index.ts";
import { FORECAST_RECORD_BYTES } from "../wire/layout.ts";
import type { ForesightConfig } from "../config/index.ts";
import type { PartitionEngine, PartitionEngineFactory, PartitionEngineStats } from "./engine-port.ts";

/**
 * Engine options from the config's `engine` section (capacity is set per partition by the
 * processor). Every engine option the config carries is mapped; a test keeps the two in step.
 */
export function engineOptionsFromConfig(e: ForesightConfig["engine"]): EngineOptions {
  return {
    ...engineLiveOptionsFromConfig(e),
    bucketWidthMs: e.bucketWidthMs,
    allowedLatenessMs: e.allowedLatenessMs,
    seasonPoints: e.seasonPoints,
    ingressCapacity: e.ingressCapacity,
    countsCapacity: e.countsCapacity,
    forecastModel: e.forecastModel,
    lstmWeights: e.lstm.weightsFile ? readLstmWeights(e.lstm.weightsFile) : undefined,
    lstmTrainUsersPerBucket: e.lstm.trainUsersPerBucket,
    lstmLearningRate: e.lstm.learningRate,
    tickThreads: e.tickThreads === 0 ? autoTickThreads() : e.tickThreads,
  };
}

/** tickThreads 0 ("auto"): one per core, at most MAX_TICK_THREADS. */
export function autoTickThreads(): number {
  return Math.max(1, Math.min(MAX_TICK_THREADS, availableParallelism()));
}

/** Reads a pre-trained LSTM-lite weights file (the engine validates its content). */
function readLstmWeights(path: string): Uint8Array {
  try {
    return new Uint8Array(readFileSync(path));
  } catch (err) {
    throw new EngineOptionsError(`engine.lstm.weightsFile: cannot read ${path}: ${(err as Error).message}`, { cause: err });
  }
}

/** The engine options of the config that a running engine can take without a restart. */
export function engineLiveOptionsFromConfig(e: ForesightConfig["engine"]): EngineOptions {
  return {
    horizonBuckets: e.horizonBuckets,
    upperQuantile: e.upperQuantile,
    alpha: e.holtWinters.alpha,
    trackingSmoothing: e.holtWinters.trackingSmoothing,
    alphaDecay: e.holtWinters.alphaDecay,
    varianceSmoothing: e.holtWinters.varianceSmoothing,
    timeOfDayDayWeight: e.holtWinters.timeOfDayDayWeight,
    maxCatchUpBuckets: e.maxCatchUpBuckets,
    beta: e.holtWinters.beta,
    gamma: e.holtWinters.gamma,
    phi: e.holtWinters.phi,
    alphaMax: e.holtWinters.alphaMax,
    trackingThreshold: e.holtWinters.trackingThreshold,
    expireAfterBuckets: e.expireAfterBuckets,
    lstmMinCountPerBucket: e.lstm.minCountPerBucket,
  };
}

/** Wraps one WASM engine as a {@link PartitionEngine}. */
export class WasmPartitionEngine implements PartitionEngine {
  constructor(readonly engine: Engine) {}

  get ingressCapacityRecords(): number {
    return this.engine.ingressCapacity;
  }

  /** The ingress buffer itself: the worker stages records here and calls {@link ingestStaged}. */
  ingressBytes(): Uint8Array {
    return this.engine.ingressBuffer().bytes;
  }

  ingestStaged(count: number): void {
    this.engine.ingestFilled(count);
  }

  ingest(records: Uint8Array, count: number): void {
    this.engine.ingestRecords(records, count);
  }

  tick(nowMs: number): void {
    this.engine.tick(nowMs);
  }

  forecasts(): { records: Uint8Array; count: number } {
    const v = this.engine.forecastView();
    return { records: new Uint8Array(v.u32.buffer, v.u32.byteOffset, v.count * FORECAST_RECORD_BYTES), count: v.count };
  }

  stats(): PartitionEngineStats {
    const s = this.engine.stats();
    return { eventsApplied: s.eventsApplied, lateEvents: s.late + s.early, invalidEvents: s.invalid, evictions: s.evictions + s.expirations, usersTracked: s.usersTracked };
  }

  snapshot(): Uint8Array {
    return this.engine.snapshot();
  }

  restore(bytes: Uint8Array): void {
    this.engine.restore(bytes);
  }

  setLstmWeights(bytes: Uint8Array): void {
    this.engine.setLstmWeights(bytes);
  }

  async reconfigure(options: EngineOptions): Promise<() => PartitionEngine> {
    const next = await this.engine.reconfigured(options);
    return () => {
      next.restore(this.engine.snapshot());
      // The old engine is dropped: its tick threads stop now rather than at garbage collection.
      void this.engine.close();
      return new WasmPartitionEngine(next);
    };
  }

  /** Stops the engine's tick threads. */
  dispose(): void {
    void this.engine.close();
  }
}

/**
 * A factory of WASM partition engines with the given options; `capacityUsers` per partition comes
 * from the processor (ceil(total / partitions)). Accepts engine options or the config's section.
 */
export function createWasmEngineFactory(options: EngineOptions | ForesightConfig["engine"] = {}): PartitionEngineFactory {
  const base: EngineOptions = "holtWinters" in options ? engineOptionsFromConfig(options as ForesightConfig["engine"]) : (options as EngineOptions);
  return async (_partition, capacityUsers) => new WasmPartitionEngine(await Engine.create({ ...base, capacityUsers }));
}
