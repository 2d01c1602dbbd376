import {
  AGENT_NAMESPACE,
  ActionCancelSchema,
  ActionRequestSchema,
  ArtifactDeleteSchema,
  ArtifactFetchSchema,
  FramePushAckSchema,
  HelloAckSchema,
  LabrigError,
  ResultAckSchema,
  StartAckSchema,
  StreamControlSchema,
  backoffMs,
  describeZodError,
  nowIso,
  toLabrigError,
  type ArtifactFetch,
  type StreamChunk,
  type ActionRequest,
  type ActionResult,
  type ActionStarted,
  type ConsoleOutput,
  type DeviceDescription,
  type DeviceState,
  type Hello,
  type FramePush,
} from "@labrig/shared";
import { io, type Socket } from "socket.io-client";
import type { z } from "zod";
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
  /** PEM the hub's TLS certificate must chain to (hub.ca_file); unset trusts the system's CAs. */
  ca?: string | undefined;
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
  /** Artifact and live-stream requests from the hub; absent: the hub gets an `unsupported_action` answer. */
  capture?: CaptureRequestHandlers;
}

/** What the agent does for the hub's capture requests (see capture/ in the agent). */
export interface CaptureRequestHandlers {
  fetchArtifact(req: ArtifactFetch): Promise<{ mime_type: string; size: number; offset: number; data: Buffer }>;
  deleteArtifact(id: string): Promise<boolean>;
  startStream(device: string, resource: string): void;
  stopStream(device: string, resource: string): void;
  /** The hub is gone: nobody is watching any more (it sends stream.start again after reconnecting). */
  stopAllStreams(): void;
}

/** Stream chunks sent but not yet acknowledged by the hub; beyond this, frames are dropped rather than queued. */
const MAX_STREAM_CHUNKS_IN_FLIGHT = 3;

/**
 * The agent's one outbound connection to the hub (socket.io on /agent). Reconnects with
 * capped, randomised backoff; socket.io does not retry by itself after the hub refuses the
 * handshake or the hello, so those paths schedule the retry here.
 */
export class HubLink implements ConsoleSink, ResultTransport {
  private socket: Socket | null = null;
  private helloAcked = false;
  /** The hub asked (in the hello ack) to confirm each action's start before it runs. */
  private confirmsStart = false;
  /** Settles when the current connection's hello is acked (true) or the connection is lost (false). */
  private helloOutcome: Promise<boolean> = Promise.resolve(false);
  private settleHello: ((ok: boolean) => void) | null = null;
  private heartbeatTimer: NodeJS.Timeout | null = null;
  private streamChunksInFlight = 0;
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
    // A second start would open a second socket and leak the first.
    if (this.socket) return;
    this.stopped = false;
    const o = this.options;
    const socket = io(`${o.url}${AGENT_NAMESPACE}`, {
      auth: { host: o.host, token: o.token },
      // Straight to a WebSocket: no long-polling handshake and upgrade, so a fleet reconnecting after a
      // hub restart costs the hub one HTTP upgrade per agent instead of several requests.
      transports: ["websocket"],
      reconnection: true,
      reconnectionDelay: o.reconnectDelayMs ?? 500,
      reconnectionDelayMax: o.reconnectDelayMaxMs ?? 10_000,
      randomizationFactor: 0.5,
      ...(o.ca ? { ca: o.ca } : {}),
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
    this.registerCaptureRequests(socket);
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

  /**
   * Pushes a frame with an instruction for the hub's planner (the `frame` event). Resolves with the
   * plan's id once the hub accepted it; the plan itself is stored and broadcast by the hub.
   */
  async pushFrame(push: Omit<FramePush, "host">): Promise<string> {
    const socket = this.socket;
    if (!socket || !this.isReady()) throw new LabrigError("host_offline", "Not connected to the hub; the frame was not sent. Try again once the agent is online.");
    const ack: unknown = await socket.timeout(this.options.resultAckTimeoutMs ?? 10_000).emitWithAck("frame", { ...push, host: this.options.host });
    const parsed = FramePushAckSchema.safeParse(ack);
    if (!parsed.success) throw new LabrigError("internal_error", `The hub answered the frame with an invalid ack: ${describeZodError(parsed.error)}`);
    if (!parsed.data.ok) throw new LabrigError(parsed.data.error.error_code, parsed.data.error.message, { retryAfter: parsed.data.error.retry_after });
    return parsed.data.plan_id;
  }

  /**
   * Reports that an action is about to start. When the hub confirms starts, resolves true only on
   * its `{ok: true}` ack; while disconnected, false, so nothing runs that the hub may have re-dispatched.
   */
  async confirmStart(started: ActionStarted): Promise<boolean> {
    const socket = this.socket;
    // A request can arrive in the same read as the hello ack, before this link has processed the ack.
    if (socket?.connected && !this.helloAcked) await this.helloOutcome;
    if (!socket || !this.isReady()) return false;
    if (!this.confirmsStart) {
      socket.emit("action.started", started);
      return true;
    }
    try {
      const ack: unknown = await socket.timeout(this.options.resultAckTimeoutMs ?? 10_000).emitWithAck("action.started", started);
      const parsed = StartAckSchema.safeParse(ack);
      if (!parsed.success) {
        this.logger.error({ action_id: started.id, problems: describeZodError(parsed.error) }, "hub answered action.started with an invalid ack; not running the action");
        return false;
      }
      if (!parsed.data.ok) this.logger.warn({ action_id: started.id }, "hub declined the start (action canceled or moved to another device); not running it");
      return parsed.data.ok;
    } catch (err) {
      this.logger.warn({ action_id: started.id, err: (err as Error).message }, "no confirmation of the start from the hub; not running the action");
      return false;
    }
  }

  private async onConnect(socket: Socket): Promise<void> {
    const connection = ++this.connection;
    this.settleHello?.(false);
    this.helloOutcome = new Promise<boolean>((resolve) => (this.settleHello = resolve));
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
    this.confirmsStart = parsed.data.confirm_start === true;
    this.settleHello?.(true);
    this.settleHello = null;
    this.retryAttempt = 0;
    const interval = parsed.data.heartbeat_interval_ms;
    this.logger.info({ hub: o.url, host: o.host, hub_version: parsed.data.hub_version, heartbeat_interval_ms: interval }, "connected to the hub");
    // A new hello ack replaces the interval: never two timers beating at once.
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
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
    if (this.helloAcked) this.handlers.capture?.stopAllStreams();
    this.streamChunksInFlight = 0;
    this.helloAcked = false;
    this.settleHello?.(false);
    this.settleHello = null;
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = null;
  }

  /** True when a stream chunk now would only queue: hub away, or acks for earlier chunks still outstanding. */
  streamCongested(): boolean {
    return !this.isReady() || this.streamChunksInFlight >= MAX_STREAM_CHUNKS_IN_FLIGHT;
  }

  /**
   * Sends one stream chunk unless the link is congested. The hub acks each chunk once relayed,
   * so chunks in flight bound what socket.io and the kernel buffer for a slow link.
   */
  sendStreamChunk(chunk: StreamChunk): boolean {
    const socket = this.socket;
    if (!socket || this.streamCongested()) return false;
    this.streamChunksInFlight++;
    const connection = this.connection;
    socket.timeout(10_000).emit("stream.chunk", chunk, (err: Error | null) => {
      if (connection !== this.connection) return;
      this.streamChunksInFlight = Math.max(0, this.streamChunksInFlight - 1);
      if (err) this.logger.debug({ device: chunk.device, resource: chunk.resource, seq: chunk.seq }, "stream chunk not acknowledged in time");
    });
    return true;
  }

  private registerCaptureRequests(socket: Socket): void {
    const answer = <S extends z.ZodType>(event: string, schema: S, run: (req: z.infer<S>, capture: CaptureRequestHandlers) => Promise<Record<string, unknown>> | Record<string, unknown>) => {
      socket.on(event, (payload: unknown, ack?: unknown) => {
        const reply = typeof ack === "function" ? (ack as (v: unknown) => void) : () => undefined;
        const parsed = schema.safeParse(payload);
        if (!parsed.success) {
          const problems = describeZodError(parsed.error);
          this.logger.warn({ event, problems }, "hub sent an invalid capture request");
          reply({ ok: false, error: new LabrigError("validation_failed", `Invalid ${event}: ${problems}`).toEnvelope() });
          return;
        }
        const capture = this.handlers.capture;
        if (!capture) {
          reply({ ok: false, error: new LabrigError("unsupported_action", `This agent does not handle ${event}.`).toEnvelope() });
          return;
        }
        Promise.resolve()
          .then(() => run(parsed.data, capture))
          .then(
            (result) => reply({ ok: true, ...result }),
            (err: unknown) => {
              const e = toLabrigError(err);
              if (e.code === "internal_error") this.logger.error({ event, err: e.message }, "capture request failed");
              reply({ ok: false, error: e.toEnvelope() });
            },
          );
      });
    };
    answer("artifact.fetch", ArtifactFetchSchema, (req, c) => c.fetchArtifact(req));
    answer("artifact.delete", ArtifactDeleteSchema, async (req, c) => {
      await c.deleteArtifact(req.id);
      return {};
    });
    answer("stream.start", StreamControlSchema, (req, c) => {
      c.startStream(req.device, req.resource);
      return {};
    });
    answer("stream.stop", StreamControlSchema, (req, c) => {
      c.stopStream(req.device, req.resource);
      return {};
    });
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
