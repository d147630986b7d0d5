// Envoy's rate limit service: server, limiters, mapping, headers, client.
export * from "./limiter.ts";
export * from "./errors.ts";
export * from "./proto.ts";
export * from "./codec.ts";
export * from "./mapping.ts";
export * from "./headers.ts";
export * from "./fixed-window.ts";
export * from "./redis-limiter.ts";
export * from "./metrics.ts";
export * from "./server.ts";
export * from "./client.ts";
export * from "./config.ts";
export * from "./redis-server.ts";
