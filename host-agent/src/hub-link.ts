import {
  AGENT_NAMESPACE,
  ActionCancelSchema,
  ActionRequestSchema,
  HelloAckSchema,
  LabrigError,
  ResultAckSchema,
  describeZodError,
  nowIso,
  type ActionRequest,
  type ActionResult,
  type ConsoleOutput,
  type DeviceDescription,
  type DeviceState,
  type Hello,
} from "@labrig/shared";
import { io, type Socket } from "socket.io-client";
import { backoffMs } from "./abort.js";
import type { ConsoleSink } from "./console-stream.js";
import type { Logger } from "./logger.js";
import type { ResultTransport } from "./outbox.js";

export interface HubLinkOptions {
  url: string;
  host: string;
  token: string;
  version: string;
  startedAt: string;
  devices: DeviceDescription[];
  helloTimeoutMs?: number;
  resultAckTimeoutMs?: number;
  reconnectDelayMs?: number;
  reconnectDelayMaxMs?: number;
}

export interface HubLinkHandlers {
  onActionRequest: (req: ActionRequest) => void;
  onActionCancel: (id: string) => void;
  /** A request that failed validation but carries an id and device, so it can be answered with a failed result. */
  onInvalidActionRequest: (id: string, device: string, error: LabrigError) => void;
  /** The hub accepted our hello: the moment to resend what waited (results, console, states). */
  onReady: () => void;
}

/**
 * The agent's one outbound connection to the hub (socket.io on /agent). Reconnects with
 * capped, randomised backoff; socket.io does not retry by itself after the hub refuses the
 * handshake or the hello, so those paths schedule the retry here.
 */
export class HubLink implements ConsoleSink, ResultTransport {
  private socket: Socket | null = null;
  private helloAcked = false;
  private heartbeatTimer: NodeJS.Timeout | null = null;
  private retryTimer: NodeJS.Timeout | null = null;
  private retryAttempt = 0;
  private heartbeatSeq = 0;
  private connection = 0;
  private stopped = true;
  /** Last state of each resource, resent after every hello so the hub's view is current after a reconnect. */
  private readonly lastStates = new Map<string, DeviceState>();

  constructor(
    private readonly options: HubLinkOptions,
    private readonly handlers: HubLinkHandlers,
    private readonly logger: Logger,
  ) {}

  /** True once the hub has accepted our hello on the current connection. */
  isReady(): boolean {
    return this.helloAcked && this.socket?.connected === true;
  }

  canSend(): boolean {
    return this.isReady();
  }

  start(): void {
    this.stopped = false;
    const o = this.options;
    const socket = io(`${o.url}${AGENT_NAMESPACE}`, {
      auth: { host: o.host, token: o.token },
      reconnection: true,
      reconnectionDelay: o.reconnectDelayMs ?? 500,
      reconnectionDelayMax: o.reconnectDelayMaxMs ?? 10_000,
      randomizationFactor: 0.5,
    });
    this.socket = socket;
    socket.on("connect", () => {
      this.onConnect(socket).catch((err: unknown) => {
        this.logger.error({ err: (err as Error).message }, "handling the hub connection failed; reconnecting");
        this.refuse(socket);
      });
    });
    socket.on("connect_error", (err: Error & { data?: unknown }) => {
      const envelope = err.data as { error_code?: unknown; message?: unknown } | undefined;
      this.logger.error(
        {
          hub: o.url,
          error_code: typeof envelope?.error_code === "string" ? envelope.error_code : undefined,
          message: typeof envelope?.message === "string" ? envelope.message : `${err.message}; is the hub running at ${o.url} and reachable from this host?`,
        },
        "cannot connect to the hub; retrying",
      );
      // A refusal by the hub's middleware leaves the socket inactive: socket.io will not retry it.
      if (!socket.active) this.scheduleRetry();
    });
    socket.on("disconnect", (reason: string) => {
      this.onLost();
      if (this.stopped) return;
      this.logger.warn({ hub: o.url, reason }, "disconnected from the hub; reconnecting");
      if (!socket.active) this.scheduleRetry();
    });
    socket.on("action.request", (payload: unknown, ack?: unknown) => this.onActionRequest(payload, ack));
    socket.on("action.cancel", (payload: unknown) => {
      const parsed = ActionCancelSchema.safeParse(payload);
      if (!parsed.success) {
        this.logger.error({ problems: describeZodError(parsed.error) }, "hub sent an invalid action.cancel; ignored");
        return;
      }
      this.handlers.onActionCancel(parsed.data.id);
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.onLost();
    const socket = this.socket;
    this.socket = null;
    if (socket) {
      socket.removeAllListeners();
      socket.disconnect();
    }
  }

  sendConsole(chunk: ConsoleOutput): void {
    if (this.isReady()) this.socket?.emit("console.output", chunk);
  }

  sendDeviceState(state: DeviceState): void {
    this.lastStates.set(`${state.device}/${state.resource}`, state);
    if (this.isReady()) this.socket?.emit("device.state", state);
  }

  async sendResult(result: ActionResult): Promise<boolean> {
    const socket = this.socket;
    // Never emit while disconnected: socket.io would buffer it and the outbox would send it again.
    if (!socket || !this.isReady()) return false;
    const ack: unknown = await socket.timeout(this.options.resultAckTimeoutMs ?? 10_000).emitWithAck("action.result", result);
    const parsed = ResultAckSchema.safeParse(ack);
    if (!parsed.success) {
      this.logger.error({ action_id: result.id, problems: describeZodError(parsed.error) }, "hub answered action.result with an invalid ack");
      return false;
    }
    return parsed.data.ok;
  }

  private async onConnect(socket: Socket): Promise<void> {
    const connection = ++this.connection;
    const o = this.options;
    const hello: Hello = { host: o.host, version: o.version, started_at: o.startedAt, devices: o.devices };
    let ack: unknown;
    try {
      ack = await socket.timeout(o.helloTimeoutMs ?? 10_000).emitWithAck("hello", hello);
    } catch (err) {
      if (connection !== this.connection || this.stopped) return;
      this.logger.error({ hub: o.url, err: (err as Error).message }, "hub did not acknowledge hello; reconnecting");
      this.refuse(socket);
      return;
    }
    if (connection !== this.connection || this.stopped || !socket.connected) return;
    const parsed = HelloAckSchema.safeParse(ack);
    if (!parsed.success) {
      this.logger.error({ hub: o.url, problems: describeZodError(parsed.error) }, "hub answered hello with an invalid ack; is the hub a compatible version?");
      this.refuse(socket);
      return;
    }
    if (!parsed.data.ok) {
      const { error_code, message } = parsed.data.error;
      this.logger.error({ hub: o.url, host: o.host, error_code, message }, "hub refused hello; retrying");
      this.refuse(socket);
      return;
    }
    this.helloAcked = true;
    this.retryAttempt = 0;
    const interval = parsed.data.heartbeat_interval_ms;
    this.logger.info({ hub: o.url, host: o.host, hub_version: parsed.data.hub_version, heartbeat_interval_ms: interval }, "connected to the hub");
    this.heartbeatTimer = setInterval(() => {
      if (this.isReady()) socket.emit("heartbeat", { host: o.host, seq: this.heartbeatSeq++, sent_at: nowIso() });
    }, interval);
    for (const state of this.lastStates.values()) socket.emit("device.state", state);
    this.handlers.onReady();
  }

  private onActionRequest(payload: unknown, ack: unknown): void {
    const parsed = ActionRequestSchema.safeParse(payload);
    // The event has no ack in the protocol; if the hub passes one anyway, answer it rather than leave it hanging.
    const reply = typeof ack === "function" ? (ack as (v: unknown) => void) : null;
    if (parsed.success) {
      reply?.({ ok: true });
      this.handlers.onActionRequest(parsed.data);
      return;
    }
    const problems = describeZodError(parsed.error);
    this.logger.error({ problems }, "hub sent an invalid action.request");
    const error = new LabrigError("validation_failed", `Invalid action request: ${problems}`);
    reply?.({ ok: false, error: error.toEnvelope() });
    const p = payload as { id?: unknown; device?: unknown } | null;
    const id = ActionRequestSchema.shape.id.safeParse(p?.id);
    const device = ActionRequestSchema.shape.device.safeParse(p?.device);
    if (id.success && device.success) this.handlers.onInvalidActionRequest(id.data, device.data, error);
  }

  /** The hub refused us on a live socket: drop it and try again after a backoff. */
  private refuse(socket: Socket): void {
    socket.disconnect();
    this.scheduleRetry();
  }

  private onLost(): void {
    this.helloAcked = false;
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = null;
  }

  private scheduleRetry(): void {
    if (this.stopped || this.retryTimer) return;
    const base = this.options.reconnectDelayMs ?? 500;
    const max = this.options.reconnectDelayMaxMs ?? 10_000;
    const capped = backoffMs(this.retryAttempt++, base, max);
    // Jitter spreads a rack of agents that all lost the hub at once.
    const delay = capped * (0.5 + Math.random() * 0.5);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      if (!this.stopped) this.socket?.connect();
    }, delay);
  }
}
