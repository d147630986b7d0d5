// What every benchmark JSON records about the run, so a figure can be traced to a machine and a command.
import { cpus, loadavg, totalmem } from "node:os";
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";

/** Machine, runtime and command of this run. */
export interface BenchEnv {
  cpuModel: string;
  cores: number;
  memoryGiB: number;
  node: string;
  loadAverage1m: number;
  date: string;
  command: string;
}

/** The environment of the current process; `command` is what a reader runs to reproduce it. */
export function benchEnv(command: string): BenchEnv {
  const c = cpus();
  return {
    cpuModel: c[0]?.model ?? "unknown",
    cores: c.length,
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    loadAverage1m: Math.round(loadavg()[0] * 100) / 100,
    date: new Date().toISOString(),
    command,
  };
}

/** Writes `{ env, ...body }` as pretty JSON, creating the folder. */
export function writeBenchJson(path: string, command: string, body: Record<string, unknown>): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, JSON.stringify({ env: benchEnv(command), ...body }, null, 2) + "\n");
}
