import type { ActionName, ActionRecord, ActionStatus, ErrorEnvelope } from "@labrig/shared";
import type { SqliteDb } from "../db/database.js";

interface ActionRow {
  id: string;
  host_id: string;
  device_id: string;
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
}

function toRecord(row: ActionRow): ActionRecord {
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
  };
}

export interface ActionOutcome {
  status: Extract<ActionStatus, "succeeded" | "failed" | "canceled">;
  result: Record<string, unknown> | null;
  error: ErrorEnvelope | null;
  startedAt: string;
  finishedAt: string;
  durationMs: number;
}

/** SQL for the `actions` table: the record of every action the hub ran. */
export class ActionsRepository {
  private readonly stmts;

  constructor(db: SqliteDb) {
    this.stmts = {
      insert: db.prepare(`
        INSERT INTO actions (id, host_id, device_id, action, resource, params_json, status, requested_by, queued_at, started_at)
        VALUES (@id, @host_id, @device_id, @action, @resource, @params_json, @status, @requested_by, @queued_at, @started_at)`),
      get: db.prepare("SELECT * FROM actions WHERE id = ?"),
      // The status guard makes finishing idempotent: a redelivered result finds nothing left to update.
      finish: db.prepare(`
        UPDATE actions SET status = @status, result_json = @result_json, error_json = @error_json,
          started_at = @started_at, finished_at = @finished_at, duration_ms = @duration_ms
        WHERE id = @id AND status IN ('queued', 'running')`),
      count: db.prepare("SELECT COUNT(*) FROM actions").pluck(),
    };
  }

  insert(record: ActionRecord): void {
    this.stmts.insert.run({
      id: record.id,
      host_id: record.host,
      device_id: record.device,
      action: record.action,
      resource: record.resource,
      params_json: JSON.stringify(record.params),
      status: record.status,
      requested_by: record.requested_by,
      queued_at: record.queued_at,
      started_at: record.started_at,
    });
  }

  get(id: string): ActionRecord | undefined {
    const row = this.stmts.get.get(id) as ActionRow | undefined;
    return row ? toRecord(row) : undefined;
  }

  /** Stores the outcome if the action is still unfinished; returns false when it was already finished (or unknown). */
  finish(id: string, outcome: ActionOutcome): boolean {
    return (
      this.stmts.finish.run({
        id,
        status: outcome.status,
        result_json: outcome.result === null ? null : JSON.stringify(outcome.result),
        error_json: outcome.error === null ? null : JSON.stringify(outcome.error),
        started_at: outcome.startedAt,
        finished_at: outcome.finishedAt,
        duration_ms: outcome.durationMs,
      }).changes > 0
    );
  }

  count(): number {
    return this.stmts.count.get() as number;
  }
}
