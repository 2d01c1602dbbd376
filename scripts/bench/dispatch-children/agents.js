// @ts-check
// N simulated host agents (one memory-GPIO device each) in one process apart from the hub and the
// HTTP load. Also runs the "direct" comparison: the same action on an Executor over these agents'
// devices, in this process, with no hub and no network. Driven by the parent over IPC.
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { Executor, createAgent, createLogger, parseConfig } from "../../../host-agent/dist/index.js";

/** @typedef {import("../../../host-agent/dist/index.js").Agent} Agent */

const send = (/** @type {unknown} */ msg) => process.send?.(msg);
const silent = createLogger("silent");
/** @type {Agent[]} */
const agents = [];

/** @param {number[]} xs @param {number} q */
function quantile(xs, q) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? NaN;
}

/** @param {{url: string, tokens: string[], dir: string}} msg */
async function startAgents(msg) {
  for (let i = 0; i < msg.tokens.length; i++) {
    const config = parseConfig(
      {
        host: `bench-${i}`,
        hub: { url: msg.url, token: msg.tokens[i] },
        data_dir: join(msg.dir, `agent-${i}`),
        gpio: { driver: "memory" },
        devices: [{ id: `dut-${i}`, labels: { bench: "dispatch" }, resources: [{ name: "io", kind: "gpio", line: 5, direction: "out" }] }],
      },
      { baseDir: msg.dir },
    );
    const agent = createAgent(config, silent);
    await agent.start();
    agents.push(agent);
  }
}

/** @param {{sequential: number, count: number, concurrency: number, capMs: number}} msg */
async function direct(msg) {
  /** @type {Map<string, import("../../../host-agent/dist/index.js").RunnableDevice>} */
  const devices = new Map();
  for (const a of agents) for (const [id, d] of a.devices) devices.set(id, d);
  const ids = [...devices.keys()];
  /** @type {Map<string, () => void>} */
  const waiting = new Map();
  const executor = new Executor("bench-direct", devices, (r) => waiting.get(r.id)?.(), silent);
  executor.start();
  let seq = 0;
  const one = () =>
    new Promise((resolve) => {
      const id = `d${seq++}`;
      waiting.set(id, () => {
        waiting.delete(id);
        resolve(undefined);
      });
      executor.submit({ id, device: /** @type {string} */ (ids[seq % ids.length]), action: "gpio.read", resource: "io", params: {}, timeout_ms: 10_000 });
    });
  for (let i = 0; i < 200; i++) await one(); // warm-up
  const times = [];
  let deadline = Date.now() + msg.capMs;
  for (let i = 0; i < msg.sequential && Date.now() < deadline; i++) {
    const t0 = performance.now();
    await one();
    times.push(performance.now() - t0);
  }
  let issued = 0;
  deadline = Date.now() + msg.capMs;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: msg.concurrency }, async () => {
      while (issued < msg.count && Date.now() < deadline) {
        issued += 1;
        await one();
      }
    }),
  );
  const throughput = issued / ((performance.now() - t0) / 1000);
  await executor.stop();
  return { p50: quantile(times, 0.5), p99: quantile(times, 0.99), throughput };
}

async function stopAll() {
  await Promise.all(agents.splice(0).map((a) => a.stop()));
}

/** @typedef {{type: "start", url: string, tokens: string[], dir: string} | ({type: "direct"} & {sequential: number, count: number, concurrency: number, capMs: number}) | {type: "stop"}} Command */

process.on("message", async (/** @type {Command} */ msg) => {
  try {
    if (msg.type === "start") {
      await startAgents(msg);
      send({ type: "started" });
    } else if (msg.type === "direct") {
      send({ type: "direct", ...(await direct(msg)) });
    } else if (msg.type === "stop") {
      await stopAll();
      send({ type: "stopped" });
      process.disconnect?.();
      process.exit(0);
    }
  } catch (err) {
    send({ type: "error", message: err instanceof Error ? err.stack : String(err) });
  }
});
process.on("disconnect", () => {
  void stopAll().finally(() => process.exit(0));
});
send({ type: "up" });
