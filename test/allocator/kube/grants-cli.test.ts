// `foresight allocate` processes (the CLI, each with its own Kubernetes API test server via --sim)
// sharing one real nats-server: the leader's grant service feeds a gateway; the leader is killed
// with SIGKILL (its lease is never released) and the standby's grant service takes over within
// the lease TTL, the gateway following it; `--no-grants` publishes no grants and serves no grant
// series.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { NatsServer } from "../../../src/nats/server.ts";
import { ThrottleClient } from "../../../src/throttle/client.ts";
import { partitionOf } from "../../../src/telemetry/frame.ts";
import { userHash } from "../../../src/telemetry/hash.ts";
import { forecastMessages, whenApplied } from "../../throttle/_util.ts";

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const P = 2;
const LEASE_TTL_MS = 1500;
const PLANS = { default: { requestsPerSec: 20 } };
const SAFE = { default: { requestsPerSec: 0.5 } };

let nats: NatsServer;
let dir: string;
let configFile: string;
/** The CLI bundled from the source as `npm run build:cli` does (starts in a fraction of tsx's time). */
let bundle: string;
const children = new Set<ChildProcess>();
const conns: NatsConnection[] = [];

test.before(async () => {
  nats = await NatsServer.start();
  mkdirSync(join(ROOT, ".tmp"), { recursive: true });
  dir = mkdtempSync(join(ROOT, ".tmp", "grants-cli-"));
  configFile = join(dir, "foresight.yaml");
  bundle = join(dir, "main.js");
  // Inside the repository, so the bundle's external packages resolve from its node_modules.
  await build({ entryPoints: [join(ROOT, "src/cli/main.ts")], bundle: true, platform: "node", format: "esm", target: "node20", packages: "external", outfile: bundle, logLevel: "silent" });
  writeFileSync(configFile, [
    `nats: { partitions: ${P} }`,
    "throttle:",
    `  plans: { default: { requestsPerSec: ${PLANS.default.requestsPerSec} } }`,
    `  safeLimits: { default: { requestsPerSec: ${SAFE.default.requestsPerSec} } }`,
    "  grantTtlMs: 8000",
    "  grantRefreshMs: 500",
    "  feedback: { mode: none }",
    "pools:",
    "  - name: chat",
    "    mode: shadow",
    "    workload: { kind: Deployment, namespace: shop, name: chat }",
    "    costModel: { requestsPerSecPerReplica: 10, cpuPerReplicaMillicores: 500, memoryPerReplicaMiB: 512 }",
    "    minReplicas: 1",
    "    maxReplicas: 5",
    "    match: { default: true }",
    "",
  ].join("\n"));
});
test.after(async () => {
  for (const c of children) c.kill("SIGKILL");
  for (const nc of conns) await nc.close().catch(() => undefined);
  await nats.dispose();
  rmSync(dir, { recursive: true, force: true });
});

interface Allocator {
  proc: ChildProcess;
  httpPort: number;
  output: () => string;
}

/** Starts `foresight allocate` and resolves once it logged "allocator running" (with its port). */
function allocate(id: string, extra: string[] = []): Promise<Allocator> {
  const proc = spawn(process.execPath, [
    bundle, "allocate", "--sim", "--config", configFile, "--servers", nats.url, "--http-port", "0",
    "--no-kv", "--lease-ttl-ms", String(LEASE_TTL_MS), "--process-id", id, ...extra,
  ], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
  children.add(proc);
  proc.on("exit", () => children.delete(proc));
  let out = "";
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${id} did not start within 60 s:\n${out}`)), 60_000);
    const onData = (d: Buffer) => {
      out += d.toString();
      const m = /"httpPort":(\d+)[^\n]*"allocator running"|"allocator running"[^\n]*"httpPort":(\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ proc, httpPort: Number(m[1] ?? m[2]), output: () => out });
      }
    };
    proc.stdout!.on("data", onData);
    proc.stderr!.on("data", onData);
    proc.on("exit", (code, sig) => {
      clearTimeout(timer);
      reject(new Error(`${id} exited (${sig ?? code}) before it ran:\n${out}`));
    });
  });
}

async function metrics(a: Allocator): Promise<string> {
  return (await fetch(`http://127.0.0.1:${a.httpPort}/metrics`)).text();
}

async function tick(nc: NatsConnection, users: { user: string; upper: number }[]): Promise<void> {
  const now = Date.now();
  for (let p = 0; p < P; p++) {
    for (const m of forecastMessages(p, now, users.filter((u) => partitionOf(userHash(u.user).lo, P) === p))) nc.publish(`foresight.forecasts.${p}`, m);
  }
  await nc.flush();
}

test("SIGKILL of the leading `foresight allocate`: the standby publishes the grants within the lease TTL; --no-grants publishes none", async () => {
  const nc = await connect({ servers: nats.url });
  conns.push(nc);
  // Publishers of grant deltas, by the grant service instance in the subject (…grants.<p>.d.<instance>-<seq>).
  const deltas: { instance: string; atMs: number }[] = [];
  const waiters: { pred: (instance: string) => boolean; resolve: (instance: string) => void }[] = [];
  nc.subscribe("foresight.grants.*.d.*", {
    callback: (_e, m) => {
      const instance = m.subject.split(".").pop()!.split("-")[0];
      deltas.push({ instance, atMs: Date.now() });
      for (const w of [...waiters]) if (w.pred(instance)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(instance);
      }
    },
  });
  /** The next delta whose publisher satisfies `pred`; fails after `timeoutMs` naming `what`. */
  const nextDelta = (pred: (instance: string) => boolean, what: string, timeoutMs = 15_000) => new Promise<string>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no grant delta from ${what} within ${timeoutMs} ms`)), timeoutMs);
    waiters.push({ pred, resolve: (i) => (clearTimeout(t), resolve(i)) });
  });
  await nc.flush();

  const off = await allocate("cli-off", ["--no-grants"]);
  const [leader, standby] = await Promise.all([allocate("cli-lead"), allocate("cli-standby")]);
  // The gateway starts once grants flow (it waits for the grant state before it enforces).
  const gw = new ThrottleClient({ plans: PLANS, safeLimits: SAFE, partitions: P, maxUsers: 4096, gatewayId: "cli-gw" });
  try {
    // The first process to start took the lease, but it runs without grants: nobody publishes yet.
    // Stop it so the grant-hosting pair decides who leads (its lease is released on SIGTERM).
    assert.match(await metrics(off), /^foresight_allocator_leader 1$/m, "the --no-grants process leads first");
    assert.not.match(await metrics(off), /foresight_grants_/, "--no-grants serves no grant series");
    const offExit = new Promise((r) => off.proc.on("exit", r));
    off.proc.kill("SIGTERM");
    await offExit;
    assert.is(deltas.length, 0, "no grants while the --no-grants process led");

    const users = [{ user: "k1", upper: 1 }, { user: "k2", upper: 2 }];
    const first = nextDelta(() => true, "the first leader");
    const ticking = setInterval(() => void tick(nc, users).catch(() => undefined), 200);
    let firstInstance: string;
    try {
      firstInstance = await first;
      await gw.start(nc);
    } finally {
      clearInterval(ticking);
    }
    await whenApplied(gw, () => gw.grantOf("k2")?.upperReqPerSec === 2, 10_000, "the first leader's grants at the gateway");
    const [lm, sm] = await Promise.all([metrics(leader), metrics(standby)]);
    const active = [lm, sm].map((t) => /^foresight_grants_active 1$/m.test(t));
    assert.equal(active.filter(Boolean).length, 1, "exactly one process publishes grants");
    const [lead, stand] = active[0] ? [leader, standby] : [standby, leader];
    const standMetrics = active[0] ? sm : lm;
    assert.match(standMetrics, /^foresight_grants_messages_published_total 0$/m, "the standby published nothing");
    assert.equal([...new Set(deltas.map((d) => d.instance))], [firstInstance], "one publisher");

    // SIGKILL: the lease is not released; it lapses after the TTL and the standby takes it.
    const lapses = gw.stats().leaseLapses;
    const takeover = nextDelta((i) => i !== firstInstance, "the standby", 3 * LEASE_TTL_MS);
    const killedAt = Date.now();
    lead.proc.kill("SIGKILL");
    const moved = users.map((u) => ({ ...u, upper: u.upper * 3 }));
    const ticking2 = setInterval(() => void tick(nc, moved).catch(() => undefined), 200);
    try {
      const second = await takeover;
      const tookMs = Date.now() - killedAt;
      assert.ok(tookMs <= LEASE_TTL_MS + LEASE_TTL_MS / 3 + 1000, `the standby published ${tookMs} ms after the kill (lease TTL ${LEASE_TTL_MS} ms)`);
      await whenApplied(gw, () => gw.grantOf("k2")?.upperReqPerSec === 6 && gw.grantOf("k1")?.upperReqPerSec === 3, 10_000, "the new leader's grants at the gateway");
      assert.equal(new Set(deltas.map((d) => d.instance)), new Set([firstInstance, second]), "two publishers in turn, never a third");
    } finally {
      clearInterval(ticking2);
    }
    assert.is(gw.stats().leaseLapses, lapses, "the gateway's grants never lapsed");
    const after = await metrics(stand);
    assert.match(after, /^foresight_grants_active 1$/m);
    assert.match(after, /^foresight_allocator_leader 1$/m);
  } finally {
    await gw.close();
  }
});

test.run();
