import { LabrigError, toLabrigError } from "@labrig/shared";
import type { LeaseBook } from "../lease-book.js";
import type { LeaseDemandInput } from "./admission.js";
import type { Demand, DeviceSlot, Scheduler } from "./scheduler.js";

/** A lease request for the scheduler: devices are granted all at once, and `grant` runs in the same turn. */
export interface Reservation<T> extends LeaseDemandInput {
  /** The id the lease will have (the scheduler holds the devices under it from the moment of the grant). */
  id: string;
  waitMs: number;
  /** Records the lease; what it returns resolves the request. A throw releases the devices again. */
  grant: (slots: readonly DeviceSlot[]) => T;
}

interface Waiting {
  timer: NodeJS.Timeout | null;
  grant: (slots: readonly DeviceSlot[]) => void;
  fail: (err: LabrigError) => void;
}

/** Lease requests waiting in the scheduler's queue for enough free devices, with their wait limits and withdrawals. */
export class Reservations {
  private readonly waiting = new Map<string, Waiting>();

  constructor(
    private readonly scheduler: Scheduler,
    private readonly leases: LeaseBook,
    private readonly retryAfterS: () => number,
    private readonly pump: (full: boolean) => void,
  ) {}

  get size(): number {
    return this.waiting.size;
  }

  /** Queues an admitted lease request; resolves with what its grant returns, or rejects when it times out or is withdrawn. */
  request<T>(request: Reservation<T>, demand: Demand, signal: AbortSignal | undefined): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      if (signal?.aborted) {
        reject(toLabrigError(signal.reason));
        return;
      }
      const onAbort = (): void => {
        if (this.scheduler.dequeue(request.id)) this.end(request.id)?.fail(toLabrigError(signal?.reason));
      };
      const entry: Waiting = {
        timer: null,
        grant: (slots) => {
          signal?.removeEventListener("abort", onAbort);
          try {
            resolve(request.grant(slots));
          } catch (err) {
            this.scheduler.releaseLease(request.id);
            reject(err instanceof LabrigError ? err : new LabrigError("internal_error", `Could not record the lease: ${(err as Error).message}`, { cause: err }));
          }
        },
        fail: (err) => {
          signal?.removeEventListener("abort", onAbort);
          reject(err);
        },
      };
      this.waiting.set(request.id, entry);
      this.scheduler.enqueue({ kind: "lease", id: request.id, priority: 0, demand, count: request.count });
      signal?.addEventListener("abort", onAbort, { once: true });
      if (request.waitMs > 0) {
        entry.timer = setTimeout(() => this.onTimeout(request), request.waitMs);
        entry.timer.unref();
      }
      this.pump(false);
      if (request.waitMs === 0 && this.scheduler.has(request.id)) this.onTimeout(request);
    });
  }

  /** The scheduler granted devices (and already holds them under the request's id). */
  grant(id: string, slots: readonly DeviceSlot[]): void {
    this.end(id)?.grant(slots);
  }

  refuse(id: string, error: LabrigError): void {
    this.end(id)?.fail(error);
  }

  /** Fails every waiting request (the hub is stopping). */
  failAll(error: LabrigError): void {
    for (const id of [...this.waiting.keys()]) {
      this.scheduler.dequeue(id);
      this.end(id)?.fail(error);
    }
  }

  private end(id: string): Waiting | undefined {
    const entry = this.waiting.get(id);
    if (!entry) return undefined;
    if (entry.timer) clearTimeout(entry.timer);
    this.waiting.delete(id);
    return entry;
  }

  private onTimeout(request: Reservation<unknown>): void {
    if (!this.scheduler.dequeue(request.id)) return;
    const exact = "host" in request.target ? `${request.target.host}/${request.target.device}` : null;
    const target = exact ? `device ${exact}` : `a device matching ${JSON.stringify((request.target as { selector: unknown }).selector)}`;
    const holder = exact ? this.leases.forDevice(exact) : undefined;
    const held = holder ? ` It is leased to '${holder.owner}' until ${new Date(holder.expiresAtMs).toISOString()}.` : "";
    this.end(request.id)?.fail(
      new LabrigError("no_device_available", `Not enough free devices for a lease of ${request.count} × ${target} (online, good and not leased).${held} Retry later, or wait longer in the queue.`, { retryAfter: this.retryAfterS() }),
    );
  }
}
