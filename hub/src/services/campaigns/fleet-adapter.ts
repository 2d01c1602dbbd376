import { LabrigError, sleep, toLabrigError, type ActionName, type ActionRecord, type TargetSelector } from "@labrig/shared";
import type { Logger } from "../../logger.js";
import type { ActionsRepository } from "../../repositories/actions.js";
import type { Dispatcher } from "../dispatcher.js";
import { matchesSelector } from "../dispatcher.js";
import type { Fleet } from "../fleet.js";
import type { LeaseBook } from "../lease-book.js";
import type { LeaseManager } from "../leases.js";
import type { AcquireOptions, CampaignFleet, DeviceLease, RunActionRequest } from "./ports.js";

/** Who the runner is when it releases leases by id or cancels actions. */
const RUNNER = "campaign-runner";
/** How often a retry looks again for a device it has not failed on. */
const EXCLUDE_POLL_MS = 200;

/**
 * The campaign runner's fleet port over the dispatcher and the lease manager: every lease and
 * every action goes through them, so runs share devices fairly with everyone else's work.
 */
export class DispatcherFleet implements CampaignFleet {
  constructor(
    private readonly dispatcher: Dispatcher,
    private readonly leases: LeaseManager,
    private readonly book: LeaseBook,
    private readonly fleet: Fleet,
    private readonly actions: ActionsRepository,
    private readonly logger: Logger,
  ) {}

  async acquire(selector: TargetSelector, options: AcquireOptions): Promise<DeviceLease> {
    if (options.exclude.length === 0) return this.leaseOne({ selector }, options.wait_ms, options);
    // The lease API has no "except these": try each other matching device that is free now, and look
    // again until the wait is over. No queueing of our own: each try is an immediate lease request.
    const excluded = new Set(options.exclude.map((d) => `${d.host}/${d.device}`));
    const deadline = Date.now() + options.wait_ms;
    for (;;) {
      if (options.signal?.aborted) throw toLabrigError(options.signal.reason);
      for (const slot of this.fleet.all()) {
        if (excluded.has(slot.key) || slot.health !== "good" || !matchesSelector(slot, selector) || this.book.forDevice(slot.key)) continue;
        try {
          return await this.leaseOne({ host: slot.host, device: slot.device }, 0, options);
        } catch (err) {
          // Taken or gone since we looked; try the next one.
          this.logger.debug({ host: slot.host, device: slot.device, err: (err as Error).message }, "device not leasable for a retry");
        }
      }
      if (Date.now() >= deadline) {
        throw new LabrigError("no_device_available", `No device other than ${[...excluded].join(", ")} matching ${JSON.stringify(selector)} became free within ${options.wait_ms} ms.`);
      }
      await sleep(Math.min(EXCLUDE_POLL_MS, Math.max(0, deadline - Date.now())), options.signal).catch(() => undefined);
    }
  }

  async keepalive(lease: DeviceLease, ttlS: number): Promise<void> {
    this.leases.keepalive(lease.id, { ttl_s: ttlS }, { token: lease.token, isAdmin: false, name: RUNNER });
  }

  async release(leaseId: string, reason: string): Promise<void> {
    try {
      this.leases.release(leaseId, { token: undefined, isAdmin: true, name: `${RUNNER} (${reason})` });
    } catch (err) {
      const e = toLabrigError(err);
      // Already ended (expired, or released by an admin) or unknown: either way it no longer holds anything.
      if (e.code === "conflict" || e.code === "not_found") return;
      throw e;
    }
  }

  async runAction(req: RunActionRequest): Promise<ActionRecord> {
    const leaseId = this.book.byToken(req.lease_token)?.id ?? null;
    const onAbort = (): void => {
      if (leaseId !== null) this.cancelActionsOf(req.host, req.device, leaseId);
    };
    if (req.signal.aborted) throw toLabrigError(req.signal.reason);
    req.signal.addEventListener("abort", onAbort, { once: true });
    try {
      const record = await this.dispatcher.submitAction({
        action: req.action as ActionName,
        resource: req.resource ?? undefined,
        params: req.params,
        target: { host: req.host, device: req.device },
        leaseToken: req.lease_token,
        priority: 0,
        requestedBy: req.requested_by,
      });
      return { ...record, host: record.host ?? req.host, device: record.device ?? req.device };
    } finally {
      req.signal.removeEventListener("abort", onAbort);
    }
  }

  cancel(actionId: string): void {
    try {
      this.dispatcher.cancel(actionId, RUNNER);
    } catch (err) {
      const e = toLabrigError(err);
      if (e.code !== "conflict" && e.code !== "not_found") this.logger.warn({ err, action_id: actionId }, "could not cancel a run's action");
    }
  }

  cancelLeaseActions(lease: DeviceLease): void {
    this.cancelActionsOf(lease.host, lease.device, lease.id);
  }

  /** The runner sends one action at a time per lease; cancel whatever of this lease is queued or running on the device. */
  private cancelActionsOf(host: string, device: string, leaseId: string): void {
    for (const status of ["running", "queued"] as const) {
      for (const a of this.actions.list({ host, device, status, limit: 20 }).actions) if (a.lease_id === leaseId) this.cancel(a.id);
    }
  }

  private async leaseOne(target: { selector: TargetSelector } | { host: string; device: string }, waitMs: number, options: AcquireOptions): Promise<DeviceLease> {
    const pending = this.leases.create({ target, count: 1, ttl_s: options.ttl_s, owner: options.owner, wait_ms: waitMs }, options.requested_by);
    const signal = options.signal;
    const granted = signal
      ? await new Promise<Awaited<typeof pending>>((resolve, reject) => {
          const onAbort = (): void => {
            // The request keeps waiting in the dispatcher's queue; if it is granted later, give it straight back.
            pending.then(
              (l) => void this.release(l.id, "run aborted while waiting").catch((err: unknown) => this.logger.error({ err, lease_id: l.id }, "could not release a lease granted after its run was aborted")),
              () => undefined,
            );
            reject(toLabrigError(signal.reason));
          };
          if (signal.aborted) {
            onAbort();
            return;
          }
          signal.addEventListener("abort", onAbort, { once: true });
          pending.then(
            (l) => {
              signal.removeEventListener("abort", onAbort);
              resolve(l);
            },
            (err: unknown) => {
              signal.removeEventListener("abort", onAbort);
              reject(toLabrigError(err));
            },
          );
        })
      : await pending;
    const d = granted.devices[0];
    if (!d) throw new LabrigError("internal_error", `Lease ${granted.id} was granted without a device.`);
    return { id: granted.id, token: granted.token, host: d.host, device: d.device, resources: this.fleet.get(d.host, d.device)?.resources ?? [] };
  }
}
