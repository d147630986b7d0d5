// Runs `foresight start` as a user does (the built CLI as a child process) and reads its summary.
import { spawn, execFileSync } from "node:child_process";
import { join } from "node:path";

const CLI = join(process.cwd(), "dist/cli.js");

/** How a run ended and what it printed. */
export interface StartRun {
  code: number | null;
  out: string;
  err: string;
}

/** Runs `foresight start --port 0 <args>` with `lock` as its lock file; rejects after `timeoutMs` (the child is killed). */
export function runStart(args: string[], lock: string, env: NodeJS.ProcessEnv = {}, timeoutMs = 180_000): Promise<StartRun> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [CLI, "start", "--port", "0", ...args], { env: { ...process.env, FORESIGHT_START_LOCK: lock, ...env }, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    p.stdout.on("data", (d) => (out += d));
    p.stderr.on("data", (d) => (err += d));
    const t = setTimeout(() => {
      p.kill("SIGKILL");
      reject(new Error(`start did not finish in ${timeoutMs} ms:\n${out}\n${err}`));
    }, timeoutMs);
    p.on("exit", (code) => {
      clearTimeout(t);
      resolve({ code, out, err });
    });
  });
}

/** Processes whose command line mentions `needle` (our temp dirs are unique). */
export function processesWith(needle: string): string[] {
  return execFileSync("ps", ["-eo", "pid,args"], { encoding: "utf8" })
    .split("\n")
    .filter((l) => l.includes(needle) && !l.includes("ps -eo"));
}

const int = (s: string) => Number(s.replace(/,/g, ""));

/** The load table's counters as printed. */
export function loadCounters(out: string): { planned: number; sent: number; served: number; throttled: number; errors: number; p50Ms: number; p99Ms: number } {
  const planned = int(/requests planned\s+([\d,]+)/.exec(out)![1]);
  const [sent, served, throttled, errors] = /sent \/ served \/ throttled \/ errors\s+([\d,]+) \/ ([\d,]+) \/ ([\d,]+) \/ ([\d,]+)/.exec(out)!.slice(1).map(int);
  const [p50Ms, p99Ms] = /gateway latency p50 \/ p99 \(from planned send\)\s+([\d.]+) \/ ([\d.]+) ms/.exec(out)!.slice(1).map(Number);
  return { planned, sent, served, throttled, errors, p50Ms, p99Ms };
}

/** A pool's row of the pool table as printed: clients, requests, coverage (a share), max replicas of Foresight and the HPA floor. */
export function poolRow(out: string, pool: string): { clients: number; requests: number; coverage: number; maxForesight: number; maxReactive: number } {
  const line = out.split("\n").find((l) => l.startsWith(pool + " "));
  if (!line) throw new Error(`no row for pool ${pool} in:\n${out}`);
  const c = line.trim().split(/\s{2,}/);
  return { clients: int(c[1]), requests: int(c[2]), coverage: parseFloat(c[5]) / 100, maxForesight: int(c[8]), maxReactive: int(c[9]) };
}
