// @ts-check
// Dispatch benchmark: an in-process hub on 127.0.0.1:0 and N in-process agents (one memory-GPIO
// device each). Measures REST → hub → agent → result against the same action run directly on an
// agent Executor, for N = 1, 10, 100. Bounded in count and time; prints progress and a table.
// Targets to report against (not asserted): hub overhead < 1 ms at p50, > 2000 actions/s.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { createHub, createLogger as hubLogger, loadConfig } from "../../hub/dist/index.js";
import { Executor, createAgent, createLogger as agentLogger, parseConfig } from "../../host-agent/dist/index.js";

const SIZES = [1, 10, 100];
const SEQUENTIAL = 2000;
const CONCURRENCY = 64;
const THROUGHPUT_COUNT = 4000;
/** Per-phase time cap, so a slow machine still finishes. */
const PHASE_CAP_MS = 30_000;
const ADMIN_KEY = "lrk_bench-admin-key-0123456789abcdef";

const log = (/** @type {string} */ line) => process.stdout.write(`${line}\n`);
const gc = () => /** @type {{gc?: () => void}} */ (globalThis).gc?.();

/** @param {number[]} xs @param {number} q */
function quantile(xs, q) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? NaN;
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
  const config = loadConfig({ PORT: "0", LABRIG_BIND: "127.0.0.1", LABRIG_DATA_DIR: dir, LOG_LEVEL: "silent", LABRIG_ADMIN_KEY: ADMIN_KEY, LABRIG_QUEUE_TIMEOUT_MS: "60000" });
  const hub = createHub(config, { logger: hubLogger("silent"), announce: () => undefined });
  const { url } = await hub.start();
  const headers = { authorization: `Bearer ${ADMIN_KEY}`, "content-type": "application/json" };
  /** @type {import("../../host-agent/dist/index.js").Agent[]} */
  const agents = [];
  try {
    const tokens = [];
    for (let i = 0; i < n; i++) {
      const res = await fetch(`${url}/api/hosts`, { method: "POST", headers, body: JSON.stringify({ name: `bench-${i}` }) });
      if (res.status !== 201) throw new Error(`enrolling bench-${i} failed: ${res.status} ${await res.text()}`);
      tokens.push(/** @type {{token: string}} */ (await res.json()).token);
    }
    gc();
    const before = process.memoryUsage();
    const silent = agentLogger("silent");
    for (let i = 0; i < n; i++) {
      const agentConfig = parseConfig(
        {
          host: `bench-${i}`,
          hub: { url, token: tokens[i] },
          data_dir: join(dir, `agent-${i}`),
          gpio: { driver: "memory" },
          devices: [{ id: `dut-${i}`, labels: { bench: "dispatch" }, resources: [{ name: "io", kind: "gpio", line: 5, direction: "out" }] }],
        },
        { baseDir: dir },
      );
      const agent = createAgent(agentConfig, silent);
      await agent.start();
      agents.push(agent);
    }
    // Wait until every host is online.
    const deadline = Date.now() + 30_000;
    for (;;) {
      const body = /** @type {{hosts: {state: string}[]}} */ (await (await fetch(`${url}/api/hosts`, { headers })).json());
      if (body.hosts.filter((h) => h.state === "online").length === n) break;
      if (Date.now() > deadline) throw new Error("agents did not all come online within 30 s");
      await new Promise((r) => setTimeout(r, 50));
    }
    gc();
    const after = process.memoryUsage();
    log(`  N=${n}: ${n} agent(s) online`);

    const body = JSON.stringify({ action: "gpio.read", resource: "io", params: {}, target: { selector: { labels: { bench: "dispatch" } } } });
    let failures = 0;
    const viaHub = async () => {
      const res = await fetch(`${url}/api/actions`, { method: "POST", headers, body });
      const record = /** @type {{status?: string}} */ (await res.json());
      if (record.status !== "succeeded") failures += 1;
    };

    // The same action straight on an Executor over the same devices: the agent's cost without hub and network.
    const devices = new Map();
    for (const a of agents) for (const [id, d] of a.devices) devices.set(id, d);
    const ids = [...devices.keys()];
    /** @type {Map<string, () => void>} */
    const waiting = new Map();
    const direct = new Executor("bench-direct", devices, (r) => waiting.get(r.id)?.(), silent);
    direct.start();
    let seq = 0;
    const viaExecutor = () =>
      new Promise((resolve) => {
        const id = `d${seq++}`;
        waiting.set(id, () => {
          waiting.delete(id);
          resolve(undefined);
        });
        direct.submit({ id, device: ids[seq % ids.length], action: "gpio.read", resource: "io", params: {}, timeout_ms: 10_000 });
      });

    await sequential(viaHub, 200); // warm-up (JIT, connection pool)
    await sequential(viaExecutor, 200);
    log(`  N=${n}: sequential latency (${SEQUENTIAL} requests each)...`);
    const hubTimes = await sequential(viaHub, SEQUENTIAL);
    const directTimes = await sequential(viaExecutor, SEQUENTIAL);
    log(`  N=${n}: throughput (${CONCURRENCY} concurrent clients, ${THROUGHPUT_COUNT} requests)...`);
    const hubThroughput = await concurrent(viaHub, THROUGHPUT_COUNT, CONCURRENCY);
    const directThroughput = await concurrent(viaExecutor, THROUGHPUT_COUNT, CONCURRENCY);
    await direct.stop();
    return {
      n,
      hubP50: quantile(hubTimes, 0.5),
      hubP99: quantile(hubTimes, 0.99),
      directP50: quantile(directTimes, 0.5),
      directP99: quantile(directTimes, 0.99),
      hubThroughput,
      directThroughput,
      rssPerAgentKb: (after.rss - before.rss) / 1024 / n,
      heapPerAgentKb: (after.heapUsed - before.heapUsed) / 1024 / n,
      failures,
    };
  } finally {
    for (const a of agents) await a.stop();
    await hub.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

const rows = [];
for (const n of SIZES) {
  log(`dispatch bench: N=${n} agents`);
  rows.push(await runSize(n));
}

const f = (/** @type {number} */ x, d = 2) => x.toFixed(d);
log("");
log("dispatch: REST → hub → agent → result vs the same gpio.read on an Executor (ms; actions/s; memory is hub + in-process agent, per agent)");
log("   N | hub p50 | hub p99 | exec p50 | exec p99 | overhead p50 | ratio p50 | hub act/s | exec act/s | RSS/agent KB | heap/agent KB | failed");
for (const r of rows) {
  log(
    [
      String(r.n).padStart(4),
      f(r.hubP50).padStart(7),
      f(r.hubP99).padStart(7),
      f(r.directP50, 3).padStart(8),
      f(r.directP99, 3).padStart(8),
      f(r.hubP50 - r.directP50).padStart(12),
      `${f(r.hubP50 / Math.max(r.directP50, 0.001), 0)}x`.padStart(9),
      f(r.hubThroughput, 0).padStart(9),
      f(r.directThroughput, 0).padStart(10),
      f(r.rssPerAgentKb, 0).padStart(12),
      f(r.heapPerAgentKb, 0).padStart(13),
      String(r.failures).padStart(6),
    ].join(" | "),
  );
}
const worst = rows.reduce((a, b) => (b.hubP50 - b.directP50 > a.hubP50 - a.directP50 ? b : a));
const slowest = rows.reduce((a, b) => (b.hubThroughput < a.hubThroughput ? b : a));
log(`targets: hub overhead p50 < 1 ms → worst ${f(worst.hubP50 - worst.directP50)} ms (N=${worst.n}); throughput > 2000 actions/s → lowest ${f(slowest.hubThroughput, 0)} (N=${slowest.n})`);
