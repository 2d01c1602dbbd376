// @ts-check
// The hub under test, in a process of its own (as pm2 runs it), so the bench's HTTP clients and the
// simulated agents do not share its event loop or its heap. Config comes from the environment like
// `labrig-hub serve`; the parent talks to it over IPC: "ready" with the URL, "cpu" (process CPU time so far), "memory" on request
// (after a full GC, so the figure is live objects rather than garbage), "stop" for a clean exit
// (a clean exit is also what makes --cpu-prof write its profile).
import { createHub, createLogger, loadConfig } from "../../../hub/dist/index.js";

const send = (/** @type {unknown} */ msg) => process.send?.(msg);
const gc = () => /** @type {{gc?: () => void}} */ (globalThis).gc?.();

const config = loadConfig(process.env);
// BENCH_HUB_LOG=stdout logs as `npm start` does (JSON lines on stdout, which the parent writes to a
// file); otherwise stderr, so the (warn-level) lines show up in the bench's output without mixing into IPC.
const hub = createHub(config, { logger: createLogger(config.logLevel, process.env.BENCH_HUB_LOG === "stdout" ? 1 : 2), announce: () => undefined });
const { url } = await hub.start();
send({ type: "ready", url, pid: process.pid });

process.on("message", async (/** @type {{type: string}} */ msg) => {
  if (msg.type === "memory") {
    // Two passes: the first can leave objects whose finalizers free more on the second.
    gc();
    await new Promise((r) => setImmediate(r));
    gc();
    const m = process.memoryUsage();
    send({ type: "memory", rss: m.rss, heapUsed: m.heapUsed, external: m.external, arrayBuffers: m.arrayBuffers });
  } else if (msg.type === "cpu") {
    const c = process.cpuUsage();
    send({ type: "cpu", micros: c.user + c.system });
  } else if (msg.type === "stop") {
    await hub.stop();
    send({ type: "stopped" });
    process.disconnect?.();
    process.exit(0);
  }
});
// The parent going away (killed, crashed) must not leave a hub listening.
process.on("disconnect", () => {
  void hub.stop().finally(() => process.exit(0));
});
