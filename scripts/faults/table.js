// @ts-check
// The fault suite's table: one row per scenario, the must-be-0 cells first.

/** @typedef {import("./scenario.js").Row} Row */

const COLUMNS = /** @type {const} */ ([
  ["scenario", "scenario"],
  ["actions", "actions"],
  ["lost", "lost"],
  ["twice", "run twice"],
  ["redispatch", "re-dispatch ms"],
  ["leases", "leases leaked"],
  ["running", "left running"],
  ["integrity", "integrity_check"],
]);

/** @param {Row} row */
function cells(row) {
  return {
    scenario: row.scenario,
    actions: String(row.actions),
    lost: String(row.lost),
    twice: String(row.twice),
    redispatch: row.redispatchMs === null ? "—" : String(Math.round(row.redispatchMs)),
    leases: String(row.leases),
    running: String(row.running),
    integrity: row.checks === 0 ? row.integrity : `${row.integrity} (${row.checks}×)`,
  };
}

/** Cells that must be 0 (or ok), and the scenario's own claims, that did not hold. */
export function failures(/** @type {Row[]} */ rows) {
  /** @type {string[]} */
  const out = [];
  for (const r of rows) {
    if (r.lost !== 0) out.push(`${r.scenario}: ${r.lost} action(s) lost`);
    if (r.twice !== 0) out.push(`${r.scenario}: ${r.twice} action(s) ran twice on the board`);
    if (r.leases !== 0) out.push(`${r.scenario}: ${r.leases} lease(s) leaked`);
    if (r.running !== 0) out.push(`${r.scenario}: ${r.running} run(s)/test(s)/step(s) left running`);
    if (r.checks > 0 && r.integrity !== "ok") out.push(`${r.scenario}: integrity_check: ${r.integrity}`);
    out.push(...r.violations);
    // A row that otherwise holds but judged nothing proves nothing (a broken row says why already).
    if (r.violations.length === 0 && (r.actions === 0 || r.checks === 0)) out.push(`${r.scenario}: judged ${r.actions} action(s) and ran ${r.checks} integrity check(s); a scenario must do both`);
  }
  return out;
}

/**
 * The table as text, each row's outcomes under it, then what failed.
 * @param {Row[]} rows
 * @param {{title: string}} options
 */
export function formatTable(rows, options) {
  const data = rows.map(cells);
  const width = COLUMNS.map(([key, label]) => Math.max(label.length, ...data.map((d) => d[key].length)));
  const line = (/** @type {string[]} */ values) => values.map((v, i) => (i === 0 ? v.padEnd(width[i] ?? 0) : v.padStart(width[i] ?? 0))).join("  ");
  const out = [options.title, line(COLUMNS.map(([, label]) => label)), width.map((w) => "-".repeat(w)).join("  ")];
  for (const [i, d] of data.entries()) {
    out.push(line(COLUMNS.map(([key]) => d[key])));
    for (const note of rows[i]?.notes ?? []) out.push(`    ${note}`);
  }
  const failed = failures(rows);
  out.push("", failed.length === 0 ? "all must-be-0 cells are 0; every scenario's claims held" : `FAILED (${failed.length}):\n  ${failed.join("\n  ")}`);
  return out.join("\n");
}
