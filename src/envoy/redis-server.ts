// Starts Debian's `redis-server` for tests and the bench: a free port, a temp directory, no
// persistence; stop() ends it and removes the directory.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { RedisLimiterError } from "./errors.ts";

/** Longest a redis-server may take to accept connections, ms. */
export const REDIS_START_TIMEOUT_MS = 10_000;

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export class RedisServer {
  private constructor(
    private readonly proc: ChildProcess,
    readonly port: number,
    private readonly dir: string,
  ) {}

  /** redis://127.0.0.1:<port> */
  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** Process id of the server. */
  get pid(): number | undefined {
    return this.proc.pid;
  }

  /** Starts a server on `port` or a free one (retries on a port taken between probing and binding). */
  static async start(opts: { port?: number; binary?: string } = {}): Promise<RedisServer> {
    const binary = opts.binary ?? "redis-server";
    let last: unknown;
    for (let attempt = 0; attempt < 3; attempt++) {
      const port = opts.port ?? (await freePort());
      const dir = mkdtempSync(join(tmpdir(), "foresight-redis-"));
      const proc = spawn(binary, ["--port", String(port), "--bind", "127.0.0.1", "--dir", dir, "--save", "", "--appendonly", "no", "--loglevel", "notice"], {
        stdio: ["ignore", "pipe", "pipe"],
      });
      try {
        await new Promise<void>((resolve, reject) => {
          let out = "";
          const timer = setTimeout(() => reject(new RedisLimiterError(`redis-server did not start within ${REDIS_START_TIMEOUT_MS} ms: ${out.slice(-500)}`)), REDIS_START_TIMEOUT_MS);
          const onData = (d: Buffer) => {
            out += d;
            if (out.includes("Ready to accept connections")) {
              clearTimeout(timer);
              resolve();
            }
          };
          proc.stdout!.on("data", onData);
          proc.stderr!.on("data", onData);
          proc.once("error", (e) => { clearTimeout(timer); reject(new RedisLimiterError(`cannot run ${binary}: ${e.message}`, { cause: e })); });
          proc.once("exit", (code) => { clearTimeout(timer); reject(new RedisLimiterError(`redis-server exited (code ${code}): ${out.slice(-500)}`)); });
        });
        proc.stdout!.resume();
        proc.stderr!.resume();
        return new RedisServer(proc, port, dir);
      } catch (e) {
        last = e;
        proc.kill("SIGKILL");
        rmSync(dir, { recursive: true, force: true });
      }
    }
    throw last;
  }

  /** Stops the server and removes its directory. */
  async stop(): Promise<void> {
    if (this.proc.exitCode === null && this.proc.signalCode === null) {
      const exited = new Promise((r) => this.proc.once("exit", r));
      this.proc.kill("SIGTERM");
      await exited;
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
