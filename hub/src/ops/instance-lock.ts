import { join } from "node:path";
import BetterSqlite3 from "better-sqlite3";
import { LabrigError } from "@labrig/shared";
import { ensurePrivateFile, makePrivateDir } from "../private-files.js";

/** The lock file beside the database; it holds no data. */
export function lockPath(dataDir: string): string {
  return join(dataDir, "hub.lock");
}

/**
 * "A hub runs on this data directory", as an exclusive SQLite lock on `<data>/hub.lock` held for
 * as long as the holder runs. The operating system drops it when the process ends however it ends
 * (SIGKILL, power loss), so there is no stale pid file to clean up. A second hub on the same data
 * directory, and `labrig-hub restore` while a hub runs, are refused with it.
 */
export class InstanceLock {
  private constructor(private db: BetterSqlite3.Database | null) {}

  /** Takes the lock or throws `conflict` naming what holds it. */
  static acquire(dataDir: string, purpose: string): InstanceLock {
    makePrivateDir(dataDir);
    const path = lockPath(dataDir);
    ensurePrivateFile(path);
    const db = new BetterSqlite3(path, { timeout: 0 });
    try {
      db.pragma("journal_mode = DELETE");
      db.pragma("locking_mode = EXCLUSIVE");
      // The first write takes the EXCLUSIVE lock; in EXCLUSIVE locking mode it is kept until close.
      db.exec("CREATE TABLE IF NOT EXISTS holder (purpose TEXT NOT NULL, pid INTEGER NOT NULL)");
      db.exec("BEGIN EXCLUSIVE");
      db.prepare("DELETE FROM holder").run();
      db.prepare("INSERT INTO holder (purpose, pid) VALUES (?, ?)").run(purpose, process.pid);
      db.exec("COMMIT");
    } catch (err) {
      db.close();
      if ((err as { code?: string }).code === "SQLITE_BUSY") {
        throw new LabrigError("conflict", `Another labrig hub process uses ${dataDir} (it holds ${path}). Stop it first (pm2 stop labrig-hub, or systemctl stop labrig-hub).`, { cause: err });
      }
      throw new LabrigError("internal_error", `Cannot take the lock ${path}: ${(err as Error).message}. Check the directory's permissions.`, { cause: err });
    }
    return new InstanceLock(db);
  }

  release(): void {
    this.db?.close();
    this.db = null;
  }
}
