// Starts real nats-server processes (Debian's nats-server on PATH) for tests, benches and `npm start`: free ports, a temp
// JetStream store per server, stop, kill -9 and restart on the same port, and a 3-node JetStream
// cluster on loopback. Every process started here is stopped by `stop()` (and by process exit).
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect } from "@nats-io/transport-node";
import { jetstreamManager, StorageType } from "@nats-io/jetstream";

/** Path of the nats-server binary; NATS_SERVER overrides. */
const NATS_SERVER_BIN = process.env.NATS_SERVER ?? "nats-server";
/** How long a server may take to write its ports file, in ms. */
const START_TIMEOUT_MS = 15_000;

const live = new Set<ChildProcess>();
process.on("exit", () => {
  for (const p of live) {
    try { p.kill("SIGKILL"); } catch { /* already gone */ }
  }
});

/** A free TCP port on 127.0.0.1 (bound then released; used where -1 cannot be, e.g. cluster routes). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

export interface NatsServerOptions {
  /** Enable JetStream with a fresh temp store. Default true. */
  jetstream?: boolean;
  /** Client port; default -1 (the server picks a free one, read back from its ports file). */
  port?: number;
  /** Extra configuration text appended to the generated config file. */
  extraConfig?: string;
  /** Server name (needed in a cluster). */
  serverName?: string;
  /** Reuse this directory for the config, ports file and JetStream store (restart keeps data). */
  dir?: string;
  /**
   * Extra environment variables of the server process, added to this process's environment
   * (the config resolves `$NAME` references from it, e.g. passwords). Default none.
   */
  env?: Record<string, string>;
}

/** One running nats-server. */
export class NatsServer {
  private proc: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  /** Client port the server listens on (fixed after the first start, so restart keeps it). */
  port = 0;
  /** Output of the server (for debugging failed tests). */
  log = "";

  private constructor(
    readonly dir: string,
    private readonly opts: NatsServerOptions,
    private readonly ownsDir: boolean,
  ) {}

  /** Starts a server and resolves once it accepts clients. */
  static async start(opts: NatsServerOptions = {}): Promise<NatsServer> {
    const dir = opts.dir ?? mkdtempSync(join(tmpdir(), "foresight-nats-"));
    const s = new NatsServer(dir, opts, opts.dir === undefined);
    s.port = opts.port ?? -1;
    await s.launch();
    return s;
  }

  /** nats://127.0.0.1:port */
  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  /** The JetStream store directory. */
  get storeDir(): string {
    return join(this.dir, "js");
  }

  private configText(): string {
    const lines = [
      `listen: 127.0.0.1:${this.port}`,
      `ports_file_dir: "${this.dir}"`,
      `max_payload: 8MB`,
    ];
    if (this.opts.serverName) lines.push(`server_name: ${this.opts.serverName}`);
    if (this.opts.jetstream !== false) lines.push(`jetstream { store_dir: "${this.storeDir}" }`);
    if (this.opts.extraConfig) lines.push(this.opts.extraConfig);
    return lines.join("\n") + "\n";
  }

  private async launch(): Promise<void> {
    for (const f of readdirSync(this.dir)) if (f.endsWith(".ports")) rmSync(join(this.dir, f));
    const conf = join(this.dir, "server.conf");
    writeFileSync(conf, this.configText());
    const proc = spawn(NATS_SERVER_BIN, ["-c", conf], {
      stdio: ["ignore", "pipe", "pipe"],
      env: this.opts.env ? { ...process.env, ...this.opts.env } : process.env,
    });
    this.proc = proc;
    live.add(proc);
    proc.stdout?.on("data", (d) => (this.log += d));
    proc.stderr?.on("data", (d) => (this.log += d));
    let exitedEarly = false;
    this.exited = new Promise((resolve) => {
      proc.on("exit", () => {
        exitedEarly = true;
        live.delete(proc);
        resolve();
      });
    });
    const portsFile = join(this.dir, `nats-server_${proc.pid}.ports`);
    const deadline = Date.now() + START_TIMEOUT_MS;
    // Poll the ports file while racing an early exit (bad config, port in use).
    for (;;) {
      if (exitedEarly) throw new Error(`nats-server exited during start:\n${this.log}`);
      if (existsSync(portsFile)) {
        try {
          const ports = JSON.parse(readFileSync(portsFile, "utf8")) as { nats: string[] };
          this.port = Number(new URL(ports.nats[0]).port);
          break;
        } catch {
          /* partially written: poll again */
        }
      }
      if (Date.now() > deadline) {
        proc.kill("SIGKILL");
        throw new Error(`nats-server did not start within ${START_TIMEOUT_MS} ms:\n${this.log}`);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** Stops the server gracefully (SIGTERM) and waits for it to exit. */
  async stop(): Promise<void> {
    if (this.proc && this.proc.exitCode === null && this.proc.signalCode === null) {
      this.proc.kill("SIGTERM");
      const t = setTimeout(() => this.proc?.kill("SIGKILL"), 5_000);
      await this.exited;
      clearTimeout(t);
    }
  }

  /** Kills the server with SIGKILL (a crash) and waits for it to exit. */
  async kill(): Promise<void> {
    if (this.proc && this.proc.exitCode === null && this.proc.signalCode === null) {
      this.proc.kill("SIGKILL");
      await this.exited;
    }
  }

  /** Starts the server again on the same port with the same store. */
  async restart(): Promise<void> {
    await this.stop();
    await this.launch();
  }

  /** Stops the server and removes its temp directory (when it created it). */
  async dispose(): Promise<void> {
    await this.stop();
    if (this.ownsDir) rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A 3-node (by default) JetStream cluster on loopback. */
export class NatsCluster {
  private constructor(readonly servers: NatsServer[]) {}

  /** Client URLs of all nodes. */
  get urls(): string[] {
    return this.servers.map((s) => s.url);
  }

  static async start(size = 3): Promise<NatsCluster> {
    const clientPorts = await Promise.all(Array.from({ length: size }, () => freePort()));
    const routePorts = await Promise.all(Array.from({ length: size }, () => freePort()));
    const routes = routePorts.map((p) => `nats-route://127.0.0.1:${p}`).join(", ");
    const servers = await Promise.all(
      clientPorts.map((port, i) =>
        NatsServer.start({
          port,
          serverName: `n${i + 1}`,
          extraConfig: `cluster { name: foresight-test, listen: 127.0.0.1:${routePorts[i]}, routes: [${routes}] }`,
        }),
      ),
    );
    const cluster = new NatsCluster(servers);
    await cluster.waitForJetStream();
    return cluster;
  }

  /**
   * Resolves once the JetStream meta group has a leader and knows every node: a throwaway stream
   * with one replica per node can be placed (right after start, the meta leader may answer while
   * the other peers are not yet known, and an R3 stream then fails with "no suitable peers").
   */
  async waitForJetStream(timeoutMs = 30_000): Promise<void> {
    const nc = await connect({ servers: this.urls.filter((_, i) => this.servers[i].port > 0), reconnect: true });
    try {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        try {
          const jsm = await jetstreamManager(nc, { timeout: 2_000 });
          await jsm.getAccountInfo();
          const probe = `CLUSTER_READY_${process.pid}`;
          await jsm.streams.add({ name: probe, subjects: [`cluster-ready.${process.pid}`], num_replicas: this.servers.length, storage: StorageType.Memory });
          await jsm.streams.delete(probe);
          return;
        } catch (err) {
          if (Date.now() > deadline) throw new Error(`JetStream cluster not ready: ${(err as Error).message}`);
          await new Promise((r) => setTimeout(r, 200));
        }
      }
    } finally {
      await nc.close();
    }
  }

  async dispose(): Promise<void> {
    await Promise.all(this.servers.map((s) => s.dispose()));
  }
}
