import { LabrigError, makeEnvelope, nowIso, parseActionResult, type ActionName, type ActionResult } from "@labrig/shared";
import type { Logger } from "../logger.js";
import type { ActionOutcome } from "../repositories/actions.js";

/** `value` when it is a date, else `fallback` (agents' clocks and strings are not trusted blindly). */
export function isoOr(value: string, fallback: string): string {
  return Number.isNaN(Date.parse(value)) ? fallback : value;
}

/** What an agent's `action.result` means for the record: the catalogue checks a success's result; a failure keeps (or gets) its envelope. */
export function outcomeOf(action: ActionName, actionId: string, result: ActionResult, logger: Logger): ActionOutcome {
  // Timings come from the agent, which measured them next to the hardware.
  const base = { startedAt: isoOr(result.started_at, nowIso()), finishedAt: isoOr(result.finished_at, nowIso()), durationMs: result.duration_ms };
  if (result.status === "succeeded") {
    try {
      return { ...base, status: "succeeded", result: parseActionResult(action, result.result ?? {}), error: null };
    } catch (err) {
      const e = err instanceof LabrigError ? err : new LabrigError("internal_error", String(err));
      logger.warn({ action_id: actionId, host: result.host, err: e.message }, "agent returned a result that does not match the catalogue");
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
