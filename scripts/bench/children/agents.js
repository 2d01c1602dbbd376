// @ts-check
// N real host agents (createAgent, memory-GPIO devices) in one process apart from the hub and the
// HTTP load. Driven by the parent over IPC.
import { join } from "node:path";
import { createAgent, createLogger, parseConfig } from "../../../host-agent/dist/index.js";

/** @typedef {import("../../../host-agent/dist/index.js").Agent} Agent */

const send = (/** @type {unknown} */ msg) => process.send?.(msg);
const silent = createLogger("silent");
/** @type {Agent[]} */
const agents = [];

/** @param {{url: string, tokens: string[], dir: string, devices: number}} msg */
async function startAgents(msg) {
  for (let i = 0; i < msg.tokens.length; i++) {
    const devices = Array.from({ length: msg.devices }, (_, d) => ({ id: `dut-${i}-${d}`, labels: { bench: "dispatch" }, resources: [{ name: "io", kind: "gpio", line: d, direction: "out" }] }));
    const config = parseConfig(
      {
        host: `bench-${i}`,
        hub: { url: msg.url, token: msg.tokens[i] },
        data_dir: join(msg.dir, `agent-${i}`),
        gpio: { driver: "memory" },
        devices,
      },
      { baseDir: msg.dir },
    );
    const agent = createAgent(config, silent);
    await agent.start();
    agents.push(agent);
  }
}

async function stopAll() {
  await Promise.all(agents.splice(0).map((a) => a.stop()));
}

/** @typedef {{type: "start", url: string, tokens: string[], dir: string, devices: number} | {type: "cpu"} | {type: "stop"}} Command */

process.on("message", async (/** @type {Command} */ msg) => {
  try {
    if (msg.type === "start") {
      await startAgents(msg);
      send({ type: "started" });
    } else if (msg.type === "cpu") {
      const c = process.cpuUsage();
      send({ type: "cpu", micros: c.user + c.system });
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
