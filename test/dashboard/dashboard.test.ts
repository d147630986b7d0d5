/// <reference lib="dom" />
// The live dashboard in a real browser (Debian's chromium driven by playwright-core): the page
// loads with no console errors, the charts receive live points over SSE, and a screenshot is
// saved as a test artifact (artifacts/dashboard.png).
import { test } from "uvu";
import * as assert from "uvu/assert";
import { mkdirSync } from "node:fs";
import { Registry } from "prom-client";
import { chromium, type Browser } from "playwright-core";
import { ObsServer } from "../../src/obs/http.ts";
import { DashboardHub, type DashboardPoint } from "../../src/dashboard/index.ts";

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

function point(i: number): DashboardPoint {
  const demand = 100 + 40 * Math.sin(i / 5);
  return {
    tMs: 1_700_000_000_000 + i * 1000,
    pools: ["m-large", "m-mid"].map((pool, k) => ({
      pool,
      demandPerSec: demand / (k + 1),
      forecastPerSec: (demand + 5) / (k + 1),
      upperPerSec: (demand + 30) / (k + 1),
      capacityNowPerSec: 160 / (k + 1),
      capacityDecidedPerSec: 180 / (k + 1),
      replicasDecided: 9 - k,
      replicasReactive: 7 - k,
    })),
    topUsers: [{ user: "m-large:17", forecastPerSec: 12.5, upperPerSec: 19, observedPerSec: 11 }],
    throttlesPerSec: i % 7 === 0 ? 3 : 0,
    exceedancesPerSec: i % 5 === 0 ? 1 : 0,
    health: { "events/s": 1234, "users tracked": 42, nats: "connected" },
  };
}

test("dashboard: loads without console errors, charts get live points, screenshot saved", async () => {
  const hub = new DashboardHub();
  for (let i = 0; i < 20; i++) hub.push(point(i));
  const obs = new ObsServer({ port: 0, host: "127.0.0.1", registry: new Registry(), health: () => ({ ok: true, checks: {} }), ready: () => ({ ok: true, checks: {} }), routes: hub.routes() });
  const port = await obs.start();
  let browser: Browser | undefined;
  try {
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    });
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    const consoleErrors: string[] = [];
    page.on("console", (m) => m.type() === "error" && consoleErrors.push(m.text()));
    page.on("pageerror", (e) => consoleErrors.push(e.message));
    await page.goto(`http://127.0.0.1:${port}/dashboard`);
    // The snapshot (20 points) arrives first.
    await page.waitForFunction(() => (window as unknown as { __dashboard?: { points: number } }).__dashboard?.points === 20, null, { timeout: 10_000 });
    assert.is(hub.connected, 1);
    // Live points: pushed after the page is connected.
    for (let i = 20; i < 30; i++) hub.push(point(i));
    await page.waitForFunction(() => (window as unknown as { __dashboard: { points: number } }).__dashboard.points === 30, null, { timeout: 10_000 });
    assert.is(await page.locator("#pools .card").count(), 2, "one chart card per pool");
    assert.is(await page.locator("#pools canvas").count() >= 2, true);
    assert.match(await page.locator("#pools .info").first().textContent() ?? "", /Foresight 9 · reactive floor 7/);
    assert.is(await page.locator("#top tbody tr").count(), 1);
    assert.match(await page.locator("#health").textContent() ?? "", /users tracked\s*42/);
    assert.match(await page.locator("#status").textContent() ?? "", /live/);
    mkdirSync("artifacts", { recursive: true });
    await page.screenshot({ path: "artifacts/dashboard.png", fullPage: true });
    assert.equal(consoleErrors, []);
  } finally {
    await browser?.close();
    hub.close();
    await obs.stop();
  }
});

test("dashboard: unknown path still 404s, metrics still served", async () => {
  const hub = new DashboardHub();
  const obs = new ObsServer({ port: 0, host: "127.0.0.1", registry: new Registry(), health: () => ({ ok: true, checks: {} }), ready: () => ({ ok: true, checks: {} }), routes: hub.routes() });
  const port = await obs.start();
  try {
    assert.is((await fetch(`http://127.0.0.1:${port}/nope`)).status, 404);
    assert.is((await fetch(`http://127.0.0.1:${port}/metrics`)).status, 200);
    const js = await fetch(`http://127.0.0.1:${port}/dashboard/app.js`);
    assert.is(js.status, 200);
    assert.ok((await js.text()).length > 10_000, "bundled uPlot + app");
  } finally {
    hub.close();
    await obs.stop();
  }
});

test.run();
