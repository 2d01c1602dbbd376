import type { ActionName, ActionRecord, ActionStatus, ErrorEnvelope } from "@labrig/shared";
import type { SqliteDb } from "../db/database.js";
import { pageBySeq } from "./paging.js";

/** Where an action was asked to run: one exact device, or any device matching a selector. */
export type ActionTarget = { host: string; device: string } | { selector: { capabilities: string[]; labels: Record<string, string> } };

/**
 * An action as stored and answered by the API: ActionRecordSchema plus how it was targeted.
 * host and device are null while a selector action waits for a device.
 */
export type StoredAction = Omit<ActionRecord, "host" | "device"> & {
  host: string | null;
  device: string | null;
  target: ActionTarget;
  priority: number;
  lease_id: string | null;
  attempts: number;
};

interface ActionRow {
  seq: number;
  id: string;
  host_id: string | null;
  device_id: string | null;
  action: ActionName;
  resource: string | null;
  params_json: string;
  status: ActionStatus;
  result_json: string | null;
  error_json: string | null;
  requested_by: string | null;
  queued_at: string;
  started_at: string | null;
  finished_at: string | null;
  duration_ms: number | null;
  target_json: string;
  priority: number;
  lease_id: string | null;
  attempts: number;
  reconciled_at: string | null;
}

function toRecord(row: ActionRow): StoredAction {
  return {
    id: row.id,
    host: row.host_id,
    device: row.device_id,
    action: row.action,
    resource: row.resource,
    params: JSON.parse(row.params_json) as Record<string, unknown>,
    status: row.status,
    result: row.result_json === null ? null : (JSON.parse(row.result_json) as Record<string, unknown>),
    error: row.error_json === null ? null : (JSON.parse(row.error_json) as ErrorEnvelope),
    requested_by: row.requested_by,
    queued_at: row.queued_at,
    started_at: row.started_at,
    finished_at: row.finished_at,
    duration_ms: row.duration_ms,
    target: JSON.parse(row.target_json) as ActionTarget,
    priority: row.priority,
    lease_id: row.lease_id,
    attempts: row.attempts,
    reconciled_at: row.reconciled_at,
  };
}

export interface ActionOutcome {
  status: Extract<ActionStatus, "succeeded" | "failed" | "canceled">;
  result: Record<string, unknown> | null;
  error: ErrorEnvelope | null;
  startedAt: string | null;
  finishedAt: string;
  durationMs: number | null;
}

export interface NewAction {
  id: string;
  host: string | null;
  device: string | null;
  action: ActionName;
  resource: string | null;
  params: Record<string, unknown>;
  target: ActionTarget;
  priority: number;
  leaseId: string | null;
  requestedBy: string | null;
  queuedAt: string;
}

export interface ActionQuery {
  host?: string | undefined;
  device?: string | undefined;
  status?: ActionStatus | undefined;
  /** Only actions older than this seq (the cursor of the previous page). */
  beforeSeq?: number | undefined;
  limit: number;
}

/**
 * How long an agent-reported start time may wait in memory before it is written. Most actions end
 * sooner, and then finish() writes it with the outcome: one write per action instead of two. Every
 * read through this repository writes pending start times first, so readers never see the delay; a
 * hub that dies inside this window loses only the start time of an action whose outcome is unknown anyway.
 */
const STARTED_WRITE_DELAY_MS = 200;

/** The named parameters of a new action's row. */
function newRow(a: NewAction) {
  return {
    id: a.id,
    host_id: a.host,
    device_id: a.device,
    action: a.action,
    resource: a.resource,
    params_json: JSON.stringify(a.params),
    requested_by: a.requestedBy,
    queued_at: a.queuedAt,
    target_json: JSON.stringify(a.target),
    priority: a.priority,
    lease_id: a.leaseId,
  };
}

/** SQL for the `actions` table: the record of every action the hub was asked to run. */
export class ActionsRepository {
  private readonly stmts;
  /** Start times reported by agents and not yet written, by action id (see STARTED_WRITE_DELAY_MS). */
  private readonly pendingStarts = new Map<string, string>();
  private pendingStartsTimer: NodeJS.Timeout | null = null;

  constructor(private readonly db: SqliteDb) {
    this.stmts = {
      insert: db.prepare(`
        INSERT INTO actions (id, host_id, device_id, action, resource, params_json, status, requested_by, queued_at, target_json, priority, lease_id)
        VALUES (@id, @host_id, @device_id, @action, @resource, @params_json, 'queued', @requested_by, @queued_at, @target_json, @priority, @lease_id)`),
      // An action given a device in the same turn it was submitted: one row written once, already running.
      insertDispatched: db.prepare(`
        INSERT INTO actions (id, host_id, device_id, action, resource, params_json, status, requested_by, queued_at, target_json, priority, lease_id, attempts, dispatched_at)
        VALUES (@id, @host_id, @device_id, @action, @resource, @params_json, 'running', @requested_by, @queued_at, @target_json, @priority, @lease_id, 1, @dispatched_at)`),
      get: db.prepare("SELECT * FROM actions WHERE id = ?"),
      dispatch: db.prepare(`
        UPDATE actions SET host_id = @host_id, device_id = @device_id, resource = @resource, status = 'running',
          dispatched_at = @at, attempts = attempts + 1
        WHERE id = @id AND status IN ('queued', 'running')`),
      requeue: db.prepare(`
        UPDATE actions SET host_id = @host_id, device_id = @device_id, status = 'queued', started_at = NULL
        WHERE id = @id AND status IN ('queued', 'running')`),
      started: db.prepare("UPDATE actions SET started_at = ? WHERE id = ? AND status = 'running'"),
      // The status guard makes finishing idempotent: a redelivered result finds nothing left to update.
      finish: db.prepare(`
        UPDATE actions SET status = @status, result_json = @result_json, error_json = @error_json,
          started_at = COALESCE(@started_at, started_at), finished_at = @finished_at, duration_ms = @duration_ms
        WHERE id = @id AND status IN ('queued', 'running')`),
      // IMMEDIATE takes the write lock up front, so a busy database fails here (after busy_timeout), before any write.
      begin: db.prepare("BEGIN IMMEDIATE"),
      commit: db.prepare("COMMIT"),
      failUnfinished: db.prepare(`
        UPDATE actions SET status = 'failed', error_json = ?, finished_at = ?
        WHERE status IN ('queued', 'running')`),
      count: db.prepare("SELECT COUNT(*) FROM actions").pluck(),
      // Only a failure a hub stop left (shutting_down), and only once.
      reconcile: db.prepare(`
        UPDATE actions SET status = @status, result_json = @result_json, error_json = @error_json,
          started_at = COALESCE(@started_at, started_at), finished_at = @finished_at, duration_ms = @duration_ms, reconciled_at = @at
        WHERE id = @id AND status = 'failed' AND reconciled_at IS NULL AND json_extract(error_json, '$.error_code') = 'shutting_down'
        RETURNING *`),
      seqOf: db.prepare("SELECT seq FROM actions WHERE id = ?").pluck(),
    };
  }

  /** Inserts an action that is already on its way to a device (its first dispatch). */
  insertDispatched(a: NewAction & { host: string; device: string }, dispatchedAt: string): void {
    this.stmts.insertDispatched.run({ ...newRow(a), dispatched_at: dispatchedAt });
  }

  insert(a: NewAction): void {
    this.stmts.insert.run(newRow(a));
  }

  /**
   * Runs `fn` with every write it makes (here and in other repositories) committed at once: one WAL
   * commit for an action's insert and dispatch, or for its finish and the next action's dispatch,
   * instead of one per statement. Unlike db.transaction(), a throw does not roll back what `fn` already
   * wrote: each statement keeps the effect it has under autocommit, so in-memory state that moved on
   * with a write never finds it undone. Nested calls (and db.transaction() inside) join the outer one.
   */
  groupCommit<T>(fn: () => T): T {
    if (this.db.inTransaction) return fn();
    this.stmts.begin.run();
    try {
      return fn();
    } finally {
      // An I/O error can have ended the transaction already (SQLite rolls back on SQLITE_FULL/IOERR).
      if (this.db.inTransaction) this.stmts.commit.run();
    }
  }

  get(id: string): StoredAction | undefined {
    this.writePendingStarts();
    const row = this.stmts.get.get(id) as ActionRow | undefined;
    return row ? toRecord(row) : undefined;
  }

  /** The action was sent to a device: running from the hub's point of view, one more attempt. */
  markDispatched(id: string, host: string, device: string, resource: string | null, at: string): boolean {
    return this.stmts.dispatch.run({ id, host_id: host, device_id: device, resource, at }).changes > 0;
  }

  /** Back in the hub's queue after its host vanished before it started (failover). */
  markRequeued(id: string, host: string | null, device: string | null): boolean {
    this.pendingStarts.delete(id);
    return this.stmts.requeue.run({ id, host_id: host, device_id: device }).changes > 0;
  }

  /** The agent reported the action started (its own clock). Written within STARTED_WRITE_DELAY_MS, or with the outcome. */
  markStarted(id: string, startedAt: string): void {
    this.pendingStarts.set(id, startedAt);
    if (this.pendingStartsTimer === null) {
      this.pendingStartsTimer = setTimeout(() => {
        // Closed: the hub stopped, and its dispatcher finished (and so wrote) every started action first.
        if (this.db.open) this.writePendingStarts();
      }, STARTED_WRITE_DELAY_MS);
      this.pendingStartsTimer.unref();
    }
  }

  /**
   * Stores the outcome if the action is still unfinished; false when it was already finished (or
   * unknown). The caller knows the rest of the record, so nothing is read back.
   */
  finish(id: string, outcome: ActionOutcome): boolean {
    const pendingStart = this.pendingStarts.get(id);
    if (pendingStart !== undefined) this.pendingStarts.delete(id);
    return (
      this.stmts.finish.run({
        id,
        status: outcome.status,
        result_json: outcome.result === null ? null : JSON.stringify(outcome.result),
        error_json: outcome.error === null ? null : JSON.stringify(outcome.error),
        started_at: outcome.startedAt ?? pendingStart ?? null,
        finished_at: outcome.finishedAt,
        duration_ms: outcome.durationMs,
      }).changes > 0
    );
  }

  /** Replaces the failure a hub stop recorded with the agent's late outcome; undefined when there is none to replace. */
  reconcile(id: string, outcome: ActionOutcome, at: string): StoredAction | undefined {
    const row = this.stmts.reconcile.get({
      id,
      status: outcome.status,
      result_json: outcome.result === null ? null : JSON.stringify(outcome.result),
      error_json: outcome.error === null ? null : JSON.stringify(outcome.error),
      started_at: outcome.startedAt,
      finished_at: outcome.finishedAt,
      duration_ms: outcome.durationMs,
      at,
    }) as ActionRow | undefined;
    return row ? toRecord(row) : undefined;
  }

  /** At start: actions a previous hub process left unfinished cannot be waited for by anyone; fail them. Returns how many. */
  failUnfinished(error: ErrorEnvelope, at: string): number {
    this.writePendingStarts();
    return this.stmts.failUnfinished.run(JSON.stringify(error), at).changes;
  }

  /** Writes the start times markStarted() is holding; called before every read so no reader sees them missing. */
  writePendingStarts(): void {
    if (this.pendingStartsTimer !== null) {
      clearTimeout(this.pendingStartsTimer);
      this.pendingStartsTimer = null;
    }
    if (this.pendingStarts.size === 0) return;
    const starts = [...this.pendingStarts];
    this.pendingStarts.clear();
    this.groupCommit(() => {
      for (const [id, startedAt] of starts) this.stmts.started.run(startedAt, id);
    });
  }

  /** Newest first; `next` is the seq to pass as beforeSeq for the following page, or null at the end. */
  list(q: ActionQuery): { actions: StoredAction[]; next: number | null } {
    this.writePendingStarts();
    const page = pageBySeq<ActionRow>(this.db, "actions", { host_id: q.host, device_id: q.device, status: q.status }, q.limit, q.beforeSeq);
    return { actions: page.rows.map(toRecord), next: page.next };
  }

  count(): number {
    this.writePendingStarts();
    return this.stmts.count.get() as number;
  }
}
