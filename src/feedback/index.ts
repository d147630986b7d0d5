export { ExceedanceFeedback, FeedbackOptionError, type FeedbackMode, type FeedbackOptions } from "./correction.ts";
export { stepExperiment, type StepExperimentOptions, type StepResult, type VariantResult } from "./step.ts";
