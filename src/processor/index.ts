// The processor (`foresight serve`): streams, leases, checkpoints, partition workers, forecasts.
// The public surface: start a Processor with an engine factory, read its forecasts, and the
// pieces operators and tests use directly (stream setup, checkpoints, names). The partition
// worker, periodic task and codec internals stay inside the folder.
export { processorNames, type ProcessorNameOverrides, type ProcessorNames } from "./names.ts";
export {
  DEFAULT_DEADLETTER_MAX_AGE_MS, DEFAULT_FORECASTS_MAX_AGE_MS, StreamSetupError, ensureStreams, type StreamAction, type StreamSettings,
} from "./streams.ts";
export {
  CheckpointCorruptError, CheckpointIoError, CheckpointStore, decodeCheckpoint, encodeCheckpoint, type Checkpoint,
} from "./checkpoints.ts";
export { LeaseIoError, LeaseManager, type LeaseManagerOptions, type LeaseRoundResult, type LeaseValue } from "./leases.ts";
export {
  BadForecastMessageError, FORECAST_HEADER_BYTES, decodeForecastMessage, forecastRecords,
  type ForecastMessage, type ForecastMessageRecord,
} from "./forecasts.ts";
export type { PartitionEngine, PartitionEngineFactory, PartitionEngineStats } from "./engine-port.ts";
export { WasmPartitionEngine, createWasmEngineFactory, autoTickThreads, engineLiveOptionsFromConfig, engineOptionsFromConfig } from "./engine-adapter.ts";
export { TaskTimeoutError } from "./periodic.ts";
export { DEAD_LETTER_SEQ_HEADER, DEAD_LETTER_SUBJECT_HEADER } from "./partition.ts";
export { Processor, type ProcessorOptions } from "./processor.ts";
