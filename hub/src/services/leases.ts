import { randomBytes, randomUUID } from "node:crypto";
import { LabrigError, parseActionParams, type ActionName, type KeepaliveBodySchema, type LeaseBodySchema } from "@labrig/shared";
import type { z } from "zod";
import type { HubBus } from "../bus.js";
import type { Logger } from "../logger.js";
import type { LeaseCleanup, LeaseRecord, LeasesRepository } from "../repositories/leases.js";
import { LEASE_TOKEN_PREFIX, type ActiveLease, type LeaseBook } from "./lease-book.js";
import { hashToken, tokenMatchesHash } from "./tokens.js";
import type { ActionLedger } from "./work/ledger.js";
import type { WorkFacade } from "./work/work.js";

/** How often expiry is checked; the brief is "at least every second". */
export const LEASE_SWEEP_MS = 250;

/** The requester of lease-cleanup actions, as stored in `requested_by`. */
export const LEASE_CLEANUP_OWNER = "lease-cleanup";

export type LeaseRequest = z.infer<typeof LeaseBodySchema>;
export type KeepaliveRequest = z.infer<typeof KeepaliveBodySchema>;

/** A lease as the API shows it; the token is shown once, in the answer to its creation. */
export interface LeaseView {
  id: string;
  owner: string;
  devices: { host: string; device: string }[];
  ttl_s: number;
  cleanup: LeaseCleanup | null;
  requested_by: string | null;
  created_at: string;
  expires_at: string;
  state: "active" | "ended";
  ended_at: string | null;
  end_reason: string | null;
}

export function leaseView(l: LeaseRecord): LeaseView {
  return {
    id: l.id,
    owner: l.owner,
    devices: l.devices,
    ttl_s: l.ttlS,
    cleanup: l.cleanup,
    requested_by: l.requestedBy,
    created_at: l.createdAt,
    expires_at: l.expiresAt,
    state: l.endedAt === null ? "active" : "ended",
    ended_at: l.endedAt,
    end_reason: l.endReason,
  };
}

/** Who is asking to touch a lease: the token they presented and whether they are an admin. */
export interface LeaseCaller {
  token: string | undefined;
  isAdmin: boolean;
  name: string | null;
}

/** What a lease request may add to the body's fields: devices to pass over, and a way to withdraw it while it waits. */
export interface LeaseRequestOptions {
  exclude?: readonly { host: string; device: string }[] | undefined;
  signal?: AbortSignal | undefined;
}

/**
 * Leases: exclusive, expiring holds on devices. Granted through the work queue (all or nothing),
 * recorded in the action ledger so a restart keeps them, extended by keepalive, and released by their
 * holder, an admin, or the expiry sweep — which then runs the lease's cleanup action on each device.
 */
export class LeaseManager {
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly repo: LeasesRepository,
    private readonly book: LeaseBook,
    private readonly work: WorkFacade,
    private readonly ledger: ActionLedger,
    private readonly bus: HubBus,
    private readonly logger: Logger,
  ) {}

  /** Loads active leases; those that expired while the hub was down are released (with cleanup) at once. */
  start(): void {
    if (this.timer) return;
    for (const l of this.repo.listActive()) {
      this.book.add({ id: l.id, tokenHash: l.tokenHash, owner: l.owner, ttlS: l.ttlS, expiresAtMs: Date.parse(l.expiresAt), cleanup: l.cleanup, devices: l.devices });
      this.work.holdLease(l.id, l.devices);
    }
    this.sweep();
    this.timer = setInterval(() => this.sweep(), LEASE_SWEEP_MS);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** Validates, then waits in the work queue for enough free devices; resolves with the lease and its token. */
  async create(req: LeaseRequest, requestedBy: string | null, options: LeaseRequestOptions = {}): Promise<LeaseView & { token: string }> {
    let cleanup: { action: ActionName; resource: string | null } | null = null;
    let cleanupStored: LeaseCleanup | null = null;
    if (req.cleanup) {
      const params = parseActionParams(req.cleanup.action, req.cleanup.params);
      cleanup = { action: req.cleanup.action as ActionName, resource: req.cleanup.resource ?? null };
      cleanupStored = { action: req.cleanup.action, ...(req.cleanup.resource ? { resource: req.cleanup.resource } : {}), params };
    }
    const id = randomUUID();
    return this.work.reserve(
      {
        id,
        target: req.target,
        count: req.count,
        cleanup,
        exclude: options.exclude,
        waitMs: req.wait_ms,
        grant: (slots) => {
          const token = LEASE_TOKEN_PREFIX + randomBytes(32).toString("base64url");
          const now = Date.now();
          const record: LeaseRecord = {
            id,
            tokenHash: hashToken(token),
            owner: req.owner,
            requestedBy,
            ttlS: req.ttl_s,
            cleanup: cleanupStored,
            devices: slots.map((s) => ({ host: s.host, device: s.device })),
            createdAt: new Date(now).toISOString(),
            expiresAt: new Date(now + req.ttl_s * 1000).toISOString(),
            endedAt: null,
            endReason: null,
          };
          this.ledger.leaseGranted(record);
          // Only once stored: a failed write must not leave the devices held by a lease nobody has the token of.
          this.book.add({ id, tokenHash: record.tokenHash, owner: record.owner, ttlS: record.ttlS, expiresAtMs: now + req.ttl_s * 1000, cleanup: cleanupStored, devices: record.devices });
          this.logger.info({ lease_id: id, owner: record.owner, devices: record.devices, expires_at: record.expiresAt }, "lease granted");
          this.bus.emit("lease.granted", { id, owner: record.owner, devices: record.devices, expires_at: record.expiresAt, reason: null, at: record.createdAt });
          return { ...leaseView(record), token };
        },
      },
      { signal: options.signal },
    );
  }

  get(id: string): LeaseView {
    return leaseView(this.recordOr404(id));
  }

  list(includeEnded: boolean): LeaseView[] {
    return (includeEnded ? this.repo.listAll() : this.repo.listActive()).map(leaseView);
  }

  /** Extends the lease by ttl_s (default: its own ttl) from now. */
  keepalive(id: string, req: KeepaliveRequest, caller: LeaseCaller): LeaseView {
    const active = this.authorize(id, caller);
    const ttlS = req.ttl_s ?? active.ttlS;
    const expiresAtMs = Date.now() + ttlS * 1000;
    const expiresAt = new Date(expiresAtMs).toISOString();
    if (!this.ledger.leaseExtended(id, expiresAt, ttlS)) throw this.ended(id);
    active.expiresAtMs = expiresAtMs;
    active.ttlS = ttlS;
    this.logger.debug({ lease_id: id, expires_at: expiresAt }, "lease extended");
    this.bus.emit("lease.extended", { id, owner: active.owner, devices: active.devices, expires_at: expiresAt, reason: null, at: new Date().toISOString() });
    return this.get(id);
  }

  /** Releases the lease now (no cleanup: the holder is tidying up itself). */
  release(id: string, caller: LeaseCaller): LeaseView {
    this.authorize(id, caller);
    const by = caller.isAdmin ? `admin${caller.name ? ` ${caller.name}` : ""}` : "its holder";
    this.end(id, `released by ${by}`, false);
    return this.get(id);
  }

  /** Releases every lease past its expiry and runs its cleanup; on the timer, exposed for tests. */
  sweep(nowMs = Date.now()): void {
    for (const lease of this.book.active()) {
      if (lease.expiresAtMs > nowMs) continue;
      try {
        this.end(lease.id, "expired", true);
      } catch (err) {
        // A failing release (database locked) must not stop the sweep; the next tick retries.
        this.logger.error({ err, lease_id: lease.id }, "could not release an expired lease");
      }
    }
  }

  private end(id: string, reason: string, runCleanup: boolean): void {
    const active = this.book.get(id);
    const cleanupNote = runCleanup && active?.cleanup ? `; cleanup ${active.cleanup.action} queued` : "";
    // The end and its host events are one write. When it fails (database locked) the lease stays active,
    // here and in the database, so the next sweep ends it and runs its cleanup, rather than it ending without one.
    const stored = this.ledger.leaseEnded(id, active?.devices ?? [], reason, `lease ${id} of '${active?.owner ?? "?"}' ended: ${reason}${cleanupNote}`);
    const lease = this.book.remove(id);
    if (!stored || !lease) return;
    this.logger.info({ lease_id: id, owner: lease.owner, reason, devices: lease.devices }, "lease ended");
    this.bus.emit("lease.ended", { id, owner: lease.owner, devices: lease.devices, expires_at: new Date(lease.expiresAtMs).toISOString(), reason, at: new Date().toISOString() });
    // The cleanup is queued first, at internal priority, so it reaches each device before any new holder's work.
    if (runCleanup && lease.cleanup) this.runCleanup(lease, lease.cleanup);
    this.work.releaseLease(id);
  }

  private runCleanup(lease: ActiveLease, cleanup: LeaseCleanup): void {
    for (const d of lease.devices) {
      const log = { lease_id: lease.id, host: d.host, device: d.device };
      try {
        const { id, done } = this.work.submit({
          action: cleanup.action,
          resource: cleanup.resource,
          params: cleanup.params,
          target: { host: d.host, device: d.device },
          requestedBy: LEASE_CLEANUP_OWNER,
          internal: true,
        });
        done.then(
          (record) => {
            const outcome = { ...log, action_id: id, status: record.status, error_code: record.error?.error_code };
            if (record.status === "succeeded") this.logger.info(outcome, "lease cleanup finished");
            else this.logger.warn(outcome, "lease cleanup did not succeed; check the device");
          },
          (err: unknown) => this.logger.error({ ...log, err }, "lease cleanup could not run; check the device"),
        );
      } catch (err) {
        this.logger.error({ ...log, err }, "lease cleanup could not be queued; check the device");
      }
    }
  }

  private recordOr404(id: string): LeaseRecord {
    const record = this.repo.get(id);
    if (!record) throw new LabrigError("not_found", `No lease '${id}'.`);
    return record;
  }

  private ended(id: string): LabrigError {
    const record = this.recordOr404(id);
    return new LabrigError("conflict", `Lease ${id} already ended (${record.endReason ?? "?"} at ${record.endedAt ?? "?"}); take a new one.`);
  }

  /** The holder (by token, compared in constant time) or an admin may touch a lease. */
  private authorize(id: string, caller: LeaseCaller): ActiveLease {
    const record = this.recordOr404(id);
    const active = this.book.get(id);
    if (caller.isAdmin) {
      // Admins may end or extend any lease (a holder that vanished without releasing).
    } else if (caller.token !== undefined) {
      if (!tokenMatchesHash(caller.token, record.tokenHash)) {
        throw new LabrigError("forbidden", `That lease token does not belong to lease ${id}.`);
      }
    } else {
      throw new LabrigError("lease_required", `Changing lease ${id} needs its token (admins may do it without).`);
    }
    if (!active || record.endedAt !== null) throw this.ended(id);
    return active;
  }
}
