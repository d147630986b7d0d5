// What `npm start` checks before it starts anything, so a failure leaves nothing running:
// the data files, the nats-server binary (unless NATS_URL is given), the dashboard port, no
// second copy already running (a lock file holding the owner's PID), and with --kubeconfig the
// cluster's pool workloads (cluster.ts, which raises the errors defined here).
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** Exit code of a failed precondition (the run never started). */
export const PRECONDITION_EXIT_CODE = 2;
/** Default lock file of a running `foresight start`. */
export const DEFAULT_LOCK_FILE = join(tmpdir(), "foresight-start.lock");

/** A data file the run needs is missing. */
export class MissingDataError extends Error {
  override name = "MissingDataError";
  constructor(path: string, what: string) {
    super(`${what} not found at ${path}: the real traces live in ../shared/data (see its README), or pass --trace/--tokens`);
  }
}

/** nats-server is not installed and no NATS_URL was given. */
export class NatsServerMissingError extends Error {
  override name = "NatsServerMissingError";
  constructor(bin: string) {
    super(`${bin} not found on PATH. Install it with:\n  sudo apt-get install -y nats-server\nor point NATS_URL at a running JetStream-enabled server.`);
  }
}

/** The dashboard port is taken. */
export class PortInUseError extends Error {
  override name = "PortInUseError";
  constructor(host: string, port: number) {
    super(`port ${port} on ${host} is in use: stop what holds it or pass --port <free port> (0 = any)`);
  }
}

/** Another `foresight start` is running. */
export class AlreadyRunningError extends Error {
  override name = "AlreadyRunningError";
  constructor(pid: number, lockFile: string) {
    super(`another foresight start is running (pid ${pid}, lock ${lockFile}); stop it first (Ctrl-C in its terminal, or kill ${pid})`);
  }
}

/** The kubeconfig given with --kubeconfig cannot be used (missing, unreadable, or names no cluster). */
export class KubeconfigError extends Error {
  override name = "KubeconfigError";
}

/** A pool's Deployment does not exist in the cluster (the allocator has nothing to act on). */
export class WorkloadMissingError extends Error {
  override name = "WorkloadMissingError";
  constructor(namespace: string, name: string, server: string) {
    super(`Deployment ${namespace}/${name} not found on ${server}: each pool needs a Deployment named after its model; create them or pass --namespace / --models`);
  }
}

/** The cluster did not answer, refused the credentials, or forbade reading a workload. */
export class ClusterAccessError extends Error {
  override name = "ClusterAccessError";
}

/** Throws {@link MissingDataError} when `path` does not exist. */
export function requireFile(path: string, what: string): void {
  if (!existsSync(path)) throw new MissingDataError(path, what);
}

/** Throws {@link NatsServerMissingError} when the binary cannot be run. */
export function requireNatsServer(bin = process.env.NATS_SERVER ?? "nats-server"): void {
  try {
    execFileSync(bin, ["--version"], { stdio: "ignore" });
  } catch {
    throw new NatsServerMissingError(bin);
  }
}

/** Throws {@link PortInUseError} when the port cannot be bound (0 always passes). */
export async function requirePortFree(host: string, port: number): Promise<void> {
  if (port === 0) return;
  await new Promise<void>((resolve, reject) => {
    const srv = createServer();
    srv.once("error", () => reject(new PortInUseError(host, port)));
    srv.listen(port, host, () => srv.close(() => resolve()));
  });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * Takes the lock (a file holding our PID); a stale lock (its PID gone) is taken over.
 * Returns the release function.
 */
export function takeLock(lockFile = DEFAULT_LOCK_FILE): () => void {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      writeFileSync(lockFile, String(process.pid), { flag: "wx" });
      return () => {
        try {
          if (readFileSync(lockFile, "utf8") === String(process.pid)) rmSync(lockFile);
        } catch {
          /* already gone */
        }
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      const pid = Number(readFileSync(lockFile, "utf8"));
      if (Number.isInteger(pid) && pid > 0 && alive(pid)) throw new AlreadyRunningError(pid, lockFile);
      rmSync(lockFile, { force: true });
    }
  }
  throw new Error(`cannot take lock ${lockFile}`);
}
