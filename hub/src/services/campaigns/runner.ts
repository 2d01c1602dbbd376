import { randomUUID } from "node:crypto";
import {
  ERROR_CODES,
  GOAL_ACTION,
  GoalParamsSchema,
  LabrigError,
  actionTimeoutMs,
  isActionName,
  makeEnvelope,
  nowIso,
  settlesWithin,
  parseActionParams,
  toLabrigError,
  type ActionRecord,
  type ErrorCode,
  type ErrorEnvelope,
  type ResultStatus,
  type RunEvent,
  type RunEventName,
  type RunStatus,
  type Step,
  type StepPhase,
  type TestCaseRecord,
} from "@labrig/shared";
import type { Logger } from "../../logger.js";
import type { RunRow, RunSpec, RunsRepository, StepOutcome } from "../../repositories/runs.js";
import type { RunArtifactStore } from "./artifact-store.js";
import { checkExpectations, expectationList } from "./expectations.js";
import type { AgentArtifactSource, CampaignFleet, ConsoleTap, DeviceLease, GoalOutcome, GoalRunner, RunEvents } from "./ports.js";
import { renderParams } from "./templates.js";
import { mergeSelectors } from "./validation.js";

/** Reasons recorded when the hub itself ends a run. */
export const REASON_RESTARTED = "hub restarted while the run was running";
export const REASON_STOPPED = "hub stopped while the run was running";

export interface RunnerOptions {
  /** TTL of each device lease; renewed every third of it while a test runs. */
  leaseTtlS: number;
  /** Longest a test waits for a matching free device. */
  deviceWaitMs: number;
  /** How long a retry waits for a device it has not failed on before accepting the same one. */
  retryOtherDeviceWaitMs: number;
  /** Base of the per-action timeout when a step names none (LABRIG_ACTION_TIMEOUT_MS). */
  actionTimeoutMs: number;
  /** Longest the console capture of one step may grow. */
  consoleCaptureBytes: number;
  /** How long stop() waits for runs to record their end. */
  stopGraceMs: number;
}

export interface RunnerDeps {
  runs: RunsRepository;
  fleet: CampaignFleet;
  artifacts: RunArtifactStore;
  goals: GoalRunner | null;
  events: RunEvents | null;
  consoles: ConsoleTap | null;
  agentArtifacts: AgentArtifactSource | null;
  logger: Logger;
  options: RunnerOptions;
}

type AbortKind = "cancel" | "timeout" | "shutdown";

interface ActiveRun {
  row: RunRow;
  /** Aborted on cancel, run timeout and shutdown: stops main steps and new tests. */
  control: AbortController;
  /** Aborted only on shutdown: bounds teardown, which still runs after a cancel or failure. */
  hard: AbortController;
  abortKind: AbortKind | null;
  abortReason: string | null;
  done: Promise<void>;
}

interface StepRun {
  status: ResultStatus;
  message: string | null;
  result: unknown;
}

interface TestOutcome {
  status: ResultStatus;
  message: string | null;
}

/** Codes that mean the test (or its definition) is at fault rather than the rig: reported as failures, not errors. */
const FAILURE_CODES: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  "expect_timeout",
  "validation_failed",
  "unknown_resource",
  "ambiguous_resource",
  "unsupported_action",
  "unknown_action",
  "forbidden_line",
]);

function statusForError(code: ErrorCode): ResultStatus {
  if (code === "canceled") return "canceled";
  return FAILURE_CODES.has(code) ? "failed" : "error";
}

const STEP_TIMEOUT_MARGIN_MS = 2000;

/**
 * Executes runs: takes a lease per test attempt through the fleet port, runs up to `parallelism`
 * tests at once (one per device, which the leases guarantee), retries failed tests preferring
 * another device, runs teardown whatever happened, records every attempt and step, and publishes
 * progress. A run's row is the source of truth; nothing about a run lives only in memory except
 * its abort controllers.
 */
export class CampaignRunner {
  private readonly active = new Map<string, ActiveRun>();
  private stopping = false;

  constructor(private readonly deps: RunnerDeps) {}

  /** Ends what a previous hub process left unfinished: those runs are `interrupted` and their leases released. */
  async start(): Promise<void> {
    this.stopping = false;
    const at = nowIso();
    for (const row of this.deps.runs.unfinished()) {
      this.deps.runs.failRunning(row.id, REASON_RESTARTED, at);
      this.deps.runs.finishRun(row.id, "interrupted", REASON_RESTARTED, at, row.started_at ? Date.parse(at) - Date.parse(row.started_at) : null);
      await this.releaseOpenLeases(row.id, REASON_RESTARTED);
      this.deps.logger.warn({ run_id: row.id, was: row.status }, "run left unfinished by the previous hub process marked interrupted");
    }
  }

  /** Aborts every run (teardown included) and waits a bounded time for each to record its end as `interrupted`. */
  async stop(): Promise<void> {
    this.stopping = true;
    const runs = [...this.active.values()];
    for (const run of runs) this.abort(run, "shutdown", REASON_STOPPED);
    await settlesWithin(Promise.allSettled(runs.map((r) => r.done)), this.deps.options.stopGraceMs);
  }

  isActive(runId: string): boolean {
    return this.active.has(runId);
  }

  /** Starts executing a queued run in the background. */
  launch(row: RunRow): void {
    if (this.stopping) throw new LabrigError("shutting_down", "The hub is shutting down; start the run again once it is back.", { retryAfter: 5 });
    const run: ActiveRun = { row, control: new AbortController(), hard: new AbortController(), abortKind: null, abortReason: null, done: Promise.resolve() };
    this.active.set(row.id, run);
    run.done = this.execute(run)
      .catch((err: unknown) => {
        this.deps.logger.error({ err, run_id: row.id }, "run failed inside the hub");
        const at = nowIso();
        try {
          this.deps.runs.failRunning(row.id, "the hub failed while running this run; see its log", at);
          this.finishRun(run, "error", `internal error: ${(err as Error).message}`, at);
        } catch (inner) {
          this.deps.logger.error({ err: inner, run_id: row.id }, "could not record the run's failure");
        }
      })
      .finally(() => this.active.delete(row.id));
  }

  /** Cancels a running run (its actions are canceled on the agents, teardown still runs). False when it is not running here. */
  cancel(runId: string, by: string | null): boolean {
    const run = this.active.get(runId);
    if (!run) return false;
    this.abort(run, "cancel", `canceled${by ? ` by ${by}` : ""}`);
    return true;
  }

  /** Resolves when the run has finished (for tests and the CLI's in-process use). */
  async settled(runId: string): Promise<void> {
    await this.active.get(runId)?.done;
  }

  private abort(run: ActiveRun, kind: AbortKind, reason: string): void {
    if (run.abortKind === null || kind === "shutdown") {
      run.abortKind = kind;
      run.abortReason = reason;
    }
    run.control.abort(new LabrigError(kind === "shutdown" ? "shutting_down" : "canceled", reason));
    if (kind === "shutdown") run.hard.abort(new LabrigError("shutting_down", reason));
  }

  private publish(event: RunEventName, run: ActiveRun, extra: Partial<RunEvent> = {}): void {
    if (!this.deps.events) return;
    try {
      this.deps.events.publish(event, { run_id: run.row.id, campaign_id: run.row.campaign_id, at: nowIso(), ...extra });
    } catch (err) {
      this.deps.logger.error({ err, event, run_id: run.row.id }, "publishing a run event failed");
    }
  }

  private finishRun(run: ActiveRun, status: RunStatus, reason: string | null, at = nowIso()): void {
    const started = this.deps.runs.getRun(run.row.id)?.started_at;
    const duration = started ? Date.parse(at) - Date.parse(started) : null;
    if (this.deps.runs.finishRun(run.row.id, status, reason, at, duration)) {
      this.deps.logger.info({ run_id: run.row.id, status, reason }, "run finished");
      this.publish("run.finished", run, { status, reason });
    }
  }

  private async execute(run: ActiveRun): Promise<void> {
    const { runs, logger, options } = this.deps;
    const spec = JSON.parse(run.row.spec_json) as RunSpec;
    const startedAt = nowIso();
    if (!runs.startRun(run.row.id, startedAt)) return;
    logger.info({ run_id: run.row.id, name: run.row.name, tests: spec.testcases.length, parallelism: spec.settings.parallelism }, "run started");
    this.publish("run.started", run, { status: "running" });
    const deadlineMs = Date.now() + spec.settings.timeout_s * 1000;
    const timer = setTimeout(() => this.abort(run, "timeout", `run timed out after ${spec.settings.timeout_s} s`), spec.settings.timeout_s * 1000);

    const queue = spec.testcases.map((tc, position) => ({ tc, position }));
    let stopNew = false;
    const finals: ResultStatus[] = [];
    const worker = async (): Promise<void> => {
      for (;;) {
        const item = queue.shift();
        if (!item) return;
        if (run.control.signal.aborted || stopNew) {
          this.recordSkippedTest(run, item.tc, item.position, run.control.signal.aborted ? `not run: ${run.abortReason ?? "run aborted"}` : "not run: an earlier test failed and continue_on_failure is false");
          finals.push("skipped");
          continue;
        }
        const status = await this.runTest(run, spec, item.tc, item.position, deadlineMs);
        finals.push(status);
        if ((status === "failed" || status === "error") && !spec.settings.continue_on_failure) stopNew = true;
      }
    };
    try {
      const workers = Math.max(1, Math.min(spec.settings.parallelism, queue.length));
      await Promise.all(Array.from({ length: workers }, () => worker()));
    } finally {
      clearTimeout(timer);
    }

    if (run.abortKind === "shutdown") this.finishRun(run, "interrupted", REASON_STOPPED);
    else if (run.abortKind === "cancel") this.finishRun(run, "canceled", run.abortReason);
    else if (run.abortKind === "timeout") this.finishRun(run, "error", run.abortReason);
    else if (finals.includes("failed")) this.finishRun(run, "failed", `${finals.filter((s) => s === "failed").length} of ${finals.length} tests failed`);
    else if (finals.includes("error") || finals.includes("canceled")) this.finishRun(run, "error", `${finals.filter((s) => s === "error" || s === "canceled").length} of ${finals.length} tests could not run to the end`);
    else this.finishRun(run, "passed", null);
  }

  private recordSkippedTest(run: ActiveRun, tc: TestCaseRecord, position: number, message: string): void {
    const at = nowIso();
    this.deps.runs.insertTest({
      id: randomUUID(),
      run_id: run.row.id,
      testcase_id: tc.id,
      name: tc.name,
      position,
      attempt: 1,
      status: "skipped",
      message,
      host_id: null,
      device_id: null,
      lease_id: null,
      started_at: null,
      finished_at: at,
      duration_ms: null,
    });
  }

  /** Every attempt of one test; returns the final status. */
  private async runTest(run: ActiveRun, spec: RunSpec, tc: TestCaseRecord, position: number, deadlineMs: number): Promise<ResultStatus> {
    const tried: { host: string; device: string }[] = [];
    const attempts = spec.settings.retries + 1;
    let previousId: string | null = null;
    let last: ResultStatus = "error";
    for (let attempt = 1; attempt <= attempts; attempt++) {
      if (run.control.signal.aborted) break;
      if (previousId !== null) this.deps.runs.markNotFinal(previousId);
      const { id, status, device } = await this.runAttempt(run, spec, tc, position, attempt, tried, deadlineMs);
      previousId = id;
      last = status;
      if (device) tried.push(device);
      if (status === "passed" || status === "canceled" || status === "skipped") break;
      if (attempt < attempts) this.deps.logger.info({ run_id: run.row.id, test: tc.name, attempt, status }, "test failed; retrying");
    }
    return last;
  }

  private async acquire(run: ActiveRun, spec: RunSpec, tc: TestCaseRecord, tried: readonly { host: string; device: string }[], deadlineMs: number): Promise<DeviceLease> {
    const { selector, conflicts } = mergeSelectors(spec.settings.target.selector, tc.target.selector);
    if (conflicts.length > 0) throw new LabrigError("validation_failed", `The run's target and test case '${tc.name}' need contradicting labels (${conflicts.join(", ")}); no device can match.`);
    const base = { owner: `run:${run.row.id}`, ttl_s: this.deps.options.leaseTtlS, signal: run.control.signal, requested_by: run.row.requested_by };
    const waitMs = Math.max(0, Math.min(this.deps.options.deviceWaitMs, deadlineMs - Date.now(), 600_000));
    if (tried.length > 0) {
      // A retry goes to a device the test has not failed on when one is free soon; otherwise the
      // same device after whoever was waiting for it (the dispatcher queues in order) had their turn.
      try {
        return await this.deps.fleet.acquire(selector, { ...base, wait_ms: Math.min(this.deps.options.retryOtherDeviceWaitMs, waitMs), exclude: tried });
      } catch (err) {
        const e = toLabrigError(err);
        // No other device free in time, or none other at all: the same device it is, after those waiting for it.
        if ((e.code !== "no_device_available" && e.code !== "unknown_device") || run.control.signal.aborted) throw e;
      }
    }
    return this.deps.fleet.acquire(selector, { ...base, wait_ms: waitMs, exclude: [] });
  }

  private async runAttempt(
    run: ActiveRun,
    spec: RunSpec,
    tc: TestCaseRecord,
    position: number,
    attempt: number,
    tried: readonly { host: string; device: string }[],
    deadlineMs: number,
  ): Promise<{ id: string; status: ResultStatus; device: { host: string; device: string } | null }> {
    const { runs, fleet, logger, options } = this.deps;
    const id = randomUUID();
    const base = { id, run_id: run.row.id, testcase_id: tc.id, name: tc.name, position, attempt };
    let lease: DeviceLease;
    try {
      lease = await this.acquire(run, spec, tc, tried, deadlineMs);
    } catch (err) {
      const e = toLabrigError(err);
      const aborted = run.control.signal.aborted;
      const status: ResultStatus = aborted ? "canceled" : "error";
      const message = aborted ? `not run: ${run.abortReason ?? "run aborted"}` : `no device for this test: ${e.message}`;
      runs.insertTest({ ...base, status, message, host_id: null, device_id: null, lease_id: null, started_at: null, finished_at: nowIso(), duration_ms: null });
      this.publish("test.finished", run, { status, test: { id, name: tc.name, attempt, host: null, device: null } });
      return { id, status, device: null };
    }
    const startedAtMs = Date.now();
    runs.addLease(run.row.id, lease.id);
    runs.insertTest({ ...base, status: "running", message: null, host_id: lease.host, device_id: lease.device, lease_id: lease.id, started_at: new Date(startedAtMs).toISOString(), finished_at: null, duration_ms: null });
    const testInfo = { id, name: tc.name, attempt, host: lease.host, device: lease.device };
    this.publish("test.started", run, { status: "running", test: testInfo });
    logger.info({ run_id: run.row.id, test: tc.name, attempt, host: lease.host, device: lease.device }, "test started");

    const keepalive = setInterval(() => {
      fleet.keepalive(lease, options.leaseTtlS).catch((err: unknown) => logger.warn({ err, run_id: run.row.id, lease_id: lease.id }, "lease keepalive failed"));
    }, Math.max(1000, (options.leaseTtlS * 1000) / 3));
    let outcome: TestOutcome;
    try {
      outcome = await this.runSteps(run, tc, id, position, attempt, lease);
    } catch (err) {
      logger.error({ err, run_id: run.row.id, test: tc.name }, "test failed inside the hub");
      outcome = { status: "error", message: `internal error: ${(err as Error).message}` };
    } finally {
      clearInterval(keepalive);
      await this.releaseLease(run.row.id, lease.id, `test ${tc.name} attempt ${attempt} finished`);
    }
    const finishedAt = nowIso();
    runs.finishTest(id, outcome.status, outcome.message, finishedAt, Date.parse(finishedAt) - startedAtMs);
    this.publish("test.finished", run, { status: outcome.status, reason: outcome.message, test: testInfo });
    logger.info({ run_id: run.row.id, test: tc.name, attempt, status: outcome.status, message: outcome.message }, "test finished");
    return { id, status: outcome.status, device: { host: lease.host, device: lease.device } };
  }

  private async releaseLease(runId: string, leaseId: string, reason: string): Promise<void> {
    try {
      await this.deps.fleet.release(leaseId, reason);
      this.deps.runs.releaseLease(runId, leaseId, nowIso());
    } catch (err) {
      // The lease expires by its TTL anyway; the next start releases it by id as well.
      this.deps.logger.error({ err, run_id: runId, lease_id: leaseId }, "could not release a run's lease");
    }
  }

  private async releaseOpenLeases(runId: string, reason: string): Promise<void> {
    for (const leaseId of this.deps.runs.openLeases(runId)) await this.releaseLease(runId, leaseId, reason);
  }

  private async runSteps(run: ActiveRun, tc: TestCaseRecord, testId: string, position: number, attempt: number, lease: DeviceLease): Promise<TestOutcome> {
    const results = new Map<string, unknown>();
    let failure: TestOutcome | null = null;
    const plan: { step: Step; phase: StepPhase }[] = [
      ...tc.setup.map((step) => ({ step, phase: "setup" as const })),
      ...tc.steps.map((step) => ({ step, phase: "main" as const })),
    ];
    let idx = 0;
    for (const { step, phase } of plan) {
      const at = idx++;
      if (failure || run.control.signal.aborted) {
        const why = run.control.signal.aborted ? `not run: ${run.abortReason ?? "run aborted"}` : "not run: an earlier step failed";
        this.recordSkippedStep(testId, at, phase, step, why);
        continue;
      }
      const r = await this.runStep(run, tc.name, testId, position, attempt, at, phase, step, lease, results, run.control.signal);
      if (r.status === "passed") results.set(step.name, r.result);
      else if (!step.continue_on_failure || r.status === "canceled") failure = { status: r.status, message: `${phase === "setup" ? "setup step" : "step"} ${step.name}: ${r.message ?? r.status}` };
    }
    // Teardown always runs (after a failure or a cancel too); only a hub shutdown cuts it short.
    for (const step of tc.teardown) {
      const at = idx++;
      if (run.hard.signal.aborted) {
        this.recordSkippedStep(testId, at, "teardown", step, `not run: ${run.abortReason ?? "hub shutting down"}`);
        continue;
      }
      const r = await this.runStep(run, tc.name, testId, position, attempt, at, "teardown", step, lease, results, run.hard.signal);
      if (r.status === "passed") results.set(step.name, r.result);
      else if (!step.continue_on_failure && failure === null) failure = { status: r.status === "failed" ? "failed" : "error", message: `teardown step ${step.name}: ${r.message ?? r.status}` };
    }
    if (failure) return failure;
    if (run.control.signal.aborted) return { status: "canceled", message: run.abortReason };
    return { status: "passed", message: null };
  }

  private recordSkippedStep(testId: string, idx: number, phase: StepPhase, step: Step, message: string): void {
    const seq = this.deps.runs.insertStep({ runTestId: testId, idx, phase, name: step.name, action: step.action, status: "skipped", message, startedAt: null });
    this.deps.runs.finishStep(seq, { status: "skipped", message, actionIds: [], result: null, error: null, finishedAt: nowIso(), durationMs: 0 });
  }

  private async runStep(
    run: ActiveRun,
    testName: string,
    testId: string,
    position: number,
    attempt: number,
    idx: number,
    phase: StepPhase,
    step: Step,
    lease: DeviceLease,
    results: ReadonlyMap<string, unknown>,
    signal: AbortSignal,
  ): Promise<StepRun> {
    const { runs, logger } = this.deps;
    const startedAtMs = Date.now();
    const seq = runs.insertStep({ runTestId: testId, idx, phase, name: step.name, action: step.action, status: "running", startedAt: new Date(startedAtMs).toISOString() });
    let consoleText = "";
    let consoleDropped = 0;
    const untap =
      this.deps.consoles?.tap(lease.host, lease.device, (_resource, text) => {
        const room = this.deps.options.consoleCaptureBytes - consoleText.length;
        if (room <= 0) consoleDropped += text.length;
        else {
          consoleText += text.slice(0, room);
          consoleDropped += Math.max(0, text.length - room);
        }
      }) ?? ((): void => undefined);

    const actionIds: string[] = [];
    let outcome: { status: ResultStatus; message: string | null; result: unknown; error: ErrorEnvelope | null };
    let record: ActionRecord | null = null;
    try {
      const o = await this.execStep(run, testId, step, lease, results, signal, actionIds);
      outcome = o.outcome;
      record = o.record;
    } catch (err) {
      const e = toLabrigError(err);
      if (e.code === "internal_error") logger.error({ err, run_id: run.row.id, step: step.name }, "step failed inside the hub");
      outcome = { status: statusForError(e.code), message: e.message, result: null, error: e.toEnvelope() };
    } finally {
      untap();
    }

    const nameParts = [`t${String(position + 1).padStart(2, "0")}`, `a${attempt}`, `s${String(idx + 1).padStart(2, "0")}`, step.name];
    const store = (kind: "transcript" | "console" | "snapshot" | "clip", ext: string, mimeType: string, data: Buffer): void => {
      try {
        this.deps.artifacts.write({ runId: run.row.id, runTestId: testId, stepSeq: seq, nameParts: [...nameParts, kind], ext, kind, mimeType, data });
      } catch (err) {
        logger.error({ err, run_id: run.row.id, step: step.name, kind }, "could not store a step artifact");
      }
    };
    const transcript = transcriptOf(record);
    if (transcript) store("transcript", "txt", "text/plain; charset=utf-8", Buffer.from(transcript, "utf8"));
    if (consoleText !== "") store("console", "txt", "text/plain; charset=utf-8", Buffer.from(consoleDropped > 0 ? `${consoleText}\n[labrig: ${consoleDropped} more characters not kept]\n` : consoleText, "utf8"));
    await this.fetchCaptured(record, lease, signal, (kind, ext, mime, data) => store(kind, ext, mime, data));

    const finishedAt = nowIso();
    const durationMs = Date.parse(finishedAt) - startedAtMs;
    const final: StepOutcome = { status: outcome.status, message: outcome.message, actionIds, result: outcome.result, error: outcome.error, finishedAt, durationMs };
    runs.finishStep(seq, final);
    this.publish("step.finished", run, {
      status: outcome.status,
      test: { id: testId, name: testName, attempt, host: lease.host, device: lease.device },
      step: { name: step.name, phase, status: outcome.status, message: outcome.message, duration_ms: durationMs },
    });
    return { status: outcome.status, message: outcome.message, result: outcome.result };
  }

  private async execStep(
    run: ActiveRun,
    testId: string,
    step: Step,
    lease: DeviceLease,
    results: ReadonlyMap<string, unknown>,
    signal: AbortSignal,
    actionIds: string[],
  ): Promise<{ outcome: { status: ResultStatus; message: string | null; result: unknown; error: ErrorEnvelope | null }; record: ActionRecord | null }> {
    if (signal.aborted) {
      const e = toLabrigError(signal.reason);
      return { outcome: { status: "canceled", message: e.message, result: null, error: e.toEnvelope() }, record: null };
    }
    const regexKeys = new Set(step.action === "serial.expect" && step.params.regex === true ? ["pattern"] : []);
    let params: Record<string, unknown>;
    try {
      params = renderParams(step.params, results, regexKeys);
    } catch (err) {
      throw new LabrigError("validation_failed", (err as Error).message);
    }

    const timeoutMs = step.timeout_ms ?? (isActionName(step.action) ? actionTimeoutMs(step.action, parseActionParams(step.action, params), this.deps.options.actionTimeoutMs) : 600_000);
    const timeout = new AbortController();
    // An explicit timeout_ms is the step's own budget and is enforced here (the agent only knows the catalogue's
    // timeout); without one the agent and dispatcher time the action out first, and this is a backstop.
    const budgetMs = step.timeout_ms ?? timeoutMs + STEP_TIMEOUT_MARGIN_MS;
    const timer = setTimeout(() => timeout.abort(new LabrigError("action_timeout", `step ${step.name} exceeded its timeout of ${timeoutMs} ms`)), budgetMs);
    const stepSignal = AbortSignal.any([signal, timeout.signal]);
    try {
      if (step.action === GOAL_ACTION) {
        if (!this.deps.goals) throw new LabrigError("planner_unavailable", "ai.goal steps need the planner, which this hub has not enabled (set GEMINI_API_KEY and restart the hub).");
        const goal = GoalParamsSchema.parse(params);
        // The step's signal reaches every action the planner runs: a cancel or a step timeout aborts the one it waits on.
        const res = await this.deps.goals.run({ run_id: run.row.id, test_id: testId, step: { ...step, params: goal }, host: lease.host, device: lease.device, lease_token: lease.token, signal: stepSignal });
        const error = res.error ? makeEnvelope(isErrorCode(res.error.error_code) ? res.error.error_code : "planner_error", res.error.message) : null;
        // As for actions: past its own timeout the step failed; stopped by the run (cancel, shutdown) it was canceled.
        const status: ResultStatus = timeout.signal.aborted ? "failed" : signal.aborted ? "canceled" : res.status;
        return { outcome: { status, message: error?.message ?? (status === "passed" ? null : `goal not reached after ${res.iterations.length} iterations`), result: { status: res.status, iterations: res.iterations }, error }, record: null };
      }
      const parsed = parseActionParams(step.action, params);
      const record = await this.deps.fleet.runAction({
        host: lease.host,
        device: lease.device,
        action: step.action,
        resource: step.resource ?? null,
        params: parsed,
        lease_token: lease.token,
        timeout_ms: timeoutMs,
        signal: stepSignal,
        requested_by: run.row.requested_by,
      });
      actionIds.push(record.id);
      if (timeout.signal.aborted && record.status !== "succeeded") {
        const e = timeout.signal.reason as LabrigError;
        return { outcome: { status: "failed", message: e.message, result: record.result, error: e.toEnvelope() }, record };
      }
      if (record.status === "succeeded") {
        const problems = checkExpectations(expectationList(step.expect), record.result ?? {});
        if (problems.length > 0) return { outcome: { status: "failed", message: problems.join("; "), result: record.result, error: null }, record };
        return { outcome: { status: "passed", message: null, result: record.result, error: null }, record };
      }
      const error = record.error ?? makeEnvelope("internal_error", `action ${record.id} ended ${record.status} without an error`);
      const status = record.status === "canceled" || (signal.aborted && !timeout.signal.aborted) ? "canceled" : statusForError(error.error_code);
      return { outcome: { status, message: error.message, result: record.result, error }, record };
    } finally {
      clearTimeout(timer);
    }
  }

  /** Stores the snapshot or clip a capture action left on the agent, when the hub can fetch agent artifacts. */
  private async fetchCaptured(
    record: ActionRecord | null,
    lease: DeviceLease,
    signal: AbortSignal,
    store: (kind: "snapshot" | "clip", ext: string, mime: string, data: Buffer) => void,
  ): Promise<void> {
    if (!record || record.status !== "succeeded" || !record.action.startsWith("capture.")) return;
    const artifact = record.result?.artifact;
    if (typeof artifact !== "string" || !this.deps.agentArtifacts) return;
    try {
      const { data, mime_type } = await this.deps.agentArtifacts.fetch(lease.host, artifact, signal);
      const kind = record.action === "capture.snapshot" ? "snapshot" : "clip";
      const ext = mime_type.includes("jpeg") ? "jpg" : mime_type.includes("png") ? "png" : mime_type.includes("mp4") ? "mp4" : mime_type.includes("webm") ? "webm" : "bin";
      store(kind, ext, mime_type, data);
    } catch (err) {
      this.deps.logger.warn({ err, host: lease.host, artifact }, "could not fetch a capture artifact from the agent; the step result keeps its id");
    }
  }
}

function transcriptOf(record: ActionRecord | null): string | null {
  if (!record || record.action !== "serial.expect") return null;
  const fromResult = record.result?.transcript;
  if (typeof fromResult === "string" && fromResult !== "") return fromResult;
  const details = record.error?.details;
  if (details && typeof details === "object" && "tail" in details && typeof details.tail === "string" && details.tail !== "") return details.tail;
  return null;
}

function isErrorCode(code: string): code is ErrorCode {
  return Object.hasOwn(ERROR_CODES, code);
}
