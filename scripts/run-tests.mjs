#!/usr/bin/env node
// Runs every test/**/*.test.ts in its own Node process (so each file's servers and WASM
// instances are isolated and a crash is contained), two at a time on this 2-core machine,
// and ends with the plain line CI reads: "N passed, N failed[, N skipped]".
import { spawn } from "node:child_process";
import { readdirSync, statSync } from "node:fs";
import { join, relative } from "node:path";

const root = new URL("..", import.meta.url).pathname;
/** Longest a single test file may run before it is killed and counted as failed, in ms. */
const FILE_TIMEOUT_MS = Number(process.env.FORESIGHT_TEST_FILE_TIMEOUT_MS ?? 300_000);
const CONCURRENCY = Number(process.env.FORESIGHT_TEST_CONCURRENCY ?? 2);
const filter = process.argv.slice(2);

function findTests(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...findTests(p));
    else if (name.endsWith(".test.ts")) out.push(p);
  }
  return out.sort();
}

let files = findTests(join(root, "test"));
if (filter.length) files = files.filter((f) => filter.some((s) => f.includes(s)));

const totals = { passed: 0, failed: 0, skipped: 0 };
const failedFiles = [];

function runFile(file) {
  return new Promise((resolve) => {
    const started = Date.now();
    const child = spawn(process.execPath, ["--import", "tsx", "--expose-gc", file], {
      cwd: root,
      env: { ...process.env, FORCE_COLOR: "0" },
      stdio: ["ignore", "pipe", "pipe"],
      detached: true,
    });
    let out = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (out += d));
    const timer = setTimeout(() => {
      out += `\n[run-tests] ${relative(root, file)} exceeded ${FILE_TIMEOUT_MS} ms: killed\n`;
      try { process.kill(-child.pid, "SIGKILL"); } catch {}
    }, FILE_TIMEOUT_MS);
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      const total = Number(/Total:\s+(\d+)/.exec(out)?.[1] ?? 0);
      const passed = Number(/Passed:\s+(\d+)/.exec(out)?.[1] ?? 0);
      const skipped = Number(/Skipped:\s+(\d+)/.exec(out)?.[1] ?? 0);
      let failed = Math.max(0, total - passed - skipped);
      // A file that crashed, hung, or printed no summary counts as one failure at least.
      if ((code !== 0 || signal || total === 0) && failed === 0) failed = 1;
      totals.passed += passed;
      totals.failed += failed;
      totals.skipped += skipped;
      if (failed) failedFiles.push(relative(root, file));
      const secs = ((Date.now() - started) / 1000).toFixed(1);
      process.stdout.write(`\n=== ${relative(root, file)} (${secs}s, exit ${code ?? signal})\n${out}`);
      resolve();
    });
  });
}

const queue = [...files];
await Promise.all(
  Array.from({ length: Math.max(1, CONCURRENCY) }, async () => {
    while (queue.length) await runFile(queue.shift());
  }),
);

if (failedFiles.length) console.log(`\nFailed files:\n  ${failedFiles.join("\n  ")}`);
if (files.length === 0) console.log("no test files found");
console.log(
  `\n${totals.passed} passed, ${totals.failed} failed` + (totals.skipped ? `, ${totals.skipped} skipped` : ""),
);
process.exit(totals.failed > 0 || files.length === 0 ? 1 : 0);
