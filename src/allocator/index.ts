// The allocator's pure policy (no I/O): shared by the live allocator (src/allocator/kube) and replay.
export * from "./hpa.ts";
export * from "./demand.ts";
export * from "./resources.ts";
export * from "./budget.ts";
export * from "./policy.ts";
export * from "./users.ts";
