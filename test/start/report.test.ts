// The run report of `foresight start`: a short run against the Kubernetes API test server writes
// report.json and report.html into --report-dir and prints their paths; the JSON agrees with the
// printed summary per pool and over time, and the HTML opens in headless Chromium without errors.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openFile } from "../helpers/chromium.ts";
import { loadCounters, poolRow, processesWith, runStart } from "./_run.ts";
import type { StartReport } from "../../src/start/report.ts";

const dir = mkdtempSync(join(tmpdir(), "foresight-start-report-"));
const LOCK = join(dir, "start.lock");
const REPORT_DIR = join(dir, "run");
const POOLS = ["m-large", "m-mid"];

const close = (a: number, b: number, tol: number, what: string) => assert.ok(Math.abs(a - b) <= tol, `${what}: ${a} vs ${b}`);
const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

test("a run writes report.json and report.html that agree with its summary", async () => {
  const r = await runStart(["--duration", "20", "--clients", "5", "--max-rate", "150", "--models", POOLS.join(","), "--report-dir", REPORT_DIR], LOCK);
  assert.is(r.code, 0, r.out + r.err);
  const htmlPath = /report: (\S+report\.html)/.exec(r.out)?.[1];
  const jsonPath = /^\s+(\S+report\.json)$/m.exec(r.out)?.[1];
  assert.is(htmlPath, join(REPORT_DIR, "report.html"), r.out);
  assert.is(jsonPath, join(REPORT_DIR, "report.json"), r.out);
  assert.ok(existsSync(htmlPath!) && existsSync(jsonPath!), "both files written");

  // JSON against the printed summary.
  const rep = JSON.parse(readFileSync(jsonPath!, "utf8")) as StartReport;
  const printed = loadCounters(r.out);
  const s = rep.summary;
  assert.is(rep.v, 1);
  assert.match(rep.command, /--report-dir/);
  assert.is(s.plan.requests, printed.planned);
  assert.equal([s.load.sent, s.load.ok, s.load.throttled, s.load.errors], [printed.sent, printed.served, printed.throttled, printed.errors]);
  assert.ok(printed.planned > 500, `a real load: ${printed.planned}`);
  assert.is(s.allocator.target, "test Kubernetes API server");
  assert.is(s.allocator.mode, "scale");
  assert.equal(s.pools.map((p) => p.pool), POOLS);
  assert.is(sum(s.pools.map((p) => p.requests)), printed.served + printed.throttled, "every answered request is in one pool");
  assert.is(sum(s.pools.map((p) => p.throttled)), printed.throttled, "refusals per pool add up");
  assert.is(rep.latency.overall.count, printed.served + printed.throttled + printed.errors);
  // Printed to 0.01 ms; the JSON caps a percentile at the exact max (hdr's bucket resolution, 0.1 %).
  close(rep.latency.overall.p50Ms, printed.p50Ms, 0.005 + 0.001 * printed.p50Ms, "p50");
  close(rep.latency.overall.p99Ms, printed.p99Ms, 0.005 + 0.001 * printed.p99Ms, "p99");
  const l = rep.latency.overall;
  assert.ok(l.p50Ms <= l.p90Ms && l.p90Ms <= l.p99Ms && l.p99Ms <= l.p999Ms && l.p999Ms <= l.maxMs, JSON.stringify(l));

  const n = rep.timeline.timeSec.length;
  assert.ok(n >= 15, `about one sample a second: ${n}`);
  for (let i = 1; i < n; i++) assert.ok(rep.timeline.timeSec[i] > rep.timeline.timeSec[i - 1], "time increases");
  for (const p of s.pools) {
    const row = poolRow(r.out, p.pool);
    assert.equal([p.clients, p.requests, p.maxReplicasForesight, p.maxReplicasReactive], [row.clients, row.requests, row.maxForesight, row.maxReactive], `${p.pool}: JSON = table`);
    assert.is(rep.latency.byPool[p.pool].count, p.requests, `${p.pool}: one latency per answered request`);
    const ser = rep.timeline.pools[p.pool];
    for (const [k, v] of Object.entries(ser)) assert.is((v as number[]).length, n, `${p.pool}.${k} has one value per sample`);
    // The series are the samples the summary's figures were computed from.
    close(sum(ser.demandPerSec) / n, p.meanDemandPerSec, 1e-9, `${p.pool} mean demand`);
    assert.is(Math.max(...ser.replicasAllocated), p.maxReplicasForesight, `${p.pool} max replicas Foresight`);
    assert.is(Math.max(...ser.replicasReactive), p.maxReplicasReactive, `${p.pool} max replicas reactive`);
    // Coverage: the table's figure is the pool's at the end (after the last tick, which comes after
    // the last sample); the series is the same share as it stood at each sample.
    close(p.coverage, row.coverage, 0.0005, `${p.pool} coverage`);
    assert.ok(ser.coverage.every((c) => c >= 0 && c <= 1), `${p.pool} coverage is a share`);
    assert.ok(Math.max(...ser.replicasPredictive) >= 1, `${p.pool}: the predictive half was reported`);
    assert.ok(Math.max(...ser.forecastPerSec) > 0, `${p.pool}: forecasts arrived`);
    assert.ok(Math.max(...ser.replicasAllocated) > 1, `${p.pool}: the test API server was scaled`);
  }

  // HTML in a real browser.
  const html = readFileSync(htmlPath!, "utf8");
  assert.not.match(html, /https?:\/\/(?!www\.w3\.org\/2000\/svg)/, "no external URL");
  const { problems, requests } = await openFile(htmlPath!, async (page) => {
    assert.is(await page.title(), "Foresight run");
    assert.is(await page.locator("h3").count(), POOLS.length, "a section per pool");
    assert.is(await page.locator("svg").count(), 3 * POOLS.length, "rates, replicas and coverage charts per pool");
    assert.ok((await page.locator("svg polyline").count()) >= 9 * POOLS.length, "lines drawn");
    assert.ok((await page.locator("table").count()) >= 4, "summary, pools, refusals, latency tables");
    const text = (await page.locator("body").textContent()) ?? "";
    assert.match(text, new RegExp(`${printed.sent.toLocaleString("en-US")} / ${printed.served.toLocaleString("en-US")} / ${printed.throttled.toLocaleString("en-US")} / ${printed.errors}`));
  });
  assert.equal(problems, []);
  assert.equal(requests, ["file://" + htmlPath]);
  const state = /state: (\S+)/.exec(r.out)![1];
  assert.equal(processesWith(state), [], "nothing of the run is left");
});

test.after(() => rmSync(dir, { recursive: true, force: true }));
test.run();
