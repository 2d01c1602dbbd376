import {
  ERROR_CODES,
  GOAL_ACTION,
  GoalParamsSchema,
  LabrigError,
  actionTimeoutMs,
  isActionName,
  makeEnvelope,
  nowIso,
  parseActionParams,
  toLabrigError,
  type ActionRecord,
  type ErrorCode,
  type ErrorEnvelope,
  type ResultStatus,
  type RunEvent,
  type RunEventName,
  type Step,
  type StepPhase,
  type TestCaseRecord,
} from "@labrig/shared";
import type { Logger } from "../../logger.js";
import type { RunRow, RunsRepository, StepOutcome } from "../../repositories/runs.js";
import type { RunArtifactStore } from "./artifact-store.js";
import { checkExpectations, expectationList } from "./expectations.js";
import type { AgentArtifactSource, CampaignFleet, ConsoleTap, DeviceLease, GoalRunner } from "./ports.js";
import { renderParams } from "./templates.js";

/** What the step runner needs of the run it works for. */
export interface RunScope {
  readonly row: RunRow;
  /** Aborted on cancel, run timeout and shutdown: stops main steps. */
  readonly control: AbortController;
  /** Aborted only on shutdown: bounds teardown, which still runs after a cancel or failure. */
  readonly hard: AbortController;
  readonly abortReason: string | null;
}

export interface StepRunnerDeps {
  runs: RunsRepository;
  fleet: CampaignFleet;
  artifacts: RunArtifactStore;
  goals: GoalRunner | null;
  consoles: ConsoleTap | null;
  agentArtifacts: AgentArtifactSource | null;
  logger: Logger;
  options: {
    /** Base of the per-action timeout when a step names none (LABRIG_ACTION_TIMEOUT_MS). */
    actionTimeoutMs: number;
    /** Longest the console capture of one step may grow. */
    consoleCaptureBytes: number;
  };
  publish(event: RunEventName, run: RunScope, extra: Partial<RunEvent>): void;
}

export interface TestOutcome {
  status: ResultStatus;
  message: string | null;
}

interface StepRun {
  status: ResultStatus;
  message: string | null;
  result: unknown;
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
 * The steps of one test attempt on its leased device: each step's action (or ai.goal) with its
 * rendered params, timeout and expectations, its console capture and artifacts (transcript,
 * console, snapshot, clip), recorded as it starts and ends and published as `step.finished`.
 */
export class StepRunner {
  constructor(private readonly deps: StepRunnerDeps) {}

  /** Setup and main steps in order (skipped after a failure or an abort), then teardown whatever happened. */
  async runSteps(run: RunScope, tc: TestCaseRecord, testId: string, position: number, attempt: number, lease: DeviceLease): Promise<TestOutcome> {
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
    run: RunScope,
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
    this.deps.publish("step.finished", run, {
      status: outcome.status,
      test: { id: testId, name: testName, attempt, host: lease.host, device: lease.device },
      step: { name: step.name, phase, status: outcome.status, message: outcome.message, duration_ms: durationMs },
    });
    return { status: outcome.status, message: outcome.message, result: outcome.result };
  }

  private async execStep(
    run: RunScope,
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
