// Forecast quality: per-user forecasters (TS reference), the ensemble, LSTM-lite and the evaluation harness.
export * from "./errors.ts";
export * from "./trace.ts";
export * from "./models.ts";
export * from "./upper.ts";
export * from "./ensemble.ts";
export * from "./metrics.ts";
export * from "./evaluate.ts";
export * from "./lstm.ts";
export * from "./report.ts";
export * from "./run.ts";
export * from "./engine-replay.ts";
export * from "./pretrain.ts";
