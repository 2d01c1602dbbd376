import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import {
  LabrigError,
  nowIso,
  type CampaignBody,
  type CampaignRecord,
  type ErrorEnvelope,
  type RunRecord,
  type RunStatus,
  type RunSummary,
  type TestCaseBody,
  type TestCaseRecord,
  type TestCaseRunBody,
  type TestResult,
} from "@labrig/shared";
import type { Logger } from "../../logger.js";
import type { CampaignsRepository, StoredCampaign } from "../../repositories/campaigns.js";
import type { RunRow, RunSpec, RunsQuery, RunsRepository } from "../../repositories/runs.js";
import type { TestCasesRepository } from "../../repositories/testcases.js";
import { artifactView, type RunArtifactStore } from "./artifact-store.js";
import { runToJunit } from "./junit.js";
import type { CampaignRunner } from "./runner.js";
import type { CampaignScheduler } from "./scheduler.js";
import { validateCampaign } from "./validation.js";

export interface CampaignServiceDeps {
  testcases: TestCasesRepository;
  campaigns: CampaignsRepository;
  runs: RunsRepository;
  runner: CampaignRunner;
  artifacts: RunArtifactStore;
  /** LABRIG_SCHEDULE_MIN_INTERVAL_S: schedules that fire more often are refused at save. */
  scheduleMinIntervalS: number;
  logger: Logger;
}

/** Longest transcript text the JUnit report inlines per artifact (the file itself is served whole). */
const JUNIT_TEXT_MAX = 64 * 1024;

/**
 * Test cases, campaigns and runs: validation before every write, runs started by the API or the
 * schedule, and the run report (JSON and JUnit).
 */
export class CampaignService {
  private scheduler: CampaignScheduler | null = null;

  constructor(private readonly deps: CampaignServiceDeps) {}

  /** The scheduler is built after the service (it calls back into it); attach it before start(). */
  attachScheduler(scheduler: CampaignScheduler): void {
    this.scheduler = scheduler;
  }

  async start(): Promise<void> {
    this.deps.artifacts.start();
    await this.deps.runner.start();
    this.scheduler?.start();
  }

  async stop(): Promise<void> {
    this.scheduler?.stop();
    await this.deps.runner.stop();
    this.deps.artifacts.stop();
  }

  // ---- test cases -----------------------------------------------------------------------------

  listTestCases(): TestCaseRecord[] {
    return this.deps.testcases.list();
  }

  getTestCase(id: string): TestCaseRecord {
    const tc = this.deps.testcases.get(id);
    if (!tc) throw new LabrigError("not_found", `No test case '${id}'.`);
    return tc;
  }

  createTestCase(tc: TestCaseBody): TestCaseRecord {
    this.uniqueName("test case", tc.name, this.deps.testcases.byName(tc.name)?.id, null);
    const id = randomUUID();
    this.deps.testcases.insert(id, tc, nowIso());
    return this.getTestCase(id);
  }

  updateTestCase(id: string, tc: TestCaseBody): TestCaseRecord {
    this.getTestCase(id);
    this.uniqueName("test case", tc.name, this.deps.testcases.byName(tc.name)?.id, id);
    this.deps.testcases.update(id, tc, nowIso());
    return this.getTestCase(id);
  }

  deleteTestCase(id: string): void {
    this.getTestCase(id);
    const users = this.deps.testcases.usedBy(id);
    if (users.length > 0) {
      throw new LabrigError("conflict", `Test case '${id}' is used by campaign(s) ${users.map((c) => `'${c.name}' (${c.id})`).join(", ")}; remove it from them first.`, {
        details: { campaigns: users },
      });
    }
    this.deps.testcases.remove(id);
  }

  // ---- campaigns ------------------------------------------------------------------------------

  listCampaigns(): CampaignRecord[] {
    return this.deps.campaigns.list().map((c) => this.campaignView(c));
  }

  /** By id, or by name (what the CLI accepts). */
  getCampaign(idOrName: string): CampaignRecord {
    return this.campaignView(this.storedCampaign(idOrName));
  }

  /** Checks a campaign body against the stored test cases (shape, schedule and its minimum interval, that each exists and can share a device with the target). */
  validateCampaign(body: unknown): CampaignBody {
    return validateCampaign(body, (id) => this.deps.testcases.get(id), this.deps.scheduleMinIntervalS);
  }

  createCampaign(spec: CampaignBody): CampaignRecord {
    this.uniqueName("campaign", spec.name, this.deps.campaigns.byName(spec.name)?.id, null);
    const id = randomUUID();
    this.deps.campaigns.insert(id, { ...spec, schedule: spec.schedule ?? null }, nowIso());
    this.scheduler?.refresh(id);
    return this.getCampaign(id);
  }

  updateCampaign(id: string, spec: CampaignBody): CampaignRecord {
    const existing = this.storedCampaign(id);
    this.uniqueName("campaign", spec.name, this.deps.campaigns.byName(spec.name)?.id, existing.id);
    this.deps.campaigns.update(existing.id, { ...spec, schedule: spec.schedule ?? null }, nowIso());
    this.scheduler?.refresh(existing.id);
    return this.getCampaign(existing.id);
  }

  /** Deletes the campaign; its runs stay (they keep their own snapshot of what ran). */
  deleteCampaign(id: string): void {
    const existing = this.storedCampaign(id);
    this.deps.campaigns.remove(existing.id);
    this.scheduler?.refresh(existing.id);
  }

  // ---- runs -----------------------------------------------------------------------------------

  /** Starts a run of the campaign now (manual runs may overlap a running one; only the schedule skips). */
  startCampaignRun(idOrName: string, requestedBy: string | null): { id: string; status: RunStatus } {
    const c = this.storedCampaign(idOrName);
    return this.createRun(c, "api", requestedBy);
  }

  /** Starts a run of one test case (on its own target, or the one in the body). */
  startTestCaseRun(id: string, req: TestCaseRunBody, requestedBy: string | null): { id: string; status: RunStatus } {
    const tc = this.getTestCase(id);
    const spec: RunSpec = {
      settings: { parallelism: 1, retries: 0, continue_on_failure: true, timeout_s: 3600, target: req.target ?? { selector: { capabilities: [], labels: {} } } },
      testcases: [tc],
    };
    const runId = randomUUID();
    this.deps.runs.insertRun({ id: runId, campaignId: null, testcaseId: tc.id, name: tc.name, status: "queued", reason: null, trigger: "api", requestedBy, spec, createdAt: nowIso() });
    this.launch(runId);
    return { id: runId, status: "queued" };
  }

  /**
   * A scheduled start. The schedule never overlaps a campaign with itself: when the previous run is
   * still going, the start is recorded as a `skipped` run with the reason, so the gap is explained.
   */
  fireScheduled(campaignId: string, scheduledAt: Date): void {
    const c = this.deps.campaigns.get(campaignId);
    if (!c || !c.spec.enabled) return;
    const busy = this.deps.runs.activeForCampaign(campaignId);
    if (busy) {
      const at = nowIso();
      const reason = `skipped: previous run ${busy.id} still running (scheduled for ${scheduledAt.toISOString()})`;
      this.deps.runs.insertRun({
        id: randomUUID(),
        campaignId,
        testcaseId: null,
        name: c.spec.name,
        status: "skipped",
        reason,
        trigger: "schedule",
        requestedBy: "schedule",
        spec: this.runSpec(c),
        createdAt: at,
        finishedAt: at,
        durationMs: 0,
      });
      this.deps.logger.warn({ campaign_id: campaignId, running: busy.id }, "scheduled run skipped: the previous run is still going");
      return;
    }
    this.createRun(c, "schedule", "schedule");
  }

  cancelRun(id: string, by: string | null): RunRecord {
    const row = this.runRow(id);
    if (this.deps.runner.cancel(id, by)) return this.getRun(id);
    if (row.status === "queued" || row.status === "running") {
      // Not executing in this process (cannot normally happen; start() interrupts leftovers): close it here.
      this.deps.runs.finishRun(id, "canceled", `canceled${by ? ` by ${by}` : ""}`, nowIso(), null);
      return this.getRun(id);
    }
    throw new LabrigError("conflict", `Run ${id} already ended (${row.status}${row.reason ? `: ${row.reason}` : ""}); there is nothing to cancel.`);
  }

  listRuns(q: RunsQuery): { runs: RunSummary[]; next_cursor: string | null } {
    let campaign = q.campaign;
    if (campaign !== undefined) campaign = this.deps.campaigns.get(campaign)?.id ?? this.deps.campaigns.byName(campaign)?.id ?? campaign;
    const page = this.deps.runs.listRuns({ ...q, campaign });
    return { runs: page.runs.map((r) => this.summary(r)), next_cursor: page.next === null ? null : String(page.next) };
  }

  getRun(id: string): RunRecord {
    const row = this.runRow(id);
    const spec = JSON.parse(row.spec_json) as RunSpec;
    const steps = this.deps.runs.steps(id);
    const artifacts = this.deps.runs.artifactsOfRun(id);
    const tests: TestResult[] = this.deps.runs.tests(id).map((t) => ({
      id: t.id,
      testcase_id: t.testcase_id,
      name: t.name,
      position: t.position,
      attempt: t.attempt,
      final: t.final === 1,
      status: t.status,
      message: t.message,
      host: t.host_id,
      device: t.device_id,
      lease_id: t.lease_id,
      started_at: t.started_at,
      finished_at: t.finished_at,
      duration_ms: t.duration_ms,
      steps: steps
        .filter((s) => s.run_test_id === t.id)
        .map((s) => ({
          index: s.idx,
          phase: s.phase,
          name: s.name,
          action: s.action,
          status: s.status,
          message: s.message,
          action_ids: JSON.parse(s.action_ids_json) as string[],
          result: s.result_json === null ? null : (JSON.parse(s.result_json) as unknown),
          error: s.error_json === null ? null : (JSON.parse(s.error_json) as ErrorEnvelope),
          started_at: s.started_at,
          finished_at: s.finished_at,
          duration_ms: s.duration_ms,
          artifacts: artifacts.filter((a) => a.step_seq === s.seq).map(artifactView),
        })),
    }));
    return { ...this.summary(row), settings: spec.settings, tests };
  }

  junit(id: string): string {
    const run = this.getRun(id);
    const text = (name: string): string | null => {
      try {
        const file = this.deps.artifacts.open(id, name);
        const data = readFileSync(file.path, "utf8");
        return data.length > JUNIT_TEXT_MAX ? `${data.slice(0, JUNIT_TEXT_MAX)}\n[labrig: truncated; GET /api/runs/${id}/artifacts/${name} has the whole file]` : data;
      } catch (err) {
        this.deps.logger.warn({ run_id: id, name, err: (err as Error).message }, "artifact not readable for the JUnit report");
        return null;
      }
    };
    return runToJunit(run, run.campaign_id === null ? `testcase ${run.name}` : run.name, text);
  }

  /** The file behind an artifact name, after the store's path checks. */
  artifactFile(runId: string, name: string): { path: string; mimeType: string; bytes: number } {
    this.runRow(runId);
    return this.deps.artifacts.open(runId, name);
  }

  // ---- helpers --------------------------------------------------------------------------------

  private createRun(c: StoredCampaign, trigger: "api" | "schedule", requestedBy: string | null): { id: string; status: RunStatus } {
    const id = randomUUID();
    this.deps.runs.insertRun({ id, campaignId: c.id, testcaseId: null, name: c.spec.name, status: "queued", reason: null, trigger, requestedBy, spec: this.runSpec(c), createdAt: nowIso() });
    this.launch(id);
    return { id, status: "queued" };
  }

  private launch(id: string): void {
    const row = this.runRow(id);
    try {
      this.deps.runner.launch(row);
    } catch (err) {
      this.deps.runs.finishRun(id, "error", `could not start: ${(err as Error).message}`, nowIso(), null);
      throw err;
    }
  }

  private runSpec(c: StoredCampaign): RunSpec {
    const testcases = c.spec.testcases.map((tcId) => {
      const tc = this.deps.testcases.get(tcId);
      // The campaign_testcases foreign key keeps listed test cases from being deleted.
      if (!tc) throw new LabrigError("conflict", `Campaign '${c.spec.name}' lists test case '${tcId}', which no longer exists; update the campaign.`);
      return tc;
    });
    const { parallelism, retries, continue_on_failure, timeout_s, target } = c.spec;
    return { settings: { parallelism, retries, continue_on_failure, timeout_s, target }, testcases };
  }

  private storedCampaign(idOrName: string): StoredCampaign {
    const c = this.deps.campaigns.get(idOrName) ?? this.deps.campaigns.byName(idOrName);
    if (!c) throw new LabrigError("not_found", `No campaign '${idOrName}' (by id or name). GET /api/campaigns lists them.`);
    return c;
  }

  private campaignView(c: StoredCampaign): CampaignRecord {
    const next = this.scheduler?.nextRun(c.id) ?? null;
    return { id: c.id, ...c.spec, schedule: c.spec.schedule ?? null, next_run_at: next === null ? null : next.toISOString(), created_at: c.createdAt, updated_at: c.updatedAt };
  }

  private runRow(id: string): RunRow {
    const row = this.deps.runs.getRun(id);
    if (!row) throw new LabrigError("not_found", `No run '${id}'. GET /api/runs lists recent runs.`);
    return row;
  }

  private summary(r: RunRow): RunSummary {
    const c = this.deps.runs.counts(r.id);
    const n = (k: keyof typeof c): number => c[k] ?? 0;
    return {
      id: r.id,
      campaign_id: r.campaign_id,
      testcase_id: r.testcase_id,
      name: r.name,
      status: r.status,
      reason: r.reason,
      trigger: r.trigger,
      requested_by: r.requested_by,
      created_at: r.created_at,
      started_at: r.started_at,
      finished_at: r.finished_at,
      duration_ms: r.duration_ms,
      counts: {
        tests: Object.values(c).reduce((a, b) => a + (b ?? 0), 0),
        passed: n("passed"),
        failed: n("failed"),
        error: n("error"),
        skipped: n("skipped"),
        canceled: n("canceled"),
      },
    };
  }

  private uniqueName(what: string, name: string, holder: string | undefined, self: string | null): void {
    if (holder !== undefined && holder !== self) throw new LabrigError("conflict", `A ${what} named '${name}' already exists (${holder}); names are unique.`);
  }
}
