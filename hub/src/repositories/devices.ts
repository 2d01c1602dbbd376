import type { DeviceDescription, DeviceHealth, Labels, ResourceDescription } from "@labrig/shared";
import type { SqliteDb } from "../db/database.js";

export type { DeviceHealth };

export interface DeviceRecord {
  hostId: string;
  id: string;
  labels: Labels;
  capabilities: string[];
  resources: ResourceDescription[];
  /** Latest reported state, keyed by resource name. */
  state: Record<string, unknown>;
  updatedAt: string;
  health: DeviceHealth;
  healthReason: string | null;
  healthChangedAt: string | null;
}

interface DeviceRow {
  host_id: string;
  id: string;
  labels_json: string;
  capabilities_json: string;
  resources_json: string;
  state_json: string;
  updated_at: string;
  health: DeviceHealth;
  health_reason: string | null;
  health_changed_at: string | null;
}

function toRecord(row: DeviceRow): DeviceRecord {
  return {
    hostId: row.host_id,
    id: row.id,
    labels: JSON.parse(row.labels_json) as Labels,
    capabilities: JSON.parse(row.capabilities_json) as string[],
    resources: JSON.parse(row.resources_json) as ResourceDescription[],
    state: JSON.parse(row.state_json) as Record<string, unknown>,
    updatedAt: row.updated_at,
    health: row.health,
    healthReason: row.health_reason,
    healthChangedAt: row.health_changed_at,
  };
}

/** SQL for the `devices` table. */
export class DevicesRepository {
  private readonly stmts;
  private readonly replaceTx;

  constructor(private readonly db: SqliteDb) {
    this.stmts = {
      get: db.prepare("SELECT * FROM devices WHERE host_id = ? AND id = ?"),
      listForHost: db.prepare("SELECT * FROM devices WHERE host_id = ? ORDER BY id"),
      listAll: db.prepare("SELECT * FROM devices ORDER BY host_id, id"),
      // Upsert keeps state_json: a reconnecting agent's devices keep their last known state until it reports anew.
      upsert: db.prepare(`
        INSERT INTO devices (host_id, id, labels_json, capabilities_json, resources_json, state_json, updated_at)
        VALUES (@host_id, @id, @labels_json, @capabilities_json, @resources_json, '{}', @updated_at)
        ON CONFLICT (host_id, id) DO UPDATE SET
          labels_json = excluded.labels_json,
          capabilities_json = excluded.capabilities_json,
          resources_json = excluded.resources_json,
          updated_at = excluded.updated_at`),
      deleteForHost: db.prepare("DELETE FROM devices WHERE host_id = ?"),
      deleteOne: db.prepare("DELETE FROM devices WHERE host_id = ? AND id = ?"),
      setState: db.prepare("UPDATE devices SET state_json = ?, updated_at = ? WHERE host_id = ? AND id = ?"),
      count: db.prepare("SELECT COUNT(*) FROM devices").pluck(),
      countByHealth: db.prepare("SELECT health, COUNT(*) AS n FROM devices GROUP BY health"),
      setHealth: db.prepare("UPDATE devices SET health = ?, health_reason = ?, health_changed_at = ? WHERE host_id = ? AND id = ?"),
    };
    this.replaceTx = db.transaction((hostId: string, devices: readonly DeviceDescription[], at: string): string[] => {
      const keep = new Set(devices.map((d) => d.id));
      const removed: string[] = [];
      for (const row of this.stmts.listForHost.all(hostId) as DeviceRow[]) {
        if (!keep.has(row.id)) {
          this.stmts.deleteOne.run(hostId, row.id);
          removed.push(row.id);
        }
      }
      for (const d of devices) {
        this.stmts.upsert.run({
          host_id: hostId,
          id: d.id,
          labels_json: JSON.stringify(d.labels),
          capabilities_json: JSON.stringify(d.capabilities),
          resources_json: JSON.stringify(d.resources),
          updated_at: at,
        });
      }
      return removed;
    });
  }

  get(hostId: string, id: string): DeviceRecord | undefined {
    const row = this.stmts.get.get(hostId, id) as DeviceRow | undefined;
    return row ? toRecord(row) : undefined;
  }

  listForHost(hostId: string): DeviceRecord[] {
    return (this.stmts.listForHost.all(hostId) as DeviceRow[]).map(toRecord);
  }

  listAll(): DeviceRecord[] {
    return (this.stmts.listAll.all() as DeviceRow[]).map(toRecord);
  }

  /** Makes the host's device set exactly `devices` in one transaction; returns the ids removed. */
  replaceForHost(hostId: string, devices: readonly DeviceDescription[], at: string): string[] {
    return this.replaceTx(hostId, devices, at);
  }

  setState(hostId: string, id: string, state: Record<string, unknown>, at: string): boolean {
    return this.stmts.setState.run(JSON.stringify(state), at, hostId, id).changes > 0;
  }

  count(): number {
    return this.stmts.count.get() as number;
  }

  /** Devices per health (only the healths some device has), counted by SQLite: a scrape of a large fleet reads no rows. */
  countByHealth(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const row of this.stmts.countByHealth.all() as { health: string; n: number }[]) out[row.health] = row.n;
    return out;
  }

  /** Returns false when no such device exists. */
  setHealth(hostId: string, id: string, health: DeviceHealth, reason: string, at: string): boolean {
    return this.stmts.setHealth.run(health, reason, at, hostId, id).changes > 0;
  }

  /** Runs `fn` in a transaction (read-modify-write of state_json). */
  transaction<T>(fn: () => T): T {
    return this.db.transaction(fn)();
  }
}
