// @ts-check
// What the benches share: quantiles, child processes driven over IPC (scripts/bench/children), and a
// keep-alive JSON client for the hub's REST API.
import { fork } from "node:child_process";
import { createWriteStream } from "node:fs";
import { Agent, request } from "node:http";
import { loadavg } from "node:os";
import { join } from "node:path";
import { ROOT } from "./launch.js";

const CHILDREN = join(ROOT, "scripts", "bench", "children");

/** The q-quantile (0..1) of xs, NaN when empty. @param {readonly number[]} xs @param {number} q */
export function quantile(xs, q) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? NaN;
}

/** The machine's load averages (1, 5, 15 min), for the report: a loaded machine explains odd figures. */
export const loadAverage = () => loadavg().map((x) => x.toFixed(2)).join(" ");

/** @param {string} line */
export const log = (line) => process.stdout.write(`${line}\n`);

/**
 * A child of scripts/bench/children, forked with an IPC channel, and a way to wait (bounded) for its
 * next message of a type. Every child answers {type: "stop"} with a clean exit and sends
 * {type: "error", message} when a command fails.
 * @param {string} script file name in scripts/bench/children
 * @param {{execArgv?: string[], env?: NodeJS.ProcessEnv, stdoutFile?: string | null, capMs?: number}} [options]
 *   stdoutFile: where the child's stdout goes (default: this process's stdout); capMs: the longest wait for any message
 */
export function startChild(script, { execArgv = [], env = process.env, stdoutFile = null, capMs = 180_000 } = {}) {
  const child = fork(join(CHILDREN, script), [], { execArgv, env, stdio: ["ignore", stdoutFile === null ? "inherit" : "pipe", "inherit", "ipc"] });
  if (stdoutFile !== null) child.stdout?.pipe(createWriteStream(stdoutFile));
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
     * Resolves with the child's next message of this type (sending `command` first, when given);
     * rejects on timeout, child error or exit.
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
          new Promise((resolve) => (timer = setTimeout(() => resolve({ type: "error", message: `${script}: no '${type}' within ${capMs} ms` }), capMs))),
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

/**
 * A JSON client over keep-alive HTTP/1.1 (global fetch opens a fresh connection per request, which
 * would be the bottleneck), authenticated with an admin key.
 * @param {string} adminKey @param {number} maxSockets
 */
export function jsonClient(adminKey, maxSockets) {
  const agent = new Agent({ keepAlive: true, maxSockets });
  return {
    /**
     * @param {string} url @param {"GET" | "POST"} method @param {string | null} body
     * @returns {Promise<{status: number, json: any}>} json is whatever the server answered
     */
    call(url, method, body) {
      return new Promise((resolve, reject) => {
        const headers = { authorization: `Bearer ${adminKey}`, ...(body === null ? {} : { "content-type": "application/json", "content-length": Buffer.byteLength(body) }) };
        const req = request(url, { method, agent, headers }, (res) => {
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
    },
    close: () => agent.destroy(),
  };
}
