import type { DashboardEventMap } from "@labrig/shared";
import type { Logger } from "../logger.js";

export type HubEventName = keyof DashboardEventMap;
type Listener<E extends HubEventName> = (payload: DashboardEventMap[E]) => void;

/**
 * In-process event bus: services announce what happened (a host went offline, an action finished)
 * without knowing who listens. Each listener is isolated, so a failing one cannot break the
 * service that emitted or the other listeners (zigbee2mqtt's event bus).
 */
export class HubEvents {
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

  emit<E extends HubEventName>(event: E, payload: DashboardEventMap[E]): void {
    for (const listener of this.listeners.get(event) ?? []) {
      try {
        (listener as Listener<E>)(payload);
      } catch (err) {
        this.logger.error({ err, event }, "hub event listener failed");
      }
    }
  }
}
