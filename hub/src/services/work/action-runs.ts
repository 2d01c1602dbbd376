import { performance } from "node:perf_hooks";
import { LabrigError, actionTimeoutMs, isReadOnly, resolveResource, toLabrigError, type ActionResult, type ErrorCode } from "@labrig/shared";
import type { HubBus } from "../../bus.js";
import type { Logger } from "../../logger.js";
import type { ActionOutcome, StoredAction } from "../../repositories/actions.js";
import type { ActionSubmission, AdmittedAction } from "./admission.js";
import type { AgentChannel, ChannelPort } from "./agent-channel.js";
import type { LateResults } from "./late-results.js";
import type { ActionLedger } from "./ledger.js";
import { recordOf, type ActionJob } from "./action-job.js";
import { hubOutcome, outcomeOfResult } from "./outcome.js";
import type { DeviceSlot, Scheduler } from "./scheduler.js";

/** Extra time the hub waits beyond the agent's own timeout, so the agent's (better) error normally wins. */
export const HUB_DEADLINE_MARGIN_MS = 5000;

/** Priority of internal work (lease cleanup): ahead of everything an operator queued. */
export const INTERNAL_PRIORITY = Number.MAX_SAFE_INTEGER;

/** An action on its way: its id at once, its record when it has ended. */
export interface Submitted {
  id: string;
  /** Resolves with the record however the action ended on a device (or was canceled); rejects when it could not run at all. */
  done: Promise<StoredAction>;
}

export interface ActionRunsDeps {
  scheduler: Scheduler;
  ledger: ActionLedger;
  lateResults: LateResults;
  bus: HubBus;
  channel: () => AgentChannel;
  /** Asks the work unit for another scheduling pass. */
  pump: (full: boolean) => void;
  /** Seconds a refused caller should wait before retrying. */
  retryAfterS: () => number;
  options: { actionTimeoutMs: number; queueTimeoutMs: number };
  logger: Logger;
}

/**
 * Each action's life from submission to record: queued (with its queue timeout), sent (with its
 * deadline), started, finished, canceled, re-queued after a lost connection, or ended without ever
 * reaching a device. Every change goes through the ledger; the agent channel reports here.
 */
export class ActionRuns implements ChannelPort {
  private readonly jobs = new Map<string, ActionJob>();
  /** Moving average of action durations, for retry_after estimates. */
  avgDurationMs = 100;

  constructor(private readonly d: ActionRunsDeps) {}

  get size(): number {
    return this.jobs.size;
  }

  get anyRunning(): boolean {
    for (const job of this.jobs.values()) if (job.running) return true;
    return false;
  }

  has(id: string): boolean {
    return this.jobs.has(id);
  }

  /** Records and queues an admitted action (one commit with the dispatch that may follow); aborting `signal` cancels it. */
  submit(id: string, admitted: AdmittedAction, sub: ActionSubmission, priority: number, signal: AbortSignal | undefined): Submitted {
    let markEnded: () => void = () => undefined;
    const ended = new Promise<void>((r) => (markEnded = r));
    let resolve!: (record: StoredAction) => void;
    let reject!: (err: LabrigError) => void;
    const done = new Promise<StoredAction>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    const job: ActionJob = {
      id,
      admitted,
      priority,
      queueTimeoutMs: sub.queueTimeoutMs ?? this.d.options.queueTimeoutMs,
      requestedBy: sub.requestedBy,
      queuedAt: new Date().toISOString(),
      submittedAtMs: performance.now(),
      attempt: 0,
      startedAt: null,
      queueTimer: null,
      running: null,
      cancelRequested: false,
      resolve,
      reject,
      ended,
      markEnded,
      detachSignal: () => undefined,
    };
    try {
      this.d.ledger.commit(() => {
        this.d.ledger.queued({
          id,
          host: admitted.exact?.host ?? null,
          device: admitted.exact?.device ?? null,
          action: admitted.action,
          resource: admitted.exactResource,
          params: admitted.params,
          target: admitted.exact ?? { selector: admitted.selector as NonNullable<AdmittedAction["selector"]> },
          priority,
          leaseId: admitted.lease?.id ?? null,
          requestedBy: job.requestedBy,
          queuedAt: job.queuedAt,
        });
        this.jobs.set(id, job);
        if (this.d.bus.has("action.queued")) {
          const exact = admitted.exact;
          this.d.bus.emit("action.queued", { id, action: admitted.action, status: "queued", host: exact?.host ?? null, device: exact?.device ?? null, resource: admitted.exactResource, requested_by: job.requestedBy, at: job.queuedAt });
        }
        this.enqueue(job);
        this.d.pump(false);
      });
    } catch (err) {
      // The record could not be written (a full or failing disk): nothing may run without one. The
      // caller gets this throw, never `done` (which a withdrawal inside the commit may have rejected).
      done.catch(() => undefined);
      throw this.withdraw(job, err);
    }
    if (this.d.scheduler.has(id) && job.queueTimeoutMs === 0) this.onQueueTimeout(job);
    if (signal && this.jobs.has(id)) {
      const onAbort = (): void => {
        if (this.jobs.has(id)) this.cancelJob(job, "its requester stopped waiting");
      };
      signal.addEventListener("abort", onAbort, { once: true });
      job.detachSignal = () => signal.removeEventListener("abort", onAbort);
    }
    return { id, done };
  }

  /** Cancels a queued or running action; settles once it has ended. A finished or unknown one throws. */
  cancel(id: string, by: string | null): { ended: Promise<void> } {
    const job = this.jobs.get(id);
    if (!job) {
      const record = this.d.ledger.action(id);
      if (!record) throw new LabrigError("not_found", `No action '${id}'.`);
      throw new LabrigError("conflict", `Action ${id} already ended (${record.status} at ${record.finished_at ?? "?"}); there is nothing to cancel.`);
    }
    this.cancelJob(job, by === null ? "" : `by ${by}`);
    return { ended: job.ended };
  }

  /** The scheduler gave the action a device: sends it, or puts it back when the host has no live connection after all. */
  dispatch(id: string, slot: DeviceSlot): void {
    const job = this.jobs.get(id);
    if (!job) return;
    this.clearQueueTimer(job);
    const a = job.admitted;
    const resource = a.exact ? a.exactResource : resolveResource(a.action, slot.resources, a.requested);
    const timeoutMs = actionTimeoutMs(a.action, a.params, this.d.options.actionTimeoutMs);
    const channel = this.d.channel();
    if (!channel.canSend(slot.host)) {
      this.d.scheduler.release(slot.key, job.id);
      this.enqueue(job);
      return;
    }
    job.attempt += 1;
    const deadline = setTimeout(() => this.onDeadline(job, timeoutMs), timeoutMs + HUB_DEADLINE_MARGIN_MS);
    job.running = { slot, resource, attempt: job.attempt, sentAtMs: Date.now(), deadline };
    // Recorded before it is sent: nothing reaches a device that the records do not show.
    try {
      this.d.ledger.dispatched(job.id, slot, resource);
    } catch (err) {
      job.reject(this.withdraw(job, err));
      job.markEnded();
      return;
    }
    // In the same turn as canSend(), so the connection is still there.
    channel.send({ actionId: job.id, attempt: job.attempt, host: slot.host, device: slot.device, action: a.action, resource, params: a.params, timeoutMs, confirmStart: !isReadOnly(a.action) });
    if (this.d.bus.has("action.dispatched")) this.d.bus.emit("action.dispatched", { action: a.action, waitedMs: performance.now() - job.submittedAtMs });
    // Running from the hub's point of view from here on (the ledger says so too), started or not yet.
    if (this.d.bus.has("action.running")) this.d.bus.emit("action.running", { id: job.id, action: a.action, status: "running", host: slot.host, device: slot.device, resource, requested_by: job.requestedBy, at: new Date().toISOString() });
    // Guarded: building the fields costs more than the disabled call itself, once per action.
    if (this.d.logger.isLevelEnabled("debug")) this.d.logger.debug({ action_id: job.id, attempt: job.attempt, host: slot.host, device: slot.device, action: a.action, resource, timeout_ms: timeoutMs }, "action sent");
  }

  /** The scheduler refused a queued action (its exact device can no longer serve it). */
  refuse(id: string, error: LabrigError): void {
    const job = this.jobs.get(id);
    if (job) this.endQueued(job, error.code, error.message, error.retryAfter);
  }

  /** Drain, first part: what waits in the queue ends now with `code`. */
  endAllQueued(code: ErrorCode, message: string, retryAfter: number): void {
    for (const job of [...this.jobs.values()]) {
      if (this.d.scheduler.dequeue(job.id)) this.endQueued(job, code, message, retryAfter);
    }
  }

  /** Drain, last part: what still runs ends now with `code` (the agents are told to abort). */
  endAllRunning(code: ErrorCode, message: string): void {
    for (const job of [...this.jobs.values()]) {
      if (!job.running) continue;
      this.d.channel().cancel(job.id);
      this.finishRunning(job, hubOutcome(code, message, job.running.sentAtMs));
    }
  }

  // ---- the channel's reports --------------------------------------------------------------

  starting(actionId: string, attempt: number, at: string): boolean {
    const job = this.jobs.get(actionId);
    if (!job?.running || job.running.attempt !== attempt || job.cancelRequested) return false;
    job.startedAt = at;
    this.d.ledger.started(actionId, at);
    return true;
  }

  finished(actionId: string, result: ActionResult): void {
    const job = this.jobs.get(actionId);
    if (!job?.running) return;
    const { outcome, invalid } = outcomeOfResult(job.admitted.action, result);
    if (invalid !== null) this.d.logger.warn({ action_id: actionId, host: result.host, problem: invalid }, "agent returned a result that does not match the catalogue");
    // One commit for the outcome and the dispatch of whatever the freed device takes next.
    this.d.ledger.commit(() => this.finishRunning(job, outcome));
  }

  late(actionId: string, result: ActionResult): void {
    // An earlier attempt (re-dispatched, canceled before start, timed out) or one a past hub process gave up on.
    const disposition = this.d.lateResults.receive(actionId, result);
    if (disposition !== "reconciled") this.d.logger.debug({ action_id: actionId, wire_id: result.id, disposition }, "late action result acknowledged without change");
  }

  lost(actionId: string, attempt: number, started: boolean, reason: string): void {
    const job = this.jobs.get(actionId);
    const run = job?.running;
    if (!job || !run || run.attempt !== attempt) return;
    if (started) {
      this.finishRunning(job, hubOutcome("host_lost", `Lost the connection to host '${run.slot.host}' (${reason}) while the action was running; its outcome on the device is unknown. Check the device and retry.`, run.sentAtMs));
      return;
    }
    clearTimeout(run.deadline);
    this.d.scheduler.release(run.slot.key, job.id);
    job.running = null;
    job.startedAt = null;
    this.d.ledger.requeued(job.id, job.admitted.exact);
    this.d.logger.warn({ action_id: job.id, host: run.slot.host, device: run.slot.device, attempt, reason }, "host lost before the action started; re-queued");
    this.enqueue(job);
    this.d.pump(true);
  }

  // ---- internals --------------------------------------------------------------------------

  private enqueue(job: ActionJob): void {
    this.d.scheduler.enqueue({ kind: "action", id: job.id, priority: job.priority, demand: job.admitted.demand });
    if (job.queueTimeoutMs > 0 && job.queueTimer === null) {
      job.queueTimer = setTimeout(() => this.onQueueTimeout(job), job.queueTimeoutMs);
      job.queueTimer.unref();
    }
  }

  private clearQueueTimer(job: ActionJob): void {
    if (job.queueTimer) clearTimeout(job.queueTimer);
    job.queueTimer = null;
  }

  private cancelJob(job: ActionJob, who: string): void {
    const by = who === "" ? "" : ` ${who}`;
    if (this.d.scheduler.dequeue(job.id)) {
      this.endQueued(job, "canceled", `Canceled${by} while waiting for a device; it never ran.`);
      return;
    }
    const run = job.running;
    if (!run) return;
    const channel = this.d.channel();
    channel.cancel(job.id);
    if (!channel.isStarted(job.id)) {
      // The agent asks before it starts and will be told no: the action ends here and never runs.
      this.finishRunning(job, hubOutcome("canceled", `Canceled${by} before it started on the device; it never ran.`, run.sentAtMs));
      return;
    }
    job.cancelRequested = true;
    this.d.logger.info({ action_id: job.id, host: run.slot.host, device: run.slot.device }, "cancel sent to the agent");
  }

  private onQueueTimeout(job: ActionJob): void {
    if (!this.d.scheduler.dequeue(job.id)) return;
    const where = job.admitted.exact ? `device ${job.admitted.exact.host}/${job.admitted.exact.device}` : `a device matching ${JSON.stringify(job.admitted.selector)}`;
    this.endQueued(job, "no_device_available", `No free ${where} within ${job.queueTimeoutMs} ms: all are busy, leased, offline or not good. Retry later, or raise queue_timeout_ms.`, this.d.retryAfterS());
  }

  private onDeadline(job: ActionJob, timeoutMs: number): void {
    const run = job.running;
    if (!run) return;
    // The agent should have given up already; tell it again so a stuck action does not hold the device.
    this.d.channel().cancel(job.id);
    this.finishRunning(job, hubOutcome("action_timeout", `No result from host '${run.slot.host}' within ${timeoutMs + HUB_DEADLINE_MARGIN_MS} ms (agent timeout ${timeoutMs} ms + hub margin). Check the agent's log; the device may need a power cycle.`, run.sentAtMs));
  }

  private finishRunning(job: ActionJob, outcome: ActionOutcome): void {
    const run = job.running;
    if (!run) return;
    clearTimeout(run.deadline);
    job.running = null;
    this.d.channel().forget(job.id);
    this.d.scheduler.release(run.slot.key, job.id);
    let record: StoredAction | undefined;
    try {
      record = this.d.ledger.finished(job.id, outcome) ? recordOf(job, run.slot.host, run.slot.device, run.resource, outcome) : undefined;
    } catch (err) {
      // It ran and its outcome is known here: the caller gets it (an error would invite a retry that
      // runs it again); only the stored record lags, and the log says so.
      this.d.logger.error({ err, action_id: job.id, status: outcome.status }, "could not record the outcome of an action; its stored record still shows it unfinished");
      record = recordOf(job, run.slot.host, run.slot.device, run.resource, outcome);
    }
    if (outcome.durationMs !== null) this.avgDurationMs = this.avgDurationMs * 0.9 + outcome.durationMs * 0.1;
    const level = outcome.status === "failed" ? "warn" : "debug";
    if (this.d.logger.isLevelEnabled(level)) this.d.logger[level]({ action_id: job.id, host: run.slot.host, device: run.slot.device, status: outcome.status, error_code: outcome.error?.error_code, duration_ms: outcome.durationMs }, "action finished");
    if (record) this.d.bus.emit("action.ended", { record });
    this.settle(job, record);
    this.d.pump(false);
  }

  /**
   * Ends a job that never reached a device. A cancel resolves the request with the (canceled) record;
   * anything else (queue timeout, shutdown, the device became unusable) rejects it with the envelope,
   * as the same refusal would have at submission. The record is stored either way.
   */
  private endQueued(job: ActionJob, code: ErrorCode, message: string, retryAfter?: number): void {
    this.clearQueueTimer(job);
    const outcome = this.d.ledger.endedUnsent(job.id, code, message, retryAfter);
    const exact = job.admitted.exact;
    const record = outcome ? recordOf(job, exact?.host ?? null, exact?.device ?? null, job.admitted.exactResource, outcome) : undefined;
    this.d.logger.info({ action_id: job.id, error_code: code }, "action ended before reaching a device");
    if (code === "canceled") {
      if (record) this.d.bus.emit("action.ended", { record });
      this.settle(job, record);
      return;
    }
    this.jobs.delete(job.id);
    job.detachSignal();
    if (record) {
      this.d.bus.emit("action.ended", { record });
      this.announce(record);
    }
    job.reject(new LabrigError(code, message, { retryAfter, details: { action_id: job.id } }));
    job.markEnded();
  }

  private settle(job: ActionJob, record: StoredAction | undefined): void {
    this.jobs.delete(job.id);
    job.detachSignal();
    const stored = record ?? this.d.ledger.action(job.id);
    if (stored) {
      this.announce(stored);
      job.resolve(stored);
    } else {
      this.d.logger.error({ action_id: job.id }, "action record vanished while its request was waiting");
      job.reject(toLabrigError(new Error(`The record of action ${job.id} disappeared from the database; check the hub's data directory.`)));
    }
    job.markEnded();
  }

  /**
   * Takes back a job whose record could not be written: out of the queue, its attempt (if sent)
   * canceled and forgotten, so the agent's request to start it is declined and it never runs on the
   * device. Returns the error for its caller; the job is gone.
   */
  private withdraw(job: ActionJob, err: unknown): LabrigError {
    this.clearQueueTimer(job);
    this.d.scheduler.dequeue(job.id);
    const run = job.running;
    if (run) {
      clearTimeout(run.deadline);
      this.d.scheduler.release(run.slot.key, job.id);
      job.running = null;
    }
    const channel = this.d.channel();
    channel.cancel(job.id);
    channel.forget(job.id);
    this.d.ledger.forget(job.id);
    this.jobs.delete(job.id);
    job.detachSignal();
    const why = err instanceof Error ? err.message : String(err);
    this.d.logger.error({ action_id: job.id, err }, "could not record the action; withdrawn before it ran");
    return new LabrigError("internal_error", `The hub could not record action ${job.id} (${why}), so it was withdrawn before it ran. Check the disk and the log of the hub, then retry.`, { details: { action_id: job.id } });
  }

  /** The dashboard topic carries ActionRecordSchema, whose host/device are required: actions that never reached a device are not announced. */
  private announce(record: StoredAction): void {
    if (record.host !== null && record.device !== null && this.d.bus.has("action.finished")) this.d.bus.emit("action.finished", { ...record, host: record.host, device: record.device });
  }
}
