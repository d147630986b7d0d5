export { ModelRegistry, ModelNotFoundError, BadModelError, ModelRegistryIoError, type ModelMeta } from "./registry.ts";
export { trainCandidate, holdoutError, decidePromotion, trainingSequences, type UserHistory, type RetrainOptions, type PromotionDecision } from "./retrain.ts";
export { readHistory, type HistoryOptions } from "./history.ts";
export { ModelUpdater, InsufficientHistoryError, liveWeights, type RetrainReport, type ModelUpdaterOptions } from "./updater.ts";
