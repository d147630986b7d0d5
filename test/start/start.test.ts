// `foresight start` as a user runs it (the built CLI as a child process): preconditions fail with
// exit 2 and a message naming the problem, leaving nothing running; a short run with the processor
// killed mid-way finishes, says it resumed from a checkpoint, and leaves no process behind.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { spawn } from "node:child_process";
import { createServer, type Server } from "node:net";
import { existsSync, mkdtempSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadCounters, processesWith, runStart } from "./_run.ts";

const CLI = join(process.cwd(), "dist/cli.js");
const dir = mkdtempSync(join(tmpdir(), "foresight-start-test-"));
const LOCK = join(dir, "start.lock");
const run = (args: string[], env: NodeJS.ProcessEnv = {}) => runStart(args, LOCK, env);

test("missing data file: exit 2, names the file, nothing left running", async () => {
  const r = await run(["--trace", join(dir, "nope.csv.gz")]);
  assert.is(r.code, 2, r.err);
  assert.match(r.err, /rate trace not found at .*nope\.csv\.gz/);
  assert.not.ok(existsSync(LOCK), "lock released");
});

test("nats-server missing: exit 2 with the apt command", async () => {
  const r = await run([], { NATS_SERVER: join(dir, "no-nats-server"), NATS_URL: "" });
  assert.is(r.code, 2, r.err);
  assert.match(r.err, /apt-get install -y nats-server/);
});

test("dashboard port in use: exit 2 naming the port", async () => {
  const srv: Server = createServer();
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  const port = (srv.address() as { port: number }).port;
  try {
    const p = spawn(process.execPath, [CLI, "start", "--port", String(port)], { env: { ...process.env, FORESIGHT_START_LOCK: LOCK }, stdio: ["ignore", "pipe", "pipe"] });
    let err = "";
    p.stderr.on("data", (d) => (err += d));
    const code = await new Promise<number | null>((r) => p.on("exit", r));
    assert.is(code, 2, err);
    assert.match(err, new RegExp(`port ${port} on 127.0.0.1 is in use`));
  } finally {
    srv.close();
  }
});

test("second copy: exit 2 naming the running one's pid", async () => {
  writeFileSync(LOCK, String(process.pid));
  try {
    const r = await run([]);
    assert.is(r.code, 2, r.err);
    assert.match(r.err, new RegExp(`another foresight start is running \\(pid ${process.pid}`));
    assert.ok(existsSync(LOCK), "the other copy's lock is left alone");
  } finally {
    rmSync(LOCK, { force: true });
  }
});

test("short run with the processor killed mid-way: resumes from its checkpoint, serves every request, leaves nothing running", async () => {
  const r = await run(["--duration", "24", "--kill-processor-at", "15", "--clients", "5", "--max-rate", "150", "--no-report"]);
  assert.is(r.code, 0, r.out + r.err);
  const state = /state: (\S+)/.exec(r.out)?.[1];
  assert.ok(state, "prints its state dir");
  assert.match(r.out, /fault injection: SIGKILL to the processor/);
  assert.match(r.out, /processor restarts\s+1 \(resumed from checkpoint: yes, at stream seq \d+/);
  const { planned, sent, served, errors } = loadCounters(r.out);
  assert.ok(planned > 1000, `a real load: ${planned}`);
  assert.is(sent, planned);
  assert.is(served, planned);
  assert.is(errors, 0);
  const t = /telemetry recorded \/ acked \/ dropped\s+([\d,]+) \/ ([\d,]+) \/ ([\d,]+)/.exec(r.out)!;
  assert.is(t[1], t[2], "every telemetry event acked");
  assert.is(t[3], "0");
  assert.match(r.out, /m-large\s+5\s/);
  assert.ok(Number(/forecast ticks \/ records \/ users forecast\s+([\d,]+)/.exec(r.out)![1]) >= 3, "forecasts kept coming");
  assert.not.match(r.out, /report: /, "--no-report writes none");
  assert.equal(processesWith(state!), [], "no process of the run is left");
  assert.not.ok(existsSync(state!), "state dir removed");
  assert.not.ok(existsSync(LOCK), "lock released");
});

test.after(() => rmSync(dir, { recursive: true, force: true }));
test.run();
