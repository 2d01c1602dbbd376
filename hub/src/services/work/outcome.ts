import { LabrigError, makeEnvelope, nowIso, parseActionResult, type ActionName, type ActionResult, type ErrorCode } from "@labrig/shared";
import type { ActionOutcome } from "../../repositories/actions.js";

function isoOr(value: string, fallback: string): string {
  return Number.isNaN(Date.parse(value)) ? fallback : value;
}

/**
 * An agent's result as the outcome to store. Timings come from the agent, which measured them next
 * to the hardware; a success whose result does not match the catalogue is stored as a failure.
 */
export function outcomeOfResult(action: ActionName, result: ActionResult): { outcome: ActionOutcome; invalid: string | null } {
  const now = nowIso();
  const base = { startedAt: isoOr(result.started_at, now), finishedAt: isoOr(result.finished_at, now), durationMs: result.duration_ms };
  if (result.status === "succeeded") {
    try {
      return { outcome: { ...base, status: "succeeded", result: parseActionResult(action, result.result ?? {}), error: null }, invalid: null };
    } catch (err) {
      const e = err instanceof LabrigError ? err : new LabrigError("internal_error", String(err));
      return { outcome: { ...base, status: "failed", result: null, error: e.toEnvelope() }, invalid: e.message };
    }
  }
  const error =
    result.error ??
    (result.status === "canceled"
      ? makeEnvelope("canceled", "The action was canceled on the agent.")
      : makeEnvelope("internal_error", "The agent reported a failure without an error envelope; see the agent's log."));
  return { outcome: { ...base, status: result.status, result: result.result, error }, invalid: null };
}

/** An outcome the hub decides itself (timeout, lost host, shutdown, cancel before start), timed from when it was sent. */
export function hubOutcome(code: ErrorCode, message: string, sentAtMs: number | null): ActionOutcome {
  const now = Date.now();
  return {
    status: code === "canceled" ? "canceled" : "failed",
    result: null,
    error: makeEnvelope(code, message),
    startedAt: null,
    finishedAt: new Date(now).toISOString(),
    durationMs: sentAtMs === null ? null : now - sentAtMs,
  };
}
