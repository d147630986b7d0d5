// Actuation of allocator decisions on Kubernetes (docs/allocator-kube.md).
export * from "./types.ts";
export * from "./errors.ts";
export * from "./client.ts";
export * from "./queue.ts";
export * from "./actuator.ts";
export * from "./metrics.ts";
export * from "./leader.ts";
export * from "./partials.ts";
export * from "./service.ts";
export { parseQuantity } from "./quantity.ts";
