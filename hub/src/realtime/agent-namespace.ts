import {
  AGENT_NAMESPACE,
  ActionResultSchema,
  ActionStartedSchema,
  ConsoleOutputSchema,
  DeviceStateSchema,
  FramePushSchema,
  HeartbeatSchema,
  HelloSchema,
  StreamChunkSchema,
  IdSchema,
  describeZodError,
  makeEnvelope,
  toLabrigError,
  type ErrorEnvelope,
  type FramePush,
  type HelloAck,
} from "@labrig/shared";
import type { Namespace, Server, Socket } from "socket.io";
import type { z } from "zod";
import type { Logger } from "../logger.js";
import type { DevicesRepository } from "../repositories/devices.js";
import type { HostEventsRepository } from "../repositories/host-events.js";
import type { HostsRepository } from "../repositories/hosts.js";
import type { Dispatcher } from "../services/dispatcher.js";
import type { ConsoleBuffers } from "../services/console-buffers.js";
import type { PresenceRegistry } from "../services/registry.js";
import type { HostTokens } from "../services/tokens.js";
import type { VideoRelay } from "../services/video-relay.js";
import type { HubEvents } from "../services/hub-events.js";
import type { AgentConnections } from "./agent-connections.js";

export interface AgentNamespaceDeps {
  io: Server;
  tokens: HostTokens;
  hosts: HostsRepository;
  devices: DevicesRepository;
  events: HostEventsRepository;
  registry: PresenceRegistry;
  dispatcher: Dispatcher;
  connections: AgentConnections;
  consoles: ConsoleBuffers;
  hubVersion: string;
  heartbeatIntervalMs: number;
  logger: Logger;
  /** Live video fan-out; without it `stream.chunk` is acknowledged and dropped. */
  video?: VideoRelay;
  /** Plans from frames agents push; returns the new plan's id (planning goes on in the background). */
  frames?: { accept(host: string, push: FramePush): string };
  /** Where resource state changes are announced (the dashboard's `resource.state`). */
  bus?: HubEvents;
}

/** What the hub knows about one authenticated agent socket. */
interface AgentSession {
  host: string;
  /** Hash of the token the socket authenticated with; compared on each heartbeat to notice a rotation. */
  tokenHash: string;
  helloDone: boolean;
  /** Set when the hub drops the socket itself, so the disconnect is logged with the real reason. */
  dropReason?: string;
}

type Ack = (response: unknown) => void;

/** A socket.io middleware error whose envelope reaches the client as `err.data` in `connect_error`. */
function handshakeError(code: "unauthorized" | "shutting_down" | "internal_error", message: string): Error & { data: ErrorEnvelope } {
  const err = new Error(message) as Error & { data: ErrorEnvelope };
  err.data = makeEnvelope(code, message);
  return err;
}

/**
 * The `/agent` socket.io namespace: authenticates hosts by token, keeps one live socket
 * per host, and turns agent events into registry, device and action updates.
 */
export class AgentNamespace {
  private nsp: Namespace | null = null;
  private shuttingDown = false;
  private readonly sessions = new WeakMap<Socket, AgentSession>();

  constructor(private readonly deps: AgentNamespaceDeps) {}

  start(): void {
    if (this.nsp) return;
    this.shuttingDown = false;
    const nsp = this.deps.io.of(AGENT_NAMESPACE);
    nsp.use((socket, next) => next(this.authenticate(socket)));
    nsp.on("connection", (socket) => this.onConnection(socket));
    this.nsp = nsp;
  }

  /**
   * From now on disconnects are the hub's own doing: hosts keep their stored online state
   * (so they get the restart grace window) and pending actions are failed by the dispatcher instead.
   */
  beginShutdown(): void {
    this.shuttingDown = true;
  }

  stop(): void {
    this.beginShutdown();
    this.nsp?.disconnectSockets(true);
    this.nsp = null;
  }

  /**
   * Drops the host's live connection now (token rotated or revoked, host removed); returns whether
   * there was one. The agent's reconnect then meets the handshake check with its old token.
   */
  disconnectHost(hostId: string, reason: string): boolean {
    const socket = this.deps.connections.get(hostId);
    if (!socket) return false;
    const session = this.sessions.get(socket);
    if (session) session.dropReason = reason;
    this.deps.logger.warn({ host: hostId, socket_id: socket.id, reason }, "disconnecting the agent");
    socket.disconnect(true);
    return true;
  }

  private authenticate(socket: Socket): Error | undefined {
    if (this.shuttingDown) return handshakeError("shutting_down", "The hub is shutting down; the agent will reconnect when it is back.");
    const auth = (socket.handshake.auth ?? {}) as Record<string, unknown>;
    const host = typeof auth.host === "string" ? auth.host : "";
    const token = typeof auth.token === "string" ? auth.token : "";
    const address = socket.handshake.address;
    if (!IdSchema.safeParse(host).success || token === "") {
      this.deps.logger.warn({ address, host: host || null }, "agent handshake without valid credentials refused");
      return handshakeError("unauthorized", "The handshake needs auth {host, token}: set hub.host and hub.token in the agent's config.");
    }
    try {
      const tokenHash = this.deps.tokens.verify(host, token);
      if (tokenHash === null) {
        this.deps.logger.warn({ address, host }, "agent handshake with unknown host or wrong token refused");
        return handshakeError(
          "unauthorized",
          `Host '${host}' is unknown or its token is wrong. On the hub run 'labrig-hub host token ${host}' (or 'host add ${host}') and put the new token in the agent's config.`,
        );
      }
      this.sessions.set(socket, { host, tokenHash, helloDone: false });
      return undefined;
    } catch (err) {
      this.deps.logger.error({ err, address, host }, "agent authentication failed");
      return handshakeError("internal_error", "The hub could not check the token; it has logged the cause. The agent will retry.");
    }
  }

  private onConnection(socket: Socket): void {
    const session = this.sessions.get(socket);
    if (!session) {
      // Cannot happen (the middleware sets it), but an unauthenticated socket must never stay connected.
      this.deps.logger.error({ socket_id: socket.id }, "agent socket without a session; disconnecting");
      socket.disconnect(true);
      return;
    }
    const { host } = session;
    const log = this.deps.logger.child({ host, socket_id: socket.id });
    const previous = this.deps.connections.set(host, socket);
    if (previous) {
      const old = this.sessions.get(previous);
      if (old) old.dropReason = "replaced by a newer connection";
      log.info({ replaced_socket_id: previous.id }, "newer agent connection replaces the older one");
      previous.disconnect(true);
    }
    log.info({ address: socket.handshake.address }, "agent connected");

    this.on(socket, log, "hello", (payload, ack) => this.onHello(socket, session, log, payload, ack));
    this.on(socket, log, "heartbeat", (payload, ack) => this.onHeartbeat(socket, session, log, payload, ack));
    this.on(socket, log, "action.started", (payload, ack) => this.onActionStarted(session, log, payload, ack));
    this.on(socket, log, "action.result", (payload, ack) => this.onActionResult(session, log, payload, ack));
    this.on(socket, log, "console.output", (payload, ack) => this.onConsoleOutput(session, log, payload, ack));
    this.on(socket, log, "device.state", (payload, ack) => this.onDeviceState(session, log, payload, ack));
    this.on(socket, log, "stream.chunk", (payload, ack) => {
      const chunk = this.parse(StreamChunkSchema, "stream.chunk", payload, log, ack);
      if (!chunk || !this.sameHost(session, chunk.host, "stream.chunk", log, ack)) return;
      this.deps.video?.handleChunk(session.host, chunk);
      // Acked once relayed: the agent keeps at most a few chunks unacknowledged, so this paces it to the link.
      ack?.({ ok: true });
    });
    this.on(socket, log, "frame", (payload, ack) => {
      const push = this.parse(FramePushSchema, "frame", payload, log, ack);
      if (!push || !this.sameHost(session, push.host, "frame", log, ack)) return;
      if (!this.deps.frames) {
        ack?.({ ok: false, error: makeEnvelope("planner_unavailable", "This hub has no planner: set GEMINI_API_KEY on the hub and restart it.") });
        return;
      }
      try {
        ack?.({ ok: true, plan_id: this.deps.frames.accept(session.host, push) });
      } catch (err) {
        ack?.({ ok: false, error: toLabrigError(err).toEnvelope() });
      }
    });
    socket.on("disconnect", (reason) => {
      const why = session.dropReason ?? reason;
      const wasLive = this.deps.connections.release(host, socket);
      log.info({ reason: why }, "agent disconnected");
      if (!wasLive || this.shuttingDown) return;
      try {
        this.deps.dispatcher.hostLost(host, why);
        this.deps.registry.markOffline(host, `disconnected: ${why}`);
      } catch (err) {
        log.error({ err }, "could not record the agent's disconnect");
      }
    });
  }

  /** Registers a handler that never throws out to socket.io, and answers the ack (if any) when it fails. */
  private on(socket: Socket, log: Logger, event: string, handler: (payload: unknown, ack: Ack | undefined) => void): void {
    socket.on(event, (...args: unknown[]) => {
      const last = args[args.length - 1];
      const ack = typeof last === "function" ? (last as Ack) : undefined;
      const payload = args.length > (ack ? 1 : 0) ? args[0] : undefined;
      try {
        handler(payload, ack);
      } catch (err) {
        const e = toLabrigError(err);
        log.error({ err, event }, "agent event handler failed");
        ack?.({ ok: false, error: e.toEnvelope() });
      }
    });
  }

  /** Validates a payload; on failure logs, answers the ack and returns null. */
  private parse<S extends z.ZodType>(schema: S, event: string, payload: unknown, log: Logger, ack: Ack | undefined): z.infer<S> | null {
    const parsed = schema.safeParse(payload);
    if (parsed.success) return parsed.data;
    const message = `Invalid ${event} payload: ${describeZodError(parsed.error)}. The agent and hub may be on incompatible versions.`;
    log.warn({ event, problem: describeZodError(parsed.error) }, "invalid agent event refused");
    ack?.({ ok: false, error: makeEnvelope("validation_failed", message) });
    return null;
  }

  /** Every payload names its host; it must be the one the socket authenticated as. */
  private sameHost(session: AgentSession, claimed: string, event: string, log: Logger, ack: Ack | undefined): boolean {
    if (claimed === session.host) return true;
    log.warn({ event, authenticated_host: session.host, claimed_host: claimed }, "agent tried to speak for another host (impersonation); refused");
    ack?.({
      ok: false,
      error: makeEnvelope("forbidden", `This connection is authenticated as '${session.host}' and cannot speak for '${claimed}'. Check the host id in the agent's config.`),
    });
    return false;
  }

  private onHello(socket: Socket, session: AgentSession, log: Logger, payload: unknown, ack: Ack | undefined): void {
    const hello = this.parse(HelloSchema, "hello", payload, log, ack);
    if (!hello || !this.sameHost(session, hello.host, "hello", log, ack)) return;
    if (!this.deps.connections.isLive(session.host, socket)) {
      ack?.({ ok: false, error: makeEnvelope("conflict", "A newer connection for this host replaced this one.") });
      return;
    }
    const now = new Date().toISOString();
    this.deps.hosts.setAgent(session.host, hello.version, hello.started_at);
    const removed = this.deps.devices.replaceForHost(session.host, hello.devices, now);
    for (const id of removed) this.deps.consoles.forgetDevice(session.host, id);
    if (removed.length > 0) {
      this.deps.events.add({ hostId: session.host, kind: "devices_changed", detail: `removed: ${removed.join(", ")}`, at: now });
    }
    this.deps.dispatcher.hostHello(session.host);
    this.deps.registry.markOnline(session.host, `hello from agent ${hello.version}`);
    session.helloDone = true;
    log.info({ agent_version: hello.version, devices: hello.devices.map((d) => d.id) }, "agent hello");
    // confirm_start: the agent asks (action.started) before it runs anything, so the hub can re-dispatch unstarted work safely.
    const response: HelloAck = { ok: true, heartbeat_interval_ms: this.deps.heartbeatIntervalMs, hub_version: this.deps.hubVersion, confirm_start: true };
    ack?.(response);
    // After the ack: the agent handles stream requests only once its hello is accepted.
    this.deps.video?.hostReady(session.host);
  }

  private onHeartbeat(socket: Socket, session: AgentSession, log: Logger, payload: unknown, ack: Ack | undefined): void {
    const beat = this.parse(HeartbeatSchema, "heartbeat", payload, log, ack);
    if (!beat || !this.sameHost(session, beat.host, "heartbeat", log, ack)) return;
    // Tokens are rotated by a separate CLI process; the heartbeat is where the daemon notices.
    if (!this.deps.tokens.isCurrent(session.host, session.tokenHash)) {
      session.dropReason = "token rotated";
      log.warn("host token was rotated; disconnecting the agent that uses the old one");
      socket.disconnect(true);
      return;
    }
    this.deps.registry.seen(session.host, session.helloDone && this.deps.connections.isLive(session.host, socket));
    ack?.({ ok: true });
  }

  private onActionStarted(session: AgentSession, log: Logger, payload: unknown, ack: Ack | undefined): void {
    const started = this.parse(ActionStartedSchema, "action.started", payload, log, ack);
    if (!started || !this.sameHost(session, started.host, "action.started", log, ack)) return;
    const ok = this.deps.dispatcher.handleStarted(session.host, started);
    if (!ok) log.info({ action_id: started.id }, "declined the start of an action that was canceled or moved to another device");
    ack?.({ ok });
  }

  private onActionResult(session: AgentSession, log: Logger, payload: unknown, ack: Ack | undefined): void {
    const result = this.parse(ActionResultSchema, "action.result", payload, log, ack);
    if (!result || !this.sameHost(session, result.host, "action.result", log, ack)) return;
    const disposition = this.deps.dispatcher.handleResult(session.host, result);
    switch (disposition) {
      case "finished":
        ack?.({ ok: true });
        return;
      case "duplicate":
      case "unknown":
        // Redelivery from the agent's outbox after a reconnect: acknowledge so it is dropped there, change nothing.
        log.debug({ action_id: result.id, disposition }, "action result already settled or unknown; acknowledged without change");
        ack?.({ ok: true });
        return;
      case "wrong_host":
        log.warn({ action_id: result.id }, "agent sent a result for an action that was sent to another host; refused");
        ack?.({ ok: false, error: makeEnvelope("forbidden", `Action ${result.id} was not sent to host '${session.host}'.`) });
        return;
    }
  }

  private onConsoleOutput(session: AgentSession, log: Logger, payload: unknown, ack: Ack | undefined): void {
    const chunk = this.parse(ConsoleOutputSchema, "console.output", payload, log, ack);
    if (!chunk || !this.sameHost(session, chunk.host, "console.output", log, ack)) return;
    const device = this.deps.devices.get(session.host, chunk.device);
    if (!device?.resources.some((r) => r.name === chunk.resource)) {
      log.warn({ device: chunk.device, resource: chunk.resource }, "console output for an unknown device resource ignored");
      ack?.({ ok: false, error: makeEnvelope("unknown_resource", `Device '${chunk.device}' has no resource '${chunk.resource}' in the last hello.`) });
      return;
    }
    const text = chunk.dropped_bytes > 0 ? `\n[labrig: agent dropped ${chunk.dropped_bytes} bytes]\n${chunk.data}` : chunk.data;
    this.deps.consoles.append(session.host, chunk.device, chunk.resource, text);
    ack?.({ ok: true });
  }

  private onDeviceState(session: AgentSession, log: Logger, payload: unknown, ack: Ack | undefined): void {
    const update = this.parse(DeviceStateSchema, "device.state", payload, log, ack);
    if (!update || !this.sameHost(session, update.host, "device.state", log, ack)) return;
    const { host: _host, device: deviceId, resource, ...state } = update;
    const stored = this.deps.devices.transaction(() => {
      const device = this.deps.devices.get(session.host, deviceId);
      if (!device?.resources.some((r) => r.name === resource)) return false;
      return this.deps.devices.setState(session.host, deviceId, { ...device.state, [resource]: state }, new Date().toISOString());
    });
    if (!stored) {
      log.warn({ device: deviceId, resource }, "state for an unknown device resource ignored");
      ack?.({ ok: false, error: makeEnvelope("unknown_resource", `Device '${deviceId}' has no resource '${resource}' in the last hello.`) });
      return;
    }
    this.deps.bus?.emit("resource.state", update); // dashboard hook
    ack?.({ ok: true });
  }
}
