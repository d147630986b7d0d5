// Public API of the engine component.
export * from "./engine.ts";
export * from "./errors.ts";
export * from "./options.ts";
export type { EngineCore } from "./core.ts";
export { ReferenceCore } from "./reference.ts";
export { COUNTS_RECORD_BYTES, CountsField } from "./regions.ts";
