// @ts-check
/// <reference lib="dom" />
/// <reference path="../../hub/web/src/page-hooks.d.ts" />
// Dashboard figures, with real processes (the hub and agent CLIs) on 127.0.0.1 and Debian's chromium:
//  1. video glass to glass: the agent's capture timestamp → the frame painted on the page's canvas,
//     p50/p95 at 640x480 and 1280x720 (VP8 through WebCodecs), next to the same frames as JPEG
//     snapshots (capture.snapshot, fetched and painted) in the same run. Target: p50 ≤ 100 ms at 720p.
//  2. console: key pressed in the page → its echo written into xterm.js (its write callback; painted
//     at the next animation frame), p50/p99, next to the same round
//     trip from a Node socket.io client (no browser). Target: ≤ 20 ms p50.
//  3. viewers: how many socket.io viewers of one video stream and of one console the hub serves
//     before the latency doubles, and the hub's CPU per viewer (from /proc/<pid>/stat).
// Figures and targets are printed, not asserted. Every phase is bounded in time and count.
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { chromium } from "playwright-core";
import { io } from "socket.io-client";
import { loadAverage, quantile } from "../lib/bench.js";
import { AGENT_CLI, HUB_CLI, authHeaders, enrollHost, freePort, startNode, waitFor, waitForHostState, waitForHub } from "../lib/launch.js";

const ADMIN_KEY = "lrk_bench-admin-key-for-the-dashboard-0123456789";
const CHROMIUM = process.env.LABRIG_CHROMIUM ?? "/usr/bin/chromium";
const VIDEO_WARMUP_MS = 3000;
const VIDEO_MEASURE_MS = 8000;
const KEYS = 60;
/** One key per this many ms, a quick typist's pace. Keys closer than the agent's console gathering (50 ms) wait for it. */
const KEY_PACE_MS = 150;
const VIEWER_LEVELS = [1, 2, 4, 8, 16, 32, 64];
const VIEWER_WINDOW_MS = 3000;
const CONSOLE_WRITES_PER_LEVEL = 20;

const log = (/** @type {string} */ line) => process.stdout.write(`${line}\n`);
const f = (/** @type {number} */ x, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : "—");
const sleep = (/** @type {number} */ ms) => new Promise((r) => setTimeout(r, ms));

/** CPU seconds (user + system) a process has used, from /proc. @param {number} pid */
function cpuSeconds(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.split(" ") ?? [];
  // utime and stime are fields 14 and 15 of the whole line, in clock ticks (100 per second on Linux).
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

if (spawnSync(CHROMIUM, ["--version"], { stdio: "ignore" }).error) {
  log(`skipped: no chromium at ${CHROMIUM} (sudo deployment/install-deps.sh --dev)`);
  process.exit(1);
}

const dir = mkdtempSync(join(tmpdir(), "labrig-bench-dashboard-"));
const port = await freePort();
const url = `http://127.0.0.1:${port}`;
const env = { ...process.env, PORT: String(port), LABRIG_BIND: "127.0.0.1", LABRIG_DATA_DIR: join(dir, "hub"), LABRIG_ADMIN_KEY: ADMIN_KEY, LOG_LEVEL: "warn" };
const logFile = (await import("node:fs")).createWriteStream(join(dir, "processes.log"));
/** @type {import("node:child_process").ChildProcess[]} */
const children = [];
let browser = /** @type {import("playwright-core").BrowserContext | null} */ (null);

async function cleanup() {
  await browser?.close().catch(() => undefined);
  for (const c of children.reverse()) if (c.exitCode === null) c.kill("SIGTERM");
  await sleep(500);
  logFile.end();
  rmSync(dir, { recursive: true, force: true });
}

try {
  const hub = startNode([HUB_CLI, "serve"], { env, logFile });
  children.push(hub);
  await waitForHub(url);
  const token = enrollHost("bench-1", env);
  const agentDir = join(dir, "agent");
  mkdirSync(agentDir, { recursive: true });
  // The simulated board for the console; one camera per size (test pattern, 15 fps, VP8 live stream).
  const yaml = [
    "host: bench-1",
    "hub:",
    `  url: ${url}`,
    `  token: ${token}`,
    "data_dir: ./agent-data",
    "gpio: { driver: memory }",
    "devices:",
    "  - id: dut1",
    "    simulated: true",
    "    resources:",
    "      - { name: console, kind: serial, path: ./dut1-console, baud_rate: 115200 }",
    "      - { name: power, kind: power, line: 17 }",
    "  - id: vga",
    "    resources: [{ name: cam, kind: video, source: test-pattern, width: 640, height: 480, fps: 15, bitrate: 1500000 }]",
    "  - id: hd",
    "    resources: [{ name: cam, kind: video, source: test-pattern, width: 1280, height: 720, fps: 15, bitrate: 2500000 }]",
  ].join("\n");
  writeFileSync(join(agentDir, "agent.yaml"), `${yaml}\n`);
  children.push(startNode([AGENT_CLI, "run", "--config", join(agentDir, "agent.yaml")], { env, logFile }));
  await waitForHostState(url, "bench-1", "online", 20_000, authHeaders(ADMIN_KEY));
  const hubPid = /** @type {number} */ (hub.pid);

  const profile = join(dir, "chromium");
  browser = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1400, height: 1000 },
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"],
  });
  const page = await browser.newPage();
  await page.goto(`${url}/`);
  await page.fill("input[name=credential]", ADMIN_KEY);
  await page.click("button[type=submit]");
  await page.waitForSelector("[data-testid=who]");

  // ---- 1. video glass to glass ---------------------------------------------------------------
  log(`load average at start: ${loadAverage()} (2 cores; other work on this machine shows up here)`);
  log("\nvideo: agent capture → painted in chromium (15 fps test pattern)");
  log("size      | path              | frames | fps  | p50 ms | p95 ms");
  /** @type {Record<string, number>} */
  const p50s = {};
  for (const [device, size] of /** @type {const} */ ([["vga", "640x480"], ["hd", "1280x720"]])) {
    for (const jpeg of [false, true]) {
      await page.goto(`${url}/#/device/bench-1/${device}${jpeg ? "?jpeg=1" : ""}`);
      await page.reload();
      await page.waitForSelector("[data-testid=video-canvas]");
      await sleep(VIDEO_WARMUP_MS);
      await page.evaluate(() => {
        if (window.__labrigVideo) window.__labrigVideo.latencies = [];
      });
      const frames0 = await page.evaluate(() => window.__labrigVideo?.frames ?? 0);
      await sleep(VIDEO_MEASURE_MS);
      const st = await page.evaluate(() => window.__labrigVideo);
      const lat = st?.latencies ?? [];
      const fps = ((st?.frames ?? 0) - frames0) / (VIDEO_MEASURE_MS / 1000);
      const path = jpeg ? "JPEG snapshots" : `WebCodecs ${st?.mode === "webcodecs" ? "VP8" : "(missing!)"}`;
      p50s[`${device}-${jpeg ? "jpeg" : "webcodecs"}`] = quantile(lat, 0.5);
      log(`${size.padEnd(9)} | ${path.padEnd(17)} | ${String(lat.length).padStart(6)} | ${f(fps).padStart(4)} | ${f(quantile(lat, 0.5)).padStart(6)} | ${f(quantile(lat, 0.95)).padStart(6)}`);
    }
  }
  await page.goto(`${url}/#/`);
  const hd = p50s["hd-webcodecs"] ?? NaN;
  log(`target: p50 ≤ 100 ms at 1280x720 → ${f(hd)} ms; JPEG/WebCodecs p50 ratio at 720p ${f((p50s["hd-jpeg"] ?? NaN) / hd, 2)}×`);

  // ---- 2. console key → echo -----------------------------------------------------------------
  const api = (/** @type {string} */ action, /** @type {Record<string, unknown>} */ params) =>
    fetch(`${url}/api/hosts/bench-1/devices/dut1/actions`, { method: "POST", headers: { ...authHeaders(ADMIN_KEY), "content-type": "application/json" }, body: JSON.stringify({ action, params }) }).then((r) => r.json());
  await api("power.on", {});
  await api("serial.expect", { pattern: "login: ", timeout_ms: 15_000 });
  await api("serial.write", { data: "root\r" });
  await api("serial.expect", { pattern: "Password: ", timeout_ms: 5000 });
  await api("serial.write", { data: "labrig\r" });
  await api("serial.expect", { pattern: "# ", timeout_ms: 5000 });
  await page.goto(`${url}/#/device/bench-1/dut1`);
  await page.waitForFunction(() => (window.__labrigConsole?.text ?? "").endsWith("# "), undefined, { timeout: 10_000 });
  await page.click("[data-testid=terminal]");
  await page.evaluate(() => {
    const w = /** @type {Window & {__keyAt?: number}} */ (window);
    document.addEventListener("keydown", () => (w.__keyAt = performance.now()), { capture: true });
  });
  /** @type {number[]} */
  const echoes = [];
  for (let i = 0; i < KEYS; i++) {
    await sleep(KEY_PACE_MS);
    const before = await page.evaluate(() => window.__labrigConsole?.text.length ?? 0);
    await page.keyboard.press(i % 2 === 0 ? "a" : "Backspace");
    const ms = await page
      .waitForFunction(
        (n) => {
          const c = window.__labrigConsole;
          const at = /** @type {Window & {__keyAt?: number}} */ (window).__keyAt ?? 0;
          return c && c.text.length > n && c.lastEchoAtMs >= at ? c.lastEchoAtMs - at : null;
        },
        before,
        { timeout: 5000, polling: "raf" },
      )
      .then((h) => h.jsonValue());
    echoes.push(Number(ms));
  }
  // The same round trip without a browser: a socket.io client writes a key and waits for its echo.
  const node = io(`${url}/dashboard`, { auth: { token: ADMIN_KEY }, transports: ["websocket"] });
  await new Promise((resolve, reject) => {
    node.once("connect", () => resolve(null));
    node.once("connect_error", reject);
  });
  const sel = { host: "bench-1", device: "dut1", resource: "console" };
  await node.timeout(5000).emitWithAck("console.subscribe", sel);
  /** @type {number[]} */
  const nodeEchoes = [];
  for (let i = 0; i < KEYS; i++) {
    await sleep(KEY_PACE_MS);
    const t0 = performance.now();
    const echoed = new Promise((resolve) => node.once("console.data", () => resolve(performance.now() - t0)));
    node.emit("console.write", { ...sel, data: i % 2 === 0 ? "a" : "\x7f" }, () => undefined);
    nodeEchoes.push(/** @type {number} */ (await Promise.race([echoed, sleep(5000).then(() => NaN)])));
  }
  log(`\nconsole: key → echo on screen (the simulated board echoes like a tty; one key per ${KEY_PACE_MS} ms)`);
  log("path                               | keys | p50 ms | p99 ms");
  log(`chromium: key press → in xterm    | ${String(echoes.length).padStart(4)} | ${f(quantile(echoes, 0.5)).padStart(6)} | ${f(quantile(echoes, 0.99)).padStart(6)}`);
  log(`node client: console.write → echo  | ${String(nodeEchoes.length).padStart(4)} | ${f(quantile(nodeEchoes, 0.5)).padStart(6)} | ${f(quantile(nodeEchoes, 0.99)).padStart(6)}   (baseline: hub + agent + board, no browser)`);
  log(`target: ≤ 20 ms p50 → ${f(quantile(echoes, 0.5))} ms (browser adds ${f(quantile(echoes, 0.5) - quantile(nodeEchoes, 0.5))} ms over the baseline)`);
  await browser.close();
  browser = null;

  // ---- 3. viewers ------------------------------------------------------------------------------
  /** @param {number} n */
  const viewers = async (n) => {
    const sockets = Array.from({ length: n }, () => io(`${url}/dashboard`, { auth: { token: ADMIN_KEY }, transports: ["websocket"], forceNew: true }));
    await Promise.all(sockets.map((s) => new Promise((resolve, reject) => (s.once("connect", () => resolve(null)), s.once("connect_error", reject)))));
    return sockets;
  };
  log("\nviewers of one 1280x720 VP8 stream (Node socket.io clients): capture → received");
  log("viewers | chunks | p50 ms | p95 ms | hub CPU % | hub CPU %/viewer");
  let videoBase = NaN;
  let videoLimit = /** @type {number | null} */ (null);
  for (const n of VIEWER_LEVELS) {
    const sockets = await viewers(n);
    /** @type {number[]} */
    const lat = [];
    for (const s of sockets) s.on("video.chunk", (/** @type {{captured_at_ms?: number}} */ c) => c.captured_at_ms !== undefined && lat.push(performance.timeOrigin + performance.now() - c.captured_at_ms));
    await Promise.all(sockets.map((s) => s.timeout(5000).emitWithAck("video.subscribe", { host: "bench-1", device: "hd" })));
    await sleep(1500);
    lat.length = 0;
    const cpu0 = cpuSeconds(hubPid);
    const t0 = performance.now();
    await sleep(VIEWER_WINDOW_MS);
    const cpu = ((cpuSeconds(hubPid) - cpu0) / ((performance.now() - t0) / 1000)) * 100;
    const p50 = quantile(lat, 0.5);
    if (n === 1) videoBase = p50;
    if (videoLimit === null && n > 1 && p50 >= 2 * videoBase) videoLimit = n;
    log(`${String(n).padStart(7)} | ${String(lat.length).padStart(6)} | ${f(p50).padStart(6)} | ${f(quantile(lat, 0.95)).padStart(6)} | ${f(cpu).padStart(9)} | ${f(cpu / n, 2).padStart(8)}`);
    for (const s of sockets) s.disconnect();
    await sleep(300);
  }
  log(`latency doubled at: ${videoLimit === null ? `not within ${VIEWER_LEVELS.at(-1)} viewers` : `${videoLimit} viewers`} (baseline 1 viewer: p50 ${f(videoBase)} ms)`);

  log("\nviewers of one console: console.write by one client → echo received by every viewer");
  log("viewers | echoes | p50 ms | p95 ms | hub CPU % | hub CPU %/viewer");
  let consoleBase = NaN;
  let consoleLimit = /** @type {number | null} */ (null);
  for (const n of [...VIEWER_LEVELS, 128]) {
    const sockets = await viewers(n);
    await Promise.all(sockets.map((s) => s.timeout(5000).emitWithAck("console.subscribe", sel)));
    /** @type {number[]} */
    const lat = [];
    let t0 = 0;
    for (const s of sockets) s.on("console.data", () => lat.push(performance.now() - t0));
    const cpu0 = cpuSeconds(hubPid);
    const w0 = performance.now();
    for (let i = 0; i < CONSOLE_WRITES_PER_LEVEL; i++) {
      await sleep(KEY_PACE_MS);
      const target = lat.length + n;
      t0 = performance.now();
      await node.timeout(5000).emitWithAck("console.write", { ...sel, data: i % 2 === 0 ? "a" : "\x7f" });
      const deadline = performance.now() + 2000;
      while (lat.length < target && performance.now() < deadline) await sleep(1);
    }
    const cpu = ((cpuSeconds(hubPid) - cpu0) / ((performance.now() - w0) / 1000)) * 100;
    const p50 = quantile(lat, 0.5);
    if (n === 1) consoleBase = p50;
    if (consoleLimit === null && n > 1 && p50 >= 2 * consoleBase) consoleLimit = n;
    log(`${String(n).padStart(7)} | ${String(lat.length).padStart(6)} | ${f(p50).padStart(6)} | ${f(quantile(lat, 0.95)).padStart(6)} | ${f(cpu).padStart(9)} | ${f(cpu / n, 2).padStart(8)}`);
    for (const s of sockets) s.disconnect();
    await sleep(200);
  }
  log(`latency doubled at: ${consoleLimit === null ? "not within 128 viewers" : `${consoleLimit} viewers`} (baseline 1 viewer: p50 ${f(consoleBase)} ms)`);
  log("(the viewers run in this bench process, on the same 2 cores as the hub: their own CPU is part of what limits the count)");
  node.disconnect();
} finally {
  await cleanup();
}
process.exit(0);
