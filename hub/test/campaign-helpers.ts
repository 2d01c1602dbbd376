import { findSocat, type Agent } from "@labrig/host-agent";
import { getJson, waitFor, type JsonResponse, type RunningHub } from "./helpers.js";
import { startLocalAgent } from "./local-agents.js";

// Real agents (createAgent) in this process, each with one device: a simulated board on a socat
// PTY (`sim`, simBoard), or a device with only an in-memory GPIO line (`gpio`) for tests that need no console.

export { stopLocalAgents as stopAgents } from "./local-agents.js";

export function requireSocat(): void {
  if (findSocat() === null) throw new Error("socat is needed for the simulated rig: sudo apt-get install socat");
}

/** The simulated board `dut1`: its console on a PTY, power and a reset line, and with `video` a test-pattern screen. */
export function simBoard(labels: Record<string, string> = { board: "sim" }, options: { video?: boolean } = {}): Record<string, unknown> {
  return {
    id: "dut1",
    labels,
    simulated: true,
    resources: [
      { name: "console", kind: "serial", path: "./dut1-console", baud_rate: 115200 },
      { name: "power", kind: "power", line: 17, cycle_off_ms: 50 },
      { name: "reset", kind: "gpio", line: 27, direction: "out", active_low: true },
      ...(options.video ? [{ name: "screen", kind: "video", source: "test-pattern", width: 160, height: 120, fps: 10 }] : []),
    ],
  };
}

export async function startAgent(hub: RunningHub, host: string, kind: "sim" | "gpio", labels: Record<string, string> = { board: "sim" }): Promise<Agent> {
  const device = kind === "sim" ? simBoard(labels) : { id: "dut1", labels, resources: [{ name: "relay", kind: "gpio", line: 5, direction: "out" }] };
  return startLocalAgent(hub, host, [device], { agent: { sim: { bootMs: 150 } } });
}

export function api(hub: RunningHub, method: string, path: string, body?: unknown): Promise<JsonResponse> {
  return getJson(`${hub.url}${path}`, {
    method,
    ...(body === undefined ? {} : { headers: { "content-type": "application/json" }, body: JSON.stringify(body) }),
  });
}

export interface RunBody {
  id: string;
  status: string;
  reason: string | null;
  counts: Record<string, number>;
  tests: Array<{
    id: string;
    name: string;
    attempt: number;
    final: boolean;
    status: string;
    message: string | null;
    host: string | null;
    device: string | null;
    started_at: string | null;
    finished_at: string | null;
    steps: Array<{ name: string; phase: string; status: string; message: string | null; action_ids: string[]; result: Record<string, unknown> | null; artifacts: Array<{ name: string; kind: string; bytes: number; deleted: boolean }> }>;
  }>;
}

const FINISHED = ["passed", "failed", "error", "canceled", "interrupted", "skipped"];

export async function waitRun(hub: RunningHub, id: string, timeoutMs = 30_000): Promise<RunBody> {
  return waitFor(async () => {
    const run = (await api(hub, "GET", `/api/runs/${id}`)).body as unknown as RunBody;
    return FINISHED.includes(run.status) ? run : null;
  }, timeoutMs, 100);
}

export async function createTestCase(hub: RunningHub, body: Record<string, unknown>): Promise<string> {
  const res = await api(hub, "POST", "/api/testcases", body);
  if (res.status !== 201) throw new Error(`test case not created: ${res.text}`);
  return res.body.id as string;
}

export async function createCampaign(hub: RunningHub, body: Record<string, unknown>): Promise<string> {
  const res = await api(hub, "POST", "/api/campaigns", body);
  if (res.status !== 201) throw new Error(`campaign not created: ${res.text}`);
  return res.body.id as string;
}

/** Steps that bring a simulated board from power-on to its shell. */
export const LOGIN = [
  { name: "boot", action: "power.cycle", params: { off_ms: 50 } },
  { name: "login_prompt", action: "serial.expect", params: { pattern: "login: ", timeout_ms: 5000, flush: false } },
  { name: "user", action: "serial.write", params: { data: "root\n" } },
  { name: "password_prompt", action: "serial.expect", params: { pattern: "Password: ", timeout_ms: 3000 } },
  { name: "password", action: "serial.write", params: { data: "labrig\n" } },
  { name: "shell", action: "serial.expect", params: { pattern: "# ", timeout_ms: 3000 } },
];
