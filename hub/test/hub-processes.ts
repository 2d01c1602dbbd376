import { spawn, type ChildProcess } from "node:child_process";
import { resolve } from "node:path";
import { waitFor } from "./helpers.js";

// Built hub and CLI programs as child processes of a test; killProcesses() in afterEach ends what is left.

export const HUB_CLI = resolve(import.meta.dirname, "..", "dist", "cli.js");
export const LABRIG_CLI = resolve(import.meta.dirname, "..", "dist", "cli", "labrig.js");

const children: ChildProcess[] = [];

/** Runs `node SCRIPT ARGS` without blocking this process (in-process agents must keep answering) and collects its output. */
export function runProcess(script: string, args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolvePromise) => {
    const child = spawn(process.execPath, [script, ...args], { env, stdio: ["ignore", "pipe", "pipe"] });
    children.push(child);
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.once("exit", (code) => resolvePromise({ code, stdout, stderr }));
  });
}

/** Starts `labrig-hub serve` with `env` and waits until `url` answers /api/health. */
export async function serveHub(env: NodeJS.ProcessEnv, url: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, [HUB_CLI, "serve"], { env, stdio: "ignore" });
  children.push(child);
  await waitFor(async () => (await fetch(`${url}/api/health`).catch(() => null))?.ok, 15_000, 100);
  return child;
}

/** Kills (SIGKILL) every process these helpers started that still runs. */
export async function killProcesses(): Promise<void> {
  for (const c of children.splice(0)) {
    if (c.exitCode === null && c.signalCode === null) {
      c.kill("SIGKILL");
      await new Promise((r) => c.once("exit", r));
    }
  }
}
