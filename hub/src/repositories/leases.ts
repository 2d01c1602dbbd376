import type { SqliteDb } from "../db/database.js";

/** A cleanup action a lease runs on each of its devices when it ends by expiry. */
export interface LeaseCleanup {
  action: string;
  resource?: string | undefined;
  params: Record<string, unknown>;
}

export interface LeaseRecord {
  id: string;
  tokenHash: string;
  owner: string;
  requestedBy: string | null;
  ttlS: number;
  cleanup: LeaseCleanup | null;
  devices: { host: string; device: string }[];
  createdAt: string;
  expiresAt: string;
  endedAt: string | null;
  endReason: string | null;
}

interface LeaseRow {
  id: string;
  token_hash: string;
  owner: string;
  requested_by: string | null;
  ttl_s: number;
  cleanup_json: string | null;
  created_at: string;
  expires_at: string;
  ended_at: string | null;
  end_reason: string | null;
}

/** SQL for `leases` and `lease_devices`. */
export class LeasesRepository {
  private readonly stmts;
  private readonly insertTx;

  constructor(private readonly db: SqliteDb) {
    this.stmts = {
      insert: db.prepare(`
        INSERT INTO leases (id, token_hash, owner, requested_by, ttl_s, cleanup_json, created_at, expires_at)
        VALUES (@id, @token_hash, @owner, @requested_by, @ttl_s, @cleanup_json, @created_at, @expires_at)`),
      insertDevice: db.prepare("INSERT INTO lease_devices (lease_id, host_id, device_id) VALUES (?, ?, ?)"),
      get: db.prepare("SELECT * FROM leases WHERE id = ?"),
      devices: db.prepare("SELECT host_id, device_id FROM lease_devices WHERE lease_id = ? ORDER BY host_id, device_id"),
      listActive: db.prepare("SELECT * FROM leases WHERE ended_at IS NULL ORDER BY created_at, id"),
      listAll: db.prepare("SELECT * FROM leases ORDER BY created_at DESC, id LIMIT ?"),
      extend: db.prepare("UPDATE leases SET expires_at = ?, ttl_s = ? WHERE id = ? AND ended_at IS NULL"),
      end: db.prepare("UPDATE leases SET ended_at = ?, end_reason = ? WHERE id = ? AND ended_at IS NULL"),
      count: db.prepare("SELECT COUNT(*) FROM leases").pluck(),
    };
    this.insertTx = db.transaction((lease: LeaseRecord) => {
      this.stmts.insert.run({
        id: lease.id,
        token_hash: lease.tokenHash,
        owner: lease.owner,
        requested_by: lease.requestedBy,
        ttl_s: lease.ttlS,
        cleanup_json: lease.cleanup === null ? null : JSON.stringify(lease.cleanup),
        created_at: lease.createdAt,
        expires_at: lease.expiresAt,
      });
      for (const d of lease.devices) this.stmts.insertDevice.run(lease.id, d.host, d.device);
    });
  }

  insert(lease: LeaseRecord): void {
    this.insertTx(lease);
  }

  get(id: string): LeaseRecord | undefined {
    const row = this.stmts.get.get(id) as LeaseRow | undefined;
    return row ? this.toRecord(row) : undefined;
  }

  listActive(): LeaseRecord[] {
    return (this.stmts.listActive.all() as LeaseRow[]).map((r) => this.toRecord(r));
  }

  /** Newest first, ended ones included. */
  listAll(limit = 500): LeaseRecord[] {
    return (this.stmts.listAll.all(limit) as LeaseRow[]).map((r) => this.toRecord(r));
  }

  extend(id: string, expiresAt: string, ttlS: number): boolean {
    return this.stmts.extend.run(expiresAt, ttlS, id).changes > 0;
  }

  /** Ends the lease once; false when it had already ended. */
  end(id: string, at: string, reason: string): boolean {
    return this.stmts.end.run(at, reason, id).changes > 0;
  }

  count(): number {
    return this.stmts.count.get() as number;
  }

  /** Runs `fn` in one transaction, so a lease's row and the host events that tell of it are written together or not at all. */
  transaction<T>(fn: () => T): T {
    return this.db.transaction(fn)();
  }

  private toRecord(row: LeaseRow): LeaseRecord {
    return {
      id: row.id,
      tokenHash: row.token_hash,
      owner: row.owner,
      requestedBy: row.requested_by,
      ttlS: row.ttl_s,
      cleanup: row.cleanup_json === null ? null : (JSON.parse(row.cleanup_json) as LeaseCleanup),
      devices: (this.stmts.devices.all(row.id) as { host_id: string; device_id: string }[]).map((d) => ({ host: d.host_id, device: d.device_id })),
      createdAt: row.created_at,
      expiresAt: row.expires_at,
      endedAt: row.ended_at,
      endReason: row.end_reason,
    };
  }
}
