import type { LabrigError } from "@labrig/shared";
import type { ActionOutcome, StoredAction } from "../../repositories/actions.js";
import type { AdmittedAction } from "./admission.js";
import type { DeviceSlot } from "./scheduler.js";

// One action's state while the hub holds it (ActionRuns owns the jobs), and its record as the ledger stores it.

export interface Running {
  slot: DeviceSlot;
  resource: string | null;
  attempt: number;
  sentAtMs: number;
  deadline: NodeJS.Timeout;
}

export interface ActionJob {
  readonly id: string;
  readonly admitted: AdmittedAction;
  readonly priority: number;
  readonly queueTimeoutMs: number;
  readonly requestedBy: string | null;
  readonly queuedAt: string;
  /** performance.now() at submission, for the queue-wait metric. */
  readonly submittedAtMs: number;
  attempt: number;
  /** When the agent said it started the current attempt (its clock). */
  startedAt: string | null;
  queueTimer: NodeJS.Timeout | null;
  running: Running | null;
  cancelRequested: boolean;
  resolve: (record: StoredAction) => void;
  reject: (err: LabrigError) => void;
  ended: Promise<void>;
  markEnded: () => void;
  detachSignal: () => void;
}

/** The stored record, as the ledger now holds it, built from what the job knows (nothing is read back). */
export function recordOf(job: ActionJob, host: string | null, device: string | null, resource: string | null, outcome: ActionOutcome): StoredAction {
  const a = job.admitted;
  return {
    id: job.id,
    host,
    device,
    action: a.action,
    resource,
    params: a.params,
    status: outcome.status,
    result: outcome.result,
    error: outcome.error,
    requested_by: job.requestedBy,
    queued_at: job.queuedAt,
    started_at: outcome.startedAt ?? job.startedAt,
    finished_at: outcome.finishedAt,
    duration_ms: outcome.durationMs,
    target: a.exact ?? { selector: a.selector as NonNullable<AdmittedAction["selector"]> },
    priority: job.priority,
    lease_id: a.lease?.id ?? null,
    attempts: job.attempt,
    reconciled_at: null,
  };
}
