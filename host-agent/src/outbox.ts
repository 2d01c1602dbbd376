import type { ActionResult } from "@labrig/shared";
import type { Logger } from "./logger.js";

/** How results reach the hub. `sendResult` resolves true only when the hub acknowledged `{ok: true}`. */
export interface ResultTransport {
  isReady(): boolean;
  sendResult(result: ActionResult): Promise<boolean>;
}

export interface OutboxOptions {
  maxEntries?: number;
  /** While connected, how long to wait before resending results that were not acknowledged. */
  retryMs?: number;
}

/**
 * Action results wait here until the hub acknowledges them, so a result produced while the
 * hub is away is delivered after the reconnect, once, by id. Bounded: beyond maxEntries the
 * oldest result is dropped and logged, because an agent cut off for days must not run out of memory.
 */
export class Outbox {
  private readonly entries = new Map<string, ActionResult>();
  private readonly inFlight = new Set<string>();
  private transport: ResultTransport | null = null;
  private retryTimer: NodeJS.Timeout | null = null;
  private stopped = false;
  private readonly maxEntries: number;
  private readonly retryMs: number;

  constructor(
    private readonly logger: Logger,
    options: OutboxOptions = {},
  ) {
    this.maxEntries = options.maxEntries ?? 1000;
    this.retryMs = options.retryMs ?? 5000;
  }

  get size(): number {
    return this.entries.size;
  }

  attach(transport: ResultTransport): void {
    this.transport = transport;
  }

  add(result: ActionResult): void {
    this.entries.delete(result.id);
    this.entries.set(result.id, result);
    while (this.entries.size > this.maxEntries) {
      const [oldestId] = this.entries.keys();
      if (oldestId === undefined) break;
      this.entries.delete(oldestId);
      this.logger.error({ action_id: oldestId, max_entries: this.maxEntries }, "outbox full: dropped the oldest undelivered action result; the hub will see that action as lost");
    }
    this.send(result);
  }

  /** Sends every waiting result that is not already on its way (after each (re)connect). */
  flush(): void {
    for (const result of this.entries.values()) this.send(result);
  }

  stop(): void {
    this.stopped = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
  }

  private send(result: ActionResult): void {
    const transport = this.transport;
    if (this.stopped || !transport?.isReady() || this.inFlight.has(result.id)) return;
    this.inFlight.add(result.id);
    transport
      .sendResult(result)
      .then(
        (ok) => {
          if (ok) {
            this.entries.delete(result.id);
            return;
          }
          this.logger.error({ action_id: result.id }, "hub refused an action result; it stays in the outbox and is sent again later");
          this.scheduleRetry();
        },
        (err: unknown) => {
          // Disconnects end up here too; the flush after the next hello resends.
          this.logger.warn({ action_id: result.id, err: (err as Error).message }, "action result not acknowledged; will resend");
          this.scheduleRetry();
        },
      )
      .finally(() => this.inFlight.delete(result.id));
  }

  private scheduleRetry(): void {
    if (this.stopped || this.retryTimer) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.flush();
    }, this.retryMs);
  }
}
