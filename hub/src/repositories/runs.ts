import type { ErrorEnvelope, ResultStatus, RunArtifact, RunStatus, StepPhase, TestCaseRecord, RunTarget } from "@labrig/shared";
import type { SqliteDb } from "../db/database.js";
import { pageBySeq } from "./paging.js";

/** How a run was set up when it was started: a snapshot, so later edits never rewrite a run's history. */
export interface RunSpec {
  settings: { parallelism: number; retries: number; continue_on_failure: boolean; timeout_s: number; target: RunTarget };
  testcases: TestCaseRecord[];
}

export interface RunRow {
  seq: number;
  id: string;
  campaign_id: string | null;
  testcase_id: string | null;
  name: string;
  status: RunStatus;
  reason: string | null;
  trigger: "api" | "schedule";
  requested_by: string | null;
  spec_json: string;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
  duration_ms: number | null;
}

export interface RunTestRow {
  seq: number;
  id: string;
  run_id: string;
  testcase_id: string;
  name: string;
  position: number;
  attempt: number;
  final: number;
  status: ResultStatus;
  message: string | null;
  host_id: string | null;
  device_id: string | null;
  lease_id: string | null;
  started_at: string | null;
  finished_at: string | null;
  duration_ms: number | null;
}

export interface RunStepRow {
  seq: number;
  run_test_id: string;
  idx: number;
  phase: StepPhase;
  name: string;
  action: string;
  status: ResultStatus;
  message: string | null;
  action_ids_json: string;
  result_json: string | null;
  error_json: string | null;
  started_at: string | null;
  finished_at: string | null;
  duration_ms: number | null;
}

export interface RunArtifactRow {
  seq: number;
  run_id: string;
  run_test_id: string | null;
  step_seq: number | null;
  name: string;
  kind: RunArtifact["kind"];
  mime_type: string;
  bytes: number;
  created_at: string;
  deleted_at: string | null;
}

export interface NewRun {
  id: string;
  campaignId: string | null;
  testcaseId: string | null;
  name: string;
  status: RunStatus;
  reason: string | null;
  trigger: "api" | "schedule";
  requestedBy: string | null;
  spec: RunSpec;
  createdAt: string;
}

export interface StepOutcome {
  status: ResultStatus;
  message: string | null;
  actionIds: string[];
  result: unknown;
  error: ErrorEnvelope | null;
  finishedAt: string;
  durationMs: number;
}

export interface RunsQuery {
  campaign?: string | undefined;
  status?: RunStatus | undefined;
  beforeSeq?: number | undefined;
  limit: number;
}

const UNFINISHED = "('queued', 'running')";

/** SQL for runs and their results: `runs`, `run_tests`, `run_steps`, `run_leases`, `run_artifacts`. */
export class RunsRepository {
  private readonly stmts;

  constructor(private readonly db: SqliteDb) {
    this.stmts = {
      insertRun: db.prepare(`
        INSERT INTO runs (id, campaign_id, testcase_id, name, status, reason, trigger, requested_by, spec_json, created_at, started_at, finished_at, duration_ms)
        VALUES (@id, @campaign_id, @testcase_id, @name, @status, @reason, @trigger, @requested_by, @spec_json, @created_at, @started_at, @finished_at, @duration_ms)`),
      startRun: db.prepare(`UPDATE runs SET status = 'running', started_at = ? WHERE id = ? AND status = 'queued'`),
      finishRun: db.prepare(`UPDATE runs SET status = @status, reason = @reason, finished_at = @finished_at, duration_ms = @duration_ms WHERE id = @id AND status IN ${UNFINISHED}`),
      getRun: db.prepare("SELECT * FROM runs WHERE id = ?"),
      activeForCampaign: db.prepare(`SELECT * FROM runs WHERE campaign_id = ? AND status IN ${UNFINISHED} ORDER BY seq LIMIT 1`),
      unfinished: db.prepare(`SELECT * FROM runs WHERE status IN ${UNFINISHED} ORDER BY seq`),
      counts: db.prepare("SELECT status, COUNT(*) AS n FROM run_tests WHERE run_id = ? AND final = 1 GROUP BY status"),
      insertTest: db.prepare(`
        INSERT INTO run_tests (id, run_id, testcase_id, name, position, attempt, final, status, message, host_id, device_id, lease_id, started_at, finished_at, duration_ms)
        VALUES (@id, @run_id, @testcase_id, @name, @position, @attempt, 1, @status, @message, @host_id, @device_id, @lease_id, @started_at, @finished_at, @duration_ms)`),
      finishTest: db.prepare(`UPDATE run_tests SET status = @status, message = @message, finished_at = @finished_at, duration_ms = @duration_ms WHERE id = @id AND status = 'running'`),
      notFinal: db.prepare("UPDATE run_tests SET final = 0 WHERE id = ?"),
      failRunningTests: db.prepare(`UPDATE run_tests SET status = 'error', message = @message, finished_at = @at WHERE run_id = @run_id AND status = 'running'`),
      failRunningSteps: db.prepare(`
        UPDATE run_steps SET status = 'error', message = @message, finished_at = @at
        WHERE status = 'running' AND run_test_id IN (SELECT id FROM run_tests WHERE run_id = @run_id)`),
      tests: db.prepare("SELECT * FROM run_tests WHERE run_id = ? ORDER BY position, attempt"),
      insertStep: db.prepare(`
        INSERT INTO run_steps (run_test_id, idx, phase, name, action, status, message, started_at)
        VALUES (@run_test_id, @idx, @phase, @name, @action, @status, @message, @started_at)`),
      finishStep: db.prepare(`
        UPDATE run_steps SET status = @status, message = @message, action_ids_json = @action_ids_json, result_json = @result_json,
          error_json = @error_json, finished_at = @finished_at, duration_ms = @duration_ms
        WHERE seq = @seq`),
      steps: db.prepare("SELECT s.* FROM run_steps s JOIN run_tests t ON t.id = s.run_test_id WHERE t.run_id = ? ORDER BY s.run_test_id, s.idx"),
      addLease: db.prepare("INSERT OR IGNORE INTO run_leases (run_id, lease_id) VALUES (?, ?)"),
      releaseLease: db.prepare("UPDATE run_leases SET released_at = ? WHERE run_id = ? AND lease_id = ? AND released_at IS NULL"),
      openLeases: db.prepare("SELECT lease_id FROM run_leases WHERE run_id = ? AND released_at IS NULL").pluck(),
      insertArtifact: db.prepare(`
        INSERT INTO run_artifacts (run_id, run_test_id, step_seq, name, kind, mime_type, bytes, created_at)
        VALUES (@run_id, @run_test_id, @step_seq, @name, @kind, @mime_type, @bytes, @created_at)`),
      artifactsOfRun: db.prepare("SELECT * FROM run_artifacts WHERE run_id = ? ORDER BY seq"),
      artifact: db.prepare("SELECT * FROM run_artifacts WHERE run_id = ? AND name = ?"),
      liveArtifacts: db.prepare("SELECT * FROM run_artifacts WHERE deleted_at IS NULL ORDER BY created_at, seq"),
      markArtifactDeleted: db.prepare("UPDATE run_artifacts SET deleted_at = ? WHERE seq = ? AND deleted_at IS NULL"),
    };
  }

  insertRun(r: NewRun & { startedAt?: string | null; finishedAt?: string | null; durationMs?: number | null }): void {
    this.stmts.insertRun.run({
      id: r.id,
      campaign_id: r.campaignId,
      testcase_id: r.testcaseId,
      name: r.name,
      status: r.status,
      reason: r.reason,
      trigger: r.trigger,
      requested_by: r.requestedBy,
      spec_json: JSON.stringify(r.spec),
      created_at: r.createdAt,
      started_at: r.startedAt ?? null,
      finished_at: r.finishedAt ?? null,
      duration_ms: r.durationMs ?? null,
    });
  }

  startRun(id: string, at: string): boolean {
    return this.stmts.startRun.run(at, id).changes > 0;
  }

  /** Sets the final status once; false when the run had already finished. */
  finishRun(id: string, status: RunStatus, reason: string | null, finishedAt: string, durationMs: number | null): boolean {
    return this.stmts.finishRun.run({ id, status, reason, finished_at: finishedAt, duration_ms: durationMs }).changes > 0;
  }

  getRun(id: string): RunRow | undefined {
    return this.stmts.getRun.get(id) as RunRow | undefined;
  }

  activeForCampaign(campaignId: string): RunRow | undefined {
    return this.stmts.activeForCampaign.get(campaignId) as RunRow | undefined;
  }

  unfinished(): RunRow[] {
    return this.stmts.unfinished.all() as RunRow[];
  }

  /** Final-attempt counts by status. */
  counts(runId: string): Partial<Record<ResultStatus, number>> {
    const out: Partial<Record<ResultStatus, number>> = {};
    for (const row of this.stmts.counts.all(runId) as { status: ResultStatus; n: number }[]) out[row.status] = row.n;
    return out;
  }

  /** Newest first; `next` is the seq to pass as beforeSeq for the next page, or null at the end. */
  listRuns(q: RunsQuery): { runs: RunRow[]; next: number | null } {
    const page = pageBySeq<RunRow>(this.db, "runs", { campaign_id: q.campaign, status: q.status }, q.limit, q.beforeSeq);
    return { runs: page.rows, next: page.next };
  }

  insertTest(t: Omit<RunTestRow, "seq" | "final">): void {
    this.stmts.insertTest.run({ ...t });
  }

  finishTest(id: string, status: ResultStatus, message: string | null, finishedAt: string, durationMs: number | null): void {
    this.stmts.finishTest.run({ id, status, message, finished_at: finishedAt, duration_ms: durationMs });
  }

  /** The attempt was retried: it stays in the record but no longer counts. */
  markNotFinal(id: string): void {
    this.stmts.notFinal.run(id);
  }

  /** Closes whatever a dead hub process left running in the run's tests and steps. */
  failRunning(runId: string, message: string, at: string): void {
    this.db.transaction(() => {
      this.stmts.failRunningSteps.run({ run_id: runId, message, at });
      this.stmts.failRunningTests.run({ run_id: runId, message, at });
    })();
  }

  tests(runId: string): RunTestRow[] {
    return this.stmts.tests.all(runId) as RunTestRow[];
  }

  insertStep(s: { runTestId: string; idx: number; phase: StepPhase; name: string; action: string; status: ResultStatus; message?: string | null; startedAt: string | null }): number {
    const info = this.stmts.insertStep.run({
      run_test_id: s.runTestId,
      idx: s.idx,
      phase: s.phase,
      name: s.name,
      action: s.action,
      status: s.status,
      message: s.message ?? null,
      started_at: s.startedAt,
    });
    return Number(info.lastInsertRowid);
  }

  finishStep(seq: number, o: StepOutcome): void {
    this.stmts.finishStep.run({
      seq,
      status: o.status,
      message: o.message,
      action_ids_json: JSON.stringify(o.actionIds),
      result_json: o.result === null || o.result === undefined ? null : JSON.stringify(o.result),
      error_json: o.error === null ? null : JSON.stringify(o.error),
      finished_at: o.finishedAt,
      duration_ms: o.durationMs,
    });
  }

  steps(runId: string): RunStepRow[] {
    return this.stmts.steps.all(runId) as RunStepRow[];
  }

  addLease(runId: string, leaseId: string): void {
    this.stmts.addLease.run(runId, leaseId);
  }

  releaseLease(runId: string, leaseId: string, at: string): void {
    this.stmts.releaseLease.run(at, runId, leaseId);
  }

  openLeases(runId: string): string[] {
    return this.stmts.openLeases.all(runId) as string[];
  }

  insertArtifact(a: Omit<RunArtifactRow, "seq" | "deleted_at">): void {
    this.stmts.insertArtifact.run({ ...a });
  }

  artifactsOfRun(runId: string): RunArtifactRow[] {
    return this.stmts.artifactsOfRun.all(runId) as RunArtifactRow[];
  }

  artifact(runId: string, name: string): RunArtifactRow | undefined {
    return this.stmts.artifact.get(runId, name) as RunArtifactRow | undefined;
  }

  /** Artifacts whose file still exists, oldest first. */
  liveArtifacts(): RunArtifactRow[] {
    return this.stmts.liveArtifacts.all() as RunArtifactRow[];
  }

  markArtifactDeleted(seq: number, at: string): void {
    this.stmts.markArtifactDeleted.run(at, seq);
  }
}
