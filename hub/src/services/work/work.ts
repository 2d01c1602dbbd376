import { randomUUID } from "node:crypto";
import { LabrigError, actionTimeoutMs, makeEnvelope, resolveResource, toLabrigError, type ActionName, type ActionResult, type ErrorCode } from "@labrig/shared";
import type { HubBus } from "../../bus.js";
import type { Logger } from "../../logger.js";
import type { ActionOutcome, StoredAction } from "../../repositories/actions.js";
import type { LeaseBook } from "../lease-book.js";
import { admitAction, admitLease, refusal, type ActionSubmission, type AdmissionPorts, type AdmittedAction, type LeaseDemandInput } from "./admission.js";
import type { AgentChannel, ChannelPort } from "./agent-channel.js";
import type { ActionLedger } from "./ledger.js";
import { hubOutcome, outcomeOfResult } from "./outcome.js";
import type { Decision, DeviceSlot, Scheduler } from "./scheduler.js";

export type { ActionSubmission } from "./admission.js";

/** Extra time the hub waits beyond the agent's own timeout, so the agent's (better) error normally wins. */
export const HUB_DEADLINE_MARGIN_MS = 5000;

/** Priority of internal work (lease cleanup): ahead of everything an operator queued. */
export const INTERNAL_PRIORITY = Number.MAX_SAFE_INTEGER;

export interface WorkOptions {
  /** Base passed to actionTimeoutMs. */
  actionTimeoutMs: number;
  /** Used for retry_after when a host is offline. */
  heartbeatIntervalMs: number;
  /** Default time a request waits for a free device. */
  queueTimeoutMs: number;
  /** Most requests waiting at once. */
  queueMax: number;
  /** How long stop() lets running actions finish before failing them. */
  drainMs: number;
}

/** An action on its way: its id at once, its record when it has ended. */
export interface Submitted {
  id: string;
  /** Resolves with the record however the action ended on a device (or was canceled); rejects when it could not run at all. */
  done: Promise<StoredAction>;
}

/** A lease request for the scheduler: devices are granted all at once, and `grant` runs in the same turn. */
export interface Reservation<T> extends LeaseDemandInput {
  /** The id the lease will have (the scheduler holds the devices under it from the moment of the grant). */
  id: string;
  waitMs: number;
  /** Records the lease; what it returns resolves reserve(). A throw releases the devices again. */
  grant: (slots: readonly DeviceSlot[]) => T;
}

/** What REST, campaigns, leases and the planner use to run work on devices. */
export interface WorkFacade {
  /** Validates and queues an action; throws at once what refuses it. Aborting `signal` cancels it, queued or running. */
  submit(sub: ActionSubmission, options?: { signal?: AbortSignal | undefined }): Submitted;
  /** Cancels a queued or running action; settles once it has ended. A finished or unknown one throws. */
  cancel(id: string, by: string | null): { ended: Promise<void> };
  /** Waits (up to waitMs) for free devices and grants them to a lease; aborting `signal` withdraws the request. */
  reserve<T>(request: Reservation<T>, options?: { signal?: AbortSignal | undefined }): Promise<T>;
  /** A lease now holds these devices (loaded at start), or holds nothing any more. */
  holdLease(id: string, devices: readonly { host: string; device: string }[]): void;
  releaseLease(id: string): void;
  /** Running + waiting actions of a device. */
  loadOf(host: string, device: string): number;
  readonly queueLength: number;
  readonly runningCount: number;
}

interface Running {
  slot: DeviceSlot;
  attempt: number;
  sentAtMs: number;
  deadline: NodeJS.Timeout;
}

interface ActionJob {
  readonly kind: "action";
  readonly id: string;
  readonly admitted: AdmittedAction;
  readonly priority: number;
  readonly queueTimeoutMs: number;
  attempt: number;
  queueTimer: NodeJS.Timeout | null;
  running: Running | null;
  cancelRequested: boolean;
  resolve: (record: StoredAction) => void;
  reject: (err: LabrigError) => void;
  ended: Promise<void>;
  markEnded: () => void;
  detachSignal: () => void;
}

interface LeaseJob {
  readonly kind: "lease";
  readonly id: string;
  timer: NodeJS.Timeout | null;
  grant: (slots: readonly DeviceSlot[]) => void;
  fail: (err: LabrigError) => void;
}

/**
 * The work unit: the scheduler's decisions carried out. Admits submissions (nothing written before
 * every check passed), records each state change in the action ledger, sends and takes back attempts
 * through the agent channel, owns the timers (queue timeouts, deadlines) and drains on stop. Facts
 * reach it from the bus (presence, links, hellos, health) and from the lease unit.
 */
export class WorkService implements WorkFacade, ChannelPort {
  private readonly jobs = new Map<string, ActionJob>();
  private readonly leaseJobs = new Map<string, LeaseJob>();
  private readonly online = new Set<string>();
  private readonly helloDone = new Set<string>();
  private readonly unsubscribe: (() => void)[] = [];
  private accepting = false;
  private pumping = false;
  private pumpAgain = false;
  private pumpFull = false;
  /** Moving average of action durations, for retry_after estimates. */
  private avgDurationMs = 100;
  private channel: AgentChannel | null = null;
  private readonly admission: AdmissionPorts;

  constructor(
    private readonly scheduler: Scheduler,
    private readonly ledger: ActionLedger,
    private readonly leases: LeaseBook,
    private readonly fleet: { loadAll(): void; reloadHost(host: string): "reloaded" | "unknown_host"; onlineHosts(): string[] },
    private readonly bus: HubBus,
    private readonly options: WorkOptions,
    private readonly logger: Logger,
  ) {
    this.admission = {
      scheduler,
      leases,
      reload: (host) => fleet.reloadHost(host),
      offlineRetryAfterS: Math.max(1, Math.ceil(options.heartbeatIntervalMs / 1000)),
    };
  }

  /** The channel is built over this unit (it reports back through ChannelPort), so it is attached after construction. */
  attachChannel(channel: AgentChannel): void {
    this.channel = channel;
  }

  private get wire(): AgentChannel {
    if (!this.channel) throw new Error("the work unit has no agent channel attached");
    return this.channel;
  }

  start(): void {
    const abandoned = this.ledger.abandonUnfinished(
      makeEnvelope("shutting_down", "The hub stopped before this action finished; its outcome on the device is unknown. Check the device and retry."),
    );
    if (abandoned > 0) this.logger.warn({ actions: abandoned }, "actions a previous hub process left unfinished were marked failed");
    this.fleet.loadAll();
    for (const host of this.fleet.onlineHosts()) this.online.add(host);
    this.unsubscribe.push(
      this.bus.on("host.state", (e) => {
        if (e.state === "online") this.online.add(e.host);
        else this.online.delete(e.host);
        this.reach(e.host);
      }),
      this.bus.on("agent.link", (e) => {
        if (!e.up && e.replaced) return;
        this.helloDone.delete(e.host);
        this.reach(e.host);
      }),
      this.bus.on("agent.hello", (e) => {
        this.helloDone.add(e.host);
        this.reach(e.host);
      }),
      this.bus.on("host.devices", (e) => {
        this.fleet.reloadHost(e.host);
        this.pump(true);
      }),
      this.bus.on("device.health", (e) => {
        this.scheduler.setHealth(`${e.host}/${e.device}`, e.health, e.reason);
        this.pump(true);
      }),
    );
    this.accepting = true;
  }

  /**
   * Drains: refuses new work (`shutting_down`, recoverable, with retry_after), fails what waits in the
   * queue, lets running actions finish for up to drainMs, then fails what still runs.
   */
  async stop(): Promise<void> {
    if (!this.accepting && this.jobs.size === 0) return;
    this.accepting = false;
    const queuedMessage = "The hub is restarting; the action never reached a device. Retry once the hub is back.";
    for (const request of this.scheduler.queued()) {
      this.scheduler.dequeue(request.id);
      if (request.kind === "lease") this.leaseJobs.get(request.id)?.fail(new LabrigError("shutting_down", "The hub is restarting; retry the lease once it is back.", { retryAfter: 5 }));
      else {
        const job = this.jobs.get(request.id);
        if (job) this.endQueued(job, "shutting_down", queuedMessage, 5);
      }
    }
    const running = [...this.jobs.values()].filter((j) => j.running !== null);
    if (running.length > 0) {
      this.logger.info({ running: running.length, drain_ms: this.options.drainMs }, "draining: waiting for running actions to finish");
      const deadline = Date.now() + this.options.drainMs;
      while (Date.now() < deadline && [...this.jobs.values()].some((j) => j.running !== null)) await new Promise((r) => setTimeout(r, 20));
    }
    for (const job of [...this.jobs.values()]) {
      if (job.running) {
        this.wire.cancel(job.id);
        this.finishRunning(job, hubOutcome("shutting_down", "The hub shut down while the action was running; its outcome on the device is unknown. Check the device and retry once the hub is back.", job.running.sentAtMs));
      }
    }
    for (const off of this.unsubscribe.splice(0)) off();
  }

  get queueLength(): number {
    return this.scheduler.queueLength;
  }

  get runningCount(): number {
    return this.wire.inFlight;
  }

  get isAccepting(): boolean {
    return this.accepting;
  }

  loadOf(host: string, device: string): number {
    return this.scheduler.loadOf(`${host}/${device}`);
  }

  // ---- the facade -------------------------------------------------------------------------

  submit(sub: ActionSubmission, options: { signal?: AbortSignal | undefined } = {}): Submitted {
    this.refuseWhenStopping();
    const admitted = admitAction(this.admission, sub);
    this.checkQueueRoom();
    const signal = options.signal;
    if (signal?.aborted) throw toLabrigError(signal.reason);
    const id = randomUUID();
    let markEnded: () => void = () => undefined;
    const ended = new Promise<void>((r) => (markEnded = r));
    let resolve!: (record: StoredAction) => void;
    let reject!: (err: LabrigError) => void;
    const done = new Promise<StoredAction>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    const job: ActionJob = {
      kind: "action",
      id,
      admitted,
      priority: sub.internal ? INTERNAL_PRIORITY : (sub.priority ?? 0),
      queueTimeoutMs: sub.queueTimeoutMs ?? this.options.queueTimeoutMs,
      attempt: 0,
      queueTimer: null,
      running: null,
      cancelRequested: false,
      resolve,
      reject,
      ended,
      markEnded,
      detachSignal: () => undefined,
    };
    // One commit for the record and, when a device is free, the dispatch that follows at once.
    this.ledger.commit(() => {
      this.ledger.queued({
        id,
        host: admitted.exact?.host ?? null,
        device: admitted.exact?.device ?? null,
        action: admitted.action,
        resource: admitted.exactResource,
        params: admitted.params,
        target: admitted.exact ?? { selector: admitted.selector as NonNullable<AdmittedAction["selector"]> },
        priority: job.priority,
        leaseId: admitted.lease?.id ?? null,
        requestedBy: sub.requestedBy,
        queuedAt: new Date().toISOString(),
      });
      this.jobs.set(id, job);
      this.enqueue(job);
      this.pump(false);
    });
    if (this.scheduler.has(id) && job.queueTimeoutMs === 0) this.onQueueTimeout(job);
    if (signal && this.jobs.has(id)) {
      const onAbort = (): void => {
        if (!this.jobs.has(id)) return;
        this.cancelJob(job, "its requester stopped waiting");
      };
      signal.addEventListener("abort", onAbort, { once: true });
      job.detachSignal = () => signal.removeEventListener("abort", onAbort);
    }
    return { id, done };
  }

  cancel(id: string, by: string | null): { ended: Promise<void> } {
    const job = this.jobs.get(id);
    if (!job) {
      const record = this.ledger.action(id);
      if (!record) throw new LabrigError("not_found", `No action '${id}'.`);
      throw new LabrigError("conflict", `Action ${id} already ended (${record.status} at ${record.finished_at ?? "?"}); there is nothing to cancel.`);
    }
    this.cancelJob(job, by === null ? "" : `by ${by}`);
    return { ended: job.ended };
  }

  reserve<T>(request: Reservation<T>, options: { signal?: AbortSignal | undefined } = {}): Promise<T> {
    try {
      this.refuseWhenStopping();
    } catch (err) {
      return Promise.reject(err);
    }
    const demand = admitLease(this.admission, request);
    this.checkQueueRoom();
    const signal = options.signal;
    return new Promise<T>((resolve, reject) => {
      if (signal?.aborted) {
        reject(toLabrigError(signal.reason));
        return;
      }
      const onAbort = (): void => {
        if (!this.scheduler.dequeue(request.id)) return;
        this.endLeaseJob(job);
        reject(toLabrigError(signal?.reason));
      };
      const job: LeaseJob = {
        kind: "lease",
        id: request.id,
        timer: null,
        grant: (slots) => {
          signal?.removeEventListener("abort", onAbort);
          try {
            resolve(request.grant(slots));
          } catch (err) {
            this.scheduler.releaseLease(request.id);
            reject(err instanceof LabrigError ? err : new LabrigError("internal_error", `Could not record the lease: ${(err as Error).message}`, { cause: err }));
          }
        },
        fail: (err) => {
          signal?.removeEventListener("abort", onAbort);
          this.endLeaseJob(job);
          reject(err);
        },
      };
      this.leaseJobs.set(request.id, job);
      this.scheduler.enqueue({ kind: "lease", id: request.id, priority: 0, demand, count: request.count });
      signal?.addEventListener("abort", onAbort, { once: true });
      if (request.waitMs > 0) {
        job.timer = setTimeout(() => this.onLeaseTimeout(job, request), request.waitMs);
        job.timer.unref();
      }
      this.pump(false);
      if (request.waitMs === 0 && this.scheduler.has(request.id)) this.onLeaseTimeout(job, request);
    });
  }

  holdLease(id: string, devices: readonly { host: string; device: string }[]): void {
    this.scheduler.holdLease(
      id,
      devices.map((d) => `${d.host}/${d.device}`),
    );
    this.pump(true);
  }

  releaseLease(id: string): void {
    this.scheduler.releaseLease(id);
    this.pump(true);
  }

  // ---- the channel's reports --------------------------------------------------------------

  starting(actionId: string, attempt: number, at: string): boolean {
    const job = this.jobs.get(actionId);
    if (!job?.running || job.running.attempt !== attempt || job.cancelRequested) return false;
    this.ledger.started(actionId, at);
    return true;
  }

  finished(actionId: string, result: ActionResult): void {
    const job = this.jobs.get(actionId);
    if (!job?.running) return;
    const { outcome, invalid } = outcomeOfResult(job.admitted.action, result);
    if (invalid !== null) this.logger.warn({ action_id: actionId, host: result.host, problem: invalid }, "agent returned a result that does not match the catalogue");
    // One commit for the outcome and the dispatch of whatever the freed device takes next.
    this.ledger.commit(() => this.finishRunning(job, outcome));
  }

  late(actionId: string, result: ActionResult): void {
    // An earlier attempt (re-dispatched, canceled before start, timed out) or a past hub process: the record already ended.
    const known = this.ledger.action(actionId) !== undefined;
    this.logger.debug({ action_id: actionId, wire_id: result.id, known }, "late action result acknowledged without change");
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
    this.scheduler.release(run.slot.key, job.id);
    job.running = null;
    this.ledger.requeued(job.id, job.admitted.exact);
    this.logger.warn({ action_id: job.id, host: run.slot.host, device: run.slot.device, attempt, reason }, "host lost before the action started; re-queued");
    this.enqueue(job);
    this.pump(true);
  }

  // ---- internals --------------------------------------------------------------------------

  private refuseWhenStopping(): void {
    if (!this.accepting) throw new LabrigError("shutting_down", "The hub is restarting and takes no new work; retry in a few seconds.", { retryAfter: 5 });
  }

  private checkQueueRoom(): void {
    if (this.scheduler.queueLength >= this.options.queueMax) {
      throw new LabrigError("no_device_available", `The dispatch queue is full (${this.options.queueMax} waiting requests); retry later.`, { retryAfter: this.retryAfterS() });
    }
  }

  /** Whether the host can be given work: online, and its live connection's hello done. */
  private reach(host: string): void {
    const reachable = this.online.has(host) && this.helloDone.has(host);
    if (reachable === this.scheduler.isReachable(host)) return;
    this.scheduler.setReachable(host, reachable);
    this.pump(true);
  }

  private enqueue(job: ActionJob): void {
    this.scheduler.enqueue({ kind: "action", id: job.id, priority: job.priority, demand: job.admitted.demand });
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
    if (this.scheduler.dequeue(job.id)) {
      this.endQueued(job, "canceled", `Canceled${by} while waiting for a device; it never ran.`);
      return;
    }
    const run = job.running;
    if (!run) return;
    this.wire.cancel(job.id);
    if (!this.wire.isStarted(job.id)) {
      // The agent asks before it starts and will be told no: the action ends here and never runs.
      this.finishRunning(job, hubOutcome("canceled", `Canceled${by} before it started on the device; it never ran.`, run.sentAtMs));
      return;
    }
    job.cancelRequested = true;
    this.logger.info({ action_id: job.id, host: run.slot.host, device: run.slot.device }, "cancel sent to the agent");
  }

  private onQueueTimeout(job: ActionJob): void {
    if (!this.scheduler.dequeue(job.id)) return;
    const where = job.admitted.exact ? `device ${job.admitted.exact.host}/${job.admitted.exact.device}` : `a device matching ${JSON.stringify(job.admitted.selector)}`;
    this.endQueued(job, "no_device_available", `No free ${where} within ${job.queueTimeoutMs} ms: all are busy, leased, offline or not good. Retry later, or raise queue_timeout_ms.`, this.retryAfterS());
  }

  private onLeaseTimeout(job: LeaseJob, request: Reservation<unknown>): void {
    if (!this.scheduler.dequeue(job.id)) return;
    const target = "host" in request.target ? `device ${request.target.host}/${request.target.device}` : `a device matching ${JSON.stringify(request.target.selector)}`;
    const holder = "host" in request.target ? this.leases.forDevice(`${request.target.host}/${request.target.device}`) : undefined;
    const held = holder ? ` It is leased to '${holder.owner}' until ${new Date(holder.expiresAtMs).toISOString()}.` : "";
    job.fail(new LabrigError("no_device_available", `Not enough free devices for a lease of ${request.count} × ${target} (online, good and not leased).${held} Retry later, or wait longer in the queue.`, { retryAfter: this.retryAfterS() }));
  }

  private endLeaseJob(job: LeaseJob): void {
    if (job.timer) clearTimeout(job.timer);
    job.timer = null;
    this.leaseJobs.delete(job.id);
  }

  private pump(full: boolean): void {
    if (!this.accepting && this.jobs.size === 0 && this.leaseJobs.size === 0) return;
    if (this.pumping) {
      // Re-entered from a grant or a synchronous failure: run again once the current pass ends.
      this.pumpAgain = true;
      this.pumpFull ||= full;
      return;
    }
    this.pumping = true;
    try {
      let pass = full;
      do {
        this.pumpAgain = false;
        for (const decision of this.scheduler.schedule(pass)) this.apply(decision);
        pass = this.pumpFull;
        this.pumpFull = false;
      } while (this.pumpAgain);
    } catch (err) {
      this.logger.error({ err }, "dispatch pass failed; the queue is re-evaluated at the next event");
    } finally {
      this.pumping = false;
    }
  }

  private apply(decision: Decision): void {
    if (decision.kind === "grant") {
      const job = this.leaseJobs.get(decision.id);
      if (!job) return;
      this.endLeaseJob(job);
      job.grant(decision.slots);
      return;
    }
    if (decision.kind === "refuse") {
      const lease = this.leaseJobs.get(decision.id);
      const slot = this.scheduler.slot(decision.key);
      const error = slot ? refusal(this.admission, slot, decision.reason) : new LabrigError("unknown_device", `Device ${decision.key} left the registry (its agent no longer reports it) while the request waited.`);
      if (lease) lease.fail(error);
      const job = this.jobs.get(decision.id);
      if (job) this.endQueued(job, error.code, error.message, error.retryAfter);
      return;
    }
    const job = this.jobs.get(decision.id);
    if (job) this.send(job, decision.slot);
  }

  private send(job: ActionJob, slot: DeviceSlot): void {
    this.clearQueueTimer(job);
    const a = job.admitted;
    const resource = a.exact ? a.exactResource : resolveResource(a.action, slot.resources, a.requested);
    const timeoutMs = actionTimeoutMs(a.action, a.params, this.options.actionTimeoutMs);
    job.attempt += 1;
    const sent = this.wire.send({ actionId: job.id, attempt: job.attempt, host: slot.host, device: slot.device, action: a.action, resource, params: a.params, timeoutMs });
    if (!sent) {
      // The scheduler thought the host reachable a moment ago; keep the job rather than lose it.
      job.attempt -= 1;
      this.scheduler.release(slot.key, job.id);
      this.enqueue(job);
      return;
    }
    const deadline = setTimeout(() => this.onDeadline(job, timeoutMs), timeoutMs + HUB_DEADLINE_MARGIN_MS);
    job.running = { slot, attempt: job.attempt, sentAtMs: Date.now(), deadline };
    this.ledger.dispatched(job.id, slot, resource);
    // Guarded: building the fields costs more than the disabled call itself, once per action.
    if (this.logger.isLevelEnabled("debug")) this.logger.debug({ action_id: job.id, attempt: job.attempt, host: slot.host, device: slot.device, action: a.action, resource, timeout_ms: timeoutMs }, "action sent");
  }

  private onDeadline(job: ActionJob, timeoutMs: number): void {
    const run = job.running;
    if (!run) return;
    // The agent should have given up already; tell it again so a stuck action does not hold the device.
    this.wire.cancel(job.id);
    this.finishRunning(job, hubOutcome("action_timeout", `No result from host '${run.slot.host}' within ${timeoutMs + HUB_DEADLINE_MARGIN_MS} ms (agent timeout ${timeoutMs} ms + hub margin). Check the agent's log; the device may need a power cycle.`, run.sentAtMs));
  }

  private finishRunning(job: ActionJob, outcome: ActionOutcome): void {
    const run = job.running;
    if (!run) return;
    clearTimeout(run.deadline);
    job.running = null;
    this.wire.forget(job.id);
    this.scheduler.release(run.slot.key, job.id);
    const record = this.ledger.finished(job.id, outcome);
    if (outcome.durationMs !== null) this.avgDurationMs = this.avgDurationMs * 0.9 + outcome.durationMs * 0.1;
    const level = outcome.status === "failed" ? "warn" : "debug";
    if (this.logger.isLevelEnabled(level)) this.logger[level]({ action_id: job.id, host: run.slot.host, device: run.slot.device, status: outcome.status, error_code: outcome.error?.error_code, duration_ms: outcome.durationMs }, "action finished");
    if (record) this.bus.emit("action.ended", { record, host: run.slot.host, device: run.slot.device });
    this.settle(job, record);
    this.pump(false);
  }

  /**
   * Ends a job that never reached a device. A cancel resolves the request with the (canceled) record;
   * anything else (queue timeout, shutdown, the device became unusable) rejects it with the envelope,
   * as the same refusal would have at submission. The record is stored either way.
   */
  private endQueued(job: ActionJob, code: ErrorCode, message: string, retryAfter?: number): void {
    this.clearQueueTimer(job);
    const record = this.ledger.endedUnsent(job.id, code, message, retryAfter);
    this.logger.info({ action_id: job.id, error_code: code }, "action ended before reaching a device");
    if (code === "canceled") {
      this.settle(job, record);
      return;
    }
    this.jobs.delete(job.id);
    job.detachSignal();
    if (record) this.announce(record);
    job.reject(new LabrigError(code, message, { retryAfter, details: { action_id: job.id } }));
    job.markEnded();
  }

  private settle(job: ActionJob, record: StoredAction | undefined): void {
    this.jobs.delete(job.id);
    job.detachSignal();
    const stored = record ?? this.ledger.action(job.id);
    if (stored) {
      this.announce(stored);
      job.resolve(stored);
    } else {
      this.logger.error({ action_id: job.id }, "action record vanished while its request was waiting");
      job.reject(new LabrigError("internal_error", `The record of action ${job.id} disappeared from the database; check the hub's data directory.`));
    }
    job.markEnded();
  }

  /** The dashboard topic carries ActionRecordSchema, whose host/device are required: actions that never reached a device are not announced. */
  private announce(record: StoredAction): void {
    if (record.host !== null && record.device !== null && this.bus.has("action.finished")) this.bus.emit("action.finished", { ...record, host: record.host, device: record.device });
  }

  /** Seconds a caller might wait before retrying: about the time the queue ahead needs to drain, 1–5 s. */
  private retryAfterS(): number {
    let devices = 0;
    for (const s of this.scheduler.devices()) if (s.health === "good" && this.scheduler.isReachable(s.host)) devices += 1;
    const estimate = (this.avgDurationMs * (1 + this.scheduler.queueLength / Math.max(1, devices))) / 1000;
    return Math.min(5, Math.max(1, Math.ceil(estimate)));
  }

}
