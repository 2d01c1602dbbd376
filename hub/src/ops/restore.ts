import { copyFileSync, existsSync, renameSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileStamp, fsyncPath, inspectBackup, type BackupInfo } from "./backup.js";
import { InstanceLock } from "./instance-lock.js";

/** What restore did: the backup it installed and where the database it replaced went. */
export interface RestoreReport extends BackupInfo {
  installed_as: string;
  previous: string | null;
}

/**
 * Installs a checked backup as the database of a stopped hub. The hub's instance lock is taken
 * first, so this refuses while a hub runs on the data directory and no hub can start halfway.
 * The database it replaces is kept beside it (`labrig.db.before-restore-<time>`, with its WAL), so
 * a wrong restore can be undone the same way.
 */
export function restoreDatabase(file: string, dataDir: string, dbPath: string, now = new Date()): RestoreReport {
  const lock = InstanceLock.acquire(dataDir, "labrig-hub restore");
  try {
    const info = inspectBackup(file);
    const incoming = join(dirname(dbPath), ".labrig.db.restoring");
    copyFileSync(file, incoming);
    fsyncPath(incoming);
    let previous: string | null = null;
    if (existsSync(dbPath)) {
      previous = `${dbPath}.before-restore-${fileStamp(now)}`;
      renameSync(dbPath, previous);
      // The WAL belongs to the database it was written for: it moves along, under the name SQLite looks for.
      if (existsSync(`${dbPath}-wal`)) renameSync(`${dbPath}-wal`, `${previous}-wal`);
    }
    rmSync(`${dbPath}-shm`, { force: true });
    rmSync(`${dbPath}-wal`, { force: true });
    renameSync(incoming, dbPath);
    fsyncPath(dirname(dbPath));
    return { ...info, path: file, installed_as: dbPath, previous };
  } finally {
    lock.release();
  }
}
