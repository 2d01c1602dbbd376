import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { createWriteStream, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AGENT_CLI, ROOT, enrollHost, startNode, writeSimAgentConfig } from "../scripts/lib/launch.js";
import { requireTool } from "../hub/test/system-tools.js";
import { E2E_ADMIN_KEY, exited, freePort, waitFor, waitForHostState } from "./helpers.js";

// The real pm2 (the hub workspace's dependency) running deployment/ecosystem.config.cjs, in a
// PM2_HOME of its own, on a free port on 127.0.0.1; the daemon is killed at the end.
const PM2 = join(ROOT, "node_modules", ".bin", "pm2");
const ECOSYSTEM = join(ROOT, "deployment", "ecosystem.config.cjs");

const dir = mkdtempSync(join(tmpdir(), "labrig-pm2-"));
const pm2Home = join(dir, "pm2");
let url = "";
let env: NodeJS.ProcessEnv = {};
let agent: ChildProcess | null = null;
const log = createWriteStream(join(dir, "agent.log"));

/** Runs a pm2 command without blocking this process, whose HTTP pool must see the old hub's sockets close. */
function pm2(...args: string[]): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(PM2, args, { env, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (out += d.toString()));
    child.once("exit", (code) => resolve({ code, out }));
  });
}

function hubProcess(): { status: string; pid: number; restarts: number } {
  const list = JSON.parse(spawnSync(PM2, ["jlist"], { env, encoding: "utf8" }).stdout) as Array<{ name: string; pid: number; pm2_env: { status: string; restart_time: number } }>;
  const app = list.find((p) => p.name === "labrig-hub");
  if (!app) throw new Error("pm2 does not list labrig-hub");
  return { status: app.pm2_env.status, pid: app.pid, restarts: app.pm2_env.restart_time };
}

async function action(body: Record<string, unknown>): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${url}/api/hosts/pm-1/devices/dut1/actions`, {
    method: "POST",
    headers: { authorization: `Bearer ${E2E_ADMIN_KEY}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

/** The agent's socket is connected to the hub process now serving (a host's stored state says online at once after a restart). */
function agentConnected(): Promise<boolean> {
  return waitFor(
    async () => {
      const res = await fetch(`${url}/api/system/status`, { headers: { authorization: `Bearer ${E2E_ADMIN_KEY}` } });
      return res.ok && ((await res.json()) as { fleet: { agents_connected: number } }).fleet.agents_connected === 1;
    },
    20_000,
    "the agent to reconnect",
  );
}

beforeAll(async () => {
  if (!existsSync(PM2)) throw new Error(`${PM2} is missing: run npm ci (pm2 is a dependency of the hub workspace).`);
  const port = await freePort();
  url = `http://127.0.0.1:${port}`;
  env = {
    ...process.env,
    PM2_HOME: pm2Home,
    PORT: String(port),
    LABRIG_BIND: "127.0.0.1",
    LABRIG_DATA_DIR: join(dir, "hub"),
    LABRIG_ADMIN_KEY: E2E_ADMIN_KEY,
    LABRIG_DRAIN_MS: "8000",
    LABRIG_HEARTBEAT_MS: "500",
  };
});

afterAll(async () => {
  if (agent && agent.exitCode === null) {
    agent.kill("SIGTERM");
    await exited(agent);
  }
  await pm2("kill");
  log.end();
  rmSync(dir, { recursive: true, force: true });
});

describe("the hub under real pm2 with deployment/ecosystem.config.cjs", () => {
  it("starts (ready only once it listens), restarts and reloads draining running work with agents back by themselves, stops, logs to pm2's files", async () => {
    const started = await pm2("start", ECOSYSTEM);
    expect(started.code, started.out).toBe(0);
    // wait_ready: pm2 start returned, so the hub said ready, so it answers now.
    expect((await fetch(`${url}/api/health`)).status).toBe(200);
    const first = hubProcess();
    expect(first.status).toBe("online");

    const token = enrollHost("pm-1", env);
    const config = writeSimAgentConfig({ dir: join(dir, "pm-1"), host: "pm-1", hubUrl: url, token });
    agent = startNode([AGENT_CLI, "run", "--config", config], { env, logFile: log });
    await waitForHostState(url, "pm-1", "online", 15_000);

    // A restart while an action runs: the action finishes (drain), then the new process serves.
    const running = action({ action: "wait", params: { ms: 2000 } });
    await new Promise((r) => setTimeout(r, 300));
    const restart = pm2("restart", "labrig-hub");
    const done = await running;
    expect(done.status).toBe(200);
    expect(done.body).toMatchObject({ status: "succeeded" });
    expect((await restart).code).toBe(0);
    const second = hubProcess();
    expect(second.status).toBe("online");
    expect(second.pid).not.toBe(first.pid);
    await agentConnected();
    expect((await action({ action: "wait", params: { ms: 1 } })).body).toMatchObject({ status: "succeeded" });

    const reloaded = await pm2("reload", "labrig-hub");
    expect(reloaded.code, reloaded.out).toBe(0);
    const third = hubProcess();
    expect(third.status).toBe("online");
    expect(third.pid).not.toBe(second.pid);
    expect((await fetch(`${url}/api/health`)).status).toBe(200);
    await agentConnected();

    const stopped = await pm2("stop", "labrig-hub");
    expect(stopped.code, stopped.out).toBe(0);
    expect(hubProcess().status).toBe("stopped");
    expect(await fetch(`${url}/api/health`).then(() => "answered", () => "refused")).toBe("refused");

    const out = readFileSync(join(pm2Home, "logs", "labrig-hub-out.log"), "utf8");
    const lines = out.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as { msg: string });
    expect(lines.filter((l) => l.msg === "listening")).toHaveLength(3);
    expect(lines.filter((l) => l.msg === "labrig hub stopped")).toHaveLength(3);
    expect(lines.some((l) => l.msg === "actions still running after the drain; they fail with shutting_down")).toBe(false);
  }, 120_000);

  it("rotates pm2's logs with deployment/pm2/logrotate.conf and logrotate, and pm2 keeps writing to the new file", async () => {
    requireTool("logrotate", "logrotate");
    expect((await pm2("start", "labrig-hub")).code).toBe(0);
    const conf = readFileSync(join(ROOT, "deployment", "pm2", "logrotate.conf"), "utf8").replaceAll("@PM2_HOME@", pm2Home).replaceAll("@PM2@", PM2);
    const confFile = join(dir, "logrotate.conf");
    writeFileSync(confFile, conf, { mode: 0o644 });
    const res = spawnSync("logrotate", ["--force", "--state", join(dir, "logrotate.state"), confFile], { env, encoding: "utf8" });
    expect(res.status, `${res.stdout}${res.stderr}`).toBe(0);
    const logs = readdirSync(join(pm2Home, "logs"));
    expect(logs.some((f) => /^labrig-hub-out\.log-\d{8}-\d+$/.test(f)), logs.join(" ")).toBe(true);
    // pm2 reopened its files: what the hub logs now lands in a fresh labrig-hub-out.log.
    expect((await pm2("restart", "labrig-hub")).code).toBe(0);
    await waitFor(async () => readFileSync(join(pm2Home, "logs", "labrig-hub-out.log"), "utf8").includes('"msg":"listening"'), 10_000, "the restarted hub to log to the new file");
    expect((await pm2("stop", "labrig-hub")).code).toBe(0);
  }, 60_000);
});
