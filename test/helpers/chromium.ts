// Opens a self-contained HTML file in headless Chromium (Debian's chromium driven by playwright-core)
// and collects what a report must not do: console errors or warnings, page errors, requests other
// than the file itself.
import { chromium, type Page } from "playwright-core";

/** Chromium binary. Default /usr/bin/chromium (Debian), or $CHROMIUM_PATH. */
export const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

/** What a page did while `inspect` ran. */
export interface PageProblems {
  /** Console errors and warnings, page errors. */
  problems: string[];
  /** Every URL the page requested (the file itself included). */
  requests: string[];
}

/** Loads `file` (absolute path) and runs `inspect` on the page; the browser is closed afterwards. */
export async function openFile(file: string, inspect: (page: Page) => Promise<void>): Promise<PageProblems> {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
  });
  const problems: string[] = [];
  const requests: string[] = [];
  try {
    const page = await browser.newPage();
    page.on("console", (m) => {
      if (m.type() === "error" || m.type() === "warning") problems.push(`${m.type()}: ${m.text()}`);
    });
    page.on("pageerror", (e) => problems.push(`pageerror: ${e.message}`));
    page.on("request", (req) => requests.push(req.url()));
    await page.goto("file://" + file, { waitUntil: "load" });
    await inspect(page);
  } finally {
    await browser.close();
  }
  return { problems, requests };
}
