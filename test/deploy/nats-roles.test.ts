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
import { connect, PermissionViolationError, type NatsConnection } from "@nats-io/transport-node";
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
import { DirectoryIndex } from "../../src/telemetry/directory-index.ts";
import { Processor, createWasmEngineFactory } from "../../src/processor/index.ts";
import { GrantService } from "../../src/throttle/service.ts";
import { ThrottleClient } from "../../src/throttle/client.ts";
import { encodeForecastMessages } from "../../src/processor/forecasts.ts";
import { FORECAST_RECORD_BYTES } from "../../src/engine/layout.ts";
import { partitionOf } from "../../src/telemetry/frame.ts";
import { userHash, userHashHex } from "../../src/telemetry/hash.ts";

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

// uvu does not report a failing before hook (e.g. openssl missing): keep its error, fail the tests with it.
let setupError: unknown;
test.before(async () => {
  try {
    await setup();
  } catch (err) {
    setupError = err;
  }
});
test.before.each(() => {
  if (setupError) throw setupError;
});

async function setup(): Promise<void> {
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
}

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

  // The model registry (object store foresight-models): `foresight models` runs as the config user
  // (promoting a model writes the config); processors read the weights, and may not write them.
  const models = await new Objm(await as("config")).create("foresight-models");
  await models.putBlob({ name: "lstm/v1" }, new Uint8Array([1, 2, 3, 4]));
  const pModels = await new Objm(await as("processor")).open("foresight-models");
  assert.equal([...(await pModels.getBlob("lstm/v1"))!], [1, 2, 3, 4], "the processor reads model weights");
  // An object put starts with a chunk publish on $O.<bucket>.C.<nuid>: refused, naming it.
  assertRefused(await refusal(jetstream(await as("processor")).publish("$O.foresight-models.C.forged", new Uint8Array(4)), "processor writing a model"), "$O.foresight-models.C.forged", "processor writing a model");
  assertRefused(await refusal(new Objm(await as("gateway")).open("foresight-models"), "gateway opening models"), "$JS.API.STREAM.INFO.OBJ_foresight-models", "gateway opening models");

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
  let stopGrants: (() => Promise<void>) | undefined;
  let stopGateway: (() => Promise<void>) | undefined;
  try {
    assert.equal(proc.ownedPartitions().sort(), [0, 1], "the processor leased every partition");
    const pnc = await as("processor");
    // The allocator leader's grant service, as user `allocator`: it creates the grants stream,
    // hears the processors' forecasts and the gateways' demand reports, and publishes grants.
    const grants = new GrantService({ partitions: PARTITIONS, plans: { default: { requestsPerSec: 20 } }, safeLimits: { default: { requestsPerSec: 1 } }, pools: () => [{ capacityReqPerSec: 100 }], usersPerPartition: 1024, poolStateIntervalMs: 200 });
    await grants.start(await as("allocator"));
    stopGrants = () => grants.stop();

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
    // Processor and allocator follow the gateways' directory with a KV watch (read only).
    const planned = userHash("planned-user");
    await directory.register(userHashHex(planned), { user: "planned-user", plan: "enterprise", firstSeenMs: 1 });
    for (const role of ["processor", "allocator"] as const) {
      const ix = await DirectoryIndex.open(await as(role), { create: false });
      try {
        await waitFor(() => (ix.stats().initialized ? true : undefined), `${role} to load the user directory`);
        assert.is(ix.planOf(planned.lo, planned.hi), "enterprise", `${role} reads users' plans`);
      } finally {
        await ix.stop();
      }
    }
    const applied = await waitFor(() => {
      let n = 0;
      for (let p = 0; p < PARTITIONS; p++) n += proc.worker(p)?.engine.stats().eventsApplied ?? 0;
      return n >= 200 ? n : undefined;
    }, "processor to apply the gateway's events");
    assert.is(applied, 200, "the processor applied exactly the gateway's events");

    // The processor's forecast tick becomes a grant the allocator publishes and the gateway's
    // ThrottleClient (ordered consumer on the stream, demand reports) applies.
    const gateway = new ThrottleClient({ plans: { default: { requestsPerSec: 20 } }, safeLimits: { default: { requestsPerSec: 1 } }, partitions: PARTITIONS, maxUsers: 4096, gatewayId: "roles-gw", demandReportIntervalMs: 100 });
    stopGateway = () => gateway.close();
    await gateway.start(gnc);
    const hash = userHash("granted-user");
    const part = partitionOf(hash.lo, PARTITIONS);
    const rec = new Uint8Array(FORECAST_RECORD_BYTES);
    const rdv = new DataView(rec.buffer);
    rdv.setUint32(0, hash.lo, true);
    rdv.setUint32(4, hash.hi, true);
    rdv.setFloat64(8, 4, true);
    rdv.setFloat64(16, 5, true);
    rdv.setFloat64(24, 3, true);
    // The processor above ticks its own users on every partition, and a partition's next tick
    // without "granted-user" removes its grant again: so the gateway's grant is caught when a
    // message applies it, not polled afterwards.
    let seenUpper: number | undefined;
    const seen = new Promise<number>((resolve) => {
      gateway.onApplied = () => {
        const u = gateway.grantOf("granted-user")?.upperReqPerSec;
        if (u !== undefined && seenUpper === undefined) resolve((seenUpper = u));
      };
    });
    for (const m of encodeForecastMessages(part, Date.now(), rec, 1)) pnc.publish(`foresight.forecasts.${part}`, m);
    let timer: NodeJS.Timeout | undefined;
    const upper = await Promise.race([
      seen,
      new Promise<never>((_r, reject) => (timer = setTimeout(() => reject(new Error("timed out waiting for the gateway to apply the allocator's grant")), 10_000))),
    ]).finally(() => clearTimeout(timer));
    gateway.onApplied = undefined;
    assert.is(upper, 5, "gateway reads the grant the allocator published");
    gateway.check("granted-user", { requests: 1, tokens: 0 });
    await waitFor(() => (grants.stats().demandReports > 0 ? true : undefined), "the allocator to hear the gateway's demand report");
    assert.is(grants.stats().publishErrors, 0, "the allocator publishes grants without refusals");
    assertRefused(await refusal(jetstream(pnc).publish("foresight.grants.0.d.forged", "{}"), "processor writing a grant"), "foresight.grants.0.d.forged", "processor writing a grant");
    assertRefused(await refusal(jetstream(gnc).publish("foresight.grants.0.d.forged", "{}"), "gateway writing a grant"), "foresight.grants.0.d.forged", "gateway writing a grant");
    assertRefused(await refusal(jetstream(gnc).publish("foresight.pools.state", "{}"), "gateway forging pool state"), "foresight.pools.state", "gateway forging pool state");
    assertRefused(await refusal(jetstream(gnc).publish("foresight.demand.0", "{}"), "gateway forging a demand partial"), "foresight.demand.0", "gateway forging a demand partial");
    // Subscribing where it may not listen is refused too (the subscription closes with the error).
    const spy = gnc.subscribe("foresight.demand.*");
    const spyEnd = await spy.closed;
    assert.instance(spyEnd, PermissionViolationError, `gateway listening to demand partials: ${spyEnd}`);
    assert.is((spyEnd as PermissionViolationError).subject, "foresight.demand.*");
    provoked.add("Subscription foresight.demand.*");
    const gLeases = await new Kvm(gnc).open("foresight-leases");
    assertRefused(await refusal(gLeases.put("partition.0", "{}"), "gateway writing a lease"), "$KV.foresight-leases.partition.0", "gateway writing a lease");
    // An object store write is a chunk publish on $O.<bucket>.C.<nuid> (then the meta on .M.):
    // the gateway cannot even open the checkpoint store, nor publish a chunk into it.
    assertRefused(await refusal(new Objm(gnc).open("foresight-checkpoints"), "gateway opening checkpoints"), "$JS.API.STREAM.INFO.OBJ_foresight-checkpoints", "gateway opening checkpoints");
    assertRefused(await refusal(jetstream(gnc).publish("$O.foresight-checkpoints.C.forged", new Uint8Array(16)), "gateway writing a checkpoint chunk"), "$O.foresight-checkpoints.C.forged", "gateway writing a checkpoint chunk");
    const gjsm = await jetstreamManager(gnc);
    assertRefused(await refusal(gjsm.streams.delete("FORESIGHT_TELEMETRY"), "gateway deleting telemetry"), "$JS.API.STREAM.DELETE.FORESIGHT_TELEMETRY", "gateway deleting telemetry");
    assertRefused(await refusal(gjsm.streams.purge("FORESIGHT_GRANTS"), "gateway purging grants"), "$JS.API.STREAM.PURGE.FORESIGHT_GRANTS", "gateway purging grants");
    // Forecasts are the processor's to publish.
    assertRefused(await refusal(jetstream(gnc).publish("foresight.forecasts.0", new Uint8Array(1)), "gateway forging a forecast"), "foresight.forecasts.0", "gateway forging a forecast");

    // Allocator: its leader lease; hears the processors' demand partials and publishes the pool
    // state the gateways hear (and grants, above). Not partition leases, demand partials or forecasts.
    const anc = await as("allocator");
    const aLeases = await new Kvm(anc).create("foresight-leases", { history: 1 });
    assert.ok((await aLeases.create("allocator.leader", JSON.stringify({ holder: "alloc-0" }))) > 0, "allocator takes its leader lease");
    const demandSub = anc.subscribe("foresight.demand.*", { max: 1 });
    const poolsSub = gnc.subscribe("foresight.pools.state", { max: 1 });
    await Promise.all([anc.flush(), gnc.flush()]);
    pnc.publish("foresight.demand.0", JSON.stringify({ partition: 0, pools: { chat: 12 } }));
    for await (const m of demandSub) assert.equal(m.json(), { partition: 0, pools: { chat: 12 } }, "allocator hears the processor's demand partial");
    anc.publish("foresight.pools.state", JSON.stringify({ v: 1, pools: [{ name: "chat", replicas: 3 }] }));
    for await (const m of poolsSub) assert.equal(m.json(), { v: 1, pools: [{ name: "chat", replicas: 3 }] }, "gateway hears the pool state");
    assertRefused(await refusal(aLeases.put("partition.0", "{}"), "allocator stealing a partition"), "$KV.foresight-leases.partition.0", "allocator stealing a partition");
    assertRefused(await refusal(jetstream(anc).publish("foresight.demand.0", "{}"), "allocator forging demand"), "foresight.demand.0", "allocator forging demand");
    assertRefused(await refusal(jetstream(anc).publish("foresight.forecasts.0", new Uint8Array(1)), "allocator forging a forecast"), "foresight.forecasts.0", "allocator forging a forecast");

    // Processor: not the allocator's lease or the pool state.
    const pLeases = await new Kvm(pnc).open("foresight-leases");
    assertRefused(await refusal(pLeases.put("allocator.leader", "{}"), "processor taking the allocator lease"), "$KV.foresight-leases.allocator.leader", "processor taking the allocator lease");
    assertRefused(await refusal(jetstream(pnc).publish("foresight.pools.state", "{}"), "processor publishing pool state"), "foresight.pools.state", "processor publishing pool state");

    // Config user: nothing outside the config bucket.
    const cnc = await as("config");
    assertRefused(await refusal(jetstream(cnc).publish("foresight.telemetry.0", new Uint8Array(1)), "config user publishing telemetry"), "foresight.telemetry.0", "config user publishing telemetry");
    const cGrants = await refusal(jetstream(cnc).consumers.get("FORESIGHT_GRANTS").then((c) => c.next({ expires: 2_000 })), "config user reading grants");
    assertRefused(cGrants, /^\$JS\.API\.(STREAM\.INFO|CONSUMER\.CREATE)\.FORESIGHT_GRANTS(\.|$)/, "config user reading grants");

    // A refused request leaves the connection usable: the gateway still publishes afterwards.
    const ack = await jetstream(gnc).publish("foresight.telemetry.1", new Uint8Array(0), { msgID: "after-refusals" });
    assert.is(ack.stream, "FORESIGHT_TELEMETRY");

    // The processor's final checkpoint (object store put) on stop works under its rights.
    await proc.stop();
    stopped = true;
    const objs = await (await new Objm(pnc).open("foresight-checkpoints")).list();
    assert.ok(objs.length >= 1, `the processor wrote checkpoints (${objs.length})`);
  } finally {
    await stopGateway?.();
    await stopGrants?.();
    if (!stopped) await proc.stop();
  }
});

test("the server refused nothing else: every role had every right its real code paths used", () => {
  const seen = [...srv.log.matchAll(/(Publish|Subscription) Violation - User "([^"]+)", Subject "([^"]+)"/g)].map((m) => `${m[2]} ${m[1]} ${m[3]}`);
  assert.ok(seen.length >= provoked.size, "the server logs permission violations");
  const unexpected = seen.filter((v) => {
    const [, kind, subject] = v.split(" ");
    return kind === "Publish" ? !provoked.has(subject) : !provoked.has(`Subscription ${subject}`);
  });
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
