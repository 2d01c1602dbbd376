import { lstatSync, realpathSync, rmSync } from "node:fs";
import { join, resolve, sep } from "node:path";
import { LabrigError, nowIso, type RunArtifact } from "@labrig/shared";
import type { Logger } from "../../logger.js";
import { makePrivateDir, writePrivateFile } from "../../private-files.js";
import type { RunArtifactRow, RunsRepository } from "../../repositories/runs.js";

/** Names the hub generates for artifact files: no dots but the extension's, no separators, so none can point elsewhere. */
const SAFE_NAME = /^[a-z0-9][a-z0-9_-]{0,118}(\.[a-z0-9]{1,8})?$/;
const RUN_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export interface RetentionOptions {
  /** Artifacts older than this are deleted (LABRIG_ARTIFACT_MAX_AGE_DAYS). */
  maxAgeMs: number;
  /** Above this total the oldest artifacts are deleted (LABRIG_ARTIFACT_MAX_BYTES). */
  maxBytes: number;
  /** How often the retention sweep runs. */
  sweepIntervalMs: number;
}

export interface NewArtifact {
  runId: string;
  runTestId: string | null;
  stepSeq: number | null;
  /** Parts of the name (test position, attempt, step, kind); sanitised and joined by the store. */
  nameParts: (string | number)[];
  ext: string;
  kind: RunArtifact["kind"];
  mimeType: string;
  data: Buffer;
}

export function artifactView(row: RunArtifactRow): RunArtifact {
  return { name: row.name, kind: row.kind, mime_type: row.mime_type, bytes: row.bytes, created_at: row.created_at, deleted: row.deleted_at !== null };
}

/**
 * The files runs produce, under `<data_dir>/runs/<run_id>/`, with generated names only; served
 * after strict checks, and deleted oldest first by age and by total size (the records stay).
 */
export class RunArtifactStore {
  private timer: NodeJS.Timeout | null = null;
  readonly root: string;

  constructor(
    dataDir: string,
    private readonly runs: RunsRepository,
    private readonly options: RetentionOptions,
    private readonly logger: Logger,
  ) {
    this.root = resolve(dataDir, "runs");
  }

  start(): void {
    makePrivateDir(this.root);
    this.sweep();
    this.timer = setInterval(() => this.sweep(), this.options.sweepIntervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** Writes a new artifact file and its record; returns its view. */
  write(a: NewArtifact): RunArtifact {
    const sanitized = a.nameParts
      .map((p) => String(p).toLowerCase().replace(/[^a-z0-9_-]+/g, "-"))
      .join("-")
      .replace(/-+/g, "-")
      .replace(/^-|-$/g, "")
      .slice(0, 100);
    // Used for the `-2`, `-3` variants too, so none of them can start with '-' and fail SAFE_NAME.
    const base = sanitized || "artifact";
    const ext = a.ext.toLowerCase().replace(/[^a-z0-9]/g, "").slice(0, 8);
    const dir = join(this.root, a.runId);
    makePrivateDir(dir);
    let name = `${base}${ext ? `.${ext}` : ""}`;
    for (let n = 2; this.runs.artifact(a.runId, name) !== undefined; n++) name = `${base}-${n}${ext ? `.${ext}` : ""}`;
    if (!SAFE_NAME.test(name)) throw new LabrigError("internal_error", `Generated artifact name '${name}' is not safe; this is a bug in the hub.`);
    // Exclusive: never follow or overwrite something already there.
    writePrivateFile(join(dir, name), a.data, true);
    const row = { run_id: a.runId, run_test_id: a.runTestId, step_seq: a.stepSeq, name, kind: a.kind, mime_type: a.mimeType, bytes: a.data.length, created_at: nowIso() };
    this.runs.insertArtifact(row);
    return { name, kind: a.kind, mime_type: a.mimeType, bytes: a.data.length, created_at: row.created_at, deleted: false };
  }

  /**
   * The file behind `GET /api/runs/:id/artifacts/:name`. Refuses anything but a generated name of an
   * existing record, then checks the resolved path stays inside the run's directory and is a
   * regular file (not a symlink), so neither encoded `..`, slashes, NUL nor a planted link gets out.
   */
  open(runId: string, name: string): { path: string; mimeType: string; bytes: number } {
    const notFound = (): LabrigError => new LabrigError("not_found", `Run '${runId}' has no artifact '${name}'. GET /api/runs/${runId} lists its artifacts.`);
    if (!RUN_ID.test(runId) || !SAFE_NAME.test(name)) throw notFound();
    const row = this.runs.artifact(runId, name);
    if (!row) throw notFound();
    if (row.deleted_at !== null) throw new LabrigError("not_found", `Artifact '${name}' of run '${runId}' was deleted by retention at ${row.deleted_at}.`);
    const dir = resolve(this.root, runId);
    const path = resolve(dir, name);
    if (!path.startsWith(dir + sep)) throw notFound();
    let real: string;
    try {
      const st = lstatSync(path);
      if (!st.isFile() || st.isSymbolicLink()) throw notFound();
      real = realpathSync(path);
    } catch (err) {
      if (err instanceof LabrigError) throw err;
      this.logger.warn({ run_id: runId, name, err: (err as Error).message }, "artifact file missing");
      throw notFound();
    }
    const realRoot = realpathSync(this.root);
    if (real !== join(realRoot, runId, name)) throw notFound();
    return { path: real, mimeType: row.mime_type, bytes: row.bytes };
  }

  /** Deletes expired artifacts, then the oldest until the total fits; returns how many were deleted. */
  sweep(nowMs = Date.now()): number {
    let deleted = 0;
    try {
      const live = this.runs.liveArtifacts();
      const cutoff = nowMs - this.options.maxAgeMs;
      let total = live.reduce((sum, a) => sum + a.bytes, 0);
      for (const a of live) {
        const expired = Date.parse(a.created_at) < cutoff;
        if (!expired && total <= this.options.maxBytes) break;
        this.remove(a);
        total -= a.bytes;
        deleted++;
      }
      if (deleted > 0) this.logger.info({ deleted, remaining_bytes: total }, "artifact retention deleted old artifacts");
    } catch (err) {
      // A failing sweep must not kill the timer; the next one retries.
      this.logger.error({ err }, "artifact retention sweep failed");
    }
    return deleted;
  }

  private remove(a: RunArtifactRow): void {
    if (RUN_ID.test(a.run_id) && SAFE_NAME.test(a.name)) rmSync(join(this.root, a.run_id, a.name), { force: true });
    this.runs.markArtifactDeleted(a.seq, nowIso());
  }
}
