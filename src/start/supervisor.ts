// A child process `npm start` owns: started with its output captured line by line, restarted when
// it dies unexpectedly (the run goes on), and stopped in order (SIGTERM, then SIGKILL after a grace).
import { spawn, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";

/** Options of {@link Supervised}. */
export interface SupervisedOptions {
  /** Name in messages ("processor", "allocator"). */
  name: string;
  /** Executable. */
  command: string;
  args: string[];
  env?: NodeJS.ProcessEnv;
  /** Restart after an unexpected exit. Default true. */
  restart?: boolean;
  /** Wait after SIGTERM before SIGKILL, ms. Default 20 000. */
  stopGraceMs?: number;
  /** Every output line (stdout and stderr). */
  onLine?: (line: string) => void;
  /** Each unexpected exit, before the restart. */
  onExit?: (code: number | null, signal: NodeJS.Signals | null) => void;
}

/** A supervised child process. */
export class Supervised {
  private proc: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  private stopping = false;
  /** Unexpected exits so far (each followed by a restart when enabled). */
  restarts = 0;
  /** How the child ended each time it died unexpectedly. */
  readonly exits: { code: number | null; signal: NodeJS.Signals | null; atMs: number }[] = [];

  constructor(private readonly opts: SupervisedOptions) {}

  /** PID of the running child, if any. */
  get pid(): number | undefined {
    return this.proc?.pid;
  }

  /** Starts the child. */
  start(): void {
    const proc = spawn(this.opts.command, this.opts.args, { env: this.opts.env ?? process.env, stdio: ["ignore", "pipe", "pipe"] });
    this.proc = proc;
    for (const stream of [proc.stdout!, proc.stderr!]) {
      createInterface({ input: stream }).on("line", (l) => this.opts.onLine?.(l));
    }
    this.exited = new Promise<void>((resolve) => {
      proc.once("exit", (code, signal) => {
        if (this.proc === proc) this.proc = undefined;
        resolve();
        if (this.stopping) return;
        this.restarts++;
        this.exits.push({ code, signal, atMs: Date.now() });
        this.opts.onExit?.(code, signal);
        if (this.opts.restart ?? true) this.start();
      });
    });
  }

  /** Kills the child at once (fault injection: the supervisor restarts it). */
  kill(signal: NodeJS.Signals = "SIGKILL"): void {
    this.proc?.kill(signal);
  }

  /** Stops the child and waits for it: SIGTERM, SIGKILL after the grace. */
  async stop(): Promise<void> {
    this.stopping = true;
    const proc = this.proc;
    if (!proc) return;
    proc.kill("SIGTERM");
    const timer = setTimeout(() => proc.kill("SIGKILL"), this.opts.stopGraceMs ?? 20_000);
    await this.exited;
    clearTimeout(timer);
  }
}
