import type { SqliteDb } from "../db/database.js";

export type HostEventKind = "online" | "offline" | "devices_changed" | "token_rotated" | "token_revoked" | "health" | "lease";

export interface HostEvent {
  id: number;
  host_id: string;
  device_id: string | null;
  kind: string;
  detail: string | null;
  at: string;
}

/** SQL for `host_events`: the presence history shown on a host's page. */
export class HostEventsRepository {
  private readonly stmts;

  constructor(db: SqliteDb) {
    this.stmts = {
      insert: db.prepare("INSERT INTO host_events (host_id, device_id, kind, detail, at) VALUES (?, ?, ?, ?, ?)"),
      recent: db.prepare("SELECT id, host_id, device_id, kind, detail, at FROM host_events WHERE host_id = ? ORDER BY id DESC LIMIT ?"),
    };
  }

  add(event: { hostId: string; deviceId?: string | null; kind: HostEventKind; detail?: string | null; at: string }): void {
    this.stmts.insert.run(event.hostId, event.deviceId ?? null, event.kind, event.detail ?? null, event.at);
  }

  /** Newest first. */
  recent(hostId: string, limit = 50): HostEvent[] {
    return this.stmts.recent.all(hostId, limit) as HostEvent[];
  }
}
