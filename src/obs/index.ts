// Observability: structured logs, Prometheus metrics, and the /metrics /healthz /readyz server.
export { DEFAULT_LOG_LEVEL, createLogger, type LogLevel, type LoggerOptions } from "./logger.ts";
export { METRIC_PREFIX, ProcessorMetrics } from "./metrics.ts";
export {
  DEFAULT_HTTP_HOST, DEFAULT_HTTP_PORT, ObsServer, ObsServerListenError, type CheckResult, type ObsServerOptions,
} from "./http.ts";
