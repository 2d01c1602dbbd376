import { randomUUID } from "node:crypto";
import {
  LabrigError,
  nowIso,
  settlesWithin,
  toLabrigError,
  type ResultStatus,
  type RunEvent,
  type RunEventName,
  type RunStatus,
  type TestCaseRecord,
} from "@labrig/shared";
import type { Logger } from "../../logger.js";
import type { RunRow, RunSpec, RunsRepository } from "../../repositories/runs.js";
import type { RunArtifactStore } from "./artifact-store.js";
import type { AgentArtifactSource, CampaignFleet, ConsoleTap, DeviceLease, GoalRunner, RunEvents } from "./ports.js";
import { StepRunner, type RunScope, type TestOutcome } from "./step-runner.js";
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

/** A run under way: its step runner's scope (the controllers also stop new tests) and how it was stopped. */
interface ActiveRun extends RunScope {
  abortKind: AbortKind | null;
  abortReason: string | null;
  done: Promise<void>;
}

/**
 * Executes runs: takes a lease per test attempt through the fleet port, runs up to `parallelism`
 * tests at once (one per device, which the leases guarantee), retries failed tests preferring
 * another device, runs teardown whatever happened, records every attempt and step, and publishes
 * progress. A run's row is the source of truth; nothing about a run lives only in memory except
 * its abort controllers.
 */
export class CampaignRunner {
  private readonly active = new Map<string, ActiveRun>();
  private readonly steps: StepRunner;
  private stopping = false;

  constructor(private readonly deps: RunnerDeps) {
    const { runs, fleet, artifacts, goals, consoles, agentArtifacts, logger, options } = deps;
    this.steps = new StepRunner({
      runs,
      fleet,
      artifacts,
      goals,
      consoles,
      agentArtifacts,
      logger,
      options: { actionTimeoutMs: options.actionTimeoutMs, consoleCaptureBytes: options.consoleCaptureBytes },
      publish: (event, run, extra) => this.publish(event, run, extra),
    });
  }

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

  private publish(event: RunEventName, run: RunScope, extra: Partial<RunEvent> = {}): void {
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
      outcome = await this.steps.runSteps(run, tc, id, position, attempt, lease);
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
}
