// The operational HTTP surface: /metrics (Prometheus text format), /healthz (liveness) and
// /readyz (readiness). Checks are callbacks so the server knows nothing about the processor.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Registry } from "prom-client";

/** Default port of the HTTP surface. */
export const DEFAULT_HTTP_PORT = 9464;
/** Default bind address. */
export const DEFAULT_HTTP_HOST = "0.0.0.0";
/** Longest a /metrics collection may take before the request fails, ms. */
export const METRICS_TIMEOUT_MS = 5_000;

/** The answer of a health or readiness check. */
export interface CheckResult {
  ok: boolean;
  /** Named sub-checks, shown in the JSON body (e.g. { nats: true, streams: false }). */
  checks: Record<string, boolean | number | string>;
}

export interface ObsServerOptions {
  /** TCP port; 0 picks a free one (tests). Default {@link DEFAULT_HTTP_PORT}. */
  port?: number;
  /** Bind address. Default {@link DEFAULT_HTTP_HOST}. */
  host?: string;
  /** Registry served on /metrics. */
  registry: Registry;
  /** Liveness: the process works and NATS is connected. */
  health: () => CheckResult;
  /** Readiness: connected, streams ensured, owned partitions restored. */
  ready: () => CheckResult;
  /** Extra GET routes by exact path (e.g. the dashboard's page and event stream). Default none. */
  routes?: Record<string, (req: IncomingMessage, res: ServerResponse) => void>;
}

/** The HTTP server could not listen (port in use, permission). */
export class ObsServerListenError extends Error {
  override name = "ObsServerListenError";
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** HTTP server for /metrics, /healthz and /readyz. */
export class ObsServer {
  private server: Server | undefined;
  /** Port actually bound (after {@link start}). */
  port = 0;

  constructor(private readonly opts: ObsServerOptions) {}

  /** Listens; resolves with the bound port. */
  async start(): Promise<number> {
    const server = createServer((req, res) => {
      const path = (req.url ?? "/").split("?")[0];
      const route = this.opts.routes?.[path];
      if (route && req.method === "GET") {
        route(req, res);
        return;
      }
      if (req.method !== "GET" && req.method !== "HEAD") {
        res.writeHead(405, { allow: "GET, HEAD" }).end();
        return;
      }
      if (path === "/metrics") {
        const timeout = new Promise<never>((_, reject) => {
          setTimeout(() => reject(new Error("metrics collection timed out")), METRICS_TIMEOUT_MS).unref();
        });
        Promise.race([this.opts.registry.metrics(), timeout]).then(
          (text) => res.writeHead(200, { "content-type": this.opts.registry.contentType }).end(text),
          (err: Error) => res.writeHead(500, { "content-type": "text/plain" }).end(`${err.message}\n`),
        );
        return;
      }
      if (path === "/healthz" || path === "/readyz") {
        let result: CheckResult;
        try {
          result = path === "/healthz" ? this.opts.health() : this.opts.ready();
        } catch (err) {
          result = { ok: false, checks: { error: (err as Error).message } };
        }
        res.writeHead(result.ok ? 200 : 503, { "content-type": "application/json" }).end(JSON.stringify(result) + "\n");
        return;
      }
      res.writeHead(404, { "content-type": "text/plain" }).end("not found: try /metrics, /healthz, /readyz\n");
    });
    // Keep-alive sockets must not hold shutdown up.
    server.keepAliveTimeout = 1_000;
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once("error", (err) => reject(new ObsServerListenError(`cannot listen on ${this.opts.host ?? DEFAULT_HTTP_HOST}:${this.opts.port ?? DEFAULT_HTTP_PORT}: ${err.message}`, { cause: err })));
      server.listen(this.opts.port ?? DEFAULT_HTTP_PORT, this.opts.host ?? DEFAULT_HTTP_HOST, () => resolve());
    });
    this.port = (server.address() as AddressInfo).port;
    return this.port;
  }

  /** Stops listening and closes idle connections. */
  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      // Long-lived responses (server-sent events) would hold close() open forever.
      server.closeAllConnections();
    });
  }
}
