import { dirname } from "node:path";
import type { HubConfig } from "../config.js";
import { backupDatabase, backupTarget, pruneBackups } from "../ops/backup.js";
import { restoreDatabase } from "../ops/restore.js";

/** Output of a command: text for people, or one JSON line with --json. */
export interface CommandOut {
  stdout: (text: string) => void;
}

const tableSummary = (tables: Record<string, number>): string =>
  Object.entries(tables)
    .filter(([name]) => name !== "schema_migrations")
    .map(([name, n]) => `${name} ${n}`)
    .join(", ");

/** `labrig-hub backup FILE|DIR [--keep N]`: an online backup, safe while the hub runs. */
export async function runBackup(config: HubConfig, target: string, keep: number | null, json: boolean, out: CommandOut): Promise<number> {
  const file = backupTarget(target);
  const info = await backupDatabase(config.dbPath, file);
  const pruned = keep === null ? [] : pruneBackups(dirname(file), keep);
  if (json) out.stdout(`${JSON.stringify({ ...info, pruned })}\n`);
  else {
    out.stdout(`Backup of ${config.dbPath} written to ${info.path} (${info.bytes} bytes, schema ${info.schema_version}, ${info.duration_ms} ms; integrity ok).\nRows: ${tableSummary(info.tables)}\n`);
    if (pruned.length > 0) out.stdout(`Deleted ${pruned.length} older backup(s): ${pruned.join(", ")}\n`);
  }
  return 0;
}

/** `labrig-hub restore FILE`: checks a backup and installs it into a stopped hub's data directory. */
export function runRestore(config: HubConfig, file: string, json: boolean, out: CommandOut): number {
  const report = restoreDatabase(file, config.dataDir, config.dbPath);
  if (json) out.stdout(`${JSON.stringify(report)}\n`);
  else {
    out.stdout(
      `Restored ${file} (schema ${report.schema_version}, integrity ok) as ${report.installed_as}.\n` +
        (report.previous ? `The database it replaced is kept as ${report.previous}.\n` : "") +
        `Rows: ${tableSummary(report.tables)}\nStart the hub now (pm2 start labrig-hub, or systemctl start labrig-hub); it applies newer migrations itself.\n`,
    );
  }
  return 0;
}
