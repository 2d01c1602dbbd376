import { nowIso, type ActionResult } from "@labrig/shared";
import type { Logger } from "../logger.js";
import type { ActionsRepository, StoredAction } from "../repositories/actions.js";
import { outcomeOf } from "./action-outcome.js";

/**
 * Results that arrive after the hub restarted. A hub that stops while an action runs records it as
 * failed (`shutting_down`: outcome unknown); the agent keeps the real result in its outbox and delivers
 * it when it reconnects. That result replaces the failure — once, only for the host the action went
 * to and only for its last attempt — the record is marked reconciled, and the dashboards are told.
 */
export class LateResults {
  constructor(
    private readonly actions: ActionsRepository,
    private readonly announce: (record: StoredAction) => void,
    private readonly logger: Logger,
  ) {}

  /** True when `result` replaced a restart's failure of `record`; false leaves it a plain duplicate. */
  reconcile(fromHost: string, result: ActionResult, record: StoredAction): boolean {
    if (record.host !== fromHost || record.status !== "failed" || record.error?.error_code !== "shutting_down" || record.reconciled_at) return false;
    // A re-dispatched action's earlier attempts were never run (the agent asks before it starts): only the last one counts.
    const lastWireId = record.attempts <= 1 ? record.id : `${record.id}~${record.attempts}`;
    if (result.id !== lastWireId) return false;
    const updated = this.actions.reconcile(record.id, outcomeOf(record.action, record.id, result, this.logger), nowIso());
    if (!updated) return false;
    this.logger.info({ action_id: record.id, host: fromHost, status: updated.status }, "late result after a hub restart reconciled the action's record");
    this.announce(updated);
    return true;
  }
}
