/// <reference lib="dom" />
/// <reference path="../hub/web/src/page-hooks.d.ts" />
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { chromium, type BrowserContext, type Page } from "playwright-core";

// Debian's chromium driven by playwright-core (Playwright's own browser builds cannot be downloaded
// here). The flags keep it quiet on a closed network: without the background-networking ones it
// keeps trying to reach update, sync and field-trial servers.

export const CHROMIUM = process.env.LABRIG_CHROMIUM ?? "/usr/bin/chromium";

/** Where browser tests leave their screenshots (gitignored). */
export const SCREENSHOT_DIR = resolve(import.meta.dirname, "..", "test-results", "screenshots");

const FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"];

/** A fresh chromium profile (its own --user-data-dir), removed by close(). */
export async function launchBrowser(): Promise<{ context: BrowserContext; close: () => Promise<void> }> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`The browser tests need Debian's chromium at ${CHROMIUM}. Install it: sudo deployment/install-deps.sh --dev (or apt-get install chromium), or set LABRIG_CHROMIUM.`);
  }
  const profile = mkdtempSync(join(tmpdir(), "labrig-chromium-"));
  const context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: FLAGS, viewport: { width: 1360, height: 900 } });
  return {
    context,
    close: async () => {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** Saves a screenshot of the page under test-results/screenshots/NAME.png and returns its path. */
export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(SCREENSHOT_DIR, { recursive: true });
  const path = join(SCREENSHOT_DIR, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}

/** Opens the dashboard in a new tab and signs in with `credential`. */
export async function signedIn(context: BrowserContext, url: string, credential: string): Promise<Page> {
  const page = await context.newPage();
  page.on("pageerror", (err) => console.error(`page error: ${err.message}`));
  await page.goto(`${url}/`);
  await page.fill("input[name=credential]", credential);
  await page.click("button[type=submit]");
  await page.waitForSelector("[data-testid=who]");
  return page;
}

/** Mean luma (0-255) of a canvas on the page, read from its pixels. */
export function canvasLuma(page: Page, selector: string): Promise<number> {
  return page.$eval(selector, (el) => {
    const c = el as HTMLCanvasElement;
    const ctx = c.getContext("2d");
    if (!ctx || c.width === 0) return -1;
    const { data } = ctx.getImageData(0, 0, c.width, c.height);
    let sum = 0;
    for (let i = 0; i < data.length; i += 4) sum += 0.299 * (data[i] ?? 0) + 0.587 * (data[i + 1] ?? 0) + 0.114 * (data[i + 2] ?? 0);
    return sum / (data.length / 4);
  });
}
