// The in-process gateway of `npm start`: an HTTP server in front of a stub model server. Each
// request is checked by the limiter (the throttle's middleware when configured), answered by the
// stub model (or refused with 429), and recorded as telemetry.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { TelemetryPublisher } from "../telemetry/publisher.ts";

/** A request as the gateway saw it. */
export interface GatewayRequest {
  user: string;
  model: string;
  tokens: number;
}

/**
 * Decides a request before the model sees it: returns true when it was answered (refused) here.
 * The throttle's HTTP middleware plugs in through this.
 */
export type GatewayLimiter = (req: IncomingMessage, res: ServerResponse, r: GatewayRequest) => boolean;

/** Options of {@link Gateway}. */
export interface GatewayOptions {
  /** Where telemetry goes. Required. */
  publisher: TelemetryPublisher;
  /** Header carrying the user key. Default "x-api-key". */
  userHeader?: string;
  /** Limiter run before the model. Default none (everything is served). */
  limiter?: GatewayLimiter;
  /** Called once per request after it is answered. */
  onRequest?: (user: string, tokens: number, throttled: boolean) => void;
  /** Largest accepted body, bytes. Default 64 KiB. */
  maxBodyBytes?: number;
}

/** The gateway's HTTP server. */
export class Gateway {
  private server: Server | undefined;
  /** Requests answered, by outcome. */
  readonly counts = { served: 0, throttled: 0, rejected: 0 };

  constructor(private readonly opts: GatewayOptions) {}

  /** Listens on a free loopback port; resolves with it. */
  async start(port = 0): Promise<number> {
    const server = createServer((req, res) => this.handle(req, res));
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

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const started = performance.now();
    const user = req.headers[this.opts.userHeader ?? "x-api-key"];
    if (req.method !== "POST" || typeof user !== "string" || user.length === 0) {
      this.counts.rejected++;
      req.resume();
      res.writeHead(req.method !== "POST" ? 405 : 401, { "content-type": "application/json" }).end(JSON.stringify({ error: req.method !== "POST" ? "POST only" : `missing ${this.opts.userHeader ?? "x-api-key"} header` }));
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (c: Buffer) => {
      size += c.length;
      if (size <= (this.opts.maxBodyBytes ?? 65_536)) chunks.push(c);
    });
    req.on("end", () => {
      let body: { model?: unknown; tokens?: unknown };
      try {
        body = JSON.parse(Buffer.concat(chunks).toString("utf8")) as typeof body;
      } catch {
        body = {};
      }
      const model = typeof body.model === "string" ? body.model : "default";
      const tokens = typeof body.tokens === "number" && body.tokens >= 0 ? Math.floor(body.tokens) : 0;
      const r: GatewayRequest = { user, model, tokens };
      const refused = this.opts.limiter?.(req, res, r) ?? false;
      if (!refused) {
        // The stub model: answers at once with the usage a real model would report.
        res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ model, usage: { total_tokens: tokens } }));
        this.counts.served++;
      } else this.counts.throttled++;
      this.opts.publisher.record({
        user,
        route: model,
        inputTokens: tokens,
        status: refused ? 429 : 200,
        latencyMs: performance.now() - started,
        throttled: refused,
      });
      this.opts.onRequest?.(user, tokens, refused);
    });
  }
}
