// @ts-check
// The fault suite's rig: a real hub (`node hub/dist/cli.js serve`) on a data directory that outlives
// its restarts, one real agent (`node host-agent/dist/cli.js run`) with a simulated board whose
// journal counts what reached the board, and the TCP proxy between them. Everything on 127.0.0.1;
// every process is started here and stopped by close().
import { spawnSync } from "node:child_process";
import { createWriteStream, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { settlesWithin } from "@labrig/shared";
import { AGENT_CLI, HUB_CLI, callApi, enrollHost, exitSignal, exited, freePort, startNode, waitFor, writeSimAgentConfig } from "../lib/launch.js";
import { TcpProxy } from "./tcp-proxy.js";

export const FAULT_ADMIN_KEY = "lrk_fault-suite-admin-key-0123456789abcdef";
export const HOST = "fault-1";
/** Two boards: a second action can be sent while the first one's device is busy (one action at a time per device). */
export const DEVICES = ["dut1", "dut2"];
/** Per-character delay of the board's console: a write of n characters takes n × this, which opens the windows the suite kills in. */
export const TX_CHAR_DELAY_MS = 10;

/** @typedef {import("node:child_process").ChildProcess} ChildProcess */

/**
 * Checks the tools the suite needs and says how to install what is missing.
 * @param {{namespaces: boolean}} needs
 */
export function checkTools(needs) {
  if (spawnSync("socat", ["-V"]).error) throw new Error("the fault suite needs socat for the simulated board's console: apt-get install socat");
  if (!existsSync(HUB_CLI) || !existsSync(AGENT_CLI)) throw new Error("hub and agent are not built: npm run build");
  if (!needs.namespaces) return;
  if (spawnSync("unshare", ["--version"]).error) throw new Error("the disk-full scenario needs unshare and mount: apt-get install util-linux");
  const probe = spawnSync("unshare", ["-m", "--propagation", "private", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt"], { encoding: "utf8" });
  if (probe.status !== 0) throw new Error(`the disk-full scenario mounts a small tmpfs in a private mount namespace, which needs root: ${probe.stderr.trim()}`);
}

/** What the simulated board logs when its journal cannot append, and when it can again (host-agent/src/sim/board-journal.ts). */
const JOURNAL_EVENT = /"board_journal":"(append_failed|append_resumed)"/;

/** @param {ChildProcess} child */
function alive(child) {
  return child.exitCode === null && child.signalCode === null;
}

/**
 * Pids of the processes whose parent is `pid` (socat under the agent).
 * @param {number} pid
 * @returns {{pid: number, comm: string}[]}
 */
export function childrenOf(pid) {
  /** @type {{pid: number, comm: string}[]} */
  const out = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    let stat;
    try {
      stat = readFileSync(`/proc/${name}/stat`, "utf8");
    } catch {
      continue; // the process ended between readdir and read
    }
    // pid (comm) state ppid …; comm may hold spaces and parentheses, so split at the last ')'.
    const close = stat.lastIndexOf(")");
    const ppid = Number(stat.slice(close + 2).split(" ")[1]);
    if (ppid === pid) out.push({ pid: Number(name), comm: stat.slice(stat.indexOf("(") + 1, close) });
  }
  return out;
}

/**
 * Runs node `args` with a fresh tmpfs of `sizeKiB` mounted on `dir`, in a private mount namespace (root):
 * the process sees a small disk there, the rest of the machine does not. `exec` keeps the pid node's.
 * @param {string} dir
 * @param {number} sizeKiB
 * @param {string[]} args
 * @param {{env: NodeJS.ProcessEnv, logFile: import("node:fs").WriteStream}} opts
 */
function startNodeOnTmpfs(dir, sizeKiB, args, opts) {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const script = `mount -t tmpfs -o size=${sizeKiB}k,mode=0700 labrig-faults "$0" && exec "$@"`;
  return startNode(args, { ...opts, prefix: ["unshare", "-m", "--propagation", "private", "sh", "-c", script, dir] });
}

export class FaultRig {
  dir = mkdtempSync(join(tmpdir(), "labrig-faults-"));
  logPath = join(this.dir, "processes.log");
  log = createWriteStream(this.logPath);
  hubDataDir = join(this.dir, "hub");
  journalPaths = DEVICES.map((d) => join(this.dir, "journal", `${HOST}-${d}.jsonl`));
  agentDir = join(this.dir, HOST);
  /** @type {ChildProcess | null} */
  hub = null;
  /** @type {ChildProcess | null} */
  agent = null;
  hubPort = 0;
  /** @type {TcpProxy | null} */
  proxy = null;
  /** @type {string | null} */
  agentConfig = null;
  /**
   * The running scenario's signal: once it fires (its deadline passed), every wait, start, link
   * change and REST call of the rig throws at once, so an abandoned scenario starts nothing more.
   * @type {AbortSignal | undefined}
   */
  signal = undefined;
  /** @type {Set<ChildProcess>} every process this rig started, so close() can prove none survives */
  children = new Set();

  /** @param {{heartbeatMs: number}} options */
  constructor(options) {
    this.heartbeatMs = options.heartbeatMs;
  }

  get url() {
    return `http://127.0.0.1:${this.hubPort}`;
  }

  get env() {
    return {
      ...process.env,
      PORT: String(this.hubPort),
      LABRIG_BIND: "127.0.0.1",
      LABRIG_DATA_DIR: this.hubDataDir,
      LOG_LEVEL: "debug",
      LABRIG_ADMIN_KEY: FAULT_ADMIN_KEY,
      LABRIG_HEARTBEAT_MS: String(this.heartbeatMs),
      // The suite fails actions on purpose, many in a row: the device must not be benched as unhealthy for it.
      LABRIG_HEALTH_FAILURE_THRESHOLD: "1000",
    };
  }

  /** Hub, proxy and agent, with the host online. */
  async start() {
    // Another process on this machine may take the free port before the hub binds it: then take another.
    for (let attempt = 1; ; attempt++) {
      this.hubPort = await freePort();
      try {
        await this.startHub();
        break;
      } catch (err) {
        await this.killHub();
        if (attempt === 3) throw err;
      }
    }
    this.proxy = new TcpProxy({ host: "127.0.0.1", port: this.hubPort });
    await this.proxy.listen();
    await this.startAgent();
  }

  /** Between scenarios: the link healed, hub and agent running, the host online. */
  async ready() {
    this.signal?.throwIfAborted();
    this.proxy?.heal();
    this.proxy?.thawAll();
    if (!this.hub) await this.startHub();
    if (!this.agent) await this.startAgent();
    await waitFor(async () => this.hostRow()?.state === "online", 20_000, "the host to be online", { signal: this.signal });
  }

  /**
   * Aborts on `this.signal` or as soon as `child` exits.
   * @param {ChildProcess} child
   * @param {string} what
   */
  #untilExit(child, what) {
    const exit = exitSignal(child, what, this.logPath);
    return this.signal ? AbortSignal.any([exit, this.signal]) : exit;
  }

  /**
   * Starts a process of the rig (refused once the scenario's signal fired).
   * @param {string[]} args
   * @param {{env: NodeJS.ProcessEnv, logFile: import("node:fs").WriteStream}} opts
   * @param {{dir: string, sizeKiB: number} | undefined} tmpfs
   */
  #spawn(args, opts, tmpfs) {
    this.signal?.throwIfAborted();
    const child = tmpfs === undefined ? startNode(args, opts) : startNodeOnTmpfs(tmpfs.dir, tmpfs.sizeKiB, args, opts);
    this.children.add(child);
    child.once("exit", () => this.children.delete(child));
    return child;
  }

  /** @param {{runsTmpfsKiB?: number}} [options] */
  async startHub(options = {}) {
    const args = [HUB_CLI, "serve"];
    const opts = { env: this.env, logFile: this.log };
    const hub = this.#spawn(args, opts, options.runsTmpfsKiB === undefined ? undefined : { dir: join(this.hubDataDir, "runs"), sizeKiB: options.runsTmpfsKiB });
    this.hub = hub;
    const signal = this.#untilExit(hub, "the hub");
    // Each try bounded: a port someone else took may accept and never answer.
    const health = () => fetch(`${this.url}/api/health`, { signal: AbortSignal.any([signal, AbortSignal.timeout(2000)]) });
    await waitFor(async () => (await health()).ok, 20_000, `the hub at ${this.url}`, { signal });
  }

  /** kill -9: no drain, no clean close of the database. */
  killHub() {
    return this.#endHub("SIGKILL");
  }

  /** A clean stop (drain, database closed). */
  stopHub() {
    return this.#endHub("SIGTERM");
  }

  /** @param {NodeJS.Signals} signal */
  async #endHub(signal) {
    const hub = this.hub;
    if (!hub) return;
    hub.kill(signal);
    await exited(hub);
    this.hub = null;
  }

  /** The proxy every agent connection goes through. */
  get link() {
    this.signal?.throwIfAborted();
    if (!this.proxy) throw new Error("the rig has no proxy yet: start() it first");
    return this.proxy;
  }

  /** @param {{dataTmpfsKiB?: number}} [options] */
  async startAgent(options = {}) {
    this.signal?.throwIfAborted();
    if (this.agentConfig === null) {
      const token = enrollHost(HOST, this.env);
      if (!this.proxy) throw new Error("start the proxy before the agent");
      this.agentConfig = writeSimAgentConfig({
        dir: this.agentDir,
        host: HOST,
        hubUrl: this.proxy.url,
        token,
        devices: DEVICES.map((id, i) => ({ id, labels: { rig: "faults" }, txCharDelayMs: TX_CHAR_DELAY_MS, simJournal: this.journalPaths[i] })),
      });
    }
    const args = [AGENT_CLI, "run", "--config", this.agentConfig];
    const opts = { env: { ...process.env, LOG_LEVEL: "debug" }, logFile: this.log };
    this.agent = this.#spawn(args, opts, options.dataTmpfsKiB === undefined ? undefined : { dir: this.agentDataDir, sizeKiB: options.dataTmpfsKiB });
    await this.waitForAgentHello(this.agent);
  }

  get agentDataDir() {
    return join(this.agentDir, "agent-data");
  }

  /**
   * Waits until the hub has the hello of this agent process (its start time is newer than any
   * earlier one's), so work sent from now on reaches it.
   * @param {ChildProcess} agent
   */
  async waitForAgentHello(agent, timeoutMs = 30_000) {
    const before = this.hostRow()?.agent_started_at ?? "";
    await waitFor(
      async () => {
        const row = this.hostRow();
        return row !== undefined && row.state === "online" && row.agent_started_at !== null && row.agent_started_at > before;
      },
      timeoutMs,
      "the agent's hello",
      { signal: this.#untilExit(agent, "the agent") },
    );
  }

  /** kill -9 the agent; its socat (now without a parent to restart it) is stopped too. Returns when both are gone. */
  async killAgent() {
    const agent = this.agent;
    if (!agent) return;
    const socats = agent.pid === undefined ? [] : childrenOf(agent.pid);
    agent.kill("SIGKILL");
    await exited(agent);
    this.agent = null;
    for (const s of socats) {
      try {
        process.kill(s.pid, "SIGKILL");
      } catch (err) {
        if (/** @type {NodeJS.ErrnoException} */ (err).code !== "ESRCH") throw err;
      }
    }
  }

  /**
   * kill -9 the agent, check the database, start a new agent process; returns the integrity check.
   * `sever` resets the connections the proxy holds frozen, as the dead host's kernel would; without
   * it a frozen connection stays half-open.
   * @param {{sever?: boolean}} [options]
   */
  async killAndRestartAgent(options = {}) {
    await this.killAgent();
    return this.restartAgent(options);
  }

  /**
   * After killAgent(): checks the database, starts a new agent process; returns the integrity check.
   * @param {{sever?: boolean}} [options]  as in killAndRestartAgent
   */
  async restartAgent(options = {}) {
    if (options.sever) this.link.sever();
    const integrity = [this.integrity()];
    await this.startAgent();
    return integrity;
  }

  /** A clean stop of the agent (it stops its socat itself). */
  async stopAgent() {
    const agent = this.agent;
    if (!agent) return;
    agent.kill("SIGTERM");
    await exited(agent);
    this.agent = null;
  }

  /** The socat processes of the boards' consoles (children of the agent). */
  socatPids() {
    const pid = this.agent?.pid;
    if (pid === undefined) return [];
    return childrenOf(pid)
      .filter((c) => c.comm === "socat")
      .map((c) => c.pid);
  }

  /**
   * A REST call with the admin key, straight to the hub (not through the proxy).
   * @param {string} method
   * @param {string} path
   * @param {unknown} [body]
   * @returns {Promise<{status: number, body: any}>} any: the suite reads a few fields of many response shapes
   */
  api(method, path, body) {
    this.signal?.throwIfAborted();
    return callApi(this.url, FAULT_ADMIN_KEY, method, path, body, { signal: this.signal });
  }

  /**
   * Reads the hub's database in its own read-only connection (the hub may be running, or dead).
   * @template T
   * @param {(db: import("better-sqlite3").Database) => T} fn
   * @returns {T}
   */
  withDb(fn) {
    const db = new Database(join(this.hubDataDir, "labrig.db"), { readonly: true, fileMustExist: true });
    try {
      db.pragma("busy_timeout = 5000");
      return fn(db);
    } finally {
      db.close();
    }
  }

  /** `PRAGMA integrity_check` of the database as it is now: "ok", or what SQLite found. */
  integrity() {
    const rows = this.withDb((db) => /** @type {{integrity_check: string}[]} */ (db.pragma("integrity_check")));
    const found = rows.map((r) => r.integrity_check);
    return found.length === 1 && found[0] === "ok" ? "ok" : found.join("; ");
  }

  /** @returns {{state: string, agent_started_at: string | null} | undefined} */
  hostRow() {
    if (!existsSync(join(this.hubDataDir, "labrig.db"))) return undefined;
    return this.withDb((db) => /** @type {{state: string, agent_started_at: string | null} | undefined} */ (db.prepare("SELECT state, agent_started_at FROM hosts WHERE id = ?").get(HOST)));
  }

  /** Leases still held, and runs, tests and steps still `running`/`queued`, now. */
  leftovers() {
    return this.withDb((db) => {
      const count = (/** @type {string} */ sql) => /** @type {{n: number}} */ (db.prepare(sql).get()).n;
      return {
        leases: count("SELECT count(*) AS n FROM leases WHERE ended_at IS NULL"),
        runs: count("SELECT count(*) AS n FROM runs WHERE status IN ('queued', 'running')"),
        tests: count("SELECT count(*) AS n FROM run_tests WHERE status = 'running'"),
        steps: count("SELECT count(*) AS n FROM run_steps WHERE status = 'running'"),
      };
    });
  }

  /**
   * After a scenario was abandoned at its deadline: kill -9 agent (and its socat) and hub, heal the
   * link, so nothing it started goes on into the next scenario (whose ready() starts them afresh).
   */
  async reset() {
    await this.killAgent();
    await this.killHub();
    this.proxy?.heal();
    this.proxy?.thawAll();
  }

  /**
   * Waits until the hub has no action queued or running and nothing left over (after a scenario
   * whose fault came too late, before it runs again).
   */
  async quiet(timeoutMs = 30_000) {
    await waitFor(
      async () => {
        const left = this.leftovers();
        const busy = this.withDb((db) => /** @type {{n: number}} */ (db.prepare("SELECT count(*) AS n FROM actions WHERE status IN ('queued', 'running')").get()).n);
        return busy + left.leases + left.runs + left.tests + left.steps === 0;
      },
      timeoutMs,
      "the hub to have nothing queued, running or held",
      { signal: this.signal },
    );
  }

  /** Where the processes' log ends now: what a scenario logs comes after it. */
  logOffset() {
    return existsSync(this.logPath) ? statSync(this.logPath).size : 0;
  }

  /**
   * The boards' journal trouble seen from `offset` on: lines the journal could not append make the
   * board count too low, so a scenario in which it failed, or that began while it was failing, proves nothing.
   * @param {number} offset
   * @returns {string[]}
   */
  journalTrouble(offset) {
    const text = readFileSync(this.logPath);
    const field = (/** @type {string} */ line, /** @type {string} */ name) => new RegExp(`"${name}":"((?:[^"\\\\]|\\\\.)*)"`).exec(line)?.[1] ?? "?";
    /** @type {Map<string, boolean>} journal path → failing at `offset` */
    const failingBefore = new Map();
    for (const line of text.subarray(0, offset).toString("utf8").split("\n")) {
      const m = JOURNAL_EVENT.exec(line);
      if (m) failingBefore.set(field(line, "path"), m[1] === "append_failed");
    }
    const out = [...failingBefore].filter(([, failing]) => failing).map(([path]) => `the board journal ${path} was failing to append when the scenario began`);
    for (const line of text.subarray(offset).toString("utf8").split("\n")) {
      if (JOURNAL_EVENT.exec(line)?.[1] === "append_failed") out.push(`the board journal ${field(line, "path")} could not append (${field(line, "err")}): the board count is incomplete`);
    }
    return out;
  }

  /**
   * A clean stop (drain, database closed), kill -9 for what does not stop in time; returns what had
   * to be killed that the rig had lost track of (must be nothing).
   * @returns {Promise<string[]>}
   */
  async close() {
    if (!(await settlesWithin(this.stopAgent(), 10_000))) await this.killAgent();
    if (!(await settlesWithin(this.stopHub(), 10_000))) await this.killHub();
    await this.proxy?.close();
    const survivors = [...this.children].filter(alive);
    for (const child of survivors) child.kill("SIGKILL");
    await Promise.all(survivors.map(exited));
    this.log.end();
    return survivors.map((c) => `process ${c.pid} (${c.spawnargs.join(" ")}) was still running when the rig closed`);
  }

  /** Removes the rig's directory (kept when a run failed, for its logs). */
  remove() {
    rmSync(this.dir, { recursive: true, force: true });
  }
}
