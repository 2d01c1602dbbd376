import { fork, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { cleanupTempDirs, makeTempDir, testEnv } from "./helpers.js";

const CLI = fileURLToPath(new URL("../dist/cli.js", import.meta.url));
const children: ChildProcess[] = [];

afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  cleanupTempDirs();
});

/** Starts the built `labrig-hub serve` as pm2 would (fork with IPC) and waits for 'ready' and the listening URL. */
async function serve(
  opts: { dataDir?: string; env?: Record<string, string> } = {},
): Promise<{ child: ChildProcess; url: string; output: () => string; stdout: () => string; stderr: () => string }> {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: build first with 'cd /work/main && npx tsc -b' (npm test does this).`);
  const env = { ...process.env, ...testEnv(opts.dataDir ?? makeTempDir(), opts.env), LOG_LEVEL: "info" };
  const child = fork(CLI, ["serve"], { env, stdio: ["ignore", "pipe", "pipe", "ipc"] });
  children.push(child);
  let out = "";
  let stdout = "";
  let stderr = "";
  child.stdout?.on("data", (d: Buffer) => {
    out += d.toString();
    stdout += d.toString();
  });
  child.stderr?.on("data", (d: Buffer) => {
    out += d.toString();
    stderr += d.toString();
  });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no 'ready' within 10 s; output:\n${out}`)), 10_000);
    child.on("message", (m) => {
      if (m === "ready") {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once("exit", (code) => reject(new Error(`hub exited with ${code} before ready; output:\n${out}`)));
  });
  const listening = stdout
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((l) => JSON.parse(l) as { msg?: string; url?: string })
    .find((l) => l.msg === "listening");
  if (!listening?.url) throw new Error(`no 'listening' log line before ready; output:\n${out}`);
  return { child, url: listening.url, output: () => out, stdout: () => stdout, stderr: () => stderr };
}

function exitOf(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  return new Promise((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));
}

describe("labrig-hub serve as a process", () => {
  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    it(`signals ready after listening, serves, and exits 0 on ${signal}`, async () => {
      const { child, url, output } = await serve();
      const res = await fetch(`${url}/api/health`);
      expect(res.status).toBe(200);
      const exited = exitOf(child);
      child.kill(signal);
      expect(await exited).toEqual({ code: 0, signal: null });
      expect(output()).toContain('"msg":"labrig hub stopped"');
    });
  }

  it("on a first start without LABRIG_ADMIN_KEY prints a new admin key once on stderr, logs where (not the key), and never again", async () => {
    const dataDir = makeTempDir();
    const first = await serve({ dataDir, env: { LABRIG_ADMIN_KEY: "" } });
    const match = /LABRIG ADMIN KEY[^:]*: (lrk_[A-Za-z0-9_-]{43})/.exec(first.stderr());
    expect(match, first.stderr()).not.toBeNull();
    const key = match?.[1] ?? "";
    expect(first.stderr().split("LABRIG ADMIN KEY")).toHaveLength(2);
    expect(first.stdout()).not.toContain(key);
    const logged = first
      .stdout()
      .split("\n")
      .filter((l) => l.trim() !== "")
      .map((l) => JSON.parse(l) as { msg?: string; key_id?: string });
    expect(logged.find((l) => l.msg?.includes("printed it once on stderr"))?.key_id).toMatch(/^key-/);
    const res = await fetch(`${first.url}/api/keys`, { headers: { authorization: `Bearer ${key}` } });
    expect(res.status).toBe(200);
    const exited = exitOf(first.child);
    first.child.kill("SIGTERM");
    await exited;

    const second = await serve({ dataDir, env: { LABRIG_ADMIN_KEY: "" } });
    expect(second.stderr()).not.toContain("LABRIG ADMIN KEY");
    expect((await fetch(`${second.url}/api/keys`, { headers: { authorization: `Bearer ${key}` } })).status).toBe(200);
  });
});
