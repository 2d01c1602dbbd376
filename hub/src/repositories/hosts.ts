import type { HostState, Labels } from "@labrig/shared";
import type { SqliteDb } from "../db/database.js";

export interface HostRecord {
  id: string;
  name: string;
  labels: Labels;
  state: HostState;
  lastSeen: string | null;
  agentVersion: string | null;
  agentStartedAt: string | null;
  createdAt: string;
}

interface HostRow {
  id: string;
  name: string;
  labels_json: string;
  state: HostState;
  last_seen: string | null;
  agent_version: string | null;
  agent_started_at: string | null;
  created_at: string;
}

const COLUMNS = "id, name, labels_json, state, last_seen, agent_version, agent_started_at, created_at";

function toRecord(row: HostRow): HostRecord {
  return {
    id: row.id,
    name: row.name,
    labels: JSON.parse(row.labels_json) as Labels,
    state: row.state,
    lastSeen: row.last_seen,
    agentVersion: row.agent_version,
    agentStartedAt: row.agent_started_at,
    createdAt: row.created_at,
  };
}

/** SQL for the `hosts` table. The token hash is only read through tokenHash(), never with the rest of the row. */
export class HostsRepository {
  private readonly stmts;
  private readonly touchAll: (seen: ReadonlyMap<string, string>) => void;

  constructor(db: SqliteDb) {
    this.stmts = {
      insert: db.prepare(
        "INSERT INTO hosts (id, name, labels_json, token_hash, state, created_at) VALUES (@id, @name, @labels_json, @token_hash, 'offline', @created_at)",
      ),
      get: db.prepare(`SELECT ${COLUMNS} FROM hosts WHERE id = ?`),
      list: db.prepare(`SELECT ${COLUMNS} FROM hosts ORDER BY id`),
      tokenHash: db.prepare("SELECT token_hash FROM hosts WHERE id = ?").pluck(),
      setTokenHash: db.prepare("UPDATE hosts SET token_hash = ? WHERE id = ?"),
      setAgent: db.prepare("UPDATE hosts SET agent_version = ?, agent_started_at = ? WHERE id = ?"),
      setState: db.prepare("UPDATE hosts SET state = ? WHERE id = ?"),
      setOnlineSeen: db.prepare("UPDATE hosts SET state = 'online', last_seen = ? WHERE id = ?"),
      touch: db.prepare("UPDATE hosts SET last_seen = ? WHERE id = ?"),
      listOnline: db.prepare("SELECT id, last_seen FROM hosts WHERE state = 'online'"),
      count: db.prepare("SELECT COUNT(*) FROM hosts").pluck(),
      countOnline: db.prepare("SELECT COUNT(*) FROM hosts WHERE state = 'online'").pluck(),
      delete: db.prepare("DELETE FROM hosts WHERE id = ?"),
    };
    this.touchAll = db.transaction((seen: ReadonlyMap<string, string>) => {
      for (const [id, at] of seen) this.stmts.touch.run(at, id);
    });
  }

  insert(host: { id: string; name: string; labels: Labels; tokenHash: string; createdAt: string }): void {
    this.stmts.insert.run({
      id: host.id,
      name: host.name,
      labels_json: JSON.stringify(host.labels),
      token_hash: host.tokenHash,
      created_at: host.createdAt,
    });
  }

  get(id: string): HostRecord | undefined {
    const row = this.stmts.get.get(id) as HostRow | undefined;
    return row ? toRecord(row) : undefined;
  }

  list(): HostRecord[] {
    return (this.stmts.list.all() as HostRow[]).map(toRecord);
  }

  tokenHash(id: string): string | undefined {
    return this.stmts.tokenHash.get(id) as string | undefined;
  }

  /** Returns false when no such host exists. */
  setTokenHash(id: string, tokenHash: string): boolean {
    return this.stmts.setTokenHash.run(tokenHash, id).changes > 0;
  }

  setAgent(id: string, version: string, startedAt: string): void {
    this.stmts.setAgent.run(version, startedAt, id);
  }

  setState(id: string, state: HostState): void {
    this.stmts.setState.run(state, id);
  }

  setOnline(id: string, seenAt: string): void {
    this.stmts.setOnlineSeen.run(seenAt, id);
  }

  /** Sets last_seen of many hosts (id → when) in one transaction. */
  touchMany(seen: ReadonlyMap<string, string>): void {
    if (seen.size > 0) this.touchAll(seen);
  }

  listOnline(): { id: string; lastSeen: string | null }[] {
    return (this.stmts.listOnline.all() as { id: string; last_seen: string | null }[]).map((r) => ({ id: r.id, lastSeen: r.last_seen }));
  }

  count(): number {
    return this.stmts.count.get() as number;
  }

  /** Deletes the host with its devices and events (ON DELETE CASCADE); action records stay. Returns false when no such host exists. */
  delete(id: string): boolean {
    return this.stmts.delete.run(id).changes > 0;
  }

  countOnline(): number {
    return this.stmts.countOnline.get() as number;
  }
}
