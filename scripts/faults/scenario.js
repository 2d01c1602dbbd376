// @ts-check
// What every scenario ends with: its probes judged on the board, what the hub left held or running,
// and the database's integrity, as one row of the table.
import { sleep } from "@labrig/shared";

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
 * @property {boolean} [namespaces]  needs root for a tmpfs in a private mount namespace
 * @property {(rig: FaultRig, ctx: Context) => Promise<Row>} run
 */

/**
 * Waits for every probe to end (bounded), gives late duplicates `settleMs` to show on the board, and builds the row.
 * @param {FaultRig} rig
 * @param {{name: string, probes: Probe[], integrity?: string[], redispatchMs?: number | null, notes?: string[], violations?: string[], settleMs?: number, endTimeoutMs?: number}} r
 * @returns {Promise<Row>}
 */
export async function finish(rig, r) {
  const violations = [...(r.violations ?? [])];
  for (const p of r.probes) {
    if (p.row() === null) continue;
    try {
      await p.ended(r.endTimeoutMs ?? 30_000);
    } catch {
      // Judged below as lost: its record never ended.
    }
  }
  await sleep(r.settleMs ?? 1500);
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
    redispatchMs: r.redispatchMs ?? null,
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
