import type { LeaseCleanup } from "../repositories/leases.js";
import { deviceKey } from "./work/scheduler.js";
import { hashToken } from "./tokens.js";

/** A lease that holds its devices now. */
export interface ActiveLease {
  id: string;
  tokenHash: string;
  owner: string;
  ttlS: number;
  expiresAtMs: number;
  cleanup: LeaseCleanup | null;
  devices: { host: string; device: string }[];
}

/** Prefix of lease tokens, so a leaked one is recognisable. */
export const LEASE_TOKEN_PREFIX = "lrl_";

/**
 * The active leases in memory, indexed by id, token hash and device, so the dispatcher checks
 * exclusivity without a query. Only the lease manager writes here.
 */
export class LeaseBook {
  private readonly byId = new Map<string, ActiveLease>();
  private readonly byHash = new Map<string, ActiveLease>();
  private readonly byDevice = new Map<string, ActiveLease>();

  add(lease: ActiveLease): void {
    this.byId.set(lease.id, lease);
    this.byHash.set(lease.tokenHash, lease);
    for (const d of lease.devices) this.byDevice.set(deviceKey(d.host, d.device), lease);
  }

  remove(id: string): ActiveLease | undefined {
    const lease = this.byId.get(id);
    if (!lease) return undefined;
    this.byId.delete(id);
    this.byHash.delete(lease.tokenHash);
    for (const d of lease.devices) {
      const key = deviceKey(d.host, d.device);
      if (this.byDevice.get(key) === lease) this.byDevice.delete(key);
    }
    return lease;
  }

  get(id: string): ActiveLease | undefined {
    return this.byId.get(id);
  }

  /** The lease holding the device, if any. */
  forDevice(key: string): ActiveLease | undefined {
    return this.byDevice.get(key);
  }

  /**
   * The active lease whose token this is. Looked up by sha256: the map lookup compares digests, not
   * the secret, so its timing says nothing useful about the token.
   */
  byToken(token: string): ActiveLease | undefined {
    return this.byHash.get(hashToken(token));
  }

  active(): ActiveLease[] {
    return [...this.byId.values()];
  }
}
