import { type ChildProcess } from "node:child_process";
import { createWriteStream, mkdtempSync, rmSync, type WriteStream } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
// The same launcher `npm start` uses, so the tests exercise what a newcomer runs.
import { AGENT_CLI, HUB_CLI, authHeaders, callApi, enrollHost, exited, freePort, startNode, waitFor, waitForHostState as waitForHostStateAs, waitForHub, writeSimAgentConfig } from "../scripts/lib/launch.js";

export { exited, freePort, waitFor };

/** The admin key every TestRig hub gets through LABRIG_ADMIN_KEY, and every REST call sends. */
export const E2E_ADMIN_KEY = "lrk_e2e-admin-key-for-end-to-end-tests-0123456789";

/** Waits until the hub lists `host` in `state`, asking with the rig's admin key. */
export function waitForHostState(url: string, host: string, state: "online" | "offline", timeoutMs?: number): Promise<boolean> {
  return waitForHostStateAs(url, host, state, timeoutMs, authHeaders(E2E_ADMIN_KEY));
}

/** A hub process on a temp data dir plus, on demand, simulated agents; everything is stopped by `close()`. */
export class TestRig {
  readonly dir = mkdtempSync(join(tmpdir(), "labrig-e2e-"));
  readonly log: WriteStream = createWriteStream(join(this.dir, "processes.log"));
  hub: ChildProcess | null = null;
  readonly agents = new Map<string, ChildProcess>();
  url = "";

  constructor(private readonly extraEnv: Record<string, string> = {}) {}

  get env(): NodeJS.ProcessEnv {
    const port = new URL(this.url).port;
    return { ...process.env, PORT: port, LABRIG_BIND: "127.0.0.1", LABRIG_DATA_DIR: join(this.dir, "hub"), LOG_LEVEL: "debug", LABRIG_ADMIN_KEY: E2E_ADMIN_KEY, ...this.extraEnv };
  }

  async startHub(port?: number): Promise<void> {
    this.url = `http://127.0.0.1:${port ?? (await freePort())}`;
    this.hub = startNode([HUB_CLI, "serve"], { env: this.env, logFile: this.log });
    await waitForHub(this.url);
  }

  async stopHub(): Promise<void> {
    if (!this.hub) return;
    this.hub.kill("SIGTERM");
    await exited(this.hub);
    this.hub = null;
  }

  /** Enrols a host with the hub CLI, writes a simulated-rig config for it and starts its agent. */
  async startAgent(host: string, devices?: Array<{ id: string; labels?: Record<string, string> }>): Promise<ChildProcess> {
    const token = enrollHost(host, this.env);
    const config = writeSimAgentConfig({ dir: join(this.dir, host), host, hubUrl: this.url, token, ...(devices ? { devices } : {}) });
    const agent = startNode([AGENT_CLI, "run", "--config", config], { env: this.env, logFile: this.log });
    this.agents.set(host, agent);
    await waitForHostState(this.url, host, "online");
    return agent;
  }

  async api<T = Record<string, unknown>>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T; headers: Headers }> {
    const res = await callApi(this.url, E2E_ADMIN_KEY, method, path, body);
    return { ...res, body: res.body as T };
  }

  /** Runs one action on an exact device through the REST API. */
  action(host: string, device: string, action: string, params: Record<string, unknown> = {}, resource?: string) {
    return this.api<ActionRecordBody>("POST", `/api/hosts/${host}/devices/${device}/actions`, { action, params, ...(resource ? { resource } : {}) });
  }

  async close(): Promise<void> {
    for (const agent of this.agents.values()) {
      if (agent.exitCode === null && agent.signalCode === null) {
        agent.kill("SIGCONT");
        agent.kill("SIGTERM");
        await exited(agent);
      }
    }
    await this.stopHub();
    this.log.end();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export interface ActionRecordBody {
  id: string;
  status: string;
  result: Record<string, unknown> | null;
  error: { error_code: string; message: string } | null;
  started_at: string;
  finished_at: string;
  duration_ms: number;
  [key: string]: unknown;
}
