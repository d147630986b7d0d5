// The live dashboard's server half: keeps the recent points and streams them to browsers as
// server-sent events. Routes plug into ObsServer (`routes`), so the dashboard shares the port of
// /metrics and /healthz. The browser bundle is built by `npm run build:dashboard` into dist/dashboard.
import { existsSync, readFileSync } from "node:fs";
import type { IncomingMessage, ServerResponse } from "node:http";
import { fileURLToPath } from "node:url";
import type { DashboardPoint } from "./types.ts";

/** Points kept for a browser that connects late. Default 600 (10 minutes at one per second). */
export const DEFAULT_HISTORY_POINTS = 600;

/** The browser bundle is not built. */
export class DashboardAssetsMissingError extends Error {
  override name = "DashboardAssetsMissingError";
  constructor(dirs: string[]) {
    super(`dashboard bundle (app.js) not found in ${dirs.join(" or ")}: run "npm run build"`);
  }
}

function findAssets(): string {
  // dist/cli.js → dist/dashboard; src/dashboard/hub.ts (tsx) → dist/dashboard.
  const candidates = [new URL("./dashboard/", import.meta.url), new URL("../../dist/dashboard/", import.meta.url)].map((u) => fileURLToPath(u));
  const found = candidates.find((d) => existsSync(d + "app.js"));
  if (!found) throw new DashboardAssetsMissingError(candidates);
  return found;
}

const PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Foresight — live</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="/dashboard/app.css"></head>
<body><header><h1>Foresight</h1><span id="status">connecting…</span></header>
<main><section id="pools"></section>
<section class="row"><div class="card"><h2>Throttles and exceedances (per second)</h2><div id="events"></div></div>
<div class="card"><h2>Top users by forecast</h2><table id="top"><thead><tr><th>user</th><th>forecast/s</th><th>upper/s</th><th>observed/s</th></tr></thead><tbody></tbody></table></div>
<div class="card"><h2>Engine and pipeline</h2><dl id="health"></dl></div></section></main>
<script src="/dashboard/app.js"></script></body></html>
`;

/** Options of {@link DashboardHub}. */
export interface DashboardHubOptions {
  /** Points replayed to a browser on connect. Default {@link DEFAULT_HISTORY_POINTS}. */
  historyPoints?: number;
}

/** Holds recent points and fans them out to SSE clients. */
export class DashboardHub {
  private readonly history: DashboardPoint[] = [];
  private readonly clients = new Set<ServerResponse>();
  private readonly historyPoints: number;
  private readonly assets: { js: Buffer; css: Buffer };
  /** Points pushed since construction. */
  pushed = 0;

  constructor(opts: DashboardHubOptions = {}) {
    this.historyPoints = opts.historyPoints ?? DEFAULT_HISTORY_POINTS;
    const dir = findAssets();
    this.assets = { js: readFileSync(dir + "app.js"), css: existsSync(dir + "app.css") ? readFileSync(dir + "app.css") : Buffer.alloc(0) };
  }

  /** Browsers connected now. */
  get connected(): number {
    return this.clients.size;
  }

  /** Adds a point and sends it to every connected browser. */
  push(point: DashboardPoint): void {
    this.pushed++;
    this.history.push(point);
    if (this.history.length > this.historyPoints) this.history.splice(0, this.history.length - this.historyPoints);
    const frame = `event: point\ndata: ${JSON.stringify(point)}\n\n`;
    for (const res of this.clients) res.write(frame);
  }

  /** Ends every event stream (before the HTTP server stops). */
  close(): void {
    for (const res of this.clients) res.end();
    this.clients.clear();
  }

  /** Routes for ObsServer's `routes` option. */
  routes(): Record<string, (req: IncomingMessage, res: ServerResponse) => void> {
    return {
      "/": (_req, res) => res.writeHead(302, { location: "/dashboard" }).end(),
      // Browsers ask for it on every page; a 404 would be a console error.
      "/favicon.ico": (_req, res) => res.writeHead(204).end(),
      "/dashboard": (_req, res) => res.writeHead(200, { "content-type": "text/html; charset=utf-8", "cache-control": "no-store" }).end(PAGE),
      "/dashboard/app.js": (_req, res) => res.writeHead(200, { "content-type": "text/javascript; charset=utf-8" }).end(this.assets.js),
      "/dashboard/app.css": (_req, res) => res.writeHead(200, { "content-type": "text/css; charset=utf-8" }).end(this.assets.css),
      "/dashboard/events": (req, res) => {
        res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-store", connection: "keep-alive" });
        res.write(`event: snapshot\ndata: ${JSON.stringify(this.history)}\n\n`);
        this.clients.add(res);
        req.on("close", () => this.clients.delete(res));
      },
    };
  }
}
