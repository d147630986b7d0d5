// Observability: structured logs, Prometheus metrics, and the /metrics /healthz /readyz server.
export * from "./logger.ts";
export * from "./metrics.ts";
export * from "./http.ts";
