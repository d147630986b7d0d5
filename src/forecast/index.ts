// Forecast quality: per-user forecasters (TS reference), the ensemble, LSTM-lite and the
// evaluation harness (`foresight eval` / `train`). The public surface is listed here; the GRU's
// step functions, input encoding and report formatting helpers stay inside the folder.
export { ForecastOptionError, TraceFormatError, WeightsFormatError } from "./errors.ts";
export { DEFAULT_TOKENS_PATH, DEFAULT_TRACE_PATH, loadRateTrace, parseClientList, type ClientSeries } from "./trace.ts";
export {
  DEFAULT_HW_PARAMS, EwmaModel, HoltWintersModel, NaiveModel, SeasonalNaiveModel, SlotMedianModel, fitEwmaAlpha,
  type BucketContext, type HoltWintersParams, type UserForecaster,
} from "./models.ts";
export { ResidualQuantile } from "./upper.ts";
export { DEFAULT_QUANTILE, EnsembleModel, type EnsembleOptions } from "./ensemble.ts";
export { geomean, mean, median, seasonalNaiveScale } from "./metrics.ts";
export {
  DEFAULT_HORIZONS, DEFAULT_MIN_REQUESTS, DEFAULT_TRAIN_WINDOWS, MODEL_NAMES, RecentMedianModel, evaluate,
  type EvalOptions, type EvalResult, type HorizonSummary, type ModelFactory, type ModelName, type ModelSummary,
} from "./evaluate.ts";
export {
  BpttTrainer, LSTM_HIDDEN, LSTM_INPUTS, LSTM_MAX_HORIZON, LSTM_PARAM_COUNT, LstmLiteModel, LstmWeights, trainLstm,
  type TrainOptions, type TrainSequence, type TrainerOptions,
} from "./lstm.ts";
export { formatTable, loadRReference, summariseRReference, type RReferenceFile } from "./report.ts";
export { DEFAULT_R_REFERENCE_PATH, parseModels, runEval, type RunEvalOptions } from "./run.ts";
export { ENGINE_MODEL_NAMES, replayThroughEngine, type EngineReplayOptions } from "./engine-replay.ts";
export { DEFAULT_PRETRAIN_EPOCHS, runTrain, type RunTrainOptions } from "./pretrain.ts";
