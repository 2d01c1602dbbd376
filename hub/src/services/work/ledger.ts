import { makeEnvelope, nowIso, type ErrorCode, type ErrorEnvelope } from "@labrig/shared";
import type { ActionOutcome, ActionsRepository, NewAction, StoredAction } from "../../repositories/actions.js";
import type { HostEventsRepository } from "../../repositories/host-events.js";
import type { LeaseRecord, LeasesRepository } from "../../repositories/leases.js";
import type { DeviceSlot } from "./scheduler.js";

/**
 * Every state change of an action and of a lease, written in one place: queued, dispatched,
 * started, requeued, finished; granted, extended, ended (with their host events). Writes made inside
 * one `commit()` reach the WAL in one commit, so an action's insert and its dispatch, or its outcome
 * and the dispatch of the next action on the freed device, cost one commit between them.
 */
export class ActionLedger {
  constructor(
    private readonly actions: ActionsRepository,
    private readonly leases: LeasesRepository,
    private readonly events: HostEventsRepository,
  ) {}

  /** Actions queued inside the current commit() and not written yet: a dispatch in the same commit writes them once, as running. */
  private staged: Map<string, NewAction> | null = null;

  /**
   * Runs `fn` with the writes it makes committed together (see ActionsRepository.groupCommit). An
   * action queued inside it is written at the end (or, when it is dispatched inside it too, once, as
   * running), so a submission that finds a free device costs one row write and one commit.
   */
  commit<T>(fn: () => T): T {
    if (this.staged) return fn();
    const staged = new Map<string, NewAction>();
    this.staged = staged;
    try {
      return this.actions.groupCommit(() => {
        try {
          return fn();
        } finally {
          this.staged = null;
          for (const action of staged.values()) this.actions.insert(action);
        }
      });
    } finally {
      this.staged = null;
    }
  }

  // ---- actions ----------------------------------------------------------------------------

  queued(action: NewAction): void {
    if (this.staged) this.staged.set(action.id, action);
    else this.actions.insert(action);
  }

  dispatched(id: string, slot: DeviceSlot, resource: string | null): void {
    const staged = this.staged?.get(id);
    if (staged) {
      // Unstaged once written: a failed write leaves it staged, for forget() (or the commit's end) to decide.
      this.actions.insertDispatched({ ...staged, host: slot.host, device: slot.device, resource }, nowIso());
      this.staged?.delete(id);
      return;
    }
    this.actions.markDispatched(id, slot.host, slot.device, resource, nowIso());
  }

  /** Writes a staged action now, before something else is written about it. */
  private materialize(id: string): void {
    const staged = this.staged?.get(id);
    if (!staged) return;
    this.actions.insert(staged);
    this.staged?.delete(id);
  }

  /** Drops a staged action that must not be written after all: its submission was withdrawn because a write failed. */
  forget(id: string): void {
    this.staged?.delete(id);
  }

  started(id: string, at: string): void {
    this.materialize(id);
    this.actions.markStarted(id, at);
  }

  /** Back in the queue: its host went away before it started. An exact target keeps its device. */
  requeued(id: string, exact: { host: string; device: string } | null): void {
    this.materialize(id);
    this.actions.markRequeued(id, exact?.host ?? null, exact?.device ?? null);
  }

  /** Stores the outcome; false when the action had already ended. */
  finished(id: string, outcome: ActionOutcome): boolean {
    this.materialize(id);
    return this.actions.finish(id, outcome);
  }

  /** Ends an action that never reached a device (queue timeout, cancel, shutdown, refusal); returns the outcome stored, or null when it had already ended. */
  endedUnsent(id: string, code: ErrorCode, message: string, retryAfter?: number): ActionOutcome | null {
    this.materialize(id);
    const outcome: ActionOutcome = {
      status: code === "canceled" ? "canceled" : "failed",
      result: null,
      error: makeEnvelope(code, message, { retryAfter }),
      startedAt: null,
      finishedAt: nowIso(),
      durationMs: null,
    };
    return this.actions.finish(id, outcome) ? outcome : null;
  }

  /** Replaces a restart's `shutting_down` failure with the agent's late result (once); the updated record, or undefined. */
  reconciled(id: string, outcome: ActionOutcome, at: string): StoredAction | undefined {
    return this.actions.reconcile(id, outcome, at);
  }

  /** At start: what a previous hub process left unfinished cannot be waited for; fails it. Returns how many. */
  abandonUnfinished(error: ErrorEnvelope): number {
    return this.actions.failUnfinished(error, nowIso());
  }

  action(id: string): StoredAction | undefined {
    this.materialize(id);
    return this.actions.get(id);
  }

  // ---- leases -----------------------------------------------------------------------------

  leaseGranted(record: LeaseRecord): void {
    this.leases.transaction(() => {
      this.leases.insert(record);
      for (const d of record.devices) {
        this.events.add({ hostId: d.host, deviceId: d.device, kind: "lease", detail: `leased to '${record.owner}' (lease ${record.id}) until ${record.expiresAt}`, at: record.createdAt });
      }
    });
  }

  /** Moves the lease's expiry; false when it had already ended. */
  leaseExtended(id: string, expiresAt: string, ttlS: number): boolean {
    return this.leases.extend(id, expiresAt, ttlS);
  }

  /** Ends the lease (stored with `reason`) and writes `eventDetail` as a host event per device, in one write; false when it had already ended. */
  leaseEnded(id: string, devices: readonly { host: string; device: string }[], reason: string, eventDetail: string): boolean {
    const at = nowIso();
    return this.leases.transaction(() => {
      if (!this.leases.end(id, at, reason)) return false;
      for (const d of devices) this.events.add({ hostId: d.host, deviceId: d.device, kind: "lease", detail: eventDetail, at });
      return true;
    });
  }
}
