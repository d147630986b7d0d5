// The HTML report opens in headless Chromium (Debian's chromium through playwright-core) with no
// console errors, no page errors and no network requests, and shows its charts and tables.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { rmSync, writeFileSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { openFile } from "../helpers/chromium.ts";
import { DEFAULT_PARAMS, LIVE_MODULES, renderHtml, renderText, runReplay } from "../../src/replay/index.ts";
import { makeSlice } from "./_slice.ts";

const slice = await makeSlice(["m-large:0", "m-large:1", "m-large:3", "m-large:7"], 3);

test("report: self-contained, opens in headless Chromium without errors", async () => {
  const r = await runReplay({
    data: slice.path, pools: ["m-large"], modules: LIVE_MODULES,
    params: { ...DEFAULT_PARAMS, historyDays: 2, selectionDays: 1, firstScoredDay: 2, scoredDays: 1, hpaTargets: [0.6, 0.7], foresightQuantiles: [0.9], foresightHeadrooms: [0, 0.3], foresightFloorTargets: [0.7, 1], oracleFactors: [0.9, 1] },
  });
  const text = renderText(r);
  assert.ok(text.includes("hpa-0.7") && text.includes("targets"), text.slice(0, 200));
  const file = join(slice.dir, "report.html");
  writeFileSync(file, renderHtml(r, { command: "foresight replay (test)" }));
  const html = readFileSync(file, "utf8");
  assert.not.match(html, /https?:\/\/(?!www\.w3\.org\/2000\/svg)/, "no external URL");
  const { problems, requests } = await openFile(file, async (page) => {
    const svgs = await page.locator("svg").count();
    const tables = await page.locator("table").count();
    const title = await page.title();
    const polylines = await page.locator("svg polyline").count();
    assert.is(title, "Foresight replay");
    assert.ok(svgs >= 4, `svg charts: ${svgs}`);
    assert.ok(tables >= 4, `tables: ${tables}`);
    assert.ok(polylines >= 5, `lines drawn: ${polylines}`);
  });
  assert.equal(problems, []);
  assert.equal(requests, ["file://" + file]);
});

test.after(() => rmSync(slice.dir, { recursive: true, force: true }));
test.run();
