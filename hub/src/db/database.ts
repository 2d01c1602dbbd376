import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import BetterSqlite3 from "better-sqlite3";
import { LabrigError, nowIso } from "@labrig/shared";
import type { Logger } from "../logger.js";
import { MIGRATIONS, type Migration } from "./migrations.js";

export type SqliteDb = BetterSqlite3.Database;

/**
 * The hub's SQLite database: opened with WAL (readers never block the one writer),
 * foreign keys on, and a busy timeout so an admin command (`labrig-hub host add`)
 * writing at the same moment as the daemon waits instead of failing.
 */
export class HubDatabase {
  private handle: SqliteDb | null = null;

  constructor(
    private readonly path: string,
    private readonly logger: Logger,
    private readonly migrations: readonly Migration[] = MIGRATIONS,
  ) {}

  /** Opens the file (creating its directory) and applies pending migrations. Returns the versions applied now. */
  start(): number[] {
    if (this.handle) return [];
    mkdirSync(dirname(this.path), { recursive: true });
    const db = new BetterSqlite3(this.path);
    try {
      db.pragma("journal_mode = WAL");
      db.pragma("foreign_keys = ON");
      db.pragma("busy_timeout = 5000");
      // WAL + NORMAL is durable across application crashes; only an OS crash can lose the last commits.
      db.pragma("synchronous = NORMAL");
    } catch (err) {
      db.close();
      throw new LabrigError("internal_error", `Cannot open the database at ${this.path}: ${(err as Error).message}. Check the file's permissions and free disk space.`, { cause: err });
    }
    this.handle = db;
    return this.migrate();
  }

  /** Closes the database; safe to call twice. */
  stop(): void {
    if (!this.handle) return;
    this.handle.close();
    this.handle = null;
  }

  /** The open connection; throws if start() has not run. */
  get db(): SqliteDb {
    if (!this.handle) throw new LabrigError("internal_error", "The database is not open; start() must run first.");
    return this.handle;
  }

  get filePath(): string {
    return this.path;
  }

  /** Highest applied migration version (0 when none). */
  schemaVersion(): number {
    const row = this.db.prepare("SELECT MAX(version) AS v FROM schema_migrations").get() as { v: number | null };
    return row.v ?? 0;
  }

  /** True when a trivial query succeeds; what /api/health reports. */
  isHealthy(): boolean {
    try {
      this.db.prepare("SELECT 1").get();
      return true;
    } catch (err) {
      this.logger.error({ err }, "database health check failed");
      return false;
    }
  }

  private migrate(): number[] {
    const db = this.db;
    db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
      version    INTEGER PRIMARY KEY,
      name       TEXT NOT NULL,
      applied_at TEXT NOT NULL
    ) STRICT`);
    const applyPending = db.transaction((): number[] => {
      // Read inside the (immediate) transaction so two processes starting at once cannot both apply a migration.
      const done = new Set((db.prepare("SELECT version FROM schema_migrations").all() as { version: number }[]).map((r) => r.version));
      const applied: number[] = [];
      const record = db.prepare("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)");
      for (const m of [...this.migrations].sort((a, b) => a.version - b.version)) {
        if (done.has(m.version)) continue;
        db.exec(m.sql);
        record.run(m.version, m.name, nowIso());
        applied.push(m.version);
      }
      return applied;
    });
    const applied = applyPending.immediate();
    if (applied.length > 0) this.logger.info({ applied, db_path: this.path }, "database migrations applied");
    else this.logger.debug({ db_path: this.path }, "database schema up to date");
    return applied;
  }
}
