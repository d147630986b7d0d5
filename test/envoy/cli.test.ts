// `foresight rls` end to end: the CLI bundled as `npm run build:cli` bundles it (so the .proto
// lookup is the one dist/cli.js does), run in a child process from a config file, answering a
// real grpc-js client and /metrics, stopping cleanly on SIGTERM; a bad config names the field.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { build } from "esbuild";
import { createRlsClient, shouldRateLimit } from "../../src/envoy/client.ts";
import { RlsCode } from "../../src/envoy/server.ts";
import { NatsServer } from "../../src/nats/server.ts";

const root = new URL("../..", import.meta.url).pathname;
const dir = join(root, ".tmp", `rls-cli-${process.pid}`);
const bundle = join(dir, "main.js");

test.before(async () => {
  mkdirSync(dir, { recursive: true });
  await build({
    entryPoints: [join(root, "src/cli/main.ts")],
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    packages: "external",
    outfile: bundle,
    logLevel: "silent",
  });
});
test.after(() => rmSync(dir, { recursive: true, force: true }));

/** Starts the CLI; resolves with the process and the first JSON log line matching `msg`. */
function start(args: string[]): { proc: ChildProcess; line: (msg: string) => Promise<Record<string, unknown>>; exit: Promise<number | null>; output: () => string } {
  const proc = spawn(process.execPath, [bundle, ...args], { cwd: dir, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  const waiters: { msg: string; resolve: (v: Record<string, unknown>) => void }[] = [];
  const scan = () => {
    for (const l of out.split("\n")) {
      if (!l.startsWith("{")) continue;
      const j = JSON.parse(l) as Record<string, unknown>;
      for (const w of waiters.splice(0)) (j.msg === w.msg ? w.resolve(j) : waiters.push(w));
    }
  };
  proc.stdout!.on("data", (d) => ((out += d), scan()));
  proc.stderr!.on("data", (d) => (out += d));
  const exit = new Promise<number | null>((r) => proc.once("exit", (code) => r(code)));
  return {
    proc,
    exit,
    output: () => out,
    line: (msg) =>
      new Promise((resolve, reject) => {
        waiters.push({ msg, resolve });
        scan();
        void exit.then((code) => reject(new Error(`exited ${code} before "${msg}": ${out}`)));
      }),
  };
}

test("serves from a config file, exposes metrics, stops on SIGTERM with exit 0", async () => {
  const cfg = join(dir, "rls.yaml");
  writeFileSync(
    cfg,
    [
      "envoy:",
      "  domain: edge",
      "  drainDelayMs: 0",
      "  descriptors:",
      "    rules:",
      "      - { key: x-tenant, sets: user, prefix: 't:' }",
      "  fixedWindow:",
      "    windowMs: 60000",
      "    plans: { default: { requestsPerWindow: 2 } }",
      "log: { level: info }",
    ].join("\n"),
  );
  const run = start(["rls", "-c", cfg, "--limiter", "fixed-window", "--port", "0", "--http-port", "0", "--host", "127.0.0.1"]);
  const started = await run.line("rls started");
  const client = createRlsClient(`127.0.0.1:${started.grpcPort}`);
  const req = { domain: "edge", descriptors: [{ entries: [{ key: "x-tenant", value: "acme" }] }] };
  const codes: number[] = [];
  for (let i = 0; i < 3; i++) codes.push((await shouldRateLimit(client, req)).overall_code ?? 0);
  client.close();
  const metrics = await (await fetch(`http://127.0.0.1:${started.httpPort}/metrics`)).text();
  run.proc.kill("SIGTERM");
  const code = await run.exit;
  assert.equal(codes, [RlsCode.OK, RlsCode.OK, RlsCode.OVER_LIMIT]);
  assert.match(metrics, /foresight_rls_decisions_total\{code="OVER_LIMIT",reason="plan-limit"\} 1/);
  assert.match(metrics, /foresight_rls_requests_total\{result="ok"\} 2/);
  assert.is(code, 0, run.output());
  assert.match(run.output(), /"msg":"rls stopped"/);
});

test("a bad envoy section: exit 1 naming the field", async () => {
  const cfg = join(dir, "bad.yaml");
  writeFileSync(cfg, "envoy:\n  descriptors:\n    rules:\n      - { key: user_id, sets: customer }\n");
  const run = start(["rls", "-c", cfg, "--limiter", "fixed-window", "--port", "0"]);
  const code = await run.exit;
  assert.is(code, 1);
  assert.match(run.output(), /envoy\.descriptors\.rules\.0\.sets/);
});

test("--limiter foresight (the default): answers from a ThrottleClient following the grants over NATS; without grants, the safe limit", async () => {
  const nats = await NatsServer.start();
  try {
    const cfg = join(dir, "rls-foresight.yaml");
    writeFileSync(
      cfg,
      [
        `nats: { connection: { servers: ["${nats.url}"] }, partitions: 2 }`,
        "envoy:",
        "  domain: edge",
        "  drainDelayMs: 0",
        "  descriptors:",
        "    rules:",
        "      - { key: x-tenant, sets: user }",
        "throttle:",
        "  burstFactor: 1",
        "  safeLimits: { default: { requestsPerSec: 1 } }",
        "log: { level: info }",
      ].join("\n"),
    );
    const run = start(["rls", "-c", cfg, "--port", "0", "--http-port", "0", "--host", "127.0.0.1"]);
    const started = await run.line("rls started");
    const client = createRlsClient(`127.0.0.1:${started.grpcPort}`);
    const req = { domain: "edge", descriptors: [{ entries: [{ key: "x-tenant", value: "acme" }] }] };
    const first = await shouldRateLimit(client, req);
    const second = await shouldRateLimit(client, req);
    client.close();
    run.proc.kill("SIGTERM");
    assert.is(await run.exit, 0, run.output());
    // One request per second of safe limit, burst 1: the second call in the same second is over.
    assert.is(first.overall_code, RlsCode.OK);
    assert.is(second.overall_code, RlsCode.OVER_LIMIT);
    assert.match(run.output(), /"msg":"rls stopped"/);
  } finally {
    await nats.dispose();
  }
});

test.run();
