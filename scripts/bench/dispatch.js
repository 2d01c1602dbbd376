// @ts-check
// Dispatch benchmark. Three processes, as in production: the hub alone in one (dispatch-children/hub.js,
// createHub with the env config `labrig-hub serve` reads, LOG_LEVEL=warn), N simulated agents with one
// memory-GPIO device each in another (dispatch-children/agents.js), and the HTTP load here over
// keep-alive connections. Measures REST → hub → agent → result against the same gpio.read run directly
// on an Executor in the agents' process (the agent's cost without hub and network), for N = 1, 10, 100,
// and the hub process's memory per connected agent (after a full GC, before and after the agents
// connect). Everything on 127.0.0.1; bounded in count and time; every child is stopped at the end.
// Targets (reported next to the figures, not asserted): hub overhead < 1 ms at p50, > 2000 actions/s.
// BENCH_HUB_CPU_PROF=<dir> runs the hub with --cpu-prof into <dir> (open the .cpuprofile in Chrome DevTools).
import { fork } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { Agent, request } from "node:http";
import { loadavg, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const SIZES = (process.env.BENCH_SIZES ?? "1,10,100").split(",").map(Number);
const WARMUP = 300;
const SEQUENTIAL = 2000;
const CONCURRENCY = 64;
const THROUGHPUT_COUNT = 6000;
/** Per-phase time cap, so a slow machine still finishes. */
const PHASE_CAP_MS = 30_000;
/** Cap on any one IPC exchange with a child (start, agents online, stop). */
const CHILD_CAP_MS = 60_000;
const ADMIN_KEY = "lrk_bench-admin-key-0123456789abcdef";
const HUB_LOG_LEVEL = "warn";

const log = (/** @type {string} */ line) => process.stdout.write(`${line}\n`);
const load = () => loadavg().map((x) => x.toFixed(2)).join(" ");

/** @param {number[]} xs @param {number} q */
function quantile(xs, q) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? NaN;
}

/**
 * A forked child and a way to wait for its next message of a type (bounded).
 * @param {string} script @param {string[]} execArgv @param {NodeJS.ProcessEnv} env
 */
function startChild(script, execArgv, env) {
  const child = fork(join(here, "dispatch-children", script), [], { execArgv, env, stdio: ["ignore", "inherit", "inherit", "ipc"] });
  /** @type {{type: string, resolve: (m: any) => void}[]} */
  const waiters = [];
  child.on("message", (/** @type {{type: string, message?: string}} */ msg) => {
    if (msg.type === "error") {
      for (const w of waiters.splice(0)) w.resolve(msg);
      return;
    }
    const i = waiters.findIndex((w) => w.type === msg.type);
    if (i >= 0) waiters.splice(i, 1)[0]?.resolve(msg);
  });
  const exited = new Promise((resolve) => child.once("exit", resolve));
  return {
    child,
    exited,
    /**
     * Resolves with the child's next message of this type; rejects on timeout, child error or exit.
     * @param {string} type @param {unknown} [command]
     * @returns {Promise<any>} the message (its shape depends on the type; see the child scripts)
     */
    async ask(type, command) {
      /** @type {NodeJS.Timeout | undefined} */
      let timer;
      const reply = new Promise((resolve) => waiters.push({ type, resolve }));
      if (command !== undefined) child.send(/** @type {import("node:child_process").Serializable} */ (command));
      try {
        const msg = await Promise.race([
          reply,
          exited.then((code) => ({ type: "error", message: `${script} exited (${code}) while waiting for '${type}'` })),
          new Promise((resolve) => (timer = setTimeout(() => resolve({ type: "error", message: `${script}: no '${type}' within ${CHILD_CAP_MS} ms` }), CHILD_CAP_MS))),
        ]);
        if (/** @type {{type: string}} */ (msg).type === "error") throw new Error(/** @type {{message: string}} */ (msg).message);
        return msg;
      } finally {
        clearTimeout(timer);
      }
    },
    /** Asks for a clean stop; kills (by this child's pid) only if it does not exit in time. */
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      if (child.connected) child.send({ type: "stop" });
      const done = await Promise.race([exited.then(() => true), new Promise((r) => setTimeout(() => r(false), 10_000).unref())]);
      if (!done) child.kill("SIGKILL");
    },
  };
}

/** Keep-alive HTTP/1.1 client: global fetch opens a fresh connection per request, which is the bottleneck. */
const httpAgent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY + 4 });

/**
 * @param {string} url @param {"GET" | "POST"} method @param {string | null} body
 * @returns {Promise<{status: number, json: any}>} json is whatever the hub answered
 */
function call(url, method, body) {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, agent: httpAgent, headers: { authorization: `Bearer ${ADMIN_KEY}`, ...(body === null ? {} : { "content-type": "application/json", "content-length": Buffer.byteLength(body) }) } }, (res) => {
      /** @type {Buffer[]} */
      const chunks = [];
      res.on("data", (c) => chunks.push(c));
      res.on("end", () => {
        try {
          resolve({ status: res.statusCode ?? 0, json: JSON.parse(Buffer.concat(chunks).toString("utf8")) });
        } catch (err) {
          reject(err);
        }
      });
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end(body ?? undefined);
  });
}

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

/** @param {number} n */
async function runSize(n) {
  const dir = mkdtempSync(join(tmpdir(), "labrig-bench-"));
  const prof = process.env.BENCH_HUB_CPU_PROF;
  const hubArgs = ["--expose-gc", ...(prof ? ["--cpu-prof", `--cpu-prof-dir=${prof}`, `--cpu-prof-name=hub-N${n}.cpuprofile`] : [])];
  const hubEnv = { ...process.env, PORT: "0", LABRIG_BIND: "127.0.0.1", LABRIG_DATA_DIR: join(dir, "hub"), LOG_LEVEL: HUB_LOG_LEVEL, LABRIG_ADMIN_KEY: ADMIN_KEY, LABRIG_QUEUE_TIMEOUT_MS: "60000" };
  const hub = startChild("hub.js", hubArgs, hubEnv);
  /** @type {ReturnType<typeof startChild> | null} */
  let agents = null;
  try {
    const { url } = await hub.ask("ready");
    /** @type {string[]} */
    const tokens = [];
    for (let i = 0; i < n; i++) {
      const res = await call(`${url}/api/hosts`, "POST", JSON.stringify({ name: `bench-${i}` }));
      if (res.status !== 201) throw new Error(`enrolling bench-${i} failed: ${res.status} ${JSON.stringify(res.json)}`);
      tokens.push(res.json.token);
    }
    // Warm the hub's HTTP path first, so the "before" figure already holds what serving requests allocates once.
    for (let i = 0; i < 50; i++) await call(`${url}/api/hosts`, "GET", null);
    const before = await hub.ask("memory", { type: "memory" });

    agents = startChild("agents.js", [], { ...process.env });
    await agents.ask("up");
    await agents.ask("started", { type: "start", url, tokens, dir: join(dir, "agents") });
    const deadline = Date.now() + 30_000;
    for (;;) {
      const res = await call(`${url}/api/hosts`, "GET", null);
      if (/** @type {{state: string}[]} */ (res.json.hosts).filter((h) => h.state === "online").length === n) break;
      if (Date.now() > deadline) throw new Error("agents did not all come online within 30 s");
      await new Promise((r) => setTimeout(r, 50));
    }
    const after = await hub.ask("memory", { type: "memory" });
    log(`  N=${n}: ${n} agent(s) online; hub RSS ${(before.rss / 1048576).toFixed(1)} → ${(after.rss / 1048576).toFixed(1)} MB, heap ${(before.heapUsed / 1048576).toFixed(1)} → ${(after.heapUsed / 1048576).toFixed(1)} MB`);

    const body = JSON.stringify({ action: "gpio.read", resource: "io", params: {}, target: { selector: { labels: { bench: "dispatch" } } } });
    let failures = 0;
    const viaHub = async () => {
      const res = await call(`${url}/api/actions`, "POST", body);
      if (res.status !== 200 || res.json.status !== "succeeded") failures += 1;
    };

    await sequential(viaHub, WARMUP); // JIT and connection pool
    await concurrent(viaHub, WARMUP, CONCURRENCY); // opens the pool's sockets
    const loadStart = load();
    log(`  N=${n}: sequential latency (${SEQUENTIAL} requests)...`);
    const cpu0 = (await hub.ask("cpu", { type: "cpu" })).micros;
    const hubTimes = await sequential(viaHub, SEQUENTIAL);
    // The hub's own CPU per action (user + system, IPC exchange included): what is not waiting on hops.
    const hubCpuUs = ((await hub.ask("cpu", { type: "cpu" })).micros - cpu0) / hubTimes.length;
    log(`  N=${n}: throughput (${CONCURRENCY} concurrent clients, ${THROUGHPUT_COUNT} requests)...`);
    const hubThroughput = await concurrent(viaHub, THROUGHPUT_COUNT, CONCURRENCY);
    log(`  N=${n}: direct Executor in the agents' process...`);
    const direct = await agents.ask("direct", { type: "direct", sequential: SEQUENTIAL, count: THROUGHPUT_COUNT, concurrency: CONCURRENCY, capMs: PHASE_CAP_MS });
    return {
      n,
      hubP50: quantile(hubTimes, 0.5),
      hubP99: quantile(hubTimes, 0.99),
      directP50: /** @type {number} */ (direct.p50),
      directP99: /** @type {number} */ (direct.p99),
      hubCpuUs,
      hubThroughput,
      directThroughput: /** @type {number} */ (direct.throughput),
      rssPerAgentKb: (after.rss - before.rss) / 1024 / n,
      heapPerAgentKb: (after.heapUsed - before.heapUsed) / 1024 / n,
      failures,
      load: `${loadStart} → ${load()}`,
    };
  } finally {
    // Hub first: once it is shutting down, the agents' disconnects are not logged as hosts going offline.
    await hub.stop();
    await agents?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

log(`dispatch bench: hub alone in a child process (LOG_LEVEL=${HUB_LOG_LEVEL}), agents in another, HTTP keep-alive load here; load average ${load()}`);
const rows = [];
for (const n of SIZES) {
  log(`dispatch bench: N=${n} agents`);
  rows.push(await runSize(n));
}
httpAgent.destroy();

const f = (/** @type {number} */ x, d = 2) => x.toFixed(d);
log("");
log("dispatch: REST → hub → agent → result vs the same gpio.read on an Executor (latency ms, sequential; actions/s with 64 concurrent clients)");
log("memory: hub process only, after a full GC, (with N agents − without) / N");
log("   N | hub p50 | hub p99 | exec p50 | exec p99 | overhead p50 | overhead p99 | hub/exec p50 | hub CPU µs/action | hub act/s | exec act/s | hub/exec act/s | hub RSS/agent KB | hub heap/agent KB | failed | load avg (1/5/15 min)");
for (const r of rows) {
  log(
    [
      String(r.n).padStart(4),
      f(r.hubP50).padStart(7),
      f(r.hubP99).padStart(7),
      f(r.directP50, 3).padStart(8),
      f(r.directP99, 3).padStart(8),
      f(r.hubP50 - r.directP50, 3).padStart(12),
      f(r.hubP99 - r.directP99, 3).padStart(12),
      `${f(r.hubP50 / Math.max(r.directP50, 0.001), 0)}x`.padStart(12),
      f(r.hubCpuUs, 0).padStart(17),
      f(r.hubThroughput, 0).padStart(9),
      f(r.directThroughput, 0).padStart(10),
      `${f((r.hubThroughput / r.directThroughput) * 100, 1)}%`.padStart(14),
      f(r.rssPerAgentKb, 0).padStart(16),
      f(r.heapPerAgentKb, 1).padStart(17),
      String(r.failures).padStart(6),
      ` ${r.load}`,
    ].join(" | "),
  );
}
const worst = rows.reduce((a, b) => (b.hubP50 - b.directP50 > a.hubP50 - a.directP50 ? b : a));
const slowest = rows.reduce((a, b) => (b.hubThroughput < a.hubThroughput ? b : a));
log(`target: hub overhead p50 < 1 ms          → worst ${f(worst.hubP50 - worst.directP50, 3)} ms (N=${worst.n})`);
log(`target: throughput > 2000 actions/s       → lowest ${f(slowest.hubThroughput, 0)} actions/s (N=${slowest.n})`);
log("note: client, hub and agents share this machine's cores; per-agent RSS for small N is within page-allocation noise, heap is the steadier figure.");
if (rows.some((r) => r.failures > 0)) process.exitCode = 1;
