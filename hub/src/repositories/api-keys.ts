import type { Role } from "@labrig/shared";
import type { SqliteDb } from "../db/database.js";

export interface ApiKeyRecord {
  id: string;
  name: string;
  role: Role;
  createdAt: string;
  lastUsedAt: string | null;
}

interface ApiKeyRow {
  id: string;
  name: string;
  role: Role;
  created_at: string;
  last_used_at: string | null;
}

const COLUMNS = "id, name, role, created_at, last_used_at";

function toRecord(row: ApiKeyRow): ApiKeyRecord {
  return { id: row.id, name: row.name, role: row.role, createdAt: row.created_at, lastUsedAt: row.last_used_at };
}

/** SQL for `api_keys`. The hash is only read by findHashed(), never listed. */
export class ApiKeysRepository {
  private readonly stmts;

  constructor(private readonly db: SqliteDb) {
    this.stmts = {
      insert: db.prepare("INSERT INTO api_keys (id, name, role, key_hash, created_at) VALUES (@id, @name, @role, @key_hash, @created_at)"),
      get: db.prepare(`SELECT ${COLUMNS} FROM api_keys WHERE id = ?`),
      getByName: db.prepare(`SELECT ${COLUMNS} FROM api_keys WHERE name = ?`),
      list: db.prepare(`SELECT ${COLUMNS} FROM api_keys ORDER BY created_at, id`),
      findHashed: db.prepare(`SELECT ${COLUMNS}, key_hash FROM api_keys WHERE key_hash = ?`),
      setHashAndRole: db.prepare("UPDATE api_keys SET key_hash = ?, role = ? WHERE id = ?"),
      touch: db.prepare("UPDATE api_keys SET last_used_at = ? WHERE id = ?"),
      delete: db.prepare("DELETE FROM api_keys WHERE id = ?"),
      countRole: db.prepare("SELECT COUNT(*) FROM api_keys WHERE role = ?").pluck(),
      dataVersion: db.prepare("PRAGMA data_version").pluck(),
    };
  }

  insert(key: { id: string; name: string; role: Role; keyHash: string; createdAt: string }): void {
    this.stmts.insert.run({ id: key.id, name: key.name, role: key.role, key_hash: key.keyHash, created_at: key.createdAt });
  }

  get(id: string): ApiKeyRecord | undefined {
    const row = this.stmts.get.get(id) as ApiKeyRow | undefined;
    return row ? toRecord(row) : undefined;
  }

  getByName(name: string): ApiKeyRecord | undefined {
    const row = this.stmts.getByName.get(name) as ApiKeyRow | undefined;
    return row ? toRecord(row) : undefined;
  }

  list(): ApiKeyRecord[] {
    return (this.stmts.list.all() as ApiKeyRow[]).map(toRecord);
  }

  /** The key whose stored hash equals `keyHash`, with that stored hash (for the constant-time confirmation). */
  findHashed(keyHash: string): { key: ApiKeyRecord; storedHash: string } | undefined {
    const row = this.stmts.findHashed.get(keyHash) as (ApiKeyRow & { key_hash: string }) | undefined;
    return row ? { key: toRecord(row), storedHash: row.key_hash } : undefined;
  }

  setHashAndRole(id: string, keyHash: string, role: Role): void {
    this.stmts.setHashAndRole.run(keyHash, role, id);
  }

  touch(id: string, at: string): void {
    this.stmts.touch.run(at, id);
  }

  /** Returns false when no such key exists. */
  delete(id: string): boolean {
    return this.stmts.delete.run(id).changes > 0;
  }

  countRole(role: Role): number {
    return this.stmts.countRole.get(role) as number;
  }

  /**
   * SQLite's data_version: changes whenever another connection (another process, such as the
   * `labrig-hub key` CLI) has committed to the database since the last call; this connection's own
   * commits leave it alone. Cheap (no table is read), so callers can check it on every request.
   */
  dataVersion(): number {
    return this.stmts.dataVersion.get() as number;
  }

  /** Runs `fn` in one immediate transaction (check-then-write rules such as "keep one admin"). */
  transaction<T>(fn: () => T): T {
    return this.db.transaction(fn).immediate();
  }
}
