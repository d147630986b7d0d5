// The processor (`foresight serve`): streams, leases, checkpoints, partition workers, forecasts.
export * from "./names.ts";
export * from "./streams.ts";
export * from "./checkpoints.ts";
export * from "./leases.ts";
export * from "./forecasts.ts";
export * from "./engine-port.ts";
export * from "./engine-adapter.ts";
export * from "./periodic.ts";
export * from "./partition.ts";
export * from "./processor.ts";
