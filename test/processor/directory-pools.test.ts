// `foresight serve` with pools matched by plans and segments, against a real nats-server: a gateway's
// TelemetryPublisher writes each user's plan and segment to the user directory as it first sees
// the user, the processor follows the directory (DirectoryIndex) and its demand partials count
// each user in its directory pool: one user per pool, so the per-pool active users name them.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { NatsServer } from "../../src/nats/server.ts";
import { TelemetryPublisher } from "../../src/telemetry/publisher.ts";
import { UserDirectory } from "../../src/telemetry/directory.ts";
import { decodeDemandPartial, type DemandPartial } from "../../src/allocator/kube/partials.ts";
import { spawnServe, killChild, type ServeChild } from "./support.ts";

const PREFIX = "dirp";
const P = 2;
const pool = (name: string, match: Record<string, unknown>) => ({ name, workload: { name }, costModel: { requestsPerSecPerReplica: 10 }, match });
const CONFIG = {
  engine: { bucketWidthMs: 1000, allowedLatenessMs: 0, capacityUsers: 64 },
  pools: [pool("chat", { default: true }), pool("ent", { plans: ["enterprise"] }), pool("edu", { segments: ["edu"] })],
};
/** One user per pool: enterprise plan → ent; edu segment (plan pro, not a pool's) → edu; none → chat. */
const USERS = [
  { user: "plain-user" },
  { user: "ent-user", plan: "enterprise", segment: "edu" },
  { user: "edu-user", plan: "pro", segment: "edu" },
];

let srv: NatsServer;
let nc: NatsConnection;
let dir: string;

test.before(async () => {
  srv = await NatsServer.start();
  nc = await connect({ servers: srv.url });
  dir = mkdtempSync(join(tmpdir(), "foresight-dirp-"));
});
test.after(async () => {
  await nc?.close().catch(() => undefined);
  await srv?.dispose();
  rmSync(dir, { recursive: true, force: true });
});

test("serve: demand partials count each user in the pool its directory plan or segment names", async () => {
  const configFile = join(dir, "config.json");
  writeFileSync(configFile, JSON.stringify(CONFIG));
  const latest = new Map<number, DemandPartial>();
  let check: (() => void) | undefined;
  const sub = nc.subscribe(`${PREFIX}.demand.*`, {
    callback: (_e, m) => {
      const p = decodeDemandPartial(m.data);
      latest.set(p.partition, p);
      check?.();
    },
  });
  const directory = await UserDirectory.open(nc);
  const pub = new TelemetryPublisher(nc, { subjectPrefix: PREFIX, partitions: P, flushIntervalMs: 20, directory });
  let child: ServeChild | undefined;
  let send: NodeJS.Timeout | undefined;
  try {
    child = await spawnServe(["--config", configFile, "--servers", srv.url, "--http-port", "0", "--prefix", PREFIX, "--partitions", String(P), "--tick-interval-ms", "200", "--no-kv"]);
    // Requests keep coming (each user active in every bucket), as through a gateway.
    send = setInterval(() => {
      for (const u of USERS) pub.record({ ...u, timeMs: Date.now(), bytes: 100 });
    }, 50);
    const activeByPool = () => {
      const sum = [0, 0, 0];
      for (const p of latest.values()) p.activeUsers.forEach((n, i) => (sum[i] += n));
      return sum;
    };
    // The directory entries arrive after the first events: until the processor's index has them
    // the users count in the default pool; then each in its own.
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`partials never counted one user per pool; last ${JSON.stringify(activeByPool())}:\n${child?.output.slice(-20).join("\n")}`)), 40_000);
      check = () => {
        if (latest.size === P && activeByPool().join() === "1,1,1") {
          clearTimeout(t);
          resolve();
        }
      };
    });
    check = undefined;
    assert.equal(latest.get(0)!.pools, ["chat", "ent", "edu"]);
    assert.equal(activeByPool(), [1, 1, 1], "plain-user in chat, ent-user in ent (plans before segments), edu-user in edu");
    const metrics = await (await fetch(`http://127.0.0.1:${child.httpPort}/metrics`)).text();
    assert.match(metrics, /^foresight_directory_users 2$/m, "the processor's index holds the two users with a plan or segment");
  } finally {
    clearInterval(send);
    await pub.close().catch(() => undefined);
    sub.unsubscribe();
    await killChild(child);
  }
});

test.run();
