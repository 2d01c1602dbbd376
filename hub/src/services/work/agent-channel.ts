import { makeEnvelope, type ActionName, type ActionResult, type ActionStarted } from "@labrig/shared";
import type { HubBus } from "../../bus.js";
import type { Logger } from "../../logger.js";
import type { AgentConnections } from "../../realtime/agent-connections.js";
import type { AgentNamespace, AgentSession } from "../../realtime/agent-namespace.js";

/** One action to send to an agent. */
export interface Outgoing {
  actionId: string;
  /** 1 for the first dispatch, 2 after one re-dispatch, and so on. */
  attempt: number;
  host: string;
  device: string;
  action: ActionName;
  resource: string | null;
  params: Record<string, unknown>;
  timeoutMs: number;
  /** Whether the agent must ask before it starts (false for reads). */
  confirmStart: boolean;
}

/** What the channel asks of the work it serves. */
export interface ChannelPort {
  /** The agent is about to start the action: true lets it run; false means the hub no longer wants it run. */
  starting(actionId: string, attempt: number, at: string): boolean;
  /** The agent delivered the outcome of an attempt the channel sent (and has not taken back). */
  finished(actionId: string, result: ActionResult): void;
  /** A result for an attempt the channel no longer tracks: earlier attempt, redelivery, or a previous hub process. */
  late(actionId: string, result: ActionResult): void;
  /** The attempt will never report: its connection went away (`started` says whether it had begun on the device). */
  lost(actionId: string, attempt: number, started: boolean, reason: string): void;
}

interface InFlight {
  readonly out: Outgoing;
  readonly wireId: string;
  readonly socketId: string;
  started: boolean;
}

/** The id an attempt carries on the wire: the action id, then `id~2`, `id~3` after re-dispatches. */
export function wireIdOf(actionId: string, attempt: number): string {
  return attempt <= 1 ? actionId : `${actionId}~${attempt}`;
}

/** The action id inside a wire id. */
export function actionIdOf(wireId: string): string {
  const i = wireId.indexOf("~");
  return i < 0 ? wireId : wireId.slice(0, i);
}

/**
 * Actions over the agents' sockets, typed from `shared`: sends `action.request` and `action.cancel`,
 * owns the wire ids, runs the start confirmation (an agent runs an action only after the hub acks its
 * `action.started`), and turns results and lost connections into calls on the work it serves.
 *
 * Lost connections: what an agent had not started is handed back at once, so it can be re-dispatched
 * without ever running twice (and so is a read, which was sent without confirmation and changes nothing). What it had started fails with `host_lost` when the connection drops,
 * but not when a newer connection of the same agent process replaced it: that agent still runs the
 * action and delivers the result from its outbox over the new connection. If the new connection's
 * hello shows another agent process, the started actions of the old one are lost after all.
 */
export class AgentChannel {
  private readonly byWire = new Map<string, InFlight>();
  private readonly byAction = new Map<string, InFlight>();
  /** Agent process start time per socket, from its hello. */
  private readonly processOf = new Map<string, string>();
  /** Started attempts whose connection was replaced, by host, waiting for the new connection's hello. */
  private readonly orphans = new Map<string, { socketId: string; agentStartedAt: string | undefined; ids: Set<string> }>();
  private readonly unsubscribe: (() => void)[] = [];

  constructor(
    private readonly connections: AgentConnections,
    private readonly namespace: AgentNamespace,
    private readonly bus: HubBus,
    private readonly port: ChannelPort,
    private readonly logger: Logger,
  ) {
    namespace.handle("action.started", (session, started, ack) => ack?.({ ok: this.onStarted(session, started) }));
    namespace.handle("action.result", (session, result, ack) => {
      const refusal = this.onResult(session, result);
      // The outcome is committed already; the ack (which lets the agent drop it from its outbox) goes
      // after the answers this result completes, which are what somebody is waiting for.
      setImmediate(() => ack?.(refusal === null ? { ok: true } : { ok: false, error: makeEnvelope("forbidden", refusal) }));
    });
  }

  start(): void {
    this.unsubscribe.push(
      this.bus.on("agent.link", (e) => {
        if (!e.up && !e.shutdown) this.onLinkDown(e.host, e.socketId, e.reason ?? "disconnected", e.replaced);
        if (!e.up) this.processOf.delete(e.socketId);
      }),
      this.bus.on("agent.hello", (e) => this.onHello(e.host, e.socketId, e.agentStartedAt)),
    );
  }

  stop(): void {
    for (const off of this.unsubscribe.splice(0)) off();
  }

  /** Whether the host has a live socket to send an attempt on. */
  canSend(host: string): boolean {
    return this.connections.get(host) !== undefined;
  }

  /** Sends an attempt on the host's live socket (the caller checked canSend() in the same turn). */
  send(out: Outgoing): void {
    const socket = this.connections.get(out.host);
    if (!socket) throw new Error(`no live connection to host '${out.host}' to send action ${out.actionId} on`);
    const wireId = wireIdOf(out.actionId, out.attempt);
    const flight: InFlight = { out, wireId, socketId: socket.id, started: false };
    this.byWire.set(wireId, flight);
    this.byAction.set(out.actionId, flight);
    socket.emit("action.request", { id: wireId, device: out.device, action: out.action, resource: out.resource, params: out.params, timeout_ms: out.timeoutMs, confirm_start: out.confirmStart });
  }

  /** Tells the agent to abort the action's current attempt (it answers with a `canceled` result if it had started). */
  cancel(actionId: string): void {
    const flight = this.byAction.get(actionId);
    if (!flight) return;
    this.connections.get(flight.out.host)?.emit("action.cancel", { id: flight.wireId });
  }

  /** Whether the action's current attempt may have begun on the device: confirmed, or sent without confirmation. */
  isStarted(actionId: string): boolean {
    const flight = this.byAction.get(actionId);
    return flight !== undefined && (flight.started || !flight.out.confirmStart);
  }

  /** Stops tracking the action's attempt (it ended, or goes back to the queue): a later result of it is `late`. */
  forget(actionId: string): void {
    const flight = this.byAction.get(actionId);
    if (!flight) return;
    this.byAction.delete(actionId);
    this.byWire.delete(flight.wireId);
  }

  get inFlight(): number {
    return this.byAction.size;
  }

  private onStarted(session: AgentSession, started: ActionStarted): boolean {
    const flight = this.byWire.get(started.id);
    if (!flight || flight.out.host !== session.host || flight.out.device !== started.device) {
      this.logger.info({ host: session.host, wire_id: started.id }, "declined the start of an action that was canceled or moved to another device");
      return false;
    }
    if (flight.started) return true;
    if (!this.port.starting(flight.out.actionId, flight.out.attempt, started.started_at)) return false;
    flight.started = true;
    return true;
  }

  /** Null when accepted (finished, late or duplicate); otherwise why it is refused. */
  private onResult(session: AgentSession, result: ActionResult): string | null {
    const flight = this.byWire.get(result.id);
    if (flight) {
      if (flight.out.host !== session.host) {
        this.logger.warn({ host: session.host, action_id: flight.out.actionId }, "agent sent a result for an action that was sent to another host; refused");
        return `Action ${result.id} was not sent to host '${session.host}'.`;
      }
      this.forget(flight.out.actionId);
      this.port.finished(flight.out.actionId, result);
      return null;
    }
    this.port.late(actionIdOf(result.id), result);
    return null;
  }

  private onLinkDown(host: string, socketId: string, reason: string, replaced: boolean): void {
    const orphaned = new Set<string>();
    for (const flight of [...this.byAction.values()]) {
      if (flight.out.host !== host || flight.socketId !== socketId) continue;
      // A read sent without confirmation: whether it ran is unknown, and running it again changes nothing.
      if (!flight.out.confirmStart) {
        this.forget(flight.out.actionId);
        this.port.lost(flight.out.actionId, flight.out.attempt, false, reason);
        continue;
      }
      if (flight.started && replaced) {
        orphaned.add(flight.out.actionId);
        continue;
      }
      this.forget(flight.out.actionId);
      this.port.lost(flight.out.actionId, flight.out.attempt, flight.started, reason);
    }
    if (orphaned.size > 0) {
      this.orphans.set(host, { socketId, agentStartedAt: this.processOf.get(socketId), ids: orphaned });
      this.logger.info({ host, actions: orphaned.size }, "connection replaced while actions ran; waiting for their results over the new connection");
    }
  }

  private onHello(host: string, socketId: string, agentStartedAt: string): void {
    this.processOf.set(socketId, agentStartedAt);
    const orphans = this.orphans.get(host);
    if (!orphans) return;
    this.orphans.delete(host);
    // Same agent process: its results arrive through its outbox. Another process: they never will.
    if (orphans.agentStartedAt === agentStartedAt) return;
    for (const actionId of orphans.ids) {
      const flight = this.byAction.get(actionId);
      if (!flight || flight.socketId !== orphans.socketId) continue;
      this.forget(actionId);
      this.port.lost(actionId, flight.out.attempt, true, "the agent restarted while the action ran");
    }
  }
}
