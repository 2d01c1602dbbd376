/// <reference lib="dom" />
/// <reference path="../hub/web/src/page-hooks.d.ts" />
import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import type { BrowserContext, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureSampleCampaign, authHeaders } from "../scripts/lib/launch.js";
import { FakeGemini } from "../hub/test/fake-gemini.js";
import { canvasLuma, launchBrowser, screenshot, signedIn } from "./browser.js";
import { E2E_ADMIN_KEY, TestRig, exited, waitFor } from "./helpers.js";

// The dashboard in Debian's chromium (playwright-core) against real processes: the hub, an agent
// with the simulated board (console on a PTY, a rendered screen streamed as VP8), and the planner
// on the local fake Gemini. One rig for the file; the tests run in order and the last kills the agent.

const OCR = "tesseract";

/** Reads the text on the canvas with tesseract (the real OCR tool), from a screenshot of the element. */
function ocr(png: Buffer, dir: string): string {
  const file = join(dir, "canvas.png");
  writeFileSync(file, png);
  const res = spawnSync(OCR, [file, "stdout", "--psm", "8", "-c", "tessedit_char_whitelist=ABCDEFGHIJKLMNOPQRSTUVWXYZ"], { encoding: "utf8" });
  if (res.error) throw new Error(`The video test reads the screen with tesseract: install it with sudo deployment/install-deps.sh --dev (apt-get install tesseract-ocr). ${res.error.message}`);
  return res.stdout.toUpperCase().replace(/\s+/g, "");
}

/**
 * Starts keeping, for every newly painted frame, the middle band of the board's screen (where it
 * writes its state) as a black-on-white PNG: only pure white pixels (the letters) turn black, so
 * the colour bars behind do not confuse the OCR. Bounded to the last 40 frames.
 */
async function recordScreenText(page: Page): Promise<void> {
  await page.evaluate(() => {
    const w = window as unknown as { __bands: string[] };
    w.__bands = [];
    let seen = -1;
    const grab = (): void => {
      const frames = window.__labrigVideo?.frames ?? 0;
      const c = document.querySelector("[data-testid=video-canvas]") as HTMLCanvasElement | null;
      if (c && frames !== seen) {
        seen = frames;
        const y0 = Math.floor(c.height * 0.3);
        const h = Math.floor(c.height * 0.35);
        const src = c.getContext("2d")?.getImageData(0, y0, c.width, h);
        const out = document.createElement("canvas");
        out.width = c.width;
        out.height = h;
        const ctx = out.getContext("2d");
        if (src && ctx) {
          for (let i = 0; i < src.data.length; i += 4) {
            const white = (src.data[i] ?? 0) > 250 && (src.data[i + 1] ?? 0) > 250 && (src.data[i + 2] ?? 0) > 250;
            src.data[i] = src.data[i + 1] = src.data[i + 2] = white ? 0 : 255;
          }
          ctx.putImageData(src, 0, 0);
          w.__bands.push(out.toDataURL("image/png"));
          if (w.__bands.length > 40) w.__bands.shift();
        }
      }
      requestAnimationFrame(grab);
    };
    requestAnimationFrame(grab);
  });
}

/** The recorded bands from index `from` on, as PNGs. */
async function screenBands(page: Page, from: number): Promise<Buffer[]> {
  const urls = await page.evaluate((i) => (window as unknown as { __bands: string[] }).__bands.slice(i), from);
  return urls.map((u) => Buffer.from(u.replace(/^data:image\/png;base64,/, ""), "base64"));
}

async function consoleText(page: Page): Promise<string> {
  return page.evaluate(() => window.__labrigConsole?.text ?? "");
}

async function waitConsole(page: Page, pattern: RegExp, timeoutMs = 20_000): Promise<void> {
  await waitFor(async () => pattern.test(await consoleText(page)), timeoutMs, `the terminal to show ${pattern}`);
}

function planBrain() {
  const text = JSON.stringify({ observation: "the board's screen shows a login prompt", reasoning: "log in as root", actions: [{ action: "serial.write", params: { data: "root\n" } }], done: false });
  return { text, chunks: 6, chunkDelayMs: 150, inputTokens: 300, outputTokens: 30 };
}

describe("the dashboard in a browser", () => {
  let rig: TestRig;
  let fake: FakeGemini;
  let browser: { context: BrowserContext; close: () => Promise<void> };
  let operator: Page;
  const keys: Record<string, string> = {};

  beforeAll(async () => {
    fake = new FakeGemini(planBrain);
    await fake.start();
    rig = new TestRig({ LABRIG_HEARTBEAT_MS: "300", GEMINI_API_KEY: "fake-key-for-tests", GEMINI_BASE_URL: fake.url, PLANNER_MAX_EDGE: "320" });
    await rig.startHub();
    await rig.startAgent("sim-1");
    for (const role of ["viewer", "operator"]) {
      const res = await rig.api<{ key: string }>("POST", "/api/keys", { name: `${role}-1`, role });
      expect(res.status).toBe(201);
      keys[role] = res.body.key;
    }
    browser = await launchBrowser();
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await rig?.close();
    await fake?.stop();
  });

  it("signs in, shows the simulated host online, and lets an operator switch power while a viewer cannot (and says why)", async () => {
    const viewer = await signedIn(browser.context, rig.url, keys.viewer as string);
    await viewer.waitForSelector("[data-testid=host-sim-1] [data-testid=host-state]:has-text('online')");
    await screenshot(viewer, "fleet");
    await viewer.click("[data-testid=device-sim-1-dut1]");
    await viewer.waitForSelector("[data-testid=device-page]");
    expect(await viewer.isDisabled("[data-testid=power-on]")).toBe(true);
    expect(await viewer.getAttribute("[data-testid=power-on]", "title")).toMatch(/operator role/);
    expect(await viewer.textContent("[data-testid=role-note]")).toMatch(/Needs the operator role; you are signed in as 'viewer-1' \(viewer\)/);
    await screenshot(viewer, "device-viewer");

    operator = await signedIn(browser.context, rig.url, keys.operator as string);
    await operator.goto(`${rig.url}/#/device/sim-1/dut1`);
    await operator.waitForSelector("[data-testid=power-on]:not([disabled])");
    await operator.click("[data-testid=power-on]");
    await operator.waitForSelector("[data-testid=power-power] [data-testid=power-state]:has-text('on')");
    // The viewer's page learnt it from the live feed, without a reload.
    await viewer.waitForSelector("[data-testid=power-power] [data-testid=power-state]:has-text('on')");

    // Revoking the viewer's key signs that tab out at once.
    const listed = await rig.api<{ keys: Array<{ id: string; name: string }> }>("GET", "/api/keys");
    const viewerKey = listed.body.keys.find((k) => k.name === "viewer-1");
    expect((await rig.api("DELETE", `/api/keys/${viewerKey?.id}`)).status).toBe(204);
    await viewer.waitForSelector("input[name=credential]", { timeout: 10_000 });
    expect(await viewer.textContent(".signin")).toMatch(/Signed out: your credential stopped working. The API key is not valid \(revoked/);
    await screenshot(viewer, "signin");
    await viewer.close();
  });

  it("shows the board's dark screen while it is off and the BOOTING and LOGIN screens once it is on, decoded from the live stream", async () => {
    await operator.click("[data-testid=power-off]");
    await operator.waitForSelector("[data-testid=power-power] [data-testid=power-state]:has-text('off')");
    await waitFor(async () => (await operator.evaluate(() => window.__labrigVideo?.mode)) === "webcodecs" && (await operator.evaluate(() => window.__labrigVideo?.frames ?? 0)) > 0, 15_000, "decoded frames");
    await waitFor(async () => {
      const luma = await canvasLuma(operator, "[data-testid=video-canvas]");
      return luma >= 0 && luma < 20;
    }, 15_000, "a dark screen while the board is off");
    await recordScreenText(operator);
    await operator.click("[data-testid=power-on]");
    // Every painted frame is kept; OCR reads them in order until the LOGIN screen shows (BOOTING lasts about a second).
    const screens: string[] = [];
    let read = 0;
    await waitFor(async () => {
      const bands = await screenBands(operator, read);
      read += bands.length;
      for (const band of bands) {
        const text = ocr(band, rig.dir);
        if (text !== "" && screens.at(-1) !== text) screens.push(text);
      }
      return screens.includes("LOGIN");
    }, 30_000, "the LOGIN screen on the canvas");
    expect(screens).toContain("BOOTING");
    expect(screens.indexOf("BOOTING")).toBeLessThan(screens.indexOf("LOGIN"));
    expect(await canvasLuma(operator, "[data-testid=video-canvas]")).toBeGreaterThan(40);
    const stats = await operator.evaluate(() => window.__labrigVideo);
    expect(stats?.decodeErrors).toBe(0);
    // Capture → paint, measured from the agent's timestamp: a live picture, not a replay.
    expect(stats?.latencies.length).toBeGreaterThan(5);
    expect(await operator.textContent("[data-testid=video-stats]")).toMatch(/webcodecs · \d+ fps · \d+ ms capture→display/);
  });

  it("shows the boot log and login prompt in the terminal after power on, and runs what is typed", async () => {
    await operator.click("[data-testid=power-cycle]");
    await waitConsole(operator, /U-Boot[\s\S]*Booting Linux[\s\S]*login: $/, 30_000);
    await operator.click("[data-testid=terminal]");
    await operator.keyboard.type("root\r");
    await waitConsole(operator, /Password: $/);
    await operator.keyboard.type("labrig\r");
    await waitConsole(operator, /# $/);
    await operator.keyboard.type("uname -a\r");
    await waitConsole(operator, /uname -a\r\nLinux labrig-sim \d+\.\d+/);
    // Every keystroke was an action through the dispatcher, recorded under the operator's name.
    const writes = await rig.api<{ actions: Array<{ action: string; requested_by: string }> }>("GET", "/api/actions?host=sim-1&device=dut1&limit=200");
    expect(writes.body.actions.filter((a) => a.action === "serial.write" && a.requested_by === "operator-1").length).toBeGreaterThan(0);
    await operator.click("[data-testid=snapshot]");
    await operator.waitForSelector("[data-testid=artifacts] li");
    // The README's docs/dashboard-device.png is a copy of this one (copied by hand, so tests never touch tracked files).
    await screenshot(operator, "device");
    await operator.setViewportSize({ width: 390, height: 844 });
    // At phone width nothing is wider than the screen (the terminal refits, the panes stack).
    await waitFor(async () => (await operator.evaluate(() => document.documentElement.scrollWidth)) <= 390, 5000, "the page to fit a phone's width");
    await screenshot(operator, "device-phone");
    await operator.setViewportSize({ width: 1360, height: 900 });
  });

  it("starts the sample campaign from the Runs page, shows it pass live, and opens its JUnit report", async () => {
    await ensureSampleCampaign(rig.url, authHeaders(E2E_ADMIN_KEY));
    await operator.goto(`${rig.url}/#/runs`);
    await operator.click("[data-testid=run-campaign-sample]");
    await operator.waitForSelector("[data-testid=run-page]");
    await operator.waitForSelector("[data-testid=run-status]:has-text('passed')", { timeout: 60_000 }).catch(async (err: unknown) => {
      await screenshot(operator, "run-failed");
      const runs = await rig.api("GET", "/api/runs");
      console.log(JSON.stringify(runs.body).slice(0, 3000));
      throw err;
    });
    expect(await operator.textContent("[data-testid=run-page]")).toMatch(/kernel/);
    await operator.click("[data-testid=junit]");
    await operator.waitForSelector("[data-testid=junit-xml]");
    const xml = (await operator.textContent("[data-testid=junit-xml]")) ?? "";
    expect(xml).toMatch(/<testsuite [^>]*tests="1"[^>]*failures="0"/);
    const [download] = await Promise.all([operator.waitForEvent("download", { timeout: 5000 }), operator.click("[data-testid=junit-download]")]);
    expect(download.suggestedFilename()).toMatch(/^run-.*\.xml$/);
    await screenshot(operator, "run");
  }, 90_000);

  it("takes and releases a lease from the device page, lists it on the Leases page, and shows the action history", async () => {
    await operator.goto(`${rig.url}/#/device/sim-1/dut1`);
    await operator.click("[data-testid=take-lease]");
    await operator.waitForSelector("[data-testid=lease-box]:has-text('Leased by you')");
    // Actions from this tab carry the lease's token, so they still run.
    await operator.click("[data-testid=power-off]");
    await operator.waitForSelector("[data-testid=power-power] [data-testid=power-state]:has-text('off')");
    await operator.goto(`${rig.url}/#/leases`);
    await operator.waitForSelector("[data-testid=leases] tr:has-text('operator-1')");
    await screenshot(operator, "leases");
    await operator.click("[data-testid=leases] button:has-text('Release')");
    await operator.waitForSelector("[data-testid=leases] tr", { state: "detached" });
    await operator.goto(`${rig.url}/#/actions`);
    await operator.waitForSelector("[data-testid=action-history] tr:has-text('power.off')");
    await screenshot(operator, "actions");
  });

  it("plans from the board's frame with the model's text streaming in, and shows the frame and the validated actions", async () => {
    await operator.goto(`${rig.url}/#/plans`);
    await operator.fill("[data-testid=plan-instruction]", "Log in as root");
    await operator.click("[data-testid=plan-submit]");
    await waitFor(async () => ((await operator.textContent("[data-testid=plan-stream]").catch(() => "")) ?? "").includes("observation"), 15_000, "streamed model text");
    await operator.waitForSelector("[data-testid=plan-view] [data-testid=plan-frame]", { timeout: 20_000 });
    await waitFor(async () => operator.$eval("[data-testid=plan-view] [data-testid=plan-frame]", (img) => (img as HTMLImageElement).naturalWidth), 10_000, "the plan's frame");
    expect(await operator.textContent("[data-testid=plan-view] [data-testid=plan-actions]")).toContain("serial.write");
    await screenshot(operator, "plans");
  });

  it("shows the device offline without a reload when its agent is killed", async () => {
    await operator.goto(`${rig.url}/#/`);
    await operator.waitForSelector("[data-testid=host-sim-1] [data-testid=host-state]:has-text('online')");
    const agent = rig.agents.get("sim-1");
    agent?.kill("SIGKILL");
    if (agent) await exited(agent);
    await operator.waitForSelector("[data-testid=host-sim-1] [data-testid=host-state]:has-text('offline')", { timeout: 10_000 });
    await screenshot(operator, "fleet-offline");
  });
});
