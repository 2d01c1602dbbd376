import { nowIso, type HostState } from "@labrig/shared";
import type { Logger } from "../logger.js";
import type { HostEventsRepository } from "../repositories/host-events.js";
import type { HostsRepository } from "../repositories/hosts.js";

export interface PresenceOptions {
  heartbeatIntervalMs: number;
  missedHeartbeats: number;
}

/**
 * Presence: which hosts are online. Heartbeats feed last_seen; a sweep marks a host
 * offline once it has been silent for missed × interval (STF's TTL set, in SQLite).
 */
export class PresenceRegistry {
  private timer: NodeJS.Timeout | null = null;
  private startedAtMs = 0;
  private readonly listeners: ((hostId: string, state: HostState) => void)[] = [];

  constructor(
    private readonly hosts: HostsRepository,
    private readonly events: HostEventsRepository,
    private readonly options: PresenceOptions,
    private readonly logger: Logger,
  ) {}

  /** Silence after which a host counts as offline. */
  get offlineAfterMs(): number {
    return this.options.missedHeartbeats * this.options.heartbeatIntervalMs;
  }

  get sweepEveryMs(): number {
    return Math.max(10, Math.min(1000, Math.floor(this.options.heartbeatIntervalMs / 2)));
  }

  start(): void {
    if (this.timer) return;
    // Hosts stored as online by a previous hub process are given one full window from now to reconnect,
    // so restarting the hub does not flap the whole fleet offline and back.
    this.startedAtMs = Date.now();
    this.timer = setInterval(() => this.sweep(), this.sweepEveryMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** Calls `listener` after every online/offline change (the dispatcher re-evaluates its queue then). */
  onChange(listener: (hostId: string, state: HostState) => void): void {
    this.listeners.push(listener);
  }

  /** The agent said hello: online now, seen now. */
  markOnline(hostId: string, detail: string): void {
    const at = nowIso();
    this.hosts.setOnline(hostId, at);
    this.events.add({ hostId, kind: "online", detail, at });
    this.logger.info({ host: hostId, detail }, "host online");
    this.notify(hostId, "online");
  }

  /** A heartbeat arrived. `revive` brings back a host the sweep had marked offline while its socket lived. */
  seen(hostId: string, revive: boolean): void {
    const host = this.hosts.get(hostId);
    if (!host) return;
    if (host.state === "offline" && revive) {
      this.markOnline(hostId, "heartbeats resumed");
      return;
    }
    this.hosts.touch(hostId, nowIso());
  }

  /** Marks the host offline (once) and records why. */
  markOffline(hostId: string, reason: string): void {
    const host = this.hosts.get(hostId);
    if (!host || host.state === "offline") return;
    this.hosts.setState(hostId, "offline");
    this.events.add({ hostId, kind: "offline", detail: reason, at: nowIso() });
    this.logger.warn({ host: hostId, reason, last_seen: host.lastSeen }, "host offline");
    this.notify(hostId, "offline");
  }

  private notify(hostId: string, state: HostState): void {
    for (const listener of this.listeners) {
      // One failing listener must not stop presence itself (or the other listeners).
      try {
        listener(hostId, state);
      } catch (err) {
        this.logger.error({ err, host: hostId, state }, "presence listener failed");
      }
    }
  }

  /** Marks silent hosts offline; runs on the timer, exposed for tests and tools. */
  sweep(nowMs = Date.now()): void {
    try {
      for (const host of this.hosts.listOnline()) {
        const seenMs = host.lastSeen === null ? 0 : Date.parse(host.lastSeen);
        const effective = Math.max(Number.isNaN(seenMs) ? 0 : seenMs, this.startedAtMs);
        if (nowMs - effective > this.offlineAfterMs) {
          this.markOffline(host.id, `missed ${this.options.missedHeartbeats} heartbeats`);
        }
      }
    } catch (err) {
      // A failing sweep (database locked for longer than busy_timeout) must not kill the timer; the next tick retries.
      this.logger.error({ err }, "presence sweep failed");
    }
  }
}
