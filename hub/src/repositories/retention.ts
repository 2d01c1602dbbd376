import type { SqliteDb } from "../db/database.js";

/** Rows deleted per transaction: each batch is a short write, so agents' results never wait long behind a prune. */
export const PRUNE_BATCH = 500;

/** One batch of a prune: how many rows went, the ids of the ones with files on disk, and whether older rows may remain. */
export interface PruneBatch {
  deleted: number;
  /** Run or plan ids whose files the caller removes after the commit. */
  ids: string[];
  more: boolean;
}

/**
 * The SQL of retention: deletes history older than a cutoff, oldest first, in batches. Each query
 * walks the table's primary key (or an existing index) from the oldest row and stops at the first
 * row newer than the cutoff, so a prune costs what it deletes, not a scan of the whole table, and no
 * new index is needed. Nothing unfinished is deleted (queued or running actions and runs, active leases).
 */
export class RetentionRepository {
  private readonly stmts;

  constructor(private readonly db: SqliteDb) {
    this.stmts = {
      // Actions: seq grows with queued_at, so the walk stops at the first action queued after the cutoff.
      actionsPage: db.prepare<{ after: number; limit: number }, { seq: number; status: string; finished_at: string | null; queued_at: string }>(
        "SELECT seq, status, finished_at, queued_at FROM actions WHERE seq > @after ORDER BY seq LIMIT @limit",
      ),
      deleteAction: db.prepare("DELETE FROM actions WHERE seq = ?"),
      eventsPage: db.prepare<{ after: number; limit: number }, { id: number; at: string }>("SELECT id, at FROM host_events WHERE id > @after ORDER BY id LIMIT @limit"),
      deleteEvent: db.prepare("DELETE FROM host_events WHERE id = ?"),
      plansPage: db.prepare<{ cutoff: string; limit: number }, { id: string }>("SELECT id FROM plans WHERE created_at < @cutoff ORDER BY created_at LIMIT @limit"),
      deletePlan: db.prepare("DELETE FROM plans WHERE id = ?"),
      runsPage: db.prepare<{ after: number; limit: number }, { seq: number; id: string; status: string; created_at: string; finished_at: string | null }>(
        "SELECT seq, id, status, created_at, finished_at FROM runs WHERE seq > @after ORDER BY seq LIMIT @limit",
      ),
      // run_tests, run_steps, run_leases and run_artifacts go with their run (ON DELETE CASCADE).
      deleteRun: db.prepare("DELETE FROM runs WHERE seq = ?"),
      // leases_active (ended_at, expires_at) serves this range; lease_devices go with their lease.
      leasesPage: db.prepare<{ cutoff: string; limit: number }, { id: string }>(
        "SELECT id FROM leases WHERE ended_at IS NOT NULL AND ended_at < @cutoff ORDER BY ended_at LIMIT @limit",
      ),
      deleteLease: db.prepare("DELETE FROM leases WHERE id = ?"),
    };
  }

  /** Finished actions that finished before `cutoff`. */
  pruneActions(cutoff: string, after: { seq: number }): PruneBatch {
    return this.walk(
      this.stmts.actionsPage.all({ after: after.seq, limit: PRUNE_BATCH }),
      after,
      (row) => row.queued_at >= cutoff,
      (row) => row.status !== "queued" && row.status !== "running" && row.finished_at !== null && row.finished_at < cutoff,
      (row) => this.stmts.deleteAction.run(row.seq),
    );
  }

  /** Host events recorded before `cutoff`. */
  pruneHostEvents(cutoff: string, after: { seq: number }): PruneBatch {
    return this.walk(
      this.stmts.eventsPage.all({ after: after.seq, limit: PRUNE_BATCH }).map((r) => ({ ...r, seq: r.id })),
      after,
      (row) => row.at >= cutoff,
      () => true,
      (row) => this.stmts.deleteEvent.run(row.id),
    );
  }

  /** Plans created before `cutoff`; their ids name the frame files to remove. */
  prunePlans(cutoff: string): PruneBatch {
    return this.deleteAll(this.stmts.plansPage.all({ cutoff, limit: PRUNE_BATCH }).map((r) => r.id), this.stmts.deletePlan, true);
  }

  /** Finished runs (skipped ones included) that ended before `cutoff`; their ids name the artifact directories to remove. */
  pruneRuns(cutoff: string, after: { seq: number }): PruneBatch {
    const ended = (row: { status: string; created_at: string; finished_at: string | null }): string | null => row.finished_at ?? (row.status === "skipped" ? row.created_at : null);
    return this.walk(
      this.stmts.runsPage.all({ after: after.seq, limit: PRUNE_BATCH }),
      after,
      (row) => row.created_at >= cutoff,
      (row) => row.status !== "queued" && row.status !== "running" && (ended(row) ?? cutoff) < cutoff,
      (row) => this.stmts.deleteRun.run(row.seq),
      (row) => row.id,
    );
  }

  /** Leases that ended before `cutoff`. */
  pruneLeases(cutoff: string): PruneBatch {
    return this.deleteAll(this.stmts.leasesPage.all({ cutoff, limit: PRUNE_BATCH }).map((r) => r.id), this.stmts.deleteLease, false);
  }

  /**
   * Hands the free pages back to the file system (auto_vacuum = INCREMENTAL) and truncates the WAL,
   * which the deletes and the vacuum grew; returns the pages freed.
   */
  reclaim(): number {
    const before = this.db.pragma("freelist_count", { simple: true }) as number;
    this.db.pragma("incremental_vacuum");
    const freed = before - (this.db.pragma("freelist_count", { simple: true }) as number);
    this.db.pragma("wal_checkpoint(TRUNCATE)");
    return freed;
  }

  /**
   * One batch of a walk along a table's primary key from `after`: stops at the first row past the
   * cutoff (`newer`), deletes the `eligible` ones, and moves `after` on so skipped rows are not read again.
   */
  private walk<R extends { seq: number }>(
    page: R[],
    after: { seq: number },
    newer: (row: R) => boolean,
    eligible: (row: R) => boolean,
    del: (row: R) => unknown,
    idOf?: (row: R) => string,
  ): PruneBatch {
    return this.db.transaction((): PruneBatch => {
      const ids: string[] = [];
      let deleted = 0;
      for (const row of page) {
        if (newer(row)) return { deleted, ids, more: false };
        after.seq = row.seq;
        if (!eligible(row)) continue;
        del(row);
        deleted++;
        if (idOf) ids.push(idOf(row));
      }
      return { deleted, ids, more: page.length === PRUNE_BATCH };
    })();
  }

  private deleteAll<K extends string | number>(keys: K[], del: { run(key: K): unknown }, keepIds: boolean): PruneBatch {
    this.db.transaction(() => {
      for (const key of keys) del.run(key);
    })();
    return { deleted: keys.length, ids: keepIds ? keys.map(String) : [], more: keys.length === PRUNE_BATCH };
  }
}
