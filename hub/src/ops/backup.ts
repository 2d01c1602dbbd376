import { closeSync, existsSync, fsyncSync, openSync, readdirSync, renameSync, rmSync, statSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { performance } from "node:perf_hooks";
import BetterSqlite3 from "better-sqlite3";
import { LabrigError } from "@labrig/shared";
import { MIGRATIONS } from "../db/migrations.js";

/** What a backup file holds, as `backup` and `restore` report it. */
export interface BackupInfo {
  path: string;
  bytes: number;
  schema_version: number;
  /** Rows per table. */
  tables: Record<string, number>;
}

/** The newest schema this hub knows; a backup from a newer hub cannot be run by it. */
export const LATEST_SCHEMA_VERSION = Math.max(...MIGRATIONS.map((m) => m.version));

/** Flushes a file (or directory entry) to disk, so a rename that follows survives a power cut. */
export function fsyncPath(path: string): void {
  const fd = openSync(path, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * Checks a backup file: SQLite's own integrity check, the labrig schema table, a schema version
 * this hub can run. Returns its row counts. Throws `validation_failed` saying what is wrong.
 */
export function inspectBackup(path: string): BackupInfo {
  if (!existsSync(path)) throw new LabrigError("validation_failed", `No file ${path}.`);
  let db: BetterSqlite3.Database;
  try {
    db = new BetterSqlite3(path, { readonly: true, fileMustExist: true });
  } catch (err) {
    throw new LabrigError("validation_failed", `${path} is not an SQLite database: ${(err as Error).message}.`, { cause: err });
  }
  try {
    let problems: string[];
    try {
      problems = (db.pragma("integrity_check") as { integrity_check: string }[]).map((r) => r.integrity_check).filter((r) => r !== "ok");
    } catch (err) {
      throw new LabrigError("validation_failed", `${path} is not a readable SQLite database: ${(err as Error).message}.`, { cause: err });
    }
    if (problems.length > 0) throw new LabrigError("validation_failed", `${path} fails SQLite's integrity check: ${problems.slice(0, 5).join("; ")}.`);
    const hasSchema = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'").get() !== undefined;
    if (!hasSchema) throw new LabrigError("validation_failed", `${path} is an SQLite database but not a labrig hub's (no schema_migrations table).`);
    const version = (db.prepare("SELECT MAX(version) AS v FROM schema_migrations").get() as { v: number | null }).v ?? 0;
    if (version > LATEST_SCHEMA_VERSION) {
      throw new LabrigError("validation_failed", `${path} has schema version ${version}, newer than this hub's ${LATEST_SCHEMA_VERSION}: restore it with the hub version that wrote it.`);
    }
    const names = (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name").all() as { name: string }[]).map((r) => r.name);
    const tables: Record<string, number> = {};
    for (const name of names) tables[name] = (db.prepare(`SELECT COUNT(*) AS n FROM "${name.replaceAll('"', '""')}"`).get() as { n: number }).n;
    return { path, bytes: statSync(path).size, schema_version: version, tables };
  } finally {
    db.close();
  }
}

/** A UTC time for file names: 20250102T030405Z (sorts by time). */
export function fileStamp(now = new Date()): string {
  return now.toISOString().replace(/[-:]/g, "").replace(/\.\d+Z$/, "Z");
}

/** A directory target gets a timestamped name, so a daily timer can point at one folder. */
export function backupTarget(target: string, now = new Date()): string {
  const isDir = target.endsWith("/") || (existsSync(target) && statSync(target).isDirectory());
  return isDir ? join(target, `labrig-${fileStamp(now)}.db`) : target;
}

/** Deletes all but the newest `keep` `labrig-*.db` backups in `dir` (names sort by time); returns what it deleted. */
export function pruneBackups(dir: string, keep: number): string[] {
  const backups = readdirSync(dir)
    .filter((f) => /^labrig-\d{8}T\d{6}Z\.db$/.test(f))
    .sort()
    .reverse();
  const doomed = backups.slice(keep).map((f) => join(dir, f));
  for (const f of doomed) rmSync(f);
  return doomed;
}

/**
 * A consistent copy of a live database with SQLite's online backup API, from a process of its own
 * while the hub runs and writes. The first 100 pages go as better-sqlite3's first step; the rest in
 * one step, inside one read transaction: in WAL mode the hub keeps writing meanwhile, and a write
 * between the two steps only makes SQLite restart the copy once. The copy is switched to a
 * rollback journal so it is one self-contained file, checked, flushed and renamed into place.
 */
export async function backupDatabase(dbPath: string, target: string): Promise<BackupInfo & { duration_ms: number }> {
  if (!existsSync(dbPath)) throw new LabrigError("not_found", `No database at ${dbPath}; check LABRIG_DATA_DIR.`);
  if (!existsSync(dirname(target))) throw new LabrigError("validation_failed", `The directory ${dirname(target)} does not exist; create it first.`);
  const started = performance.now();
  const partial = join(dirname(target), `.${basename(target)}.partial-${process.pid}`);
  rmSync(partial, { force: true });
  // Read-write, not readonly: a readonly connection cannot open a WAL database whose -shm is missing (no hub running).
  const source = new BetterSqlite3(dbPath, { fileMustExist: true, timeout: 5000 });
  try {
    await source.backup(partial, { progress: () => 0x7fffffff });
  } catch (err) {
    rmSync(partial, { force: true });
    throw new LabrigError("internal_error", `The backup of ${dbPath} failed: ${(err as Error).message}. Check free space in ${dirname(target)}.`, { cause: err });
  } finally {
    source.close();
  }
  try {
    const copy = new BetterSqlite3(partial);
    try {
      copy.pragma("journal_mode = DELETE");
    } finally {
      copy.close();
    }
    const info = inspectBackup(partial);
    fsyncPath(partial);
    renameSync(partial, target);
    fsyncPath(dirname(target));
    return { ...info, path: target, duration_ms: Math.round(performance.now() - started) };
  } catch (err) {
    rmSync(partial, { force: true });
    throw err;
  }
}
