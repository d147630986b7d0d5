// `foresight replay` end to end as a user runs it: pools in child processes (--workers 2), the
// tables of every pool, the HTML and the JSON summary written; a bad flag named.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { execFile } from "node:child_process";
import { existsSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { makeSlice } from "./_slice.ts";

const slice = await makeSlice(["m-large:0", "m-large:1", "m-large:3", "m-large:7", "m-small:39", "m-small:11"], 3);

function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ["--import", "tsx", "src/cli/main.ts", "replay", ...args], { maxBuffer: 1 << 24 }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

const SMALL = ["--data", slice.path, "--pools", "m-large,m-small", "--history-days", "2", "--selection-days", "1", "--scored-days", "1", "--warmup-sec", "600", "--hpa-targets", "0.7",
  "--headrooms", "0", "--quantiles", "0.9", "--floor-targets", "0.7", "--oracle-factors", "1", "--no-progress"];

test("pools in child processes: tables of every pool, HTML and JSON summary written", async () => {
  const html1 = join(slice.dir, "a.html");
  const json1 = join(slice.dir, "a.json");
  const a = await cli([...SMALL, "--workers", "2", "--html", html1, "--json", json1]);
  assert.is(a.code, 0, a.stderr);
  assert.ok(a.stdout.includes("== m-small: policies") && a.stdout.includes("== m-large: policies"), a.stdout.slice(0, 500));
  assert.ok(existsSync(html1));
  const j = JSON.parse(readFileSync(json1, "utf8"));
  assert.is(j.env.cores > 0, true);
  assert.ok(j.env.command.startsWith("foresight replay"));
  assert.is(j.perPool.length, 2);
  assert.ok(Array.isArray(j.overall.matched) && j.overall.matched.length === 3);
});

test("a bad flag is named", async () => {
  const r = await cli(["--data", slice.path, "--hpa-target", "1.5"]);
  assert.is.not(r.code, 0);
  assert.match(r.stderr, /--hpa-target/);
});

test.after(() => rmSync(slice.dir, { recursive: true, force: true }));
test.run();
