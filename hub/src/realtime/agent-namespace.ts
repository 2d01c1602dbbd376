import {
  AGENT_NAMESPACE,
  IdSchema,
  SOCKET_EVENTS,
  describeZodError,
  makeEnvelope,
  toLabrigError,
  type AgentToHubEvents,
  type ErrorEnvelope,
  type HubToAgentEvents,
} from "@labrig/shared";
import type { Namespace, Server } from "socket.io";
import type { z } from "zod";
import type { HubBus } from "../bus.js";
import type { Logger } from "../logger.js";
import type { AuthFailureLimiter } from "../services/auth-failure-limiter.js";
import type { HostTokens } from "../services/tokens.js";
import type { AgentConnections, AgentSocket } from "./agent-connections.js";
import { clientAddress } from "./dashboard-namespace.js";

/** What the hub knows about one authenticated agent socket. */
export interface AgentSession {
  readonly host: string;
  readonly socket: AgentSocket;
  /** Hash of the token the socket authenticated with; compared on each heartbeat to notice a rotation. */
  readonly tokenHash: string;
  helloDone: boolean;
  /** Set when the hub drops the socket itself, so the disconnect is logged with the real reason. */
  dropReason?: string;
}

export type AgentEventName = keyof AgentToHubEvents;
type Events = typeof SOCKET_EVENTS;
type Payload<E extends AgentEventName> = z.infer<Events[E]["schema"]>;
type AckOf<E extends AgentEventName> = Parameters<AgentToHubEvents[E]> extends [unknown, ((answer: infer A) => void)?] ? (answer: A) => void : never;

/** A unit's handler of one agent event: the payload is already validated and speaks for the socket's own host. */
export type AgentEventHandler<E extends AgentEventName> = (session: AgentSession, payload: Payload<E>, ack: AckOf<E> | undefined) => void;

export interface AgentNamespaceDeps {
  io: Server;
  tokens: HostTokens;
  connections: AgentConnections;
  /** Failed handshakes per address, shared with REST and dashboards: token guessing is rate-limited everywhere. */
  limiter: AuthFailureLimiter;
  bus: HubBus;
  logger: Logger;
}

/** A socket.io middleware error whose envelope reaches the client as `err.data` in `connect_error`. */
function handshakeError(code: "unauthorized" | "rate_limited" | "shutting_down" | "internal_error", message: string, retryAfter?: number): Error & { data: ErrorEnvelope } {
  const err = new Error(message) as Error & { data: ErrorEnvelope };
  err.data = makeEnvelope(code, message, { retryAfter });
  return err;
}

/**
 * The `/agent` socket.io namespace: authenticates hosts by token, keeps one live socket per host,
 * and routes each agent event to the unit that handles it — after validating the payload with the
 * event's schema from `shared` and checking that it speaks for the socket's own host. Links coming
 * and going are announced on the bus (`agent.link`).
 */
export class AgentNamespace {
  private nsp: Namespace<AgentToHubEvents, HubToAgentEvents> | null = null;
  private shuttingDown = false;
  private readonly sessions = new WeakMap<AgentSocket, AgentSession>();
  private readonly handlers = new Map<AgentEventName, AgentEventHandler<AgentEventName>>();

  constructor(private readonly deps: AgentNamespaceDeps) {}

  /** Registers the one handler of an agent event (units do this before the hub listens). */
  handle<E extends AgentEventName>(event: E, handler: AgentEventHandler<E>): void {
    if (this.handlers.has(event)) throw new Error(`agent event '${event}' already has a handler`);
    this.handlers.set(event, handler as unknown as AgentEventHandler<AgentEventName>);
  }

  start(): void {
    if (this.nsp) return;
    this.shuttingDown = false;
    const nsp = this.deps.io.of(AGENT_NAMESPACE) as Namespace<AgentToHubEvents, HubToAgentEvents>;
    nsp.use((socket, next) => next(this.authenticate(socket)));
    nsp.on("connection", (socket) => this.onConnection(socket));
    this.nsp = nsp;
  }

  /**
   * From now on disconnects are the hub's own doing: link-down events say `shutdown`, so hosts keep
   * their stored online state (the restart grace window) and nothing is re-queued.
   */
  beginShutdown(): void {
    this.shuttingDown = true;
  }

  stop(): void {
    this.beginShutdown();
    this.nsp?.disconnectSockets(true);
    this.nsp = null;
  }

  get shuttingDownNow(): boolean {
    return this.shuttingDown;
  }

  /** The host's live session, if its agent is connected. */
  session(hostId: string): AgentSession | undefined {
    const socket = this.deps.connections.get(hostId);
    return socket ? this.sessions.get(socket) : undefined;
  }

  /** Drops the host's live connection now (token rotated or revoked, host removed); returns whether there was one. */
  disconnectHost(hostId: string, reason: string): boolean {
    const socket = this.deps.connections.get(hostId);
    if (!socket) return false;
    const session = this.sessions.get(socket);
    if (session) session.dropReason = reason;
    this.deps.logger.warn({ host: hostId, socket_id: socket.id, reason }, "disconnecting the agent");
    socket.disconnect(true);
    return true;
  }

  private authenticate(socket: AgentSocket): Error | undefined {
    if (this.shuttingDown) return handshakeError("shutting_down", "The hub is shutting down; the agent will reconnect when it is back.");
    const auth = (socket.handshake.auth ?? {}) as Record<string, unknown>;
    const host = typeof auth.host === "string" ? auth.host : "";
    const token = typeof auth.token === "string" ? auth.token : "";
    const address = clientAddress(socket);
    const retryAfter = this.deps.limiter.blockedFor(address);
    if (retryAfter !== null) {
      this.deps.logger.debug({ address, host: host.slice(0, 64) || null }, "agent handshake refused: too many failed ones from this address");
      return handshakeError("rate_limited", `Too many failed handshakes from ${address}; try again in ${retryAfter} s.`, retryAfter);
    }
    if (!IdSchema.safeParse(host).success || token === "") {
      this.deps.logger[this.deps.limiter.fail(address)]({ address, host: host.slice(0, 64) || null }, "agent handshake without valid credentials refused");
      return handshakeError("unauthorized", "The handshake needs auth {host, token}: set hub.host and hub.token in the agent's config.");
    }
    try {
      const tokenHash = this.deps.tokens.verify(host, token);
      if (tokenHash === null) {
        this.deps.logger[this.deps.limiter.fail(address)]({ address, host }, "agent handshake with unknown host or wrong token refused");
        return handshakeError(
          "unauthorized",
          `Host '${host}' is unknown or its token is wrong. On the hub run 'labrig-hub host token ${host}' (or 'host add ${host}') and put the new token in the agent's config.`,
        );
      }
      this.sessions.set(socket, { host, socket, tokenHash, helloDone: false });
      return undefined;
    } catch (err) {
      this.deps.logger.error({ err, address, host }, "agent authentication failed");
      return handshakeError("internal_error", "The hub could not check the token; it has logged the cause. The agent will retry.");
    }
  }

  private onConnection(socket: AgentSocket): void {
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
    log.info({ address: socket.handshake.address }, "agent connected");
    // Announced before the older socket goes: whatever that one had not started then waits for this one's hello.
    this.deps.bus.emit("agent.link", { host, socketId: socket.id, up: true, reason: null, replaced: false, shutdown: false });
    if (previous) {
      const old = this.sessions.get(previous);
      if (old) old.dropReason = "replaced by a newer connection";
      log.info({ replaced_socket_id: previous.id }, "newer agent connection replaces the older one");
      previous.disconnect(true);
    }

    for (const event of Object.keys(SOCKET_EVENTS) as (keyof Events)[]) {
      const spec = SOCKET_EVENTS[event];
      if (spec.namespace !== AGENT_NAMESPACE || spec.direction !== "agent→hub") continue;
      this.route(socket, session, log, event as AgentEventName);
    }
    socket.on("disconnect", (reason) => {
      const why = session.dropReason ?? reason;
      const wasLive = this.deps.connections.release(host, socket);
      log.info({ reason: why }, "agent disconnected");
      this.deps.bus.emit("agent.link", { host, socketId: socket.id, up: false, reason: why, replaced: !wasLive, shutdown: this.shuttingDown });
    });
  }

  /** Listens for one event: validates it, checks the host it names, and hands it to its unit's handler; the ack always answers. */
  private route(socket: AgentSocket, session: AgentSession, log: Logger, event: AgentEventName): void {
    const schema = SOCKET_EVENTS[event].schema as z.ZodType;
    (socket as unknown as { on(event: string, listener: (...args: unknown[]) => void): void }).on(event, (...args: unknown[]) => {
      const last = args[args.length - 1];
      const ack = typeof last === "function" ? (last as (answer: unknown) => void) : undefined;
      const raw = args.length > (ack ? 1 : 0) ? args[0] : undefined;
      const parsed = schema.safeParse(raw);
      if (!parsed.success) {
        const problem = describeZodError(parsed.error);
        log.warn({ event, problem }, "invalid agent event refused");
        ack?.({ ok: false, error: makeEnvelope("validation_failed", `Invalid ${event} payload: ${problem}. The agent and hub may be on incompatible versions.`) });
        return;
      }
      const payload = parsed.data as { host?: unknown };
      if (payload.host !== session.host) {
        log.warn({ event, authenticated_host: session.host, claimed_host: payload.host }, "agent tried to speak for another host (impersonation); refused");
        ack?.({ ok: false, error: makeEnvelope("forbidden", `This connection is authenticated as '${session.host}' and cannot speak for '${String(payload.host)}'. Check the host id in the agent's config.`) });
        return;
      }
      const handler = this.handlers.get(event);
      if (!handler) {
        ack?.({ ok: false, error: makeEnvelope("unsupported_action", `This hub does not handle '${event}' (the feature is off).`) });
        return;
      }
      try {
        handler(session, payload as Payload<AgentEventName>, ack as AckOf<AgentEventName> | undefined);
      } catch (err) {
        log.error({ err, event }, "agent event handler failed");
        ack?.({ ok: false, error: toLabrigError(err).toEnvelope() });
      }
    });
  }
}
