import { LabrigError, toLabrigError, type ActionRecord, type TargetSelector } from "@labrig/shared";
import type { LeaseManager } from "../leases.js";
import type { Scheduler } from "../work/scheduler.js";
import type { WorkFacade } from "../work/work.js";
import type { AcquireOptions, CampaignFleet, DeviceLease, RunActionRequest } from "./ports.js";

/** Who the runner is when it releases leases by id. */
const RUNNER = "campaign-runner";

/**
 * The campaign runner's fleet port over the work facade and the lease manager: every lease and
 * every action goes through them, so runs share devices fairly with everyone else's work. Leases
 * skip excluded devices in the scheduler itself, and aborting a step's signal cancels its action.
 */
export class WorkFleet implements CampaignFleet {
  constructor(
    private readonly work: WorkFacade,
    private readonly leases: LeaseManager,
    private readonly devices: Pick<Scheduler, "slot">,
  ) {}

  async acquire(selector: TargetSelector, options: AcquireOptions): Promise<DeviceLease> {
    const granted = await this.leases.create(
      { target: { selector }, count: 1, ttl_s: options.ttl_s, owner: options.owner, wait_ms: options.wait_ms },
      options.requested_by,
      { exclude: options.exclude, signal: options.signal },
    );
    const d = granted.devices[0];
    if (!d) throw new LabrigError("internal_error", `Lease ${granted.id} was granted without a device.`);
    return { id: granted.id, token: granted.token, host: d.host, device: d.device, resources: this.devices.slot(`${d.host}/${d.device}`)?.resources ?? [] };
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
    const { done } = this.work.submit(
      {
        action: req.action,
        resource: req.resource,
        params: req.params,
        target: { host: req.host, device: req.device },
        leaseToken: req.lease_token,
        requestedBy: req.requested_by,
      },
      { signal: req.signal },
    );
    const record = await done;
    return { ...record, host: record.host ?? req.host, device: record.device ?? req.device };
  }
}
