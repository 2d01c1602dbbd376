import type { ActionName, DashboardEventMap } from "@labrig/shared";
import type { Logger } from "./logger.js";
import type { StoredAction } from "./repositories/actions.js";

/** What units tell each other that no dashboard sees. */
export interface InternalEventMap {
  /** An agent's hello was stored: the host's device set may have changed. */
  "host.devices": { host: string; removed: string[] };
  /** An action was sent to a device after waiting `waitedMs` on the hub (the queue-wait metric). */
  "action.dispatched": { action: ActionName; waitedMs: number };
  /** An action ended, on a device or before reaching one (host and device null then): health counts hardware failures, metrics count outcomes. */
  "action.ended": { record: StoredAction };
  /** A chunk of console output arrived from an agent. */
  "console.output": { host: string; device: string; resource: string; text: string };
  /** An API key was revoked (in this process or, noticed later, by the CLI). */
  "key.revoked": { keyId: string };
  /**
   * A host's agent connection came or went. `replaced`: a newer connection of the same host took over;
   * `shutdown`: the hub itself is closing connections. Presence decides online/offline from these.
   */
  "agent.link": { host: string; socketId: string; up: boolean; reason: string | null; replaced: boolean; shutdown: boolean };
  /** The live connection's hello was accepted and acknowledged: the host may be given work. `agentStartedAt` identifies the agent process. */
  "agent.hello": { host: string; socketId: string; agentStartedAt: string };
}

/** Every event on the hub's bus: what dashboards receive, and what units tell each other. */
export type HubEventMap = DashboardEventMap & InternalEventMap;
export type HubEventName = keyof HubEventMap;
type Listener<E extends HubEventName> = (payload: HubEventMap[E]) => void;

/**
 * The hub's one in-process event bus: units announce what happened without knowing who listens.
 * Delivery is synchronous, in subscription order, and each listener is isolated: one that throws is
 * logged and cannot break the unit that emitted or the other listeners (zigbee2mqtt's event bus).
 */
export class HubBus {
  private readonly listeners = new Map<HubEventName, Set<(payload: never) => void>>();

  constructor(private readonly logger: Logger) {}

  /** Adds a listener; returns the function that removes it. */
  on<E extends HubEventName>(event: E, listener: Listener<E>): () => void {
    let set = this.listeners.get(event);
    if (!set) {
      set = new Set();
      this.listeners.set(event, set);
    }
    set.add(listener as (payload: never) => void);
    return () => set.delete(listener as (payload: never) => void);
  }

  /** True when someone listens (so an emitter can skip building an expensive payload). */
  has(event: HubEventName): boolean {
    return (this.listeners.get(event)?.size ?? 0) > 0;
  }

  emit<E extends HubEventName>(event: E, payload: HubEventMap[E]): void {
    const set = this.listeners.get(event);
    if (!set) return;
    for (const listener of set) {
      try {
        (listener as Listener<E>)(payload);
      } catch (err) {
        this.logger.error({ err, event }, "bus listener failed");
      }
    }
  }
}
