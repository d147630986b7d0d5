// Telemetry: the wire format (binary and JSON frames), the hashes, the publisher SDK, the user
// directory and a deterministic generator. See docs/wire-format.md.
export * from "./hash.ts";
export * from "./event.ts";
export * from "./frame.ts";
export * from "./publisher.ts";
export * from "./directory.ts";
export * from "./stream.ts";
export * from "./synth.ts";
