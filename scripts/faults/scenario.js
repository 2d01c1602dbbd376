// @ts-check
// What every scenario ends with: its probes judged on the board, what the hub left held or running,
// and the database's integrity, as one row of the table.
import { settlesWithin, sleep } from "@labrig/shared";

/** @typedef {import("./rig.js").FaultRig} FaultRig */
/** @typedef {import("./probes.js").Probe} Probe */

/**
 * @typedef {object} Row
 * @property {string} scenario
 * @property {number} actions  probes the scenario judged
 * @property {number} lost  must be 0
 * @property {number} twice  must be 0 (counted on the board)
 * @property {number | null} redispatchMs  fault → the re-dispatched (or held-back) action started again
 * @property {number} leases  must be 0: leases still held once the scenario's work has ended
 * @property {number} running  must be 0: runs, tests and steps still `running` once everything has ended
 * @property {string} integrity  "ok" when every `PRAGMA integrity_check` (after each kill and at the end) said so
 * @property {number} checks  how many integrity checks ran
 * @property {string[]} notes  each probe's outcome and other figures
 * @property {string[]} violations  what the scenario claims that did not hold (each fails the suite)
 */

/**
 * @typedef {object} Context
 * @property {"short" | "full"} form
 * @property {(message: string) => void} say
 */

/**
 * @typedef {object} Scenario
 * @property {string} name
 * @property {string} what  one line for the README and the table's legend
 * @property {("short" | "full")[]} forms
 * @property {number} [deadlineMs]  how long it may take, both attempts and the rig's readiness included (DEADLINE_MS unless given)
 * @property {boolean} [namespaces]  needs root for a tmpfs in a private mount namespace
 * @property {(rig: FaultRig, ctx: Context) => Promise<Row>} run
 */

/** A scenario's deadline unless it sets its own: far above what one takes (3–10 s), below the test's timeout. */
export const DEADLINE_MS = 90_000;

/**
 * After the last record ended, a duplicate started then shows on the board once its whole line is
 * on the wire (the journal writes a line at its newline): the longest probe's wire time plus this.
 */
export const SETTLE_MARGIN_MS = 1500;

/** Thrown by a scenario whose fault landed after the probe it aimed at had finished (a slow machine): it runs again, once. */
export class WindowMissed extends Error {
  /** @override */
  name = "WindowMissed";
}

/**
 * Right after a fault: throws WindowMissed when it came too late for `probe` (see Probe.window).
 * @param {Probe} probe
 * @param {"board" | "record"} done
 */
export function requireWindow(probe, done) {
  const w = probe.window(done);
  if (!w.held) throw new WindowMissed(w.why);
}

/**
 * Waits for every probe to end (all within `endTimeoutMs`), gives a late duplicate the time to show
 * on the board, and builds the row.
 * @param {FaultRig} rig
 * @param {{name: string, probes: Probe[], integrity?: string[], redispatchMs?: number | null | (() => number | null), notes?: string[], violations?: string[], endTimeoutMs?: number}} r
 * @returns {Promise<Row>}
 */
export async function finish(rig, r) {
  const violations = [...(r.violations ?? [])];
  const endBy = Date.now() + (r.endTimeoutMs ?? 30_000);
  for (const p of r.probes) {
    if (p.row() === null) continue;
    try {
      await p.ended(Math.max(1, endBy - Date.now()));
    } catch {
      // Judged below as lost (its record never ended), unless the scenario was abandoned.
      rig.signal?.throwIfAborted();
    }
  }
  // The hub answers an action when it ends: by now each answer (or the refused connection of a killed hub) is in.
  await Promise.all(r.probes.map((p) => (p.reply ? settlesWithin(p.reply, 5000) : true)));
  await sleep(Math.max(0, ...r.probes.map((p) => p.wireMs)) + SETTLE_MARGIN_MS, rig.signal);
  const verdicts = r.probes.map((p) => p.verdict());
  for (const v of verdicts) violations.push(...v.violations);
  const left = rig.leftovers();
  const integrity = [...(r.integrity ?? []), rig.integrity()];
  const bad = integrity.filter((i) => i !== "ok");
  return {
    scenario: r.name,
    actions: verdicts.length,
    lost: verdicts.filter((v) => v.lost).length,
    twice: verdicts.filter((v) => v.twice).length,
    redispatchMs: (typeof r.redispatchMs === "function" ? r.redispatchMs() : r.redispatchMs) ?? null,
    leases: left.leases,
    running: left.runs + left.tests + left.steps,
    integrity: bad.length === 0 ? "ok" : bad.join("; "),
    checks: integrity.length,
    notes: [...verdicts.map((v) => v.outcome), ...(r.notes ?? [])],
    violations,
  };
}

/**
 * The row of a scenario that could not be carried out (the rig broke): every must-be-0 cell is unknown, so it fails.
 * @param {string} name
 * @param {unknown} err
 * @returns {Row}
 */
export function brokenRow(name, err) {
  const message = err instanceof Error ? err.message : String(err);
  return { scenario: name, actions: 0, lost: 0, twice: 0, redispatchMs: null, leases: 0, running: 0, integrity: "—", checks: 0, notes: [], violations: [`${name}: the scenario could not be carried out: ${message}`] };
}
