// The central configuration store: schema and defaults, layered loading, the KV-backed store
// with compare-and-set, and the live watcher.
export * from "./errors.ts";
export * from "./schema.ts";
export * from "./validate.ts";
export * from "./merge.ts";
export * from "./load.ts";
export * from "./store.ts";
export * from "./watch.ts";
