import { nowIso, type ActionResult } from "@labrig/shared";
import type { HubBus } from "../../bus.js";
import type { Logger } from "../../logger.js";
import type { ActionLedger } from "./ledger.js";
import { wireIdOf } from "./agent-channel.js";
import { outcomeOfResult } from "./outcome.js";

/**
 * Results that arrive after the hub restarted. A hub that stops while an action runs records it as
 * failed (`shutting_down`: outcome unknown); the agent keeps the real result in its outbox and delivers
 * it when it reconnects. That result replaces the failure — once, only for the host the action went
 * to and only for its last attempt — the record is marked reconciled, and the dashboards are told.
 */
export class LateResults {
  constructor(
    private readonly ledger: ActionLedger,
    private readonly bus: HubBus,
    private readonly logger: Logger,
  ) {}

  /** A result for an attempt nobody waits for: reconciled when it settles a restart's failure, else acknowledged as a duplicate. */
  receive(actionId: string, result: ActionResult): "reconciled" | "duplicate" | "unknown" {
    const record = this.ledger.action(actionId);
    if (!record) return "unknown";
    if (record.host !== result.host || record.status !== "failed" || record.error?.error_code !== "shutting_down" || record.reconciled_at) return "duplicate";
    // A re-dispatched action's earlier attempts never ran (the agent asks before it starts): only the last one counts.
    if (result.id !== wireIdOf(record.id, record.attempts)) return "duplicate";
    const { outcome, invalid } = outcomeOfResult(record.action, result);
    if (invalid !== null) this.logger.warn({ action_id: record.id, host: result.host, problem: invalid }, "late result does not match the catalogue");
    const updated = this.ledger.reconciled(record.id, outcome, nowIso());
    if (!updated) return "duplicate";
    this.logger.info({ action_id: record.id, host: result.host, status: updated.status }, "late result after a hub restart reconciled the action's record");
    if (updated.host !== null && updated.device !== null) this.bus.emit("action.finished", { ...updated, host: updated.host, device: updated.device });
    return "reconciled";
  }
}
