// The production overlay's NATS configuration, run for real: the three nats-server configs that
// `kubectl kustomize deploy/overlays/production` renders (nats.conf, cluster.conf with TLS routes,
// tls.conf, auth.conf) start as a 3-node JetStream cluster on loopback. Only what cannot exist
// here is rewritten: addresses (0.0.0.0:4222/6222/8222 and nats-N.nats-headless -> free loopback
// ports), paths (/data, /var/run/nats, /etc/nats-tls -> temp dirs, with a certificate made by
// openssl the way docs/deploy.md says). Then the processor (user `processor`, nats.replicas 3)
// creates R3 streams over TLS, the config user creates the R3 config bucket, and a gateway's
// telemetry is stored on three nodes.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { execFileSync, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseAllDocuments } from "yaml";
import type { NatsConnection } from "@nats-io/transport-node";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { NatsServer, freePort } from "../../src/nats/server.ts";
import { connectNats, type NatsConnectionSettings } from "../../src/nats/connect.ts";
import { ConfigStore } from "../../src/config/store.ts";
import { validateConfig } from "../../src/config/validate.ts";
import { createLogger } from "../../src/obs/logger.ts";
import { Processor, createWasmEngineFactory } from "../../src/processor/index.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const KUBECTL = (process.env.FORESIGHT_KUBECTL ?? "kubectl").split(",")[0].trim();
const NODES = 3;

/** The parts of nats-server's /jsz answer this test reads. */
interface Jsz {
  meta_cluster?: { leader?: string; replicas?: { name: string; current: boolean }[] };
}

let dir: string;
const servers: NatsServer[] = [];
const conns: NatsConnection[] = [];
const passwords: Record<string, string> = {};
let urls: string[] = [];
let clusterConf = "";
let monitorPortsOf: number[] = [];
let replicas = 0;

function rendered(): { natsFiles: Record<string, string>; foresightYaml: string } {
  const r = spawnSync(KUBECTL, ["kustomize", join(ROOT, "deploy/overlays/production")], { encoding: "utf8" });
  if (r.error) throw new Error(`${KUBECTL} not found: install Debian's kubectl (apt-get install kubernetes-client) or set FORESIGHT_KUBECTL`);
  assert.is(r.status, 0, r.stderr);
  const objs = parseAllDocuments(r.stdout).map((d) => d.toJS()).filter(Boolean);
  const cm = (prefix: string) => objs.find((o) => o.kind === "ConfigMap" && o.metadata.name.startsWith(prefix + "-")).data;
  return { natsFiles: cm("nats-config"), foresightYaml: cm("foresight-config")["foresight.yaml"] };
}

function settings(role: string): NatsConnectionSettings {
  return { servers: urls, user: role, pass: passwords[role], tls: { caFile: join(dir, "ca.crt") }, name: `test-${role}`, timeoutMs: 5_000 };
}
async function as(role: string): Promise<NatsConnection> {
  const nc = await connectNats(settings(role));
  conns.push(nc);
  return nc;
}

// uvu does not report a failing before hook: keep its error and fail the test with it.
let setupError: unknown;
test.before(async () => {
  try {
    await setup();
  } catch (err) {
    setupError = err;
  }
});

async function setup(): Promise<void> {
  dir = mkdtempSync(join(tmpdir(), "foresight-nats-prod-"));
  const f = (n: string) => join(dir, n);
  const ssl = (args: string[]) => execFileSync("openssl", args, { stdio: "pipe" });
  // The certificate docs/deploy.md describes (serverAuth + clientAuth, the Service names), plus
  // the loopback names this test dials.
  ssl(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=foresight-nats-ca", "-keyout", f("ca.key"), "-out", f("ca.crt")]);
  ssl(["req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=nats", "-keyout", f("tls.key"), "-out", f("tls.csr")]);
  writeFileSync(f("ext.cnf"), "subjectAltName=DNS:nats,DNS:nats.foresight.svc,DNS:*.nats-headless,DNS:*.nats-headless.foresight.svc,DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n");
  ssl(["x509", "-req", "-in", f("tls.csr"), "-CA", f("ca.crt"), "-CAkey", f("ca.key"), "-CAcreateserial", "-days", "1", "-extfile", f("ext.cnf"), "-out", f("tls.crt")]);

  const { natsFiles, foresightYaml } = rendered();
  replicas = validateConfig((await import("yaml")).parse(foresightYaml)).nats.replicas;
  const env: Record<string, string> = {};
  for (const r of ["gateway", "processor", "allocator", "config"]) {
    passwords[r] = `${r}-${Math.random().toString(36).slice(2)}`;
    env[`FORESIGHT_NATS_${r.toUpperCase()}_PASS`] = passwords[r];
  }
  const clientPorts = await Promise.all(Array.from({ length: NODES }, () => freePort()));
  const routePorts = await Promise.all(Array.from({ length: NODES }, () => freePort()));
  const monitorPorts = await Promise.all(Array.from({ length: NODES }, () => freePort()));
  urls = clientPorts.map((p) => `nats://127.0.0.1:${p}`);
  clusterConf = natsFiles["cluster.conf"];
  monitorPortsOf = monitorPorts;
  for (let i = 0; i < NODES; i++) {
    const node = f(`nats-${i}`);
    mkdirSync(node);
    const local = (text: string) =>
      text
        .replaceAll("/etc/nats-tls/", dir + "/")
        .replaceAll("/var/run/nats/", node + "/")
        .replace("/data/jetstream", join(node, "js"))
        .replace("http: 0.0.0.0:8222", `http: 127.0.0.1:${monitorPorts[i]}`)
        .replace("listen: 0.0.0.0:6222", `listen: 127.0.0.1:${routePorts[i]}`)
        .replace(/nats:\/\/nats-(\d+)\.nats-headless:6222/g, (_, k: string) => `nats://localhost:${routePorts[Number(k)]}`)
        // NatsServer writes the client listen line itself (on the port chosen above).
        .replace(/^listen: 0\.0\.0\.0:4222$/m, "# listen: set by the test");
    for (const [name, text] of Object.entries(natsFiles)) if (name !== "nats.conf") writeFileSync(join(node, name), local(text));
    servers.push(
      await NatsServer.start({ dir: node, port: clientPorts[i], jetstream: false, env: { ...env, POD_NAME: `nats-${i}` }, extraConfig: local(natsFiles["nats.conf"]) }),
    );
  }
  // R3 placement needs every peer known to the meta leader with its storage stats: poll the
  // leader's /jsz (monitoring port from nats.conf) until it reports its two peers current.
  const deadline = Date.now() + 30_000;
  for (;;) {
    const views = await Promise.all(monitorPorts.map((p) => fetch(`http://127.0.0.1:${p}/jsz`, { signal: AbortSignal.timeout(2_000) }).then((r) => r.json() as Promise<Jsz>, () => undefined)));
    // Only the meta leader's /jsz lists the replicas of the meta group.
    const leader = views.find((v) => v?.meta_cluster?.replicas);
    const peers = leader?.meta_cluster?.replicas ?? [];
    if (peers.length === NODES - 1 && peers.every((r) => r.current)) {
      break;
    }
    if (Date.now() > deadline) throw new Error(`cluster not ready: ${JSON.stringify(views.map((v) => v?.meta_cluster))}\n${servers.map((s) => s.log).join("\n")}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

test.after(async () => {
  if (process.env.DUMP_NATS_LOG) for (const s of servers) console.log(s.log);
  await Promise.all(conns.map((nc) => nc.close().catch(() => undefined)));
  await Promise.all(servers.map((s) => s.dispose()));
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test("production NATS config: 3 nodes route over TLS; processor makes R3 streams, config user an R3 bucket, telemetry lands on 3 nodes", async () => {
  if (setupError) throw setupError;
  assert.is(replicas, 3, "the production config asks for R3");
  for (const s of servers) assert.match(s.log, /TLS required for client connections/i, "clients must use TLS");
  const proc = await Processor.start({
    nats: settings("processor"),
    partitions: 2,
    streams: { replicas },
    engineFactory: createWasmEngineFactory({ bucketWidthMs: 1000, allowedLatenessMs: 2000, capacityUsers: 64 }),
    httpPort: -1,
    checkpointIntervalMs: 60_000,
    leaseTtlMs: 3_000,
    log: createLogger({ level: "silent" }),
  });
  try {
    const pnc = await as("processor");
    const jsm = await jetstreamManager(pnc);
    for (const stream of ["FORESIGHT_TELEMETRY", "FORESIGHT_FORECASTS", "FORESIGHT_DEAD_LETTER", "KV_foresight-leases", "OBJ_foresight-checkpoints"]) {
      const info = await jsm.streams.info(stream);
      assert.is(info.config.num_replicas, 3, `${stream} is R3`);
      assert.is((info.cluster?.replicas?.length ?? 0) + 1, 3, `${stream} has a leader and 2 replicas`);
    }
    const cfg = await ConfigStore.open(await as("config"), { replicas });
    await cfg.set({ log: { level: "info" } }, 0);
    assert.is((await jsm.streams.info("KV_foresight-config")).config.num_replicas, 3, "config bucket is R3");

    const ack = await jetstream(await as("gateway")).publish("foresight.telemetry.0", new Uint8Array(0), { msgID: "r3-probe" });
    assert.is(ack.stream, "FORESIGHT_TELEMETRY");
    const info = await jsm.streams.info("FORESIGHT_TELEMETRY");
    const current = (info.cluster?.replicas ?? []).filter((r) => r.current).length + 1;
    assert.ok(current >= 2, `a quorum holds the message (${current} of 3 current)`);
    // Every node routes to the two others; the rendered cluster block configures TLS, so the
    // server accepts and dials routes only over TLS verified against the CA.
    assert.match(clusterConf, /cluster\s*\{[\s\S]*tls\s*\{[\s\S]*ca_file/, "routes are configured with TLS");
    for (let i = 0; i < NODES; i++) {
      const routez = (await (await fetch(`http://127.0.0.1:${monitorPortsOf[i]}/routez`, { signal: AbortSignal.timeout(5_000) })).json()) as { num_routes: number };
      assert.is(routez.num_routes, NODES - 1, `nats-${i} routes`);
    }
  } finally {
    await proc.stop();
  }
});

test.run();
