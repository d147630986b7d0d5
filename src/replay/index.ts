// The outcome harness: `foresight replay` (see docs/replay.md).
export * from "./errors.ts";
export * from "./traffic.ts";
export * from "./capacity.ts";
export * from "./metrics.ts";
export * from "./ports.ts";
export * from "./sim.ts";
export * from "./run.ts";
export * from "./report.ts";
export * from "./adapters.ts";
export * from "./summary.ts";
