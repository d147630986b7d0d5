// `foresight config ...` end to end: the real CLI in a child process against a real nats-server.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect } from "@nats-io/transport-node";
import { Kvm } from "@nats-io/kv";
import { NatsServer, freePort } from "../../src/nats/server.ts";
import { DEFAULT_CONFIG } from "../../src/config/index.ts";

const root = new URL("../..", import.meta.url).pathname;
let srv: NatsServer;
let dir: string;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `foresight config <args>` with the test server in FORESIGHT_NATS_SERVERS. */
function cli(args: string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ["--import", "tsx", "src/cli/main.ts", "config", ...args],
      {
        cwd: root,
        timeout: 30_000,
        env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "", FORESIGHT_NATS_SERVERS: srv.url, ...env },
      },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === "number" ? err.code : -1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

const file = (name: string, text: string) => {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
};

const POOL = "  - name: chat\n    workload: { name: chat-api, namespace: llm }\n    costModel: { requestsPerSecPerReplica: 40 }\n";

test.before(async () => {
  srv = await NatsServer.start();
  dir = mkdtempSync(join(tmpdir(), "foresight-config-cli-"));
});

test.after(async () => {
  await srv?.dispose();
  rmSync(dir, { recursive: true, force: true });
});

test("defaults, validate, and a connection failure: output and exit codes", async () => {
  const bad = file("bad.yaml", `engine:\n  horizonBucket: 3\npools:\n${POOL}    minReplicas: 5\n    maxReplicas: 2\n`);
  const good = file("good.json", JSON.stringify({ engine: { horizonBuckets: 6 } }));
  const deadPort = await freePort();
  const [defaults, invalid, valid, missing, down] = await Promise.all([
    cli(["defaults", "--json"]),
    cli(["validate", bad]),
    cli(["validate", good]),
    cli(["validate", join(dir, "nope.yaml")]),
    cli(["get", "--servers", `nats://127.0.0.1:${deadPort}`]),
  ]);
  assert.is(defaults.code, 0, defaults.stderr);
  assert.equal(JSON.parse(defaults.stdout), DEFAULT_CONFIG);

  assert.is(invalid.code, 2);
  assert.is(invalid.stdout, "");
  assert.match(invalid.stderr, /ConfigValidationError: invalid configuration \(file .*bad\.yaml\)/);
  assert.match(invalid.stderr, /engine\.horizonBucket: unknown key/);
  assert.match(invalid.stderr, /pools\.0\.maxReplicas: must be >= minReplicas \(5\)/);

  assert.is(valid.code, 0, valid.stderr);
  assert.match(valid.stdout, /good\.json: valid/);
  assert.is(missing.code, 2);
  assert.match(missing.stderr, /ConfigFileError: cannot read config file .*nope\.yaml/);

  assert.is(down.code, 1);
  assert.match(down.stderr, /^foresight config: /);
});

test("set, get, conflict, diff, history, explain: the whole write path", async () => {
  const v1 = file("v1.yaml", `engine:\n  horizonBuckets: 6\npools:\n${POOL}`);
  const v2 = file("v2.yaml", `engine:\n  horizonBuckets: 3\n  bucketWidthMs: 30000\npools:\n${POOL}    mode: scale\n`);

  const set1 = await cli(["set", v1]);
  assert.is(set1.code, 0, set1.stderr);
  assert.match(set1.stdout, /^revision 1\n/);

  const [get, conflict, diff] = await Promise.all([
    cli(["get", "--path", "engine.horizonBuckets"]),
    cli(["set", v2, "--expect-revision", "0"]),
    cli(["diff", v2]),
  ]);
  assert.is(get.code, 0, get.stderr);
  assert.is(get.stdout.trim(), "6");
  assert.match(get.stderr, /kv revision 1/);

  assert.is(conflict.code, 3);
  assert.match(conflict.stderr, /ConfigConflictError: .*expected revision 0, bucket is at revision 1/);

  assert.is(diff.code, 0, diff.stderr);
  assert.match(diff.stdout, /~ engine\.horizonBuckets: 6 -> 3\n/);
  assert.match(diff.stdout, /~ engine\.bucketWidthMs: 60000 -> 30000 {2}\(restart\)/);
  assert.match(diff.stdout, /~ pools\.0\.mode: "shadow" -> "scale"\n/);

  const set2 = await cli(["set", v2, "--expect-revision", "1"]);
  assert.is(set2.code, 0, set2.stderr);
  assert.match(set2.stdout, /^revision 2\n/);
  assert.match(set2.stdout, /pools\.0\.mode/);

  const local = file("local.yaml", "log: { level: warn }\nnats: { connection: { pass: hunter2, user: me } }\n");
  const [history, explain, full] = await Promise.all([
    cli(["history", "--json"]),
    cli(["get", "--explain", "--config", local]),
    cli(["get", "--json", "--config", local]),
  ]);
  assert.is(history.code, 0, history.stderr);
  const h = JSON.parse(history.stdout) as { revision: number; time: string; operation: string; changes: { path: string }[] }[];
  assert.equal(h.map((r) => [r.revision, r.operation]), [[1, "PUT"], [2, "PUT"]]);
  assert.ok(!Number.isNaN(Date.parse(h[1].time)));
  assert.equal(h[1].changes.map((c) => c.path), ["engine.bucketWidthMs", "engine.horizonBuckets", "pools.0.mode"]);

  // The server has no auth, so user/pass are accepted and ignored; they show the file layer.
  assert.is(explain.code, 0, explain.stderr);
  assert.match(explain.stdout, /^engine\.horizonBuckets = 3 {2}\(kv\)$/m);
  assert.match(explain.stdout, /^log\.level = "warn" {2}\(file\)$/m);
  assert.match(explain.stdout, /^nats\.connection\.servers = \[".*"\] {2}\(env\)$/m);
  assert.match(explain.stdout, /^engine\.seasonPoints = 48 {2}\(default\)$/m);
  assert.match(explain.stdout, /^nats\.connection\.pass = "\*\*\*" {2}\(file\)$/m);

  assert.is(full.code, 0, full.stderr);
  const cfg = JSON.parse(full.stdout);
  assert.is(cfg.engine.horizonBuckets, 3);
  assert.is(cfg.pools[0].mode, "scale");
  assert.is(cfg.nats.connection.pass, "***", "secrets are redacted");
  assert.ok(!full.stdout.includes("hunter2"));
});

test("a document another tool broke: get fails naming the revision, --stored shows it, history flags it", async () => {
  const nc = await connect({ servers: srv.url });
  try {
    const kv = await new Kvm(nc).open(DEFAULT_CONFIG.nats.kv.configBucket);
    await kv.put("config", JSON.stringify({ throttle: { grantTtlMs: 1000, grantRefreshMs: 1000 } }));
  } finally {
    await nc.close();
  }
  const [get, stored, history] = await Promise.all([cli(["get"]), cli(["get", "--stored", "--json"]), cli(["history"])]);
  assert.is(get.code, 2);
  assert.match(get.stderr, /revision 3/);
  assert.match(get.stderr, /throttle\.grantRefreshMs: must be < grantTtlMs \(1000\)/);
  assert.is(stored.code, 0, stored.stderr);
  assert.equal(JSON.parse(stored.stdout), { throttle: { grantTtlMs: 1000, grantRefreshMs: 1000 } });
  assert.is(history.code, 0, history.stderr);
  assert.match(history.stdout, /^revision 3 .* PUT {2}INVALID$/m);
  assert.match(history.stdout, /! {3}throttle\.grantRefreshMs: must be < grantTtlMs/);
  // A valid set replaces it (compare-and-set on revision 3).
  const fixed = await cli(["set", file("fixed.yaml", "engine: { horizonBuckets: 2 }\n")]);
  assert.is(fixed.code, 0, fixed.stderr);
  assert.match(fixed.stdout, /^revision 4\n/);
});

test.run();
