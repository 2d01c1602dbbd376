import { randomUUID } from "node:crypto";
import { performance } from "node:perf_hooks";
import {
  ACTIONS,
  LabrigError,
  actionTimeoutMs,
  canRunOn,
  getAction,
  makeEnvelope,
  nowIso,
  parseActionParams,
  parseActionResult,
  resolveResource,
  type ActionCancel,
  type ActionName,
  type ActionRequest,
  type ActionResult,
  type ActionStarted,
  type ErrorCode,
} from "@labrig/shared";
import type { Logger } from "../logger.js";
import type { AgentConnections } from "../realtime/agent-connections.js";
import type { ActionOutcome, ActionTarget, ActionsRepository, StoredAction } from "../repositories/actions.js";
import type { HostsRepository } from "../repositories/hosts.js";
import type { DeviceHealthService } from "./device-health.js";
import { deviceKey, type DeviceSlot, type Fleet } from "./fleet.js";
import type { ActiveLease, LeaseBook } from "./lease-book.js";
import type { Selector } from "./requests.js";
import type { HubEvents } from "./hub-events.js";

/** Extra time the hub waits beyond the agent's own timeout, so the agent's (better) error normally wins. */
export const HUB_DEADLINE_MARGIN_MS = 5000;

/** Priority of internal work (lease cleanup): ahead of everything an operator queued. */
export const INTERNAL_PRIORITY = Number.MAX_SAFE_INTEGER;

export interface DispatcherOptions {
  /** Base passed to actionTimeoutMs. */
  actionTimeoutMs: number;
  /** Used for retry_after when a host is offline. */
  heartbeatIntervalMs: number;
  /** Default time a request waits for a free device. */
  queueTimeoutMs: number;
  /** Most requests waiting at once. */
  queueMax: number;
}

/** What to run and where; already shape-checked by the API layer. */
export interface ActionSubmission {
  action: string;
  resource?: string | undefined;
  params: Record<string, unknown>;
  target: ActionTarget;
  leaseToken?: string | undefined;
  priority: number;
  queueTimeoutMs?: number | undefined;
  requestedBy: string | null;
  /** Hub-internal work (lease cleanup): runs whatever the device's health, and waits for an offline host. */
  internal?: boolean;
}

export interface LeaseSubmission<T> {
  target: ActionTarget;
  count: number;
  waitMs: number;
  /** The cleanup action every leased device must be able to run, if any. */
  cleanup: { action: ActionName; resource: string | null } | null;
  /** Called inside the dispatcher when enough devices are free; what it returns resolves submitLease. */
  grant: (slots: DeviceSlot[]) => T;
}

/** What became of an `action.result` an agent delivered. */
export type ResultDisposition = "finished" | "duplicate" | "unknown" | "wrong_host";

interface Running {
  slot: DeviceSlot;
  wireId: string;
  resource: string | null;
  /** The agent confirmed the start (action.started): from here on a lost host means `host_lost`, never a re-dispatch. */
  started: boolean;
  sentAtMs: number;
  deadline: NodeJS.Timeout;
}

interface JobBase {
  seq: number;
  priority: number;
  timer: NodeJS.Timeout | null;
  queued: boolean;
}

interface ActionJob extends JobBase {
  kind: "action";
  id: string;
  action: ActionName;
  requestedResource: string | null;
  /** Resolved once for exact targets; per device for selectors. */
  exactResource: string | null;
  params: Record<string, unknown>;
  exact: { host: string; device: string } | null;
  selector: Selector | null;
  leaseId: string | null;
  internal: boolean;
  queueTimeoutMs: number;
  attempt: number;
  running: Running | null;
  cancelRequested: boolean;
  resolve: (record: StoredAction) => void;
  reject: (err: LabrigError) => void;
  /** Settles (never rejects) when the job has ended one way or the other. */
  ended: Promise<void>;
  markEnded: () => void;
}

interface LeaseJob extends JobBase {
  kind: "lease";
  exact: { host: string; device: string } | null;
  selector: Selector | null;
  count: number;
  cleanup: { action: ActionName; resource: string | null } | null;
  grant: (slots: DeviceSlot[]) => void;
  fail: (err: LabrigError) => void;
}

type Job = ActionJob | LeaseJob;

function isoOr(value: string, fallback: string): string {
  return Number.isNaN(Date.parse(value)) ? fallback : value;
}

export function matchesSelector(slot: DeviceSlot, selector: Selector): boolean {
  for (const c of selector.capabilities) if (!slot.capabilities.includes(c)) return false;
  for (const [k, v] of Object.entries(selector.labels)) if (slot.labels[k] !== v) return false;
  return true;
}

function describeSelector(selector: Selector): string {
  return JSON.stringify({ capabilities: selector.capabilities, labels: selector.labels });
}

/**
 * Routing, queueing and failover. Every action goes through here: it picks an online, good,
 * matching device that no one else holds (least loaded, then least recently used), sends at most
 * one action at a time per device, queues what cannot run yet (priority, then age), re-dispatches an
 * action whose host vanished before it started, and fails one that had started with `host_lost`.
 */
export class Dispatcher {
  /** Waiting jobs, sorted by priority (high first) then arrival. */
  private readonly queue: Job[] = [];
  /** Sent actions by the id on the wire (the action id, or `id~attempt` after a re-dispatch). */
  private readonly inflight = new Map<string, ActionJob>();
  /** Every unfinished action job by action id (queued or in flight). */
  private readonly jobs = new Map<string, ActionJob>();
  private seq = 0;
  private leaseJobs = 0;
  private stopping = true;
  private pumping = false;
  private pumpAgain = false;
  private pumpFull = false;
  /** Moving average of action durations, for retry_after estimates. */
  private avgDurationMs = 100;
  private readonly finishedListeners: ((record: StoredAction) => void)[] = [];

  constructor(
    private readonly fleet: Fleet,
    private readonly hosts: HostsRepository,
    private readonly actions: ActionsRepository,
    private readonly agents: AgentConnections,
    private readonly health: DeviceHealthService,
    private readonly leases: LeaseBook,
    private readonly options: DispatcherOptions,
    private readonly logger: Logger,
    private readonly bus?: HubEvents,
  ) {}

  start(): void {
    this.stopping = false;
    const failed = this.actions.failUnfinished(
      makeEnvelope("shutting_down", "The hub stopped before this action finished; its outcome on the device is unknown. Check the device and retry."),
      nowIso(),
    );
    if (failed > 0) this.logger.warn({ actions: failed }, "actions a previous hub process left unfinished were marked failed");
  }

  /** Fails everything waiting or running with `shutting_down`; new requests are refused from now on. */
  stop(): void {
    this.stopping = true;
    const message = "The hub shut down before the request finished; retry once the hub is back.";
    for (const job of [...this.queue]) {
      this.dequeue(job);
      if (job.kind === "lease") job.fail(new LabrigError("shutting_down", message, { retryAfter: 5 }));
      else this.finishQueued(job, "shutting_down", message, 5);
    }
    for (const job of [...this.inflight.values()]) {
      this.finishRunning(job, this.hubFailure(job, "shutting_down", "The hub shut down while the action was running; its outcome on the device is unknown. Check the device and retry once the hub is back."));
    }
  }

  /** Calls `listener` with the record of every action that ends, however it ends (the dashboard's `action.finished`). */
  onFinished(listener: (record: StoredAction) => void): void {
    this.finishedListeners.push(listener);
  }

  get queueLength(): number {
    return this.queue.length;
  }

  get pendingCount(): number {
    return this.inflight.size;
  }

  /** Load of a device as GET /api/hosts shows it: running + waiting for it. */
  loadOf(host: string, device: string): number {
    const slot = this.fleet.get(host, device);
    return slot ? (slot.runningId === null ? 0 : 1) + slot.waiting : 0;
  }

  // ---- submissions -------------------------------------------------------------------------

  /**
   * Validates and runs one action, resolving with its record once it has finished (or failed on
   * the hub). Every check that can refuse the request runs before anything is written.
   */
  async submitAction(sub: ActionSubmission): Promise<StoredAction> {
    if (this.stopping) throw new LabrigError("shutting_down", "The hub is shutting down; retry in a few seconds.", { retryAfter: 5 });
    getAction(sub.action);
    const action = sub.action as ActionName;
    const params = parseActionParams(action, sub.params);
    const requested = sub.resource ?? null;
    const internal = sub.internal === true;
    let lease: ActiveLease | undefined;
    if (sub.leaseToken !== undefined) {
      lease = this.leases.byToken(sub.leaseToken);
      if (!lease) throw new LabrigError("lease_required", "No active lease has this lease_token (it expired or was released). Take a new lease with POST /api/leases.");
    }

    let exact: { host: string; device: string } | null = null;
    let selector: Selector | null = null;
    let exactResource: string | null = null;
    if ("host" in sub.target) {
      exact = { host: sub.target.host, device: sub.target.device };
      const slot = this.exactSlot(exact.host, exact.device);
      exactResource = resolveResource(action, slot.resources, requested);
      if (!internal) {
        const refusal = this.exactRefusal(slot, lease?.id ?? null);
        if (refusal) throw refusal;
        if (!this.reachable(slot.host)) {
          const host = this.hosts.get(slot.host);
          throw new LabrigError(
            "host_offline",
            `Host '${slot.host}' is offline (last seen ${host?.lastSeen ?? "never"}). Check its agent (systemctl status labrig-agent) and retry.`,
            { retryAfter: Math.max(1, Math.ceil(this.options.heartbeatIntervalMs / 1000)) },
          );
        }
      }
    } else {
      selector = sub.target.selector;
      const sel = selector;
      const any = [...this.fleet.all()].some((s) => matchesSelector(s, sel) && canRunOn(action, s.resources, requested));
      if (!any) {
        throw new LabrigError(
          "unknown_device",
          `No device matches selector ${describeSelector(sel)} and can run ${action}${requested ? ` on a resource named '${requested}'` : ""}. GET /api/hosts lists devices with their labels, capabilities and resources.`,
        );
      }
    }
    this.checkQueueRoom();

    const id = randomUUID();
    let markEnded: () => void = () => undefined;
    const ended = new Promise<void>((r) => (markEnded = r));
    return new Promise<StoredAction>((resolve, reject) => {
      const job: ActionJob = {
        kind: "action",
        seq: ++this.seq,
        priority: sub.priority,
        timer: null,
        queued: false,
        id,
        action,
        requestedResource: requested,
        exactResource,
        params,
        exact,
        selector,
        leaseId: lease?.id ?? null,
        internal,
        queueTimeoutMs: sub.queueTimeoutMs ?? this.options.queueTimeoutMs,
        attempt: 0,
        running: null,
        cancelRequested: false,
        resolve,
        reject,
        ended,
        markEnded,
      };
      // One commit for the record and, when a device is free, the dispatch that follows at once.
      // A failing insert throws before the job exists, which rejects the request as before.
      this.actions.groupCommit(() => {
        this.actions.insert({
          id,
          host: exact?.host ?? null,
          device: exact?.device ?? null,
          action,
          resource: exactResource,
          params,
          target: exact ?? { selector: selector as Selector },
          priority: sub.priority,
          leaseId: lease?.id ?? null,
          requestedBy: sub.requestedBy,
          queuedAt: nowIso(),
        });
        this.jobs.set(id, job);
        this.bus?.emit("action.queued", { id, action, status: "queued", host: exact?.host ?? null, device: exact?.device ?? null, resource: exactResource, requested_by: sub.requestedBy, at: nowIso() }); // dashboard hook
        this.enqueue(job);
        this.pump(false);
        if (job.queued && job.queueTimeoutMs === 0) this.onQueueTimeout(job);
      });
    });
  }

  /** Reserves `count` free matching devices (all or nothing), waiting up to waitMs; resolves with what grant returns. */
  submitLease<T>(sub: LeaseSubmission<T>): Promise<T> {
    if (this.stopping) return Promise.reject(new LabrigError("shutting_down", "The hub is shutting down; retry in a few seconds.", { retryAfter: 5 }));
    let exact: { host: string; device: string } | null = null;
    let selector: Selector | null = null;
    const cleanup = sub.cleanup;
    const runsCleanup = (s: DeviceSlot): boolean => cleanup === null || canRunOn(cleanup.action, s.resources, cleanup.resource);
    if ("host" in sub.target) {
      exact = { host: sub.target.host, device: sub.target.device };
      if (sub.count !== 1) throw new LabrigError("validation_failed", "Invalid lease request: count: an exact target is one device, so count must be 1 (or use a selector).");
      const slot = this.exactSlot(exact.host, exact.device);
      if (cleanup) resolveResource(cleanup.action, slot.resources, cleanup.resource);
      if (slot.health !== "good") throw this.unhealthy(slot);
    } else {
      selector = sub.target.selector;
      const sel = selector;
      const matching = [...this.fleet.all()].filter((s) => matchesSelector(s, sel) && runsCleanup(s)).length;
      if (matching < sub.count) {
        throw new LabrigError(
          "unknown_device",
          `Only ${matching} device(s) match selector ${describeSelector(sel)}${cleanup ? ` and can run the cleanup ${cleanup.action}` : ""}, fewer than count ${sub.count}. GET /api/hosts lists devices with their labels and capabilities.`,
        );
      }
    }
    this.checkQueueRoom();
    return new Promise<T>((resolve, reject) => {
      const job: LeaseJob = {
        kind: "lease",
        seq: ++this.seq,
        priority: 0,
        timer: null,
        queued: false,
        exact,
        selector,
        count: sub.count,
        cleanup,
        grant: (slots) => resolve(sub.grant(slots)),
        fail: reject,
      };
      this.enqueue(job, sub.waitMs);
      this.pump(false);
      if (job.queued && sub.waitMs === 0) this.onQueueTimeout(job);
    });
  }

  // ---- cancel -----------------------------------------------------------------------------

  /**
   * Cancels a queued action (removed from the queue, canceled at once) or a running one (the agent
   * is told to abort; the record ends `canceled` when it answers). Returns a promise that settles
   * when the action has ended. Finished actions are a 409 conflict.
   */
  cancel(id: string, by: string | null): { ended: Promise<void> } {
    const job = this.jobs.get(id);
    if (!job) {
      const record = this.actions.get(id);
      if (!record) throw new LabrigError("not_found", `No action '${id}'. GET /api/actions lists recent actions.`);
      throw new LabrigError("conflict", `Action ${id} already ended (${record.status} at ${record.finished_at ?? "?"}); there is nothing to cancel.`);
    }
    const who = by === null ? "" : ` by ${by}`;
    if (job.queued) {
      this.dequeue(job);
      this.finishQueued(job, "canceled", `Canceled${who} while waiting for a device; it never ran.`);
      return { ended: job.ended };
    }
    const run = job.running;
    if (run) {
      const socket = this.agents.get(run.slot.host);
      socket?.emit("action.cancel", { id: run.wireId } satisfies ActionCancel);
      if (!run.started) {
        // The agent asks before it starts (action.started) and will be told no, so the action ends here and never runs.
        this.finishRunning(job, { ...this.hubFailure(job, "canceled", `Canceled${who} before it started on the device; it never ran.`), status: "canceled" });
      } else {
        job.cancelRequested = true;
        this.logger.info({ action_id: id, host: run.slot.host, device: run.slot.device }, "cancel sent to the agent");
      }
    }
    return { ended: job.ended };
  }

  // ---- agent events -----------------------------------------------------------------------

  /** The agent is about to start an action: true lets it run; false means the hub no longer wants it run. */
  handleStarted(fromHost: string, started: ActionStarted): boolean {
    const job = this.inflight.get(started.id);
    if (!job?.running || job.running.slot.host !== fromHost || job.running.slot.device !== started.device || job.cancelRequested) return false;
    if (!job.running.started) {
      job.running.started = true;
      this.actions.markStarted(job.id, isoOr(started.started_at, nowIso()));
      this.bus?.emit("action.running", { id: job.id, action: job.action, status: "running", host: fromHost, device: started.device, resource: job.running.resource, requested_by: null, at: isoOr(started.started_at, nowIso()) }); // dashboard hook
    }
    return true;
  }

  /** An agent delivered a result. Idempotent: the agent redelivers from its outbox after reconnects. */
  handleResult(fromHost: string, result: ActionResult): ResultDisposition {
    const job = this.inflight.get(result.id);
    if (job?.running) {
      if (job.running.slot.host !== fromHost) return "wrong_host";
      // One commit for the outcome and the dispatch of whatever the freed device takes next.
      this.actions.groupCommit(() => this.finishRunning(job, this.outcomeOf(job, result)));
      return "finished";
    }
    // A result of an earlier attempt (re-dispatched, canceled before start, or timed out) or of a past hub process.
    const record = this.actions.get(result.id.split("~")[0] ?? result.id);
    return record ? "duplicate" : "unknown";
  }

  /** The agent said hello: its device set may have changed. */
  hostHello(host: string): void {
    this.fleet.reloadHost(host);
  }

  /** Presence changed (registry listener). */
  hostPresence(host: string, online: boolean): void {
    this.fleet.setOnline(host, online);
    // Deferred: presence changes inside the hello handler, and the hello ack must reach the agent
    // before any action.request (an agent that has not seen its ack refuses to start work).
    if (online) setImmediate(() => this.pump(true));
  }

  /**
   * The host's live socket went away. Actions it had not started go back to the queue (another
   * device, or the same one when it returns); actions it had started fail with `host_lost`.
   */
  hostLost(host: string, reason: string): void {
    this.fleet.setOnline(host, false);
    for (const job of [...this.inflight.values()]) {
      const run = job.running;
      if (!run || run.slot.host !== host) continue;
      if (run.started) {
        this.finishRunning(
          job,
          this.hubFailure(job, "host_lost", `Lost the connection to host '${host}' (${reason}) while the action was running; its outcome on the device is unknown. Check the device and retry.`),
        );
        continue;
      }
      clearTimeout(run.deadline);
      this.inflight.delete(run.wireId);
      if (run.slot.runningId === job.id) run.slot.runningId = null;
      job.running = null;
      this.actions.markRequeued(job.id, job.exact?.host ?? null, job.exact?.device ?? null);
      this.logger.warn({ action_id: job.id, host, device: run.slot.device, attempt: job.attempt }, "host lost before the action started; re-queued for dispatch");
      this.enqueue(job);
    }
    this.pump(true);
  }

  /** Something freed devices or changed eligibility (health, lease ended): re-evaluate the whole queue. */
  kick(): void {
    this.pump(true);
  }

  // ---- queue ------------------------------------------------------------------------------

  private checkQueueRoom(): void {
    if (this.queue.length >= this.options.queueMax) {
      throw new LabrigError("no_device_available", `The dispatch queue is full (${this.options.queueMax} waiting requests; LABRIG_QUEUE_MAX). Retry later.`, {
        retryAfter: this.retryAfterS(),
      });
    }
  }

  private enqueue(job: Job, waitMs?: number): void {
    // Binary search for the first job that sorts after this one (lower priority, or same priority and newer).
    let lo = 0;
    let hi = this.queue.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const other = this.queue[mid] as Job;
      if (other.priority > job.priority || (other.priority === job.priority && other.seq < job.seq)) lo = mid + 1;
      else hi = mid;
    }
    this.queue.splice(lo, 0, job);
    job.queued = true;
    if (job.kind === "lease") this.leaseJobs += 1;
    else if (job.exact) {
      const slot = this.fleet.get(job.exact.host, job.exact.device);
      if (slot) slot.waiting += 1;
    }
    const timeout = job.kind === "action" ? job.queueTimeoutMs : (waitMs ?? 0);
    if (timeout > 0) {
      job.timer = setTimeout(() => this.onQueueTimeout(job), timeout);
      job.timer.unref();
    }
  }

  private dequeue(job: Job): void {
    if (!job.queued) return;
    const i = this.queue.indexOf(job);
    if (i >= 0) this.queue.splice(i, 1);
    job.queued = false;
    if (job.timer) clearTimeout(job.timer);
    job.timer = null;
    if (job.kind === "lease") this.leaseJobs -= 1;
    else if (job.exact) {
      const slot = this.fleet.get(job.exact.host, job.exact.device);
      if (slot && slot.waiting > 0) slot.waiting -= 1;
    }
  }

  private onQueueTimeout(job: Job): void {
    if (!job.queued) return;
    this.dequeue(job);
    const retryAfter = this.retryAfterS();
    if (job.kind === "lease") {
      job.fail(new LabrigError("no_device_available", this.noDeviceMessage(job, "lease"), { retryAfter }));
      return;
    }
    this.finishQueued(job, "no_device_available", this.noDeviceMessage(job, `${job.queueTimeoutMs} ms`), retryAfter);
  }

  private noDeviceMessage(job: Job, waited: string): string {
    const where = job.exact ? `device ${job.exact.host}/${job.exact.device}` : `a device matching ${describeSelector(job.selector as Selector)}`;
    if (job.kind === "lease") {
      const holder = job.exact ? this.leases.forDevice(deviceKey(job.exact.host, job.exact.device)) : undefined;
      const held = holder ? ` It is leased to '${holder.owner}' until ${new Date(holder.expiresAtMs).toISOString()}.` : "";
      return `Not enough free devices for a lease of ${job.count} × ${where} (online, good and not leased).${held} Retry later, or pass wait_ms to wait in the queue.`;
    }
    return `No free ${where} within ${waited}: all are busy, leased, offline or not good. Retry later, or raise queue_timeout_ms.`;
  }

  /** Seconds a caller might wait before retrying: about the time the queue ahead needs to drain, 1–5 s. */
  private retryAfterS(): number {
    let devices = 0;
    for (const s of this.fleet.all()) if (s.health === "good" && this.reachable(s.host)) devices += 1;
    const estimate = (this.avgDurationMs * (1 + this.queue.length / Math.max(1, devices))) / 1000;
    return Math.min(5, Math.max(1, Math.ceil(estimate)));
  }

  private reachable(host: string): boolean {
    return this.fleet.isOnline(host) && this.agents.get(host) !== undefined;
  }

  private exactSlot(host: string, device: string): DeviceSlot {
    let slot = this.fleet.get(host, device);
    if (slot) return slot;
    // The database may know a device the fleet has not loaded (written by another process, e.g. the CLI).
    this.fleet.reloadHost(host);
    slot = this.fleet.get(host, device);
    if (slot) return slot;
    if (!this.hosts.get(host)) throw new LabrigError("unknown_host", `No host '${host}'. GET /api/hosts lists the hosts; add one with: labrig-hub host add ${host}`);
    const known = this.fleet.forHost(host).map((s) => s.device);
    throw new LabrigError("unknown_device", `Host '${host}' has no device '${device}'. Its devices: ${known.join(", ") || "none (the agent has not said hello yet)"}.`);
  }

  private unhealthy(slot: DeviceSlot): LabrigError {
    return new LabrigError(
      "device_unavailable",
      `Device ${slot.host}/${slot.device} is ${slot.health}: ${slot.healthReason ?? "no reason given"}; an admin can set it good with PUT /api/hosts/${slot.host}/devices/${slot.device}/health.`,
    );
  }

  /** Why an exact-target action cannot run on this device at all right now (not merely "busy"), or null. */
  private exactRefusal(slot: DeviceSlot, leaseId: string | null): LabrigError | null {
    if (slot.health !== "good") return this.unhealthy(slot);
    const holder = this.leases.forDevice(slot.key);
    if (holder && holder.id !== leaseId) {
      return new LabrigError(
        "lease_required",
        `Device ${slot.host}/${slot.device} is leased to '${holder.owner}' until ${new Date(holder.expiresAtMs).toISOString()}; send that lease's lease_token, or wait for the lease to end.`,
        { retryAfter: Math.min(3600, Math.max(1, Math.ceil((holder.expiresAtMs - Date.now()) / 1000))) },
      );
    }
    return null;
  }

  private pump(full: boolean): void {
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
        this.pumpOnce(pass);
        pass = this.pumpFull;
        this.pumpFull = false;
      } while (this.pumpAgain);
    } catch (err) {
      this.logger.error({ err }, "dispatch pass failed; the queue is re-evaluated at the next event");
    } finally {
      this.pumping = false;
    }
  }

  /**
   * One pass over the queue in priority order. A plain pass (a device freed) stops once no device
   * is free; a full pass (health, presence or leases changed) visits every job so exact targets that
   * became impossible fail now rather than at their timeout.
   */
  private pumpOnce(full: boolean): void {
    if (this.queue.length === 0) return;
    const free: DeviceSlot[] = [];
    for (const slot of this.fleet.all()) if (slot.runningId === null && this.reachable(slot.host)) free.push(slot);
    if (free.length === 0 && !full && this.leaseJobs === 0) return;
    for (const job of [...this.queue]) {
      if (!job.queued) continue;
      if (job.kind === "lease") {
        this.tryGrant(job);
        continue;
      }
      if (job.exact) {
        const slot = this.fleet.get(job.exact.host, job.exact.device);
        if (!slot) {
          this.dequeue(job);
          this.finishQueued(job, "unknown_device", `Device ${job.exact.host}/${job.exact.device} left the registry (its agent no longer reports it) while the action waited.`);
          continue;
        }
        if (!job.internal) {
          const refusal = this.exactRefusal(slot, job.leaseId);
          if (refusal) {
            this.dequeue(job);
            this.finishQueued(job, refusal.code, refusal.message, refusal.retryAfter);
            continue;
          }
        }
        if (slot.runningId === null && this.reachable(slot.host)) {
          this.dequeue(job);
          const i = free.indexOf(slot);
          if (i >= 0) free.splice(i, 1);
          this.send(job, slot, job.exactResource);
        }
        continue;
      }
      if (free.length === 0) {
        if (!full && this.leaseJobs === 0) break;
        continue;
      }
      const best = this.pickFor(job, free);
      if (best) {
        this.dequeue(job);
        free.splice(free.indexOf(best), 1);
        this.send(job, best, resolveResource(job.action, best.resources, job.requestedResource));
      }
    }
  }

  /** Among idle devices: matching, good, not held by another lease; the job's own leased devices first, then least recently used. */
  private pickFor(job: ActionJob, free: DeviceSlot[]): DeviceSlot | null {
    const selector = job.selector as Selector;
    let best: DeviceSlot | null = null;
    let bestMine = false;
    for (const slot of free) {
      if (slot.health !== "good" || !matchesSelector(slot, selector) || !canRunOn(job.action, slot.resources, job.requestedResource)) continue;
      const holder = this.leases.forDevice(slot.key);
      if (holder && holder.id !== job.leaseId) continue;
      const mine = holder !== undefined;
      if (!best || (mine && !bestMine) || (mine === bestMine && slot.lastUsedMs < best.lastUsedMs)) {
        best = slot;
        bestMine = mine;
      }
    }
    return best;
  }

  private tryGrant(job: LeaseJob): void {
    const cleanup = job.cleanup;
    const candidates: DeviceSlot[] = [];
    if (job.exact) {
      const slot = this.fleet.get(job.exact.host, job.exact.device);
      if (!slot) {
        this.dequeue(job);
        job.fail(new LabrigError("unknown_device", `Device ${job.exact.host}/${job.exact.device} left the registry while the lease request waited.`));
        return;
      }
      if (slot.health !== "good") {
        this.dequeue(job);
        job.fail(this.unhealthy(slot));
        return;
      }
      if (this.reachable(slot.host) && !this.leases.forDevice(slot.key)) candidates.push(slot);
    } else {
      const selector = job.selector as Selector;
      for (const slot of this.fleet.all()) {
        if (slot.health !== "good" || !this.reachable(slot.host) || this.leases.forDevice(slot.key)) continue;
        if (!matchesSelector(slot, selector)) continue;
        if (cleanup && !canRunOn(cleanup.action, slot.resources, cleanup.resource)) continue;
        candidates.push(slot);
      }
    }
    if (candidates.length < job.count) return;
    // Idle devices first, then least recently used.
    candidates.sort((a, b) => (a.runningId === null ? 0 : 1) - (b.runningId === null ? 0 : 1) || a.lastUsedMs - b.lastUsedMs);
    this.dequeue(job);
    try {
      job.grant(candidates.slice(0, job.count));
    } catch (err) {
      job.fail(err instanceof LabrigError ? err : new LabrigError("internal_error", `Could not record the lease: ${(err as Error).message}`, { cause: err }));
    }
  }

  // ---- sending and finishing -----------------------------------------------------------------

  private send(job: ActionJob, slot: DeviceSlot, resource: string | null): void {
    const socket = this.agents.get(slot.host);
    if (!socket) {
      // reachable() said yes a moment ago; keep the job rather than lose it.
      this.enqueue(job);
      return;
    }
    job.attempt += 1;
    const wireId = job.attempt === 1 ? job.id : `${job.id}~${job.attempt}`;
    const timeoutMs = actionTimeoutMs(job.action, job.params, this.options.actionTimeoutMs);
    slot.runningId = job.id;
    slot.lastUsedMs = performance.now();
    const deadline = setTimeout(() => this.onDeadline(job, timeoutMs), timeoutMs + HUB_DEADLINE_MARGIN_MS);
    job.running = { slot, wireId, resource, started: false, sentAtMs: Date.now(), deadline };
    this.inflight.set(wireId, job);
    this.actions.markDispatched(job.id, slot.host, slot.device, resource, nowIso());
    const message: ActionRequest = { id: wireId, device: slot.device, action: job.action, resource, params: job.params, timeout_ms: timeoutMs };
    socket.emit("action.request", message);
    // Guarded: building the fields costs more than the disabled call itself, once per action.
    if (this.logger.isLevelEnabled("debug")) this.logger.debug({ action_id: job.id, wire_id: wireId, host: slot.host, device: slot.device, action: job.action, resource, timeout_ms: timeoutMs }, "action sent");
  }

  private onDeadline(job: ActionJob, timeoutMs: number): void {
    const run = job.running;
    if (!run) return;
    // The agent should have given up already; tell it again so a stuck action does not hold the device.
    this.agents.get(run.slot.host)?.emit("action.cancel", { id: run.wireId } satisfies ActionCancel);
    this.finishRunning(
      job,
      this.hubFailure(
        job,
        "action_timeout",
        `No result from host '${run.slot.host}' within ${timeoutMs + HUB_DEADLINE_MARGIN_MS} ms (agent timeout ${timeoutMs} ms + hub margin). Check the agent's log; the device may need a power cycle.`,
      ),
    );
  }

  private hubFailure(job: ActionJob, code: ErrorCode, message: string): ActionOutcome {
    const sentAtMs = job.running?.sentAtMs ?? Date.now();
    const now = Date.now();
    return { status: "failed", result: null, error: makeEnvelope(code, message), startedAt: null, finishedAt: new Date(now).toISOString(), durationMs: now - sentAtMs };
  }

  private outcomeOf(job: ActionJob, result: ActionResult): ActionOutcome {
    // Timings come from the agent, which measured them next to the hardware.
    const base = { startedAt: isoOr(result.started_at, nowIso()), finishedAt: isoOr(result.finished_at, nowIso()), durationMs: result.duration_ms };
    if (result.status === "succeeded") {
      try {
        return { ...base, status: "succeeded", result: parseActionResult(job.action, result.result ?? {}), error: null };
      } catch (err) {
        const e = err instanceof LabrigError ? err : new LabrigError("internal_error", String(err));
        this.logger.warn({ action_id: job.id, host: result.host, err: e.message }, "agent returned a result that does not match the catalogue");
        return { ...base, status: "failed", result: null, error: e.toEnvelope() };
      }
    }
    const error =
      result.error ??
      (result.status === "canceled"
        ? makeEnvelope("canceled", "The action was canceled on the agent.")
        : makeEnvelope("internal_error", "The agent reported a failure without an error envelope; check the agent's log."));
    return { ...base, status: result.status, result: result.result, error };
  }

  private finishRunning(job: ActionJob, outcome: ActionOutcome): void {
    const run = job.running;
    if (!run) return;
    clearTimeout(run.deadline);
    this.inflight.delete(run.wireId);
    if (run.slot.runningId === job.id) run.slot.runningId = null;
    job.running = null;
    const record = this.actions.finishAndGet(job.id, outcome);
    if (outcome.status === "succeeded") this.health.recordOutcome(run.slot, null, null);
    else if (outcome.status === "failed") this.health.recordOutcome(run.slot, outcome.error?.error_code ?? "internal_error", outcome.error?.message ?? null);
    if (outcome.durationMs !== null) this.avgDurationMs = this.avgDurationMs * 0.9 + outcome.durationMs * 0.1;
    const level = outcome.status === "failed" ? "warn" : "debug";
    if (this.logger.isLevelEnabled(level)) this.logger[level]({ action_id: job.id, host: run.slot.host, device: run.slot.device, status: outcome.status, error_code: outcome.error?.error_code, duration_ms: outcome.durationMs }, "action finished");
    this.settle(job, record);
    this.pump(false);
  }

  /**
   * Ends a job that never reached a device. A cancel resolves the request with the (canceled) record;
   * anything else (queue timeout, shutdown, the device became unusable) rejects it with the envelope,
   * as the same refusal would have at submission. The record is stored either way.
   */
  private finishQueued(job: ActionJob, code: ErrorCode, message: string, retryAfter?: number): void {
    const canceled = code === "canceled";
    this.actions.finish(job.id, {
      status: canceled ? "canceled" : "failed",
      result: null,
      error: makeEnvelope(code, message, { retryAfter }),
      startedAt: null,
      finishedAt: nowIso(),
      durationMs: null,
    });
    this.logger.info({ action_id: job.id, error_code: code }, "action ended before reaching a device");
    if (canceled) {
      this.settle(job);
      return;
    }
    this.jobs.delete(job.id);
    const record = this.actions.get(job.id);
    if (record) this.notifyFinished(record);
    job.reject(new LabrigError(code, message, { retryAfter, details: { action_id: job.id } }));
    job.markEnded();
  }

  private notifyFinished(record: StoredAction): void {
    for (const listener of this.finishedListeners) {
      try {
        listener(record);
      } catch (err) {
        this.logger.error({ err, action_id: record.id }, "action-finished listener failed");
      }
    }
  }

  /** Resolves the request with the action's record: `finished` when the finishing write returned it, else read now. */
  private settle(job: ActionJob, finished?: StoredAction): void {
    this.jobs.delete(job.id);
    const record = finished ?? this.actions.get(job.id);
    if (record) {
      this.notifyFinished(record);
      job.resolve(record);
    } else {
      this.logger.error({ action_id: job.id }, "action record vanished while its request was waiting");
      job.reject(new LabrigError("internal_error", `The record of action ${job.id} disappeared from the database; check the hub's data directory.`));
    }
    job.markEnded();
  }
}
