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

/** @typedef {{url: string, hosts: {name: string, token: string}[], dir: string, devices: number}} StartCommand */

/** @param {StartCommand} msg */
async function startAgents(msg) {
  for (const { name, token } of msg.hosts) {
    const devices = Array.from({ length: msg.devices }, (_, d) => ({ id: `dut-${name}-${d}`, labels: { bench: "dispatch" }, resources: [{ name: "io", kind: "gpio", line: d, direction: "out" }] }));
    const config = parseConfig(
      {
        host: name,
        hub: { url: msg.url, token },
        data_dir: join(msg.dir, name),
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

/** @typedef {({type: "start"} & StartCommand) | {type: "cpu"} | {type: "memory"} | {type: "stop"}} Command */

process.on("message", async (/** @type {Command} */ msg) => {
  try {
    if (msg.type === "start") {
      await startAgents(msg);
      send({ type: "started" });
    } else if (msg.type === "cpu") {
      const c = process.cpuUsage();
      send({ type: "cpu", micros: c.user + c.system });
    } else if (msg.type === "memory") {
      send({ type: "memory", rss: process.memoryUsage().rss });
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
