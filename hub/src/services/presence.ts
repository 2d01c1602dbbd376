import { makeEnvelope, nowIso, type HostState } from "@labrig/shared";
import type { HubBus } from "../bus.js";
import type { Logger } from "../logger.js";
import type { AgentConnections } from "../realtime/agent-connections.js";
import type { AgentNamespace } from "../realtime/agent-namespace.js";
import type { DevicesRepository } from "../repositories/devices.js";
import type { HostEventsRepository } from "../repositories/host-events.js";
import type { HostsRepository } from "../repositories/hosts.js";
import { helloRefusal, type HostLimits } from "./host-limits.js";
import type { HostTokens } from "./tokens.js";

export interface PresenceOptions {
  heartbeatIntervalMs: number;
  missedHeartbeats: number;
  hubVersion: string;
  /** Devices and resources one hello may declare. */
  limits: HostLimits;
}

export interface PresenceDeps {
  hosts: HostsRepository;
  devices: DevicesRepository;
  events: HostEventsRepository;
  tokens: HostTokens;
  connections: AgentConnections;
  agents: AgentNamespace;
  bus: HubBus;
  options: PresenceOptions;
  logger: Logger;
}

/**
 * Presence: which hosts are online. An agent's hello stores its devices and makes it online;
 * heartbeats feed last_seen; a sweep marks a host offline once it has been silent for
 * missed × interval (STF's TTL set, in SQLite), and a dropped connection does at once. Changes are
 * host events in the database and `host.state` on the bus. Heartbeats are gathered in memory and
 * written by the sweep in one transaction (10,000 agents beating every 5 s would otherwise be
 * 2,000 commits a second), so a stored last_seen lags by at most one sweep.
 */
export class Presence {
  private timer: NodeJS.Timeout | null = null;
  /** Heartbeats since the last sweep: host → when, not yet written. */
  private readonly pendingSeen = new Map<string, string>();
  private startedAtMs = 0;
  private unsubscribe: (() => void) | null = null;

  constructor(private readonly d: PresenceDeps) {
    d.agents.handle("hello", (session, hello, ack) => {
      if (!d.connections.isLive(session.host, session.socket)) {
        ack?.({ ok: false, error: makeEnvelope("conflict", "A newer connection for this host replaced this one.") });
        return;
      }
      const refusal = helloRefusal(hello, d.options.limits);
      if (refusal) {
        d.logger.warn({ host: session.host, devices: hello.devices.length, problem: refusal.message }, "hello refused: the host declares more than this hub accepts");
        ack?.({ ok: false, error: refusal.toEnvelope() });
        return;
      }
      const now = nowIso();
      d.hosts.setAgent(session.host, hello.version, hello.started_at);
      const removed = d.devices.replaceForHost(session.host, hello.devices, now);
      if (removed.length > 0) d.events.add({ hostId: session.host, kind: "devices_changed", detail: `removed: ${removed.join(", ")}`, at: now });
      d.bus.emit("host.devices", { host: session.host, removed });
      this.markOnline(session.host, `hello from agent ${hello.version}`);
      session.helloDone = true;
      d.logger.info({ host: session.host, agent_version: hello.version, devices: hello.devices.map((x) => x.id) }, "agent hello");
      // confirm_start: the agent asks (action.started) before it runs anything, so the hub can re-dispatch unstarted work safely.
      ack?.({ ok: true, heartbeat_interval_ms: d.options.heartbeatIntervalMs, hub_version: d.options.hubVersion, confirm_start: true });
      // After the ack: the agent takes work (and stream requests) only once its hello is accepted.
      d.bus.emit("agent.hello", { host: session.host, socketId: session.socket.id, agentStartedAt: hello.started_at });
    });
    d.agents.handle("heartbeat", (session, _beat, ack) => {
      // Tokens are rotated by a separate CLI process; the heartbeat is where the daemon notices.
      if (!d.tokens.isCurrent(session.host, session.tokenHash)) {
        session.dropReason = "token rotated";
        d.logger.warn({ host: session.host }, "host token was rotated; disconnecting the agent that uses the old one");
        session.socket.disconnect(true);
        return;
      }
      this.seen(session.host, session.helloDone && d.connections.isLive(session.host, session.socket));
      ack?.({ ok: true });
    });
  }

  /** Silence after which a host counts as offline. */
  get offlineAfterMs(): number {
    return this.d.options.missedHeartbeats * this.d.options.heartbeatIntervalMs;
  }

  get sweepEveryMs(): number {
    return Math.max(10, Math.min(1000, Math.floor(this.d.options.heartbeatIntervalMs / 2)));
  }

  start(): void {
    if (this.timer) return;
    // Hosts stored as online by a previous hub process are given one full window from now to reconnect,
    // so restarting the hub does not flap the whole fleet offline and back.
    this.startedAtMs = Date.now();
    this.timer = setInterval(() => this.sweep(), this.sweepEveryMs);
    this.timer.unref();
    this.unsubscribe = this.d.bus.on("agent.link", (e) => {
      if (!e.up && !e.replaced && !e.shutdown) this.markOffline(e.host, `disconnected: ${e.reason ?? "unknown"}`);
    });
  }

  stop(): void {
    try {
      this.flushSeen();
    } catch (err) {
      this.d.logger.error({ err }, "could not write the last heartbeats");
    }
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.unsubscribe?.();
    this.unsubscribe = null;
  }

  /** The agent said hello: online now, seen now. */
  markOnline(hostId: string, detail: string): void {
    const at = nowIso();
    this.pendingSeen.delete(hostId);
    this.d.hosts.setOnline(hostId, at);
    this.d.events.add({ hostId, kind: "online", detail, at });
    this.d.logger.info({ host: hostId, detail }, "host online");
    this.notify(hostId, "online", at);
  }

  /** A heartbeat arrived. `revive` brings back a host the sweep had marked offline while its socket lived. */
  seen(hostId: string, revive: boolean): void {
    const host = this.d.hosts.get(hostId);
    if (!host) return;
    if (host.state === "offline" && revive) {
      this.markOnline(hostId, "heartbeats resumed");
      return;
    }
    this.pendingSeen.set(hostId, nowIso());
  }

  /** Marks the host offline (once) and records why. */
  markOffline(hostId: string, reason: string): void {
    try {
      const host = this.d.hosts.get(hostId);
      if (!host || host.state === "offline") return;
      const at = nowIso();
      this.d.hosts.setState(hostId, "offline");
      this.d.events.add({ hostId, kind: "offline", detail: reason, at });
      this.d.logger.warn({ host: hostId, reason, last_seen: host.lastSeen }, "host offline");
      this.notify(hostId, "offline", at);
    } catch (err) {
      this.d.logger.error({ err, host: hostId }, "could not record that the host went offline");
    }
  }

  /** Writes the gathered heartbeats (one transaction). */
  private flushSeen(): void {
    if (this.pendingSeen.size === 0) return;
    this.d.hosts.touchMany(this.pendingSeen);
    this.pendingSeen.clear();
  }

  private notify(host: string, state: HostState, at: string): void {
    this.d.bus.emit("host.state", { host, state, at });
  }

  /** Marks silent hosts offline; runs on the timer, exposed for tests and tools. */
  sweep(nowMs = Date.now()): void {
    try {
      this.flushSeen();
      for (const host of this.d.hosts.listOnline()) {
        const seenMs = host.lastSeen === null ? 0 : Date.parse(host.lastSeen);
        const effective = Math.max(Number.isNaN(seenMs) ? 0 : seenMs, this.startedAtMs);
        if (nowMs - effective > this.offlineAfterMs) this.markOffline(host.id, `missed ${this.d.options.missedHeartbeats} heartbeats`);
      }
    } catch (err) {
      // A failing sweep (database locked for longer than busy_timeout) must not kill the timer; the next tick retries.
      this.d.logger.error({ err }, "presence sweep failed");
    }
  }
}
