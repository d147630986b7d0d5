// `foresight rls`: serves Envoy's rate limit service (gRPC) from the configuration until
// SIGTERM/SIGINT, then shuts down gracefully (NOT_SERVING, drain, finish in-flight calls).
import type { Command } from "commander";
import { waitForStopSignal } from "../signals.ts";
import { loadConfig } from "../../config/index.ts";
import { createLogger } from "../../obs/logger.ts";
import { ObsServer } from "../../obs/http.ts";
import { RlsServer } from "../../envoy/server.ts";
import { RlsMetrics } from "../../envoy/metrics.ts";
import { fixedWindowLimiterFactory, mappingFromConfig } from "../../envoy/config.ts";
import type { RateLimiterFactory } from "../../envoy/limiter.ts";
import type { ForesightConfig } from "../../config/schema.ts";

interface RlsFlags {
  config?: string;
  port?: string;
  host?: string;
  httpPort?: string;
  domain?: string;
  logLevel?: string;
  kv: boolean;
  limiter: string;
}

/** A command-line value that is not what it should be. */
export class RlsOptionError extends Error {
  override name = "RlsOptionError";
  constructor(message: string) {
    super(message);
  }
}

function port(name: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65_535) throw new RlsOptionError(`--${name} must be a port number (0 = any free port), got ${JSON.stringify(v)}`);
  return n;
}

/**
 * Foresight's own limiter: a ThrottleClient that follows the grants over NATS (connected with the
 * config's nats.connection, as a gateway), loaded before the server answers; safe limits apply
 * while grants are missing or lapsed.
 */
function foresightLimiterFactory(log: ReturnType<typeof createLogger>): RateLimiterFactory<ForesightConfig> {
  return async (config) => {
    const { connectNats } = await import("../../nats/connect.ts");
    const { ThrottleClient } = await import("../../throttle/client.ts");
    const { throttleClientOptions } = await import("../../throttle/config.ts");
    const nc = await connectNats(config.nats.connection);
    const client = new ThrottleClient(throttleClientOptions(config, { log: log.child({ component: "throttle" }) }));
    await client.start(nc);
    return Object.assign(client, {
      close: async () => {
        await ThrottleClient.prototype.close.call(client);
        await nc.drain().catch(() => nc.close());
      },
    });
  };
}

export interface RlsCommandOptions {
  /** Builds the limiter from the configuration. Default: per --limiter (Foresight's ThrottleClient). */
  limiterFactory?: RateLimiterFactory<ForesightConfig>;
}

async function run(f: RlsFlags, o: RlsCommandOptions): Promise<void> {
  const overrides: Record<string, unknown> = {};
  if (f.domain) overrides.envoy = { domain: f.domain };
  if (f.host) overrides.envoy = { ...(overrides.envoy as object), host: f.host };
  if (f.logLevel) overrides.log = { level: f.logLevel };
  const { config } = await loadConfig({ file: f.config, overrides, kv: f.kv ? {} : undefined });
  const log = createLogger({ level: config.log.level, name: "rls" });
  const grpcPort = port("port", f.port) ?? config.envoy.grpcPort;
  if (f.port === undefined && grpcPort === 0) throw new RlsOptionError("envoy.grpcPort is 0 (the RLS is disabled in this configuration); pass --port");
  if (f.limiter !== "foresight" && f.limiter !== "fixed-window") throw new RlsOptionError(`--limiter must be foresight or fixed-window, got ${JSON.stringify(f.limiter)}`);
  const limiter = await (o.limiterFactory ?? (f.limiter === "foresight" ? foresightLimiterFactory(log) : fixedWindowLimiterFactory))(config);
  const metrics = new RlsMetrics();
  const e = config.envoy;
  const server = await RlsServer.start({
    limiter,
    domain: e.domain,
    mapping: mappingFromConfig(config),
    host: e.host,
    port: grpcPort,
    headerStyle: e.headerStyle,
    maxConcurrentRequests: e.maxConcurrentRequests,
    drainDelayMs: e.drainDelayMs,
    shutdownGraceMs: e.shutdownGraceMs,
    metrics,
    log,
  });
  let serving = true;
  const httpPortFlag = port("http-port", f.httpPort);
  const httpPort = httpPortFlag ?? config.http.metricsPort;
  let obs: ObsServer | undefined;
  if (httpPortFlag !== undefined || httpPort !== 0) {
    obs = new ObsServer({
      port: httpPort,
      host: config.http.host,
      registry: metrics.registry,
      health: () => ({ ok: true, checks: { grpc: true } }),
      ready: () => ({ ok: serving, checks: { serving } }),
    });
    await obs.start();
  }
  log.info({ grpcPort: server.port, httpPort: obs?.port, domain: e.domain }, "rls started");

  await waitForStopSignal(log);
  serving = false;
  const { forced } = await server.shutdown();
  await obs?.stop();
  await (limiter as { close?: () => Promise<void> }).close?.();
  log.info({ forced }, "rls stopped");
  process.exit(0);
}

/** Registers `foresight rls`; `options.limiterFactory` swaps the limiter (e.g. the throttle component's client). */
export function register(program: Command, options: RlsCommandOptions = {}): void {
  program
    .command("rls")
    .description("Serve Envoy's rate limit service (envoy.service.ratelimit.v3, gRPC) for the envoy.filters.http.ratelimit filter.")
    .option("-c, --config <file>", "config file (YAML or JSON)")
    .option("--port <port>", "gRPC port (0 = any free port); default envoy.grpcPort")
    .option("--host <address>", "gRPC bind address; default envoy.host")
    .option("--http-port <port>", "port of /metrics, /healthz, /readyz (0 = any free port); default http.metricsPort")
    .option("--domain <domain>", "rate-limit domain answered; default envoy.domain")
    .option("--log-level <level>", "log level")
    .option("--kv", "also read the configuration from the NATS KV bucket (once, at start)", false)
    .option("--limiter <kind>", "foresight: per-user grants over NATS (ThrottleClient); fixed-window: Envoy's reference model (envoy.fixedWindow), no NATS", "foresight")
    .action((flags: RlsFlags) => run(flags, options));
}
