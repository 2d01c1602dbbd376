// @ts-check
// Fleet benchmark: what a large fleet costs the hub, and how fast it comes back after a restart.
//  1. Memory per connected agent: the hub (children/hub.js, its own process, as pm2 runs it) with N
//     hosts enrolled, measured after a full GC with none of them connected and again once all N real
//     agents (createAgent, one memory-GPIO device each, spread over several processes) are online.
//     The difference over N is what one connected agent costs. Target: 10,000 agents under 512 MB
//     of hub RSS in all. Also printed: the hub's CPU while the fleet only sends heartbeats.
//  2. Restart: with N agents online, the hub stops cleanly and a new hub starts on the same port and
//     database; the agents reconnect on their own (socket.io backoff from 0.5 s to 10 s, ±50 %
//     jitter, as in production). Printed: the time from the new hub listening, and from the old
//     one stopping, until every host is online again. Target: ≤ 10 s for 1,000 agents.
// Everything on 127.0.0.1; bounded in count and time; every child is stopped at the end.
// BENCH_FLEET_SIZES=1000,10000 picks the memory sizes; BENCH_FLEET_RESTART=1000 the restart size;
// BENCH_HUB_CPU_PROF=<dir> runs each hub with --cpu-prof into <dir>.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { jsonClient, loadAverage, log, startChild } from "../lib/bench.js";
import { freePort } from "../lib/launch.js";

const MEMORY_SIZES = (process.env.BENCH_FLEET_SIZES ?? "1000,10000").split(",").map(Number);
const RESTART_SIZE = Number(process.env.BENCH_FLEET_RESTART ?? "1000");
const AGENTS_PER_PROCESS = 2500;
const ENROLL_CONCURRENCY = 16;
const ONLINE_CAP_MS = Number(process.env.BENCH_FLEET_ONLINE_CAP_MS ?? "180000");
const IDLE_WINDOW_MS = 10_000;
const ADMIN_KEY = "lrk_bench-admin-key-fleet-0123456789abcdef";
const MB = 1024 * 1024;

const { call, close: closeClient } = jsonClient(ADMIN_KEY, ENROLL_CONCURRENCY + 2);
const sleep = (/** @type {number} */ ms) => new Promise((r) => setTimeout(r, ms));

let hubsStarted = 0;

/** @param {string} dataDir @param {number} port */
function startHub(dataDir, port) {
  const env = { ...process.env, PORT: String(port), LABRIG_BIND: "127.0.0.1", LABRIG_DATA_DIR: dataDir, LOG_LEVEL: "warn", LABRIG_ADMIN_KEY: ADMIN_KEY };
  const prof = process.env.BENCH_HUB_CPU_PROF;
  const profArgs = prof ? ["--cpu-prof", `--cpu-prof-dir=${prof}`, `--cpu-prof-name=fleet-hub-${++hubsStarted}.cpuprofile`] : [];
  return startChild("hub.js", { execArgv: ["--expose-gc", ...profArgs], env });
}

/** Enrolls bench-0 … bench-(n-1), a few requests at a time. @param {string} url @param {number} n */
async function enroll(url, n) {
  /** @type {{name: string, token: string}[]} */
  const hosts = new Array(n);
  let next = 0;
  await Promise.all(
    Array.from({ length: ENROLL_CONCURRENCY }, async () => {
      while (next < n) {
        const i = next++;
        const name = `bench-${i}`;
        const res = await call(`${url}/api/hosts`, "POST", JSON.stringify({ name }));
        if (res.status !== 201) throw new Error(`enrolling ${name} failed: ${res.status} ${JSON.stringify(res.json)}`);
        hosts[i] = { name, token: res.json.token };
      }
    }),
  );
  return hosts;
}

/** Hosts the hub counts online and agents it holds a live connection to, from GET /api/system/status. @param {string} url */
async function fleetState(url) {
  const res = await call(`${url}/api/system/status`, "GET", null);
  if (res.status !== 200) throw new Error(`GET /api/system/status: ${res.status} ${JSON.stringify(res.json)}`);
  return { online: Number(res.json.fleet.hosts.online), connected: Number(res.json.fleet.agents_connected) };
}

/**
 * Polls until all n hosts are online with a live connection (a restarted hub keeps hosts stored as
 * online for one heartbeat window, so the state alone would say "back" too early); returns ms since
 * `since` (a performance.now()). @param {string} url @param {number} n @param {number} since
 */
async function untilOnline(url, n, since) {
  const deadline = Date.now() + ONLINE_CAP_MS;
  let reported = performance.now();
  for (;;) {
    const { online, connected } = await fleetState(url);
    if (online === n && connected === n) return performance.now() - since;
    if (Date.now() > deadline) throw new Error(`only ${connected} of ${n} agents connected (${online} online) after ${ONLINE_CAP_MS} ms`);
    if (performance.now() - reported > 5000) {
      log(`  … ${connected} of ${n} connected`);
      reported = performance.now();
    }
    await sleep(100);
  }
}

/** Starts real agents for these hosts, AGENTS_PER_PROCESS to a process. @param {string} url @param {{name: string, token: string}[]} hosts @param {string} dir */
async function startAgents(url, hosts, dir) {
  const children = [];
  for (let i = 0; i < hosts.length; i += AGENTS_PER_PROCESS) {
    const child = startChild("agents.js", { capMs: ONLINE_CAP_MS });
    children.push(child);
    await child.ask("up");
    await child.ask("started", { type: "start", url, hosts: hosts.slice(i, i + AGENTS_PER_PROCESS), dir, devices: 1 });
  }
  return children;
}

/** Hub memory after a full GC. @param {ReturnType<typeof startHub>} hub @returns {Promise<{rss: number, heapUsed: number}>} */
const hubMemory = (hub) => hub.ask("memory", { type: "memory" });

/** @param {number} n */
async function memoryFigures(n) {
  const dir = mkdtempSync(join(tmpdir(), "labrig-bench-fleet-"));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const hub = startHub(join(dir, "hub"), port);
  /** @type {ReturnType<typeof startChild>[]} */
  let agents = [];
  try {
    await hub.ask("ready");
    log(`  … N=${n}: enrolling`);
    const hosts = await enroll(url, n);
    const before = await hubMemory(hub);
    log(`  … N=${n}: starting agents`);
    const t0 = performance.now();
    agents = await startAgents(url, hosts, join(dir, "agents"));
    const onlineMs = await untilOnline(url, n, t0);
    await sleep(2000); // hellos answered, first heartbeats in
    const after = await hubMemory(hub);
    const cpu0 = (await hub.ask("cpu", { type: "cpu" })).micros;
    await sleep(IDLE_WINDOW_MS);
    const idleCpu = ((await hub.ask("cpu", { type: "cpu" })).micros - cpu0) / (IDLE_WINDOW_MS * 1000);
    const agentRss = (await Promise.all(agents.map((a) => a.ask("memory", { type: "memory" })))).reduce((sum, m) => sum + m.rss, 0);
    return { n, onlineMs, before, after, idleCpu, agentRss };
  } finally {
    await hub.stop();
    await Promise.all(agents.map((a) => a.stop()));
    rmSync(dir, { recursive: true, force: true });
  }
}

/** @param {number} n */
async function restartFigures(n) {
  const dir = mkdtempSync(join(tmpdir(), "labrig-bench-fleet-"));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  let hub = startHub(join(dir, "hub"), port);
  /** @type {ReturnType<typeof startChild>[]} */
  let agents = [];
  try {
    await hub.ask("ready");
    const hosts = await enroll(url, n);
    agents = await startAgents(url, hosts, join(dir, "agents"));
    await untilOnline(url, n, performance.now());
    log(`  … N=${n}: all online; restarting the hub`);
    const stopping = performance.now();
    await hub.stop();
    const stoppedMs = performance.now() - stopping;
    hub = startHub(join(dir, "hub"), port);
    await hub.ask("ready");
    const listening = performance.now();
    const fromListening = await untilOnline(url, n, listening);
    return { n, stoppedMs, downMs: listening - stopping, fromListening, fromStop: performance.now() - stopping };
  } finally {
    await hub.stop();
    await Promise.all(agents.map((a) => a.stop()));
    rmSync(dir, { recursive: true, force: true });
  }
}

log(`fleet bench: memory at N = ${MEMORY_SIZES.join(", ")}, restart at N = ${RESTART_SIZE}; load average ${loadAverage()}`);
const memory = [];
for (const n of MEMORY_SIZES) memory.push(await memoryFigures(n));
log(`  … restart`);
const restart = await restartFigures(RESTART_SIZE);
closeClient();

const f = (/** @type {number} */ x, d = 1) => x.toFixed(d);
log("");
log("fleet: hub memory after a full GC, N hosts enrolled, before and after their agents connect; hub CPU while the fleet only heartbeats.");
log("      N | all online s | RSS before MB | RSS after MB | heap before MB | heap after MB | RSS KiB/agent | heap KiB/agent | idle hub CPU | agents' RSS MB");
for (const m of memory) {
  log(
    [
      String(m.n).padStart(7),
      f(m.onlineMs / 1000).padStart(12),
      f(m.before.rss / MB).padStart(13),
      f(m.after.rss / MB).padStart(12),
      f(m.before.heapUsed / MB).padStart(14),
      f(m.after.heapUsed / MB).padStart(13),
      f((m.after.rss - m.before.rss) / 1024 / m.n).padStart(13),
      f((m.after.heapUsed - m.before.heapUsed) / 1024 / m.n).padStart(14),
      `${f(m.idleCpu * 100)} %`.padStart(12),
      f(m.agentRss / MB, 0).padStart(14),
    ].join(" | "),
  );
}
log(`restart, N=${restart.n}: old hub stopped in ${f(restart.stoppedMs / 1000, 2)} s, new hub listening ${f(restart.downMs / 1000, 2)} s after the stop began; all online ${f(restart.fromListening / 1000, 2)} s after it listened (${f(restart.fromStop / 1000, 2)} s after the stop began)`);
const largest = memory.find((m) => m.n === 10_000);
log(`target: 10,000 agents under 512 MB of hub RSS → ${largest ? `${largest.after.rss < 512 * MB ? "met" : "NOT met"}: ${f(largest.after.rss / MB, 0)} MB` : "not measured (BENCH_FLEET_SIZES has no 10000)"}`);
log(`target: all 1,000 agents back online ≤ 10 s after a hub restart → ${restart.n === 1000 ? `${restart.fromListening <= 10_000 ? "met" : "NOT met"}: ${f(restart.fromListening / 1000, 2)} s` : `not measured at 1,000 (N=${restart.n})`}`);
log("note: hub, agents and this process share this machine's cores.");
