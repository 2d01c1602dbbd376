import {
  DASHBOARD_NAMESPACE,
  DASHBOARD_TOPICS,
  LabrigError,
  SubscribeSchema,
  describeZodError,
  makeEnvelope,
  toLabrigError,
  type DashboardEventMap,
  type DashboardTopic,
  type ErrorEnvelope,
  type SubscribeAck,
} from "@labrig/shared";
import type { Namespace, Server, Socket } from "socket.io";
import { bearerToken } from "../api/auth.js";
import { originAllowed } from "../api/security.js";
import type { Logger } from "../logger.js";
import type { AuthFailureLimiter } from "../services/auth-failure-limiter.js";
import type { HubBus } from "../bus.js";
import type { OperatorAuth, Principal } from "../services/operator-auth.js";

export interface DashboardNamespaceDeps {
  io: Server;
  auth: OperatorAuth;
  limiter: AuthFailureLimiter;
  bus: HubBus;
  corsOrigins: readonly string[];
  logger: Logger;
  /** Console and video streams and console typing (dashboard-streams.ts). */
  streams: { attach(socket: Socket, principal: Principal, log: Logger): void };
}

/** A socket.io middleware error whose envelope reaches the client as `err.data` in `connect_error`. */
function handshakeError(error: LabrigError): Error & { data: ErrorEnvelope } {
  const err = new Error(error.message) as Error & { data: ErrorEnvelope };
  err.data = error.toEnvelope();
  return err;
}

/** The client's address: socket.io does not apply express's `trust proxy`, so do the same here (trust a loopback proxy). */
export function clientAddress(socket: Socket): string {
  const direct = socket.handshake.address;
  const forwarded = socket.handshake.headers["x-forwarded-for"];
  const loopback = direct === "127.0.0.1" || direct === "::1" || direct === "::ffff:127.0.0.1";
  if (loopback && typeof forwarded === "string" && forwarded.trim() !== "") {
    const hops = forwarded.split(",").map((h) => h.trim());
    return hops[hops.length - 1] ?? direct;
  }
  return direct;
}

/** The credential of a dashboard handshake: `auth.token`, then `?token=`, then `Authorization: Bearer`. */
function handshakeCredential(socket: Socket): string | null {
  const auth = (socket.handshake.auth ?? {}) as Record<string, unknown>;
  if (typeof auth.token === "string" && auth.token !== "") return auth.token;
  const query = socket.handshake.query.token;
  if (typeof query === "string" && query !== "") return query;
  return bearerToken(socket.handshake.headers.authorization);
}

const room = (topic: DashboardTopic): string => `topic:${topic}`;
const planRoom = (id: string): string => `plan:${id}`;

type Ack = (response: unknown) => void;

const MAX_TIMER_MS = 2_147_483_647;

/**
 * The `/dashboard` namespace: operators (viewer and up) receive live events. A new socket gets
 * every topic; `subscribe {topics}` narrows it. Other services publish through publish() (or the
 * hub event bus, which this namespace listens to).
 */
export class DashboardNamespace {
  private nsp: Namespace | null = null;
  private readonly principals = new WeakMap<Socket, Principal>();
  private unsubscribe: (() => void)[] = [];

  constructor(private readonly deps: DashboardNamespaceDeps) {}

  start(): void {
    if (this.nsp) return;
    const nsp = this.deps.io.of(DASHBOARD_NAMESPACE);
    nsp.use((socket, next) => {
      this.authenticate(socket).then(
        () => next(),
        (err: unknown) => next(handshakeError(toLabrigError(err))),
      );
    });
    nsp.on("connection", (socket) => this.onConnection(socket));
    this.nsp = nsp;
    this.unsubscribe = DASHBOARD_TOPICS.map((topic) => this.deps.bus.on(topic, (payload) => this.publish(topic, payload as DashboardEventMap[typeof topic])));
    this.unsubscribe.push(this.deps.bus.on("key.revoked", (e) => this.disconnectPrincipal(e.keyId, "API key revoked")));
  }

  stop(): void {
    for (const off of this.unsubscribe.splice(0)) off();
    this.nsp?.disconnectSockets(true);
    this.nsp = null;
  }

  /** Sends an event to every dashboard subscribed to its topic. */
  publish<E extends DashboardTopic>(event: E, payload: DashboardEventMap[E]): void {
    // Partial model text is chatty: it goes only to the sockets watching that plan.
    const target = event === "plan.partial" ? planRoom((payload as DashboardEventMap["plan.partial"]).id) : room(event);
    const nsp = this.nsp;
    // A broadcast encodes its packet before it looks for recipients: with nobody in the room, skip it (every action ends in one).
    if (!nsp || (nsp.adapter.rooms.get(target)?.size ?? 0) === 0) return;
    nsp.to(target).emit(event, payload);
  }

  /** Disconnects every dashboard that authenticated as this principal (its API key was revoked). */
  disconnectPrincipal(principalId: string, reason: string): number {
    let count = 0;
    for (const socket of this.nsp?.sockets.values() ?? []) {
      if (this.principals.get(socket)?.id !== principalId) continue;
      this.deps.logger.info({ socket_id: socket.id, principal_id: principalId, reason }, "disconnecting dashboard");
      socket.disconnect(true);
      count++;
    }
    return count;
  }

  /** Connected dashboards (for tests and system info). */
  get size(): number {
    return this.nsp?.sockets.size ?? 0;
  }

  private async authenticate(socket: Socket): Promise<void> {
    const address = clientAddress(socket);
    const origin = socket.handshake.headers.origin;
    // WebSockets are not subject to CORS: the origin check has to happen here.
    if (!originAllowed(new Set(this.deps.corsOrigins), origin, socket.handshake.headers.host)) {
      this.deps.logger.warn({ address, origin }, "dashboard connection from a disallowed origin refused");
      throw new LabrigError("forbidden", `Origin ${String(origin)} may not connect. An admin can allow it with LABRIG_CORS_ORIGINS.`);
    }
    const retryAfter = this.deps.limiter.blockedFor(address);
    if (retryAfter !== null) throw new LabrigError("rate_limited", `Too many failed authentications from ${address}; try again in ${retryAfter} s.`, { retryAfter });
    const credential = handshakeCredential(socket);
    if (credential === null) {
      throw new LabrigError("unauthorized", "The dashboard needs credentials: pass an API key or JWT as auth.token (or ?token=).");
    }
    try {
      const principal = await this.deps.auth.authenticate(credential);
      this.principals.set(socket, principal);
    } catch (err) {
      if (err instanceof LabrigError && err.code === "unauthorized") {
        this.deps.logger[this.deps.limiter.fail(address)]({ address, reason: err.message }, "dashboard authentication failed");
      }
      throw err;
    }
  }

  private onConnection(socket: Socket): void {
    const principal = this.principals.get(socket);
    if (!principal) {
      // Cannot happen (the middleware sets it), but an unauthenticated socket must never stay connected.
      this.deps.logger.error({ socket_id: socket.id }, "dashboard socket without a principal; disconnecting");
      socket.disconnect(true);
      return;
    }
    const log = this.deps.logger.child({ socket_id: socket.id, principal: principal.name, role: principal.role });
    for (const topic of DASHBOARD_TOPICS) void socket.join(room(topic));
    log.info("dashboard connected");

    // A JWT stops being valid at exp; so does the connection it opened.
    let expiry: NodeJS.Timeout | null = null;
    if (principal.expiresAtMs !== null) {
      // setTimeout fires at once beyond 2^31-1 ms, so a far-off exp is capped: a reconnect after ~24 days.
      expiry = setTimeout(() => {
        log.info("dashboard credential expired; disconnecting");
        socket.disconnect(true);
      }, Math.min(MAX_TIMER_MS, Math.max(0, principal.expiresAtMs - Date.now())));
      expiry.unref();
    }

    socket.on("subscribe", (...args: unknown[]) => {
      const last = args[args.length - 1];
      const ack = typeof last === "function" ? (last as Ack) : undefined;
      const payload = args.length > (ack ? 1 : 0) ? args[0] : undefined;
      try {
        const answer = this.onSubscribe(socket, log, payload);
        ack?.(answer);
      } catch (err) {
        log.error({ err }, "dashboard subscribe failed");
        ack?.({ ok: false, error: toLabrigError(err).toEnvelope() } satisfies SubscribeAck);
      }
    });
    this.deps.streams.attach(socket, principal, log);
    socket.on("disconnect", (reason) => {
      if (expiry) clearTimeout(expiry);
      log.info({ reason }, "dashboard disconnected");
    });
  }

  private onSubscribe(socket: Socket, log: Logger, payload: unknown): SubscribeAck {
    const parsed = SubscribeSchema.safeParse(payload);
    if (!parsed.success) {
      log.debug({ problem: describeZodError(parsed.error) }, "invalid subscribe refused");
      return { ok: false, error: makeEnvelope("validation_failed", `Invalid subscribe payload: ${describeZodError(parsed.error)}. Send {topics: [${DASHBOARD_TOPICS.map((t) => `"${t}"`).join(", ")}]}.`) };
    }
    const wanted = new Set(parsed.data.topics);
    for (const topic of DASHBOARD_TOPICS) {
      if (wanted.has(topic)) void socket.join(room(topic));
      else void socket.leave(room(topic));
    }
    const plans = new Set(parsed.data.plans ?? []);
    for (const joined of socket.rooms) if (joined.startsWith("plan:") && !plans.has(joined.slice(5))) void socket.leave(joined);
    for (const id of plans) void socket.join(planRoom(id));
    return { ok: true, topics: [...wanted] };
  }
}
