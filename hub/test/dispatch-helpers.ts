import { ActionCancelSchema, ActionRequestSchema, type ActionRequest } from "@labrig/shared";
import type { Socket as ClientSocket } from "socket.io-client";
import { TEST_ADMIN_KEY, addHost, connectedAgent, getJson, postJson, queryDb, sayHello, waitFor, type JsonResponse, type RunningHub } from "./helpers.js";

export interface FakeDeviceSpec {
  id: string;
  labels?: Record<string, string>;
  capabilities?: string[];
}

/** Every request in these tests carries the admin key explicitly (the auth middleware requires a Bearer credential). */
export const AUTH = { authorization: `Bearer ${TEST_ADMIN_KEY}` };

export function api(hub: RunningHub, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<JsonResponse> {
  return getJson(`${hub.url}${path}`, {
    method,
    headers: { ...AUTH, ...(body === undefined ? {} : { "content-type": "application/json" }), ...headers },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
}

export const post = (hub: RunningHub, path: string, body: unknown, headers: Record<string, string> = {}): Promise<JsonResponse> =>
  postJson(`${hub.url}${path}`, body, { ...AUTH, ...headers });

/** Creates an operator API key (not an admin: lease calls then need the lease token). */
export async function operatorKey(hub: RunningHub, name = "ci-operator"): Promise<Record<string, string>> {
  const res = await post(hub, "/api/keys", { name, role: "operator" });
  if (res.status !== 201) throw new Error(`could not create an operator key: ${JSON.stringify(res.body)}`);
  return { authorization: `Bearer ${res.body.key as string}` };
}

export function countRows(hub: RunningHub, table: string): number {
  return queryDb<{ n: number }>(hub.dataDir, `SELECT COUNT(*) AS n FROM ${table}`)[0]?.n ?? -1;
}

/** Waits until the hub lists `n` queued actions. */
export async function waitQueued(hub: RunningHub, n: number): Promise<void> {
  await waitFor(async () => ((await api(hub, "GET", "/api/actions?status=queued")).body.actions as unknown[]).length === n, 5000);
}

/**
 * An agent speaking the real protocol over a real socket.io-client: hello with gpio devices, the
 * action.started handshake (runs only on an ok ack), results. It records every action it actually
 * "ran", so tests can prove nothing ran twice. `hold` keeps actions running until released.
 */
export class FakeAgent {
  socket!: ClientSocket;
  token = "";
  readonly requests: ActionRequest[] = [];
  readonly executed: ActionRequest[] = [];
  readonly cancels: string[] = [];
  readonly held = new Map<string, ActionRequest>();
  hold = false;
  /** When false, the agent receives requests but never reports them started (a slow or stuck agent). */
  confirm = true;
  delayMs = 0;
  /** Error code every action fails with (null: succeed). */
  failWith: string | null = null;
  /** When set, every hello names this agent process start (a reconnect of the same process); otherwise each hello looks like a new process. */
  processStartedAt: string | undefined = undefined;

  constructor(
    private hub: RunningHub,
    readonly host: string,
    readonly devices: FakeDeviceSpec[],
  ) {}

  static async start(hub: RunningHub, host: string, devices: FakeDeviceSpec[], setup?: (a: FakeAgent) => void): Promise<FakeAgent> {
    const agent = new FakeAgent(hub, host, devices);
    setup?.(agent);
    agent.token = await addHost(hub.dataDir, host);
    await agent.connect();
    return agent;
  }

  /** Connects (again), to `hub` when given (a restarted hub on another port). */
  async connect(hub?: RunningHub): Promise<void> {
    if (hub) this.hub = hub;
    this.socket = await connectedAgent(this.hub.url, this.host, this.token);
    this.socket.on("action.request", (raw: unknown) => void this.onRequest(ActionRequestSchema.parse(raw)));
    this.socket.on("action.cancel", (raw: unknown) => {
      const { id } = ActionCancelSchema.parse(raw);
      this.cancels.push(id);
      const req = this.held.get(id);
      if (req) {
        this.held.delete(id);
        this.finish(req, "canceled");
      }
    });
    const descriptions = this.devices.map((d) => ({ id: d.id, labels: d.labels ?? {}, capabilities: d.capabilities ?? [], resources: [{ name: "io", kind: "gpio" }] }));
    const ack = await sayHello(this.socket, this.host, descriptions, this.processStartedAt);
    if (ack.ok !== true) throw new Error(`hello refused: ${JSON.stringify(ack)}`);
  }

  disconnect(): void {
    this.socket.disconnect();
  }

  /** Ids the agent ran, without the `~attempt` suffix of a re-dispatch. */
  executedIds(): string[] {
    return this.executed.map((r) => r.id.split("~")[0] as string);
  }

  release(id?: string): void {
    for (const [key, req] of [...this.held]) {
      if (id !== undefined && key.split("~")[0] !== id) continue;
      this.held.delete(key);
      this.finish(req, "succeeded");
    }
  }

  async started(req: ActionRequest): Promise<boolean> {
    const ack = (await this.socket.timeout(2000).emitWithAck("action.started", { id: req.id, host: this.host, device: req.device, started_at: new Date().toISOString() })) as { ok: boolean };
    return ack.ok;
  }

  private async onRequest(req: ActionRequest): Promise<void> {
    this.requests.push(req);
    if (!this.confirm) return;
    // As the real agent: reads start at once; everything else only once the hub confirms the start.
    if (req.confirm_start && !(await this.started(req))) return;
    this.executed.push(req);
    if (this.hold) {
      this.held.set(req.id, req);
      return;
    }
    setTimeout(() => this.finish(req, this.failWith ? "failed" : "succeeded"), this.delayMs);
  }

  finish(req: ActionRequest, status: "succeeded" | "failed" | "canceled"): void {
    const error =
      status === "succeeded"
        ? null
        : status === "canceled"
          ? { error_code: "canceled", message: "canceled on the agent", recoverable: false }
          : { error_code: this.failWith ?? "hardware_error", message: "the line did not respond", recoverable: true };
    const now = new Date().toISOString();
    this.socket.emit("action.result", {
      id: req.id,
      host: this.host,
      device: req.device,
      status,
      result: status === "succeeded" ? (req.action === "wait" ? { waited_ms: 0 } : { value: 1 }) : null,
      error,
      started_at: now,
      finished_at: now,
      duration_ms: 1,
    });
  }
}

export type { JsonResponse };
export { waitFor };
