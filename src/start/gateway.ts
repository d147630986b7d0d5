// The in-process gateway of `npm start`: node:http with the throttle's middleware (ThrottleClient:
// check, rate-limit headers, 429 + Retry-After, one telemetry record per request with the
// `throttled` flag) in front of a stub model server that answers with the usage a model reports.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { TelemetryPublisher } from "../telemetry/publisher.ts";
import { withThrottle, type HeaderStyle } from "../throttle/middleware.ts";
import type { RateLimiter } from "../throttle/decision.ts";

/** Options of {@link Gateway}. */
export interface GatewayOptions {
  /** Where telemetry goes. Required. */
  publisher: TelemetryPublisher;
  /** The limiter checked before the model (a ThrottleClient). Required. */
  limiter: RateLimiter;
  /** Rate-limit header style. Default "ietf". */
  headerStyle?: HeaderStyle;
  /** Called once per answered request. */
  onRequest?: (user: string, tokens: number, throttled: boolean) => void;
}

const USAGE = Symbol("usage");
type WithUsage = ServerResponse & { [USAGE]?: { inputTokens: number } };

const tokensOf = (req: IncomingMessage): number => {
  const v = Number(req.headers["x-expected-tokens"]);
  return Number.isFinite(v) && v >= 0 ? Math.floor(v) : 0;
};

/** The stub model: reads the body and answers with the usage a real model server reports. */
function stubModel(req: IncomingMessage, res: ServerResponse): void {
  req.resume();
  req.on("end", () => {
    const tokens = tokensOf(req);
    (res as WithUsage)[USAGE] = { inputTokens: tokens };
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ model: req.headers["x-model"] ?? "default", usage: { total_tokens: tokens } }));
  });
}

/** The gateway's HTTP server. */
export class Gateway {
  private server: Server | undefined;
  /** Requests answered, by outcome. */
  readonly counts = { served: 0, throttled: 0 };

  constructor(private readonly opts: GatewayOptions) {}

  /** Listens on a free loopback port; resolves with it. */
  async start(port = 0): Promise<number> {
    const handler = withThrottle(stubModel, {
      limiter: this.opts.limiter,
      publisher: this.opts.publisher,
      headerStyle: this.opts.headerStyle,
      tokensOf,
      usageOf: (_req, res) => (res as WithUsage)[USAGE],
      routeOf: (req) => String(req.headers["x-model"] ?? "default"),
    });
    const server = createServer((req, res) => {
      res.once("finish", () => {
        const throttled = res.statusCode === 429;
        if (throttled) this.counts.throttled++;
        else this.counts.served++;
        this.opts.onRequest?.(String(req.headers["x-user-id"] ?? ""), tokensOf(req), throttled);
      });
      handler(req, res);
    });
    server.keepAliveTimeout = 5_000;
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, "127.0.0.1", () => resolve());
    });
    return (server.address() as AddressInfo).port;
  }

  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  }
}
