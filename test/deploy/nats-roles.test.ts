// NATS security per role, as deployed: a real nats-server runs with exactly the authorization
// block of deploy/base/nats/auth.conf (passwords from its environment, as the StatefulSet gives
// them) behind TLS with a throwaway CA made by openssl. Each role connects with its own user and is
// shown working where it belongs (the real Processor, TelemetryPublisher and ConfigStore) and
// refused, with an error naming the subject, where it does not.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createConnection } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { Objm } from "@nats-io/obj";
import { Registry } from "prom-client";
import { NatsServer } from "../../src/nats/server.ts";
import { connectNats, type NatsConnectionSettings } from "../../src/nats/connect.ts";
import { ConfigStore } from "../../src/config/store.ts";
import { ConfigWatcher } from "../../src/config/watch.ts";
import { createLogger } from "../../src/obs/logger.ts";
import { TelemetryPublisher } from "../../src/telemetry/publisher.ts";
import { UserDirectory } from "../../src/telemetry/directory.ts";
import { Processor, createWasmEngineFactory } from "../../src/processor/index.ts";

const AUTH_CONF = fileURLToPath(new URL("../../deploy/base/nats/auth.conf", import.meta.url));
const ROLES = ["gateway", "processor", "allocator", "config"] as const;
type Role = (typeof ROLES)[number];
const PARTITIONS = 2;

let dir: string;
let srv: NatsServer;
const passwords = {} as Record<Role, string>;
const conns: NatsConnection[] = [];

/** A throwaway CA and a server certificate for 127.0.0.1/localhost, made with openssl. */
function makeTls(into: string): { ca: string; cert: string; key: string } {
  const f = (n: string) => join(into, n);
  const run = (args: string[]) => execFileSync("openssl", args, { stdio: "pipe" });
  run(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=foresight-test-ca", "-keyout", f("ca.key"), "-out", f("ca.crt")]);
  run(["req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=nats", "-keyout", f("server.key"), "-out", f("server.csr")]);
  writeFileSync(f("ext.cnf"), "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n");
  run(["x509", "-req", "-in", f("server.csr"), "-CA", f("ca.crt"), "-CAkey", f("ca.key"), "-CAcreateserial", "-days", "1", "-extfile", f("ext.cnf"), "-out", f("server.crt")]);
  return { ca: f("ca.crt"), cert: f("server.crt"), key: f("server.key") };
}

function settings(role: Role): NatsConnectionSettings {
  return {
    servers: [srv.url],
    name: `test-${role}`,
    user: role,
    pass: passwords[role],
    tls: { caFile: join(dir, "ca.crt") },
    maxReconnectAttempts: 0,
    timeoutMs: 3_000,
  };
}

async function as(role: Role): Promise<NatsConnection> {
  const nc = await connectNats(settings(role));
  conns.push(nc);
  return nc;
}

/** The error `p` rejects with, with the messages of its cause chain joined (the subject may be in a cause). */
async function refusal(p: Promise<unknown>, what: string): Promise<string> {
  try {
    await p;
  } catch (err) {
    const parts: string[] = [];
    for (let e = err as Error | undefined; e; e = e.cause as Error | undefined) parts.push(`${e.name}: ${e.message}`);
    return parts.join(" <- ");
  }
  assert.unreachable(`${what} should have been refused`);
  return "";
}

/** Subjects the test provoked a refusal on; any other violation in the server log is a missing right. */
const provoked = new Set<string>();

function assertRefused(text: string, subject: string | RegExp, what: string): void {
  const m = /Permissions Violation for Publish to "([^"]+)"/.exec(text);
  assert.ok(m, `${what}: not a permission violation: ${text}`);
  if (typeof subject === "string") assert.is(m![1], subject, `${what}: the error should name ${subject}, got: ${text}`);
  else assert.match(m![1], subject, `${what}: the error should name a subject like ${subject}, got: ${text}`);
  provoked.add(m![1]);
}

test.before(async () => {
  execFileSync("openssl", ["version"], { stdio: "pipe" }); // fails loudly when openssl is missing
  dir = mkdtempSync(join(tmpdir(), "foresight-nats-roles-"));
  const tls = makeTls(dir);
  const env: Record<string, string> = {};
  for (const r of ROLES) {
    passwords[r] = `${r}-${Math.random().toString(36).slice(2)}`;
    env[`FORESIGHT_NATS_${r.toUpperCase()}_PASS`] = passwords[r];
  }
  srv = await NatsServer.start({
    env,
    extraConfig: [
      readFileSync(AUTH_CONF, "utf8"),
      `tls { cert_file: "${tls.cert}", key_file: "${tls.key}", ca_file: "${tls.ca}", timeout: 2 }`,
    ].join("\n"),
  });
});

test.after(async () => {
  await Promise.all(conns.map((nc) => nc.close().catch(() => undefined)));
  if (process.env.DUMP_NATS_LOG) console.log(srv?.log);
  await srv?.dispose();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test("no TLS, no trusted CA, no user or a wrong password: refused before any subject is reached", async () => {
  // A plain-text client: the server announces tls_required and closes on a plain CONNECT.
  const plain = await plainTextAttempt(srv.port);
  assert.ok(plain.info.tls_required === true, `server INFO must require TLS: ${JSON.stringify(plain.info)}`);
  assert.not.match(plain.rest, /PONG/, `a plain-text CONNECT must not be served: ${plain.rest}`);
  // A TLS client that does not trust our CA.
  const untrusted = await refusal(connect({ servers: srv.url, user: "gateway", pass: passwords.gateway, maxReconnectAttempts: 0, timeout: 3_000 }), "connect without the CA");
  assert.match(untrusted, /certificate/i, untrusted);
  const anon = await refusal(connectNats({ ...settings("gateway"), user: undefined, pass: undefined }), "anonymous connect");
  assert.match(anon, /Authorization Violation/i, anon);
  const wrong = await refusal(connectNats({ ...settings("config"), pass: "not-the-password" }), "wrong password");
  assert.match(wrong, /Authorization Violation/i, wrong);
});

/** Speaks the NATS protocol in plain text: reads INFO, sends CONNECT + PING, returns what came back until close. */
function plainTextAttempt(port: number): Promise<{ info: Record<string, unknown>; rest: string }> {
  return new Promise((resolve, reject) => {
    const sock = createConnection({ host: "127.0.0.1", port });
    let buf = "";
    let info: Record<string, unknown> | undefined;
    const timer = setTimeout(() => sock.destroy(), 5_000);
    sock.on("data", (d) => {
      buf += d.toString("latin1");
      if (!info && buf.includes("\r\n")) {
        const line = buf.slice(0, buf.indexOf("\r\n"));
        info = JSON.parse(line.replace(/^INFO /, "")) as Record<string, unknown>;
        buf = buf.slice(line.length + 2);
        sock.write(`CONNECT {"user":"gateway","pass":"${passwords.gateway}","verbose":false,"pedantic":false}\r\nPING\r\n`);
      }
    });
    sock.on("error", () => undefined); // a reset is the expected end
    sock.on("close", () => {
      clearTimeout(timer);
      if (!info) reject(new Error(`no INFO from the server: ${buf}`));
      else resolve({ info, rest: buf });
    });
  });
}

test("config user: the only one that writes the config; processor and allocator read it, cannot write it", async () => {
  const cfg = await ConfigStore.open(await as("config"), { history: 8 });
  const rev = await cfg.set({ log: { level: "debug" } }, 0);
  assert.ok(rev > 0, "the config user writes the config");

  for (const role of ["processor", "allocator", "gateway"] as const) {
    const store = await ConfigStore.open(await as(role));
    const got = await store.get();
    assert.is(got.revision, rev, `${role} reads the config`);
    assert.is(got.config.log.level, "debug");
    const err = await refusal(store.set({ log: { level: "warn" } }, rev), `${role} writing the config`);
    assertRefused(err, "$KV.foresight-config.config", `${role} writing the config`);
  }
  // The processor and allocator watch the config live (ordered consumer, flow control): a write
  // by the config user reaches their watchers.
  const seen: Record<string, number[]> = { processor: [], allocator: [] };
  const watchers = await Promise.all((["processor", "allocator"] as const).map(async (role) =>
    ConfigWatcher.start({ nc: await as(role), registry: new Registry(), logger: createLogger({ level: "silent" }), onChange: (u) => void seen[role].push(u.revision) })));
  const rev2 = await cfg.set({ log: { level: "warn" } }, rev);
  try {
    await waitFor(() => (seen.processor.includes(rev2) && seen.allocator.includes(rev2) ? true : undefined), "watchers to see the new revision");
  } finally {
    await Promise.all(watchers.map((w) => w.stop()));
  }
  assert.ok(seen.processor.includes(rev2) && seen.allocator.includes(rev2));

  // Nor may a non-owner delete the bucket behind the config's back.
  const jsm = await jetstreamManager(await as("processor"));
  const del = await refusal(jsm.streams.delete("KV_foresight-config"), "processor deleting the config bucket");
  assertRefused(del, "$JS.API.STREAM.DELETE.KV_foresight-config", "processor deleting the config bucket");
  assert.is((await cfg.get()).revision, rev2, "the config is unchanged by the refused writes");
});

test("processor runs under its rights; gateway publishes telemetry it consumes; each role refused elsewhere", async () => {
  // The real processor: streams, leases, checkpoints, ordered consumers, all as user `processor`.
  const proc = await Processor.start({
    nats: settings("processor"),
    partitions: PARTITIONS,
    engineFactory: createWasmEngineFactory({ bucketWidthMs: 1000, allowedLatenessMs: 2000, capacityUsers: 256 }),
    httpPort: -1,
    tickIntervalMs: 100,
    checkpointIntervalMs: 60_000,
    leaseTtlMs: 3_000,
    log: createLogger({ level: "silent" }),
  });
  let stopped = false;
  try {
    assert.equal(proc.ownedPartitions().sort(), [0, 1], "the processor leased every partition");
    const pnc = await as("processor");
    // The processor owns grants and writes demand partials into the pool-state bucket.
    const grants = await new Kvm(pnc).create("foresight-grants", { history: 1 });
    await grants.put("u-1", JSON.stringify({ ratePerSec: 5 }));
    const pools = await new Kvm(pnc).create("foresight-pools", { history: 1 });
    await pools.put("demand.chat.0", JSON.stringify({ requestsPerSec: 12 }));

    // Gateway: telemetry through JetStream (acked), user directory, reads grants and pool state.
    const gnc = await as("gateway");
    const directory = await UserDirectory.open(gnc);
    const pub = new TelemetryPublisher(gnc, { partitions: PARTITIONS, flushIntervalMs: 10, directory });
    const users = ["alice", "bob", "carol", "dave"];
    for (let i = 0; i < 200; i++) pub.record({ user: users[i % users.length], timeMs: Date.now(), bytes: 100 });
    await pub.flush(10_000);
    const s = pub.stats();
    await pub.close();
    assert.is(s.ackedEvents, 200, "every event JetStream-acked for the gateway");
    assert.is(s.directoryErrors, 0, "the gateway writes the user directory");
    const applied = await waitFor(() => {
      let n = 0;
      for (let p = 0; p < PARTITIONS; p++) n += proc.worker(p)?.engine.stats().eventsApplied ?? 0;
      return n >= 200 ? n : undefined;
    }, "processor to apply the gateway's events");
    assert.is(applied, 200, "the processor applied exactly the gateway's events");

    const gGrants = await new Kvm(gnc).open("foresight-grants");
    assert.equal(JSON.parse((await gGrants.get("u-1"))!.string()), { ratePerSec: 5 }, "gateway reads grants");
    const gPools = await new Kvm(gnc).open("foresight-pools");
    assert.ok(await gPools.get("demand.chat.0"), "gateway reads pool state");
    assertRefused(await refusal(gGrants.put("u-1", "{}"), "gateway writing a grant"), "$KV.foresight-grants.u-1", "gateway writing a grant");
    assertRefused(await refusal(gPools.put("allocation.chat", "{}"), "gateway writing pool state"), "$KV.foresight-pools.allocation.chat", "gateway writing pool state");
    const gLeases = await new Kvm(gnc).open("foresight-leases");
    assertRefused(await refusal(gLeases.put("partition.0", "{}"), "gateway writing a lease"), "$KV.foresight-leases.partition.0", "gateway writing a lease");
    // An object store write is a chunk publish on $O.<bucket>.C.<nuid> (then the meta on .M.):
    // the gateway cannot even open the checkpoint store, nor publish a chunk into it.
    assertRefused(await refusal(new Objm(gnc).open("foresight-checkpoints"), "gateway opening checkpoints"), "$JS.API.STREAM.INFO.OBJ_foresight-checkpoints", "gateway opening checkpoints");
    assertRefused(await refusal(jetstream(gnc).publish("$O.foresight-checkpoints.C.forged", new Uint8Array(16)), "gateway writing a checkpoint chunk"), "$O.foresight-checkpoints.C.forged", "gateway writing a checkpoint chunk");
    const gjsm = await jetstreamManager(gnc);
    assertRefused(await refusal(gjsm.streams.delete("FORESIGHT_TELEMETRY"), "gateway deleting telemetry"), "$JS.API.STREAM.DELETE.FORESIGHT_TELEMETRY", "gateway deleting telemetry");
    assertRefused(await refusal(gjsm.streams.purge("KV_foresight-grants"), "gateway purging grants"), "$JS.API.STREAM.PURGE.KV_foresight-grants", "gateway purging grants");
    // Forecasts are the processor's to publish.
    assertRefused(await refusal(jetstream(gnc).publish("foresight.forecasts.0", new Uint8Array(1)), "gateway forging a forecast"), "foresight.forecasts.0", "gateway forging a forecast");

    // Allocator: its leader lease and pool allocations; not partition leases, grants or demand.
    const anc = await as("allocator");
    const aLeases = await new Kvm(anc).open("foresight-leases");
    assert.ok((await aLeases.create("allocator.leader", JSON.stringify({ holder: "alloc-0" }))) > 0, "allocator takes its leader lease");
    const aPools = await new Kvm(anc).create("foresight-pools", { history: 1 });
    assert.ok((await aPools.put("allocation.chat", JSON.stringify({ replicas: 3 }))) > 0, "allocator writes pool state");
    assert.ok(await aPools.get("demand.chat.0"), "allocator reads the demand partials");
    assertRefused(await refusal(aLeases.put("partition.0", "{}"), "allocator stealing a partition"), "$KV.foresight-leases.partition.0", "allocator stealing a partition");
    assertRefused(await refusal(aPools.put("demand.chat.0", "{}"), "allocator writing demand"), "$KV.foresight-pools.demand.chat.0", "allocator writing demand");
    const aGrants = await new Kvm(anc).open("foresight-grants");
    assertRefused(await refusal(aGrants.put("u-1", "{}"), "allocator writing a grant"), "$KV.foresight-grants.u-1", "allocator writing a grant");

    // Processor: not the allocator's lease or allocations.
    const pLeases = await new Kvm(pnc).open("foresight-leases");
    assertRefused(await refusal(pLeases.put("allocator.leader", "{}"), "processor taking the allocator lease"), "$KV.foresight-leases.allocator.leader", "processor taking the allocator lease");
    assertRefused(await refusal(pools.put("allocation.chat", "{}"), "processor writing an allocation"), "$KV.foresight-pools.allocation.chat", "processor writing an allocation");

    // Config user: nothing outside the config bucket.
    const cnc = await as("config");
    assertRefused(await refusal(jetstream(cnc).publish("foresight.telemetry.0", new Uint8Array(1)), "config user publishing telemetry"), "foresight.telemetry.0", "config user publishing telemetry");
    const cGrants = await refusal((await new Kvm(cnc).open("foresight-grants")).get("u-1"), "config user reading grants");
    assertRefused(cGrants, /^\$JS\.API\.(DIRECT|STREAM\.MSG)\.GET\.KV_foresight-grants(\.|$)/, "config user reading grants");

    // A refused request leaves the connection usable: the gateway still publishes afterwards.
    const ack = await jetstream(gnc).publish("foresight.telemetry.1", new Uint8Array(0), { msgID: "after-refusals" });
    assert.is(ack.stream, "FORESIGHT_TELEMETRY");

    // The processor's final checkpoint (object store put) on stop works under its rights.
    await proc.stop();
    stopped = true;
    const objs = await (await new Objm(pnc).open("foresight-checkpoints")).list();
    assert.ok(objs.length >= 1, `the processor wrote checkpoints (${objs.length})`);
  } finally {
    if (!stopped) await proc.stop();
  }
});

test("the server refused nothing else: every role had every right its real code paths used", () => {
  const seen = [...srv.log.matchAll(/(Publish|Subscription) Violation - User "([^"]+)", Subject "([^"]+)"/g)].map((m) => `${m[2]} ${m[1]} ${m[3]}`);
  assert.ok(seen.length >= provoked.size, "the server logs permission violations");
  const unexpected = seen.filter((v) => !(v.includes(" Publish ") && provoked.has(v.split(" ").slice(2).join(" "))));
  assert.equal(unexpected, [], `violations the test did not provoke (a role lacks a right its code needs): ${unexpected.join("; ")}`);
});

/** Polls `f` every 20 ms until it returns a value; fails after 10 s naming what it waited for. */
async function waitFor<T>(f: () => T | undefined, what: string, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = f();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test.run();
