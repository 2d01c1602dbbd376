// @ts-check
// Starting the hub and a simulated host agent as real processes: used by `npm start`
// and by the end-to-end tests, so both exercise the same path a newcomer takes.
import { spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
export const HUB_CLI = join(ROOT, "hub", "dist", "cli.js");
export const AGENT_CLI = join(ROOT, "host-agent", "dist", "cli.js");

/**
 * A free TCP port on 127.0.0.1 (so a restarted hub can come back on the same one).
 * @returns {Promise<number>}
 */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      srv.close(() => (addr && typeof addr === "object" ? resolve(addr.port) : reject(new Error("no port"))));
    });
  });
}

/**
 * Runs `labrig-hub ARGS` and returns its stdout; throws with stderr when it fails.
 * @param {string[]} args
 * @param {NodeJS.ProcessEnv} env
 */
export function hubCli(args, env) {
  const res = spawnSync(process.execPath, [HUB_CLI, ...args], { env, encoding: "utf8" });
  if (res.status !== 0) throw new Error(`labrig-hub ${args.join(" ")} failed (${res.status}): ${res.stderr || res.stdout}`);
  return res.stdout;
}

/**
 * Creates the host (or rotates its token when it exists) and returns its token.
 * @param {string} name
 * @param {NodeJS.ProcessEnv} env
 * @returns {string}
 */
export function enrollHost(name, env) {
  let out;
  try {
    out = hubCli(["host", "add", name, "--json"], env);
  } catch (addError) {
    // The host exists from an earlier start: its token was shown once and only its hash kept, so issue a new one.
    try {
      out = hubCli(["host", "token", name, "--json"], env);
    } catch (rotateError) {
      throw new Error(`could not enrol host ${name}: ${addError}; ${rotateError}`);
    }
  }
  return /** @type {{token: string}} */ (JSON.parse(out)).token;
}

/**
 * The admin API key `npm start` hands the hub as LABRIG_ADMIN_KEY: read from `<dataDir>/sim/admin.key`,
 * or generated there (mode 600) on the first start, so it stays the same across starts.
 * @param {string} dataDir
 * @returns {{key: string, path: string, created: boolean}}
 */
export function ensureAdminKey(dataDir) {
  const path = join(dataDir, "sim", "admin.key");
  if (existsSync(path)) {
    const key = readFileSync(path, "utf8").trim();
    // Keep the file private even if it was copied around with looser permissions.
    chmodSync(path, 0o600);
    if (key.length >= 24) return { key, path, created: false };
  }
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const key = `lrk_${randomBytes(32).toString("base64url")}`;
  writeFileSync(path, `${key}\n`, { mode: 0o600 });
  chmodSync(path, 0o600);
  return { key, path, created: true };
}

/**
 * `Authorization` header for the hub's REST API.
 * @param {string | undefined} key
 * @returns {Record<string, string>}
 */
export function authHeaders(key) {
  return key ? { authorization: `Bearer ${key}` } : {};
}

/**
 * Writes an agent config with one simulated device (console on a PTY, power and reset lines) and returns its path.
 * A device may slow its console down (`txCharDelayMs`) and keep a journal of what reached the board (`simJournal`).
 * @param {{dir: string, host: string, hubUrl: string, token: string, devices?: Array<{id: string, labels?: Record<string, string>, txCharDelayMs?: number, simJournal?: string}>}} opts
 */
export function writeSimAgentConfig({ dir, host, hubUrl, token, devices = [{ id: "dut1", labels: { board: "labrig-sim" } }] }) {
  mkdirSync(dir, { recursive: true });
  const lines = [
    `host: ${host}`,
    "hub:",
    `  url: ${hubUrl}`,
    `  token: ${token}`,
    "data_dir: ./agent-data",
    "gpio:",
    "  driver: memory",
    "devices:",
  ];
  for (const d of devices) {
    lines.push(
      `  - id: ${d.id}`,
      `    labels: ${JSON.stringify(d.labels ?? {})}`,
      "    simulated: true",
      ...(d.simJournal === undefined ? [] : [`    sim_journal: ${JSON.stringify(d.simJournal)}`]),
      "    resources:",
      `      - { name: console, kind: serial, path: ./${d.id}-console, baud_rate: 115200${d.txCharDelayMs === undefined ? "" : `, tx_char_delay_ms: ${d.txCharDelayMs}`} }`,
      "      - { name: power, kind: power, line: 17, cycle_off_ms: 500 }",
      "      - { name: reset, kind: gpio, line: 27, direction: out, active_low: true }",
      // The board's screen: a generated test pattern showing its state (dark, BOOTING, LOGIN, SHELL).
      "      - { name: screen, kind: video, source: test-pattern, width: 320, height: 240, fps: 5 }",
    );
  }
  const path = join(dir, "agent.yaml");
  writeFileSync(path, `${lines.join("\n")}\n`, { mode: 0o600 });
  return path;
}

/**
 * Starts node with `args`, its stdout and stderr appended to a log file. `prefix` runs it under
 * another command (e.g. `unshare -m … sh -c '… exec "$@"'`) that ends by exec-ing node.
 * @param {string[]} args
 * @param {{env: NodeJS.ProcessEnv, logFile: import("node:fs").WriteStream | "inherit", prefix?: string[]}} opts
 */
export function startNode(args, { env, logFile, prefix = [] }) {
  const [command, ...rest] = [...prefix, process.execPath, ...args];
  const child = spawn(/** @type {string} */ (command), rest, { env, stdio: ["ignore", "pipe", "pipe"] });
  if (logFile === "inherit") {
    child.stdout.pipe(process.stdout);
    child.stderr.pipe(process.stderr);
  } else {
    child.stdout.pipe(logFile, { end: false });
    child.stderr.pipe(logFile, { end: false });
  }
  return child;
}

/**
 * Polls `check` until it returns a truthy value or `timeoutMs` passes. A check that throws is
 * retried (the hub may not listen yet); `signal` ends the wait at once with its reason.
 * @template T
 * @param {() => Promise<T | undefined | null | false>} check
 * @param {number} timeoutMs
 * @param {string} what
 * @param {{signal?: AbortSignal | undefined}} [options]
 * @returns {Promise<T>}
 */
export async function waitFor(check, timeoutMs, what, options = {}) {
  const { signal } = options;
  const deadline = Date.now() + timeoutMs;
  let lastError;
  while (Date.now() < deadline) {
    signal?.throwIfAborted();
    try {
      const value = await check();
      if (value) return value;
    } catch (err) {
      lastError = err;
    }
    signal?.throwIfAborted();
    await pause(50, signal);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError ? `: ${lastError}` : ""}`);
}

/**
 * Resolves after `ms`, or as soon as `signal` fires (the caller looks at the signal).
 * @param {number} ms
 * @param {AbortSignal | undefined} signal
 * @returns {Promise<void>}
 */
function pause(ms, signal) {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}

/**
 * Resolves when the process has exited (at once if it already has).
 * @param {import("node:child_process").ChildProcess} child
 * @returns {Promise<void>}
 */
export function exited(child) {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once("exit", () => resolve());
  });
}

/**
 * A signal that fires when `child` exits, its reason saying so: a wait on the process given it
 * fails at once instead of running to its timeout.
 * @param {import("node:child_process").ChildProcess} child
 * @param {string} what  e.g. "the hub"
 * @param {string} [seeAlso]  where its output went
 */
export function exitSignal(child, what, seeAlso) {
  const controller = new AbortController();
  const abort = () => controller.abort(new Error(`${what} exited (${child.exitCode ?? child.signalCode})${seeAlso ? `; see ${seeAlso}` : ""}`));
  if (child.exitCode !== null || child.signalCode !== null) abort();
  else child.once("exit", abort);
  return controller.signal;
}

/**
 * One REST call with an API key; the body is parsed as JSON when there is one.
 * @param {string} url  the hub's base URL
 * @param {string} key
 * @param {string} method
 * @param {string} path
 * @param {unknown} [body]
 * @param {{signal?: AbortSignal | undefined}} [options]
 * @returns {Promise<{status: number, body: any, headers: Headers}>} any: callers read the fields of many response shapes
 */
export async function callApi(url, key, method, path, body, options = {}) {
  const res = await fetch(`${url}${path}`, {
    method,
    headers: { ...authHeaders(key), ...(body === undefined ? {} : { "content-type": "application/json" }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    ...(options.signal ? { signal: options.signal } : {}),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : {}, headers: res.headers };
}

/**
 * Waits until the hub answers /api/health.
 * @param {string} url
 * @param {number} [timeoutMs]
 */
export function waitForHub(url, timeoutMs = 15_000) {
  return waitFor(async () => (await fetch(`${url}/api/health`)).ok, timeoutMs, `the hub at ${url}`);
}

/**
 * Waits until the hub lists `host` with the given state.
 * @param {string} url
 * @param {string} host
 * @param {"online" | "offline"} state
 * @param {number} [timeoutMs]
 * @param {Record<string, string>} [headers]
 */
export function waitForHostState(url, host, state, timeoutMs = 15_000, headers = {}) {
  return waitFor(
    async () => {
      const res = await fetch(`${url}/api/hosts/${host}`, { headers });
      if (!res.ok) return false;
      const body = /** @type {{state: string}} */ (await res.json());
      return body.state === state;
    },
    timeoutMs,
    `host ${host} to be ${state}`,
  );
}

/** The sample test case `npm start` offers: power-cycle the simulated board, log in, check the kernel. */
export const SAMPLE_TESTCASE = {
  name: "boots to a shell",
  description: "Power-cycles the board, logs in as root on the serial console and checks the kernel version.",
  tags: ["sample", "smoke"],
  target: { selector: { capabilities: ["serial", "power"], labels: {} } },
  setup: [{ name: "cycle", action: "power.cycle", params: { off_ms: 500 } }],
  steps: [
    // flush: only the prompt of this boot counts, not one an earlier session left unread.
    { name: "login", action: "serial.expect", params: { pattern: "login: ", timeout_ms: 20000, flush: true } },
    { name: "user", action: "serial.write", params: { data: "root\n" } },
    { name: "pw", action: "serial.expect", params: { pattern: "Password: ", timeout_ms: 5000 } },
    { name: "pass", action: "serial.write", params: { data: "labrig\n" } },
    { name: "shell", action: "serial.expect", params: { pattern: "# ", timeout_ms: 5000 } },
    { name: "uname", action: "serial.write", params: { data: "uname -a\n" } },
    { name: "kernel", action: "serial.expect", params: { pattern: "Linux labrig-sim (\\d+)\\.", regex: true, timeout_ms: 5000 }, expect: { field: "groups.0", op: "equals", value: "6" } },
  ],
  teardown: [{ name: "off", action: "power.off", params: {} }],
};

export const SAMPLE_CAMPAIGN_NAME = "sample";

/**
 * Creates the sample test case and the `sample` campaign running it, unless a campaign of that
 * name exists; returns the campaign's id. Safe at every start.
 * @param {string} url
 * @param {Record<string, string>} headers
 * @returns {Promise<string>}
 */
export async function ensureSampleCampaign(url, headers) {
  const json = { ...headers, "content-type": "application/json" };
  const existing = await fetch(`${url}/api/campaigns/${SAMPLE_CAMPAIGN_NAME}`, { headers });
  if (existing.ok) return /** @type {{id: string}} */ (await existing.json()).id;
  const tc = await fetch(`${url}/api/testcases`, { method: "POST", headers: json, body: JSON.stringify(SAMPLE_TESTCASE) });
  if (!tc.ok) throw new Error(`could not create the sample test case: ${tc.status} ${await tc.text()}`);
  const testcase = /** @type {{id: string}} */ (await tc.json());
  const body = { name: SAMPLE_CAMPAIGN_NAME, testcases: [testcase.id], target: SAMPLE_TESTCASE.target, retries: 0 };
  const c = await fetch(`${url}/api/campaigns`, { method: "POST", headers: json, body: JSON.stringify(body) });
  if (!c.ok) throw new Error(`could not create the sample campaign: ${c.status} ${await c.text()}`);
  return /** @type {{id: string}} */ (await c.json()).id;
}
