import { randomBytes, randomUUID } from "node:crypto";
import { LabrigError, nowIso, parseActionParams, type ActionName } from "@labrig/shared";
import type { z } from "zod";
import type { Logger } from "../logger.js";
import type { HostEventsRepository } from "../repositories/host-events.js";
import type { LeaseCleanup, LeaseRecord, LeasesRepository } from "../repositories/leases.js";
import type { Dispatcher } from "./dispatcher.js";
import { INTERNAL_PRIORITY } from "./dispatcher.js";
import { LEASE_TOKEN_PREFIX, type ActiveLease, type LeaseBook } from "./lease-book.js";
import type { KeepaliveBodySchema, LeaseBodySchema } from "./requests.js";
import type { HubEvents } from "./hub-events.js";
import { hashToken, tokenMatchesHash } from "./tokens.js";

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

/**
 * Leases: exclusive, expiring holds on devices. Granted through the dispatcher's queue (all or
 * nothing), persisted so a restart keeps them, extended by keepalive, and released by their holder,
 * an admin, or the expiry sweep — which then runs the lease's cleanup action on each device.
 */
export class LeaseManager {
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly repo: LeasesRepository,
    private readonly book: LeaseBook,
    private readonly dispatcher: Dispatcher,
    private readonly events: HostEventsRepository,
    private readonly logger: Logger,
    private readonly bus?: HubEvents,
  ) {}

  /** Loads active leases; those that expired while the hub was down are released (with cleanup) at once. */
  start(): void {
    if (this.timer) return;
    for (const l of this.repo.listActive()) {
      this.book.add({
        id: l.id,
        tokenHash: l.tokenHash,
        owner: l.owner,
        ttlS: l.ttlS,
        expiresAtMs: Date.parse(l.expiresAt),
        cleanup: l.cleanup,
        devices: l.devices,
      });
    }
    this.sweep();
    this.timer = setInterval(() => this.sweep(), LEASE_SWEEP_MS);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** Validates, then waits in the dispatcher's queue for enough free devices; resolves with the lease and its token. */
  async create(req: LeaseRequest, requestedBy: string | null): Promise<LeaseView & { token: string }> {
    let cleanup: { action: ActionName; resource: string | null } | null = null;
    let cleanupStored: LeaseCleanup | null = null;
    if (req.cleanup) {
      const params = parseActionParams(req.cleanup.action, req.cleanup.params);
      cleanup = { action: req.cleanup.action as ActionName, resource: req.cleanup.resource ?? null };
      cleanupStored = { action: req.cleanup.action, ...(req.cleanup.resource ? { resource: req.cleanup.resource } : {}), params };
    }
    return this.dispatcher.submitLease({
      target: req.target,
      count: req.count,
      waitMs: req.wait_ms,
      cleanup,
      grant: (slots) => {
        const token = LEASE_TOKEN_PREFIX + randomBytes(32).toString("base64url");
        const now = Date.now();
        const record: LeaseRecord = {
          id: randomUUID(),
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
        this.repo.transaction(() => {
          this.repo.insert(record);
          for (const d of record.devices) {
            this.events.add({ hostId: d.host, deviceId: d.device, kind: "lease", detail: `leased to '${record.owner}' (lease ${record.id}) until ${record.expiresAt}`, at: record.createdAt });
          }
        });
        // Only once stored: a failed write must not leave the devices held by a lease nobody has the token of.
        this.book.add({ id: record.id, tokenHash: record.tokenHash, owner: record.owner, ttlS: record.ttlS, expiresAtMs: now + req.ttl_s * 1000, cleanup: cleanupStored, devices: record.devices });
        this.logger.info({ lease_id: record.id, owner: record.owner, devices: record.devices, expires_at: record.expiresAt }, "lease granted");
        this.bus?.emit("lease.granted", { id: record.id, owner: record.owner, devices: record.devices, expires_at: record.expiresAt, reason: null, at: record.createdAt }); // dashboard hook
        return { ...leaseView(record), token };
      },
    });
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
    if (!this.repo.extend(id, expiresAt, ttlS)) throw this.ended(id);
    active.expiresAtMs = expiresAtMs;
    active.ttlS = ttlS;
    this.logger.debug({ lease_id: id, expires_at: expiresAt }, "lease extended");
    this.bus?.emit("lease.extended", { id, owner: active.owner, devices: active.devices, expires_at: expiresAt, reason: null, at: nowIso() }); // dashboard hook
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
    const at = nowIso();
    const active = this.book.get(id);
    // The end and its host events are one write. When it fails (database locked) the lease stays active,
    // here and in the database, so the next sweep ends it and runs its cleanup, rather than it ending without one.
    const stored = this.repo.transaction(() => {
      if (!this.repo.end(id, at, reason)) return false;
      for (const d of active?.devices ?? []) {
        const cleanupNote = runCleanup && active?.cleanup ? `; cleanup ${active.cleanup.action} queued` : "";
        this.events.add({ hostId: d.host, deviceId: d.device, kind: "lease", detail: `lease ${id} of '${active?.owner ?? "?"}' ended: ${reason}${cleanupNote}`, at });
      }
      return true;
    });
    const lease = this.book.remove(id);
    if (!stored || !lease) return;
    this.logger.info({ lease_id: id, owner: lease.owner, reason, devices: lease.devices }, "lease ended");
    this.bus?.emit("lease.ended", { id, owner: lease.owner, devices: lease.devices, expires_at: new Date(lease.expiresAtMs).toISOString(), reason, at }); // dashboard hook
    if (runCleanup && lease.cleanup) this.runCleanup(lease, lease.cleanup);
    this.dispatcher.kick();
  }

  private runCleanup(lease: ActiveLease, cleanup: LeaseCleanup): void {
    for (const d of lease.devices) {
      this.dispatcher
        .submitAction({
          action: cleanup.action,
          resource: cleanup.resource,
          params: cleanup.params,
          target: { host: d.host, device: d.device },
          priority: INTERNAL_PRIORITY,
          requestedBy: LEASE_CLEANUP_OWNER,
          internal: true,
        })
        .then(
          (record) => {
            const log = { lease_id: lease.id, host: d.host, device: d.device, action_id: record.id, status: record.status, error_code: record.error?.error_code };
            if (record.status === "succeeded") this.logger.info(log, "lease cleanup finished");
            else this.logger.warn(log, "lease cleanup did not succeed; check the device");
          },
          (err: unknown) => this.logger.error({ lease_id: lease.id, host: d.host, device: d.device, err }, "lease cleanup could not run; check the device"),
        );
    }
  }

  private recordOr404(id: string): LeaseRecord {
    const record = this.repo.get(id);
    if (!record) throw new LabrigError("not_found", `No lease '${id}'. GET /api/leases lists the active ones.`);
    return record;
  }

  private ended(id: string): LabrigError {
    const record = this.recordOr404(id);
    return new LabrigError("conflict", `Lease ${id} already ended (${record.endReason ?? "?"} at ${record.endedAt ?? "?"}); take a new one with POST /api/leases.`);
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
      throw new LabrigError("lease_required", `Send the lease's token (header X-Lease-Token, or lease_token in the body) to change lease ${id}; admins may do it without.`);
    }
    if (!active || record.endedAt !== null) throw this.ended(id);
    return active;
  }
}
