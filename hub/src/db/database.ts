import { dirname } from "node:path";
import BetterSqlite3 from "better-sqlite3";
import { LabrigError, nowIso } from "@labrig/shared";
import type { Logger } from "../logger.js";
import { ensurePrivateFile, makePrivateDir, restrictFile } from "../private-files.js";
import { MIGRATIONS, type Migration } from "./migrations.js";

export type SqliteDb = BetterSqlite3.Database;

/**
 * How often the WAL is checkpointed into the database file. SQLite's default (wal_autocheckpoint =
 * 1000 pages) checkpoints inside whichever commit crosses the threshold, and in synchronous=NORMAL a
 * checkpoint is where the fsyncs happen: at a few thousand actions a second that is a stall of the
 * event loop many times a second, and each checkpoint copies pages (the tail of `actions` and its
 * indexes) that the next commits rewrite anyway. Checkpointing on a timer copies each hot page once
 * per interval and bounds the WAL by what one interval writes. Durability is unchanged: a commit is
 * as durable in the WAL as after the checkpoint.
 */
const CHECKPOINT_EVERY_MS = 1000;

/**
 * The hub's SQLite database: opened with WAL (readers never block the one writer),
 * foreign keys on, and a busy timeout so an admin command (`labrig-hub host add`)
 * writing at the same moment as the daemon waits instead of failing.
 */
export class HubDatabase {
  private handle: SqliteDb | null = null;
  private checkpointTimer: NodeJS.Timeout | null = null;

  constructor(
    private readonly path: string,
    private readonly logger: Logger,
    private readonly migrations: readonly Migration[] = MIGRATIONS,
  ) {}

  /** Opens the file (creating its directory) and applies pending migrations. Returns the versions applied now. */
  start(): number[] {
    if (this.handle) return [];
    makePrivateDir(dirname(this.path));
    // SQLite creates a database with 0644 less the umask, and its WAL and SHM files with the database's
    // mode: made 0600 first, all three stay private to the hub's user.
    ensurePrivateFile(this.path);
    const db = new BetterSqlite3(this.path);
    try {
      // Before the first table: a new database frees pages incrementally (retention's reclaim); see ensureIncrementalVacuum for older files.
      if (db.pragma("page_count", { simple: true }) === 0) db.pragma("auto_vacuum = INCREMENTAL");
      db.pragma("journal_mode = WAL");
      db.pragma("foreign_keys = ON");
      db.pragma("busy_timeout = 5000");
      // WAL + NORMAL: a commit appends to the WAL without an fsync; the WAL is fsynced at checkpoints.
      // That cannot corrupt the database (WAL frames are checksummed; a torn tail is discarded at the
      // next open) and survives any crash of the hub process; only a power loss or OS crash can lose
      // the commits since the last checkpoint. It is SQLite's recommended setting for WAL, and FULL
      // would add an fsync (milliseconds on SD cards) to every action's insert and finish.
      db.pragma("synchronous = NORMAL");
      db.pragma("wal_autocheckpoint = 0");
    } catch (err) {
      db.close();
      throw new LabrigError("internal_error", `Cannot open the database at ${this.path}: ${(err as Error).message}. Check the file's permissions and free disk space.`, { cause: err });
    }
    this.handle = db;
    // Left world-readable by an older version: fixed now.
    restrictFile(`${this.path}-wal`);
    restrictFile(`${this.path}-shm`);
    const applied = this.migrate();
    const checkpoint = db.prepare("PRAGMA wal_checkpoint(PASSIVE)");
    this.checkpointTimer = setInterval(() => {
      try {
        // PASSIVE never waits for readers or writers (another process's CLI command): what it cannot copy now, the next one does.
        checkpoint.run();
      } catch (err) {
        this.logger.error({ err, db_path: this.path }, "WAL checkpoint failed; the WAL file grows until one succeeds (check free disk space)");
      }
    }, CHECKPOINT_EVERY_MS);
    this.checkpointTimer.unref();
    return applied;
  }

  /** Closes the database (closing the last connection checkpoints the WAL); safe to call twice. */
  stop(): void {
    if (this.checkpointTimer) clearInterval(this.checkpointTimer);
    this.checkpointTimer = null;
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

  /**
   * Makes a database created before retention existed free pages incrementally: auto_vacuum can only
   * change with a full VACUUM, done once here (the hub calls this at start, before it listens: the one
   * quiet moment). Returns whether the conversion ran.
   */
  ensureIncrementalVacuum(): boolean {
    const db = this.db;
    const INCREMENTAL = 2;
    if (db.pragma("auto_vacuum", { simple: true }) === INCREMENTAL) return false;
    const started = Date.now();
    db.pragma("auto_vacuum = INCREMENTAL");
    db.exec("VACUUM");
    this.logger.info({ db_path: this.path, duration_ms: Date.now() - started }, "database converted to incremental vacuum (once)");
    return true;
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
