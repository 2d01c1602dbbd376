// @ts-check
// Dispatch benchmark: labrig against the floor of its own stack, measured side by side in one run.
// The floor (children/floor.js + floor-agents.js) is plain node:http plus one socket.io
// emit-with-ack to an agent that answers at once: no validation, no database, no auth, no logging.
// labrig is the hub alone in one process (children/hub.js, createHub with the env config
// `labrig-hub serve` reads) with N real agents (createAgent, memory GPIO) in another, once with
// LOG_LEVEL=warn and once logging as `npm start` does (info, JSON lines to a file). The HTTP load
// runs here over keep-alive connections: sequential requests for latency, 64 concurrent clients for
// throughput. labrig runs at most one action at a time per device (the floor has no such rule), so
// each agent gets ceil(64 / N) devices: the fleet always has as many devices as there are clients.
// Targets, as ratios to the floor (printed, not asserted): p50 ≤ 1.5×, throughput ≥ 2/3, at every N.
// Everything on 127.0.0.1; bounded in count and time; every child is stopped at the end.
// BENCH_SIZES=1,10 picks N; BENCH_HUB_CPU_PROF=<dir> runs the hub with --cpu-prof into <dir>.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { jsonClient, loadAverage as load, log, quantile, startChild } from "../lib/bench.js";

const SIZES = (process.env.BENCH_SIZES ?? "1,10,100,1000").split(",").map(Number);
const WARMUP = 300;
const SEQUENTIAL = 2000;
const CONCURRENCY = 64;
const THROUGHPUT_COUNT = 6000;
/** Per-phase time cap, so a slow machine still finishes. */
const PHASE_CAP_MS = 30_000;
const ADMIN_KEY = "lrk_bench-admin-key-0123456789abcdef";
const CLIENT_DEVICES = 64;

const { call, close: closeClient } = jsonClient(ADMIN_KEY, CONCURRENCY + 4);

/** @param {() => Promise<void>} one @param {number} count */
async function sequential(one, count) {
  const times = [];
  const deadline = Date.now() + PHASE_CAP_MS;
  for (let i = 0; i < count && Date.now() < deadline; i++) {
    const t0 = performance.now();
    await one();
    times.push(performance.now() - t0);
  }
  return times;
}

/** @param {() => Promise<void>} one @param {number} count @param {number} workers */
async function concurrent(one, count, workers) {
  let issued = 0;
  const deadline = Date.now() + PHASE_CAP_MS;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: workers }, async () => {
      while (issued < count && Date.now() < deadline) {
        issued += 1;
        await one();
      }
    }),
  );
  return issued / ((performance.now() - t0) / 1000);
}

/**
 * Latency, server and agent CPU per request and throughput of `one` against children that answer "cpu".
 * @param {() => Promise<boolean>} one resolves false on a failed request
 * @param {ReturnType<typeof startChild>} server
 * @param {ReturnType<typeof startChild>} agents
 */
async function measure(one, server, agents) {
  let failures = 0;
  const counted = async () => {
    if (!(await one())) failures += 1;
  };
  await sequential(counted, WARMUP); // JIT and connection pool
  await concurrent(counted, WARMUP, CONCURRENCY); // opens the pool's sockets
  const loadStart = load();
  const cpu0 = (await server.ask("cpu", { type: "cpu" })).micros;
  const agentCpu0 = (await agents.ask("cpu", { type: "cpu" })).micros;
  const times = await sequential(counted, SEQUENTIAL);
  const cpuUs = ((await server.ask("cpu", { type: "cpu" })).micros - cpu0) / times.length;
  const agentCpuUs = ((await agents.ask("cpu", { type: "cpu" })).micros - agentCpu0) / times.length;
  const throughput = await concurrent(counted, THROUGHPUT_COUNT, CONCURRENCY);
  return { p50: quantile(times, 0.5), p99: quantile(times, 0.99), cpuUs, agentCpuUs, throughput, failures, load: `${loadStart} → ${load()}` };
}

/** The floor with N agents. @param {number} n */
async function runFloor(n) {
  const server = startChild("floor.js");
  /** @type {ReturnType<typeof startChild> | null} */
  let agents = null;
  try {
    const { url } = await server.ask("ready");
    agents = startChild("floor-agents.js");
    await agents.ask("up");
    await agents.ask("started", { type: "start", url, n });
    const body = JSON.stringify({ action: "gpio.read", resource: "io", params: {}, target: { selector: { labels: { bench: "dispatch" } } } });
    return await measure(async () => (await call(`${url}/api/actions`, "POST", body)).status === 200, server, agents);
  } finally {
    await server.stop();
    await agents?.stop();
  }
}

/**
 * labrig with N agents, each with enough devices that the fleet has one per client.
 * @param {number} n @param {"warn" | "info"} logLevel
 */
async function runLabrig(n, logLevel) {
  const dir = mkdtempSync(join(tmpdir(), "labrig-bench-"));
  const prof = process.env.BENCH_HUB_CPU_PROF;
  const hubArgs = ["--expose-gc", ...(prof ? ["--cpu-prof", `--cpu-prof-dir=${prof}`, `--cpu-prof-name=hub-N${n}-${logLevel}.cpuprofile`] : [])];
  const hubEnv = { ...process.env, PORT: "0", LABRIG_BIND: "127.0.0.1", LABRIG_DATA_DIR: join(dir, "hub"), LOG_LEVEL: logLevel, LABRIG_ADMIN_KEY: ADMIN_KEY, LABRIG_QUEUE_TIMEOUT_MS: "60000", ...(logLevel === "info" ? { BENCH_HUB_LOG: "stdout" } : {}) };
  const hub = startChild("hub.js", { execArgv: hubArgs, env: hubEnv, stdoutFile: logLevel === "info" ? join(dir, "hub.log") : null });
  /** @type {ReturnType<typeof startChild> | null} */
  let agents = null;
  try {
    const { url } = await hub.ask("ready");
    /** @type {{name: string, token: string}[]} */
    const hosts = [];
    for (let i = 0; i < n; i++) {
      const res = await call(`${url}/api/hosts`, "POST", JSON.stringify({ name: `bench-${i}` }));
      if (res.status !== 201) throw new Error(`enrolling bench-${i} failed: ${res.status} ${JSON.stringify(res.json)}`);
      hosts.push({ name: `bench-${i}`, token: res.json.token });
    }
    agents = startChild("agents.js");
    await agents.ask("up");
    await agents.ask("started", { type: "start", url, hosts, dir: join(dir, "agents"), devices: Math.max(1, Math.ceil(CLIENT_DEVICES / n)) });
    const deadline = Date.now() + 120_000;
    for (;;) {
      const res = await call(`${url}/api/hosts`, "GET", null);
      if (/** @type {{state: string}[]} */ (res.json.hosts).filter((h) => h.state === "online").length === n) break;
      if (Date.now() > deadline) throw new Error(`agents did not all come online within 120 s`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const body = JSON.stringify({ action: "gpio.read", resource: "io", params: {}, target: { selector: { labels: { bench: "dispatch" } } } });
    const running = /** @type {ReturnType<typeof startChild>} */ (agents);
    return await measure(async () => {
      const res = await call(`${url}/api/actions`, "POST", body);
      return res.status === 200 && res.json.status === "succeeded";
    }, hub, running);
  } finally {
    // Hub first: once it is shutting down, the agents' disconnects are not logged as hosts going offline.
    await hub.stop();
    await agents?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

log(`dispatch bench: floor vs labrig, N = ${SIZES.join(", ")} agents; load average ${load()}`);
const rows = [];
for (const n of SIZES) {
  log(`dispatch bench: N=${n}: floor...`);
  const floor = await runFloor(n);
  log(`dispatch bench: N=${n}: labrig, LOG_LEVEL=warn...`);
  const warn = await runLabrig(n, "warn");
  log(`dispatch bench: N=${n}: labrig, npm start logging (info, to a file)...`);
  const info = await runLabrig(n, "info");
  rows.push({ n, floor, warn, info });
}
closeClient();

const f = (/** @type {number} */ x, d = 2) => x.toFixed(d);
const ratio = (/** @type {number} */ a, /** @type {number} */ b) => `${f(a / b, 2)}x`;
log("");
log("dispatch: POST /api/actions (selector) → agent → answer. Latency ms, sequential; throughput actions/s with 64 concurrent clients; server CPU µs per request.");
log("   N | floor p50 | warn p50 | ×floor | info p50 | ×floor | floor p99 | warn p99 | floor act/s | warn act/s | of floor | info act/s | of floor | floor CPU µs | hub CPU µs | floor agents µs | agents µs | failed");
for (const r of rows) {
  log(
    [
      String(r.n).padStart(4),
      f(r.floor.p50, 3).padStart(9),
      f(r.warn.p50, 3).padStart(8),
      ratio(r.warn.p50, r.floor.p50).padStart(6),
      f(r.info.p50, 3).padStart(8),
      ratio(r.info.p50, r.floor.p50).padStart(6),
      f(r.floor.p99, 3).padStart(9),
      f(r.warn.p99, 3).padStart(8),
      f(r.floor.throughput, 0).padStart(11),
      f(r.warn.throughput, 0).padStart(10),
      `${f((r.warn.throughput / r.floor.throughput) * 100, 0)}%`.padStart(8),
      f(r.info.throughput, 0).padStart(10),
      `${f((r.info.throughput / r.floor.throughput) * 100, 0)}%`.padStart(8),
      f(r.floor.cpuUs, 0).padStart(12),
      f(r.warn.cpuUs, 0).padStart(10),
      f(r.floor.agentCpuUs, 0).padStart(15),
      f(r.warn.agentCpuUs, 0).padStart(9),
      String(r.floor.failures + r.warn.failures + r.info.failures).padStart(6),
    ].join(" | "),
  );
}
for (const r of rows) log(`  load average N=${r.n}: floor ${r.floor.load}; warn ${r.warn.load}; info ${r.info.load}`);
const latencyMet = rows.every((r) => r.warn.p50 <= 1.5 * r.floor.p50);
const throughputMet = rows.every((r) => r.warn.throughput >= (2 / 3) * r.floor.throughput);
const worstLatency = Math.max(...rows.map((r) => r.warn.p50 / r.floor.p50));
const worstThroughput = Math.min(...rows.map((r) => r.warn.throughput / r.floor.throughput));
log(`target: labrig p50 ≤ 1.5× the floor at every N (LOG_LEVEL=warn)  → ${latencyMet ? "met" : "NOT met"}: worst ${f(worstLatency, 2)}×`);
log(`target: throughput ≥ 2/3 of the floor at every N (LOG_LEVEL=warn) → ${throughputMet ? "met" : "NOT met"}: worst ${f(worstThroughput * 100, 0)}%`);
log("note: load, hub (or floor server) and agents share this machine's cores; compare ratios within one run, not across runs.");
if (rows.some((r) => r.floor.failures + r.warn.failures + r.info.failures > 0)) process.exitCode = 1;
