// @ts-check
// The fault suite: the scenarios of one form, run in order on one rig (one hub data directory that
// outlives the hub's restarts, one host with two simulated boards), each bounded in time, one row each.
import { FaultRig, checkTools } from "./rig.js";
import { DEVICE_SCENARIOS } from "./scenarios-device.js";
import { KILL_SCENARIOS } from "./scenarios-kill.js";
import { LINK_SCENARIOS } from "./scenarios-link.js";
import { brokenRow } from "./scenario.js";
import { failures } from "./table.js";

/** @typedef {import("./scenario.js").Scenario} Scenario */
/** @typedef {import("./scenario.js").Row} Row */
/** @typedef {import("./scenario.js").Context} Context */

/** Heartbeat of the rig's hub: a host is offline after 3 missed beats (3 s), so a 1 s cut must not flap it. */
export const HEARTBEAT_MS = 1000;

/** @type {Scenario[]} */
export const SCENARIOS = [...KILL_SCENARIOS, ...LINK_SCENARIOS, ...DEVICE_SCENARIOS];

/**
 * The scenarios of a form, optionally only those whose name contains `only`.
 * @param {"short" | "full"} form
 * @param {string} [only]
 */
export function scenariosOf(form, only) {
  const chosen = SCENARIOS.filter((s) => s.forms.includes(form) && (only === undefined || s.name.includes(only)));
  if (chosen.length === 0) throw new Error(`no scenario of the ${form} form matches '${only}'`);
  return chosen;
}

/**
 * Checks the tools, then starts the rig (hub, proxy, agent).
 * @param {Scenario[]} scenarios
 */
export async function openRig(scenarios) {
  checkTools({ namespaces: scenarios.some((s) => s.namespaces === true) });
  const rig = new FaultRig({ heartbeatMs: HEARTBEAT_MS });
  try {
    await rig.start();
  } catch (err) {
    await rig.close();
    throw err;
  }
  return rig;
}

/**
 * One scenario on a rig that is brought back to its resting state first (link healed, hub and agent up).
 * A scenario that throws gives a row that fails, and the next one starts from a repaired rig.
 * @param {FaultRig} rig
 * @param {Scenario} scenario
 * @param {Context} ctx
 * @returns {Promise<Row>}
 */
export async function runScenario(rig, scenario, ctx) {
  const t0 = Date.now();
  ctx.say(`— ${scenario.name}`);
  let row;
  try {
    await rig.ready();
    row = await scenario.run(rig, ctx);
  } catch (err) {
    row = brokenRow(scenario.name, err);
    ctx.say(`  could not be carried out: ${err instanceof Error ? err.stack : String(err)}`);
  }
  ctx.say(`  ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  return row;
}

/**
 * Stops the rig; its directory (logs, database, the boards' journals) is kept when a row failed.
 * @param {FaultRig} rig
 * @param {Row[]} rows
 */
export async function closeRig(rig, rows) {
  await rig.close();
  if (failures(rows).length === 0) rig.remove();
}
