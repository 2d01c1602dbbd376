// @ts-check
// The fault suite: the scenarios of one form, run in order on one rig (one hub data directory that
// outlives the hub's restarts, one host with two simulated boards), each bounded in time, one row each.
import { FaultRig, checkTools } from "./rig.js";
import { DEVICE_SCENARIOS } from "./scenarios-device.js";
import { KILL_SCENARIOS } from "./scenarios-kill.js";
import { LINK_SCENARIOS } from "./scenarios-link.js";
import { LabrigError, raceAbort, settlesWithin } from "@labrig/shared";
import { DEADLINE_MS, WindowMissed, brokenRow } from "./scenario.js";
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

/** After a scenario's deadline: how long its abandoned work may take to notice, and the rig to be taken down. */
const CLEANUP_MS = 20_000;

/**
 * The most a scenario can take in runScenario (its deadline, then the clean-up of an abandoned one):
 * a test runner's timeout above this always gets the scenario's row.
 * @param {Scenario} scenario
 */
export function scenarioBoundMs(scenario) {
  return (scenario.deadlineMs ?? DEADLINE_MS) + 2 * CLEANUP_MS;
}

/**
 * Checks the tools, then starts the rig (hub, proxy, agent). A rig that does not start is closed;
 * its directory is kept for its log, and the error says where.
 * @param {Scenario[]} scenarios
 */
export async function openRig(scenarios) {
  checkTools({ namespaces: scenarios.some((s) => s.namespaces === true) });
  const rig = new FaultRig({ heartbeatMs: HEARTBEAT_MS });
  try {
    await rig.start();
  } catch (err) {
    await rig.close();
    throw new Error(`the fault rig did not start: ${err instanceof Error ? err.message : String(err)}; its logs are kept in ${rig.dir}`, { cause: err });
  }
  return rig;
}

/**
 * One scenario on a rig that is brought back to its resting state first (link healed, hub and agent
 * up), within the scenario's deadline. A scenario that throws gives a row that fails, and the next one
 * starts from a repaired rig. One whose fault came too late (WindowMissed) runs once more. At the
 * deadline its work is aborted (every wait and start of the rig throws), hub and agent are killed,
 * and its row fails.
 * @param {FaultRig} rig
 * @param {Scenario} scenario
 * @param {Context} ctx
 * @returns {Promise<Row>}
 */
export async function runScenario(rig, scenario, ctx) {
  const t0 = Date.now();
  const deadlineMs = scenario.deadlineMs ?? DEADLINE_MS;
  ctx.say(`— ${scenario.name}`);
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(new LabrigError("canceled", `it did not end within its deadline of ${deadlineMs / 1000} s`)), deadlineMs);
  rig.signal = controller.signal;
  const logFrom = rig.logOffset();
  /** @type {string[]} */
  const missed = [];
  const work = (async () => {
    for (;;) {
      await rig.ready();
      try {
        return await scenario.run(rig, ctx);
      } catch (err) {
        if (!(err instanceof WindowMissed)) throw err;
        if (missed.length > 0) throw new Error(`the fault came too late in both attempts: ${missed[0]}; then ${err.message}`);
        missed.push(err.message);
        ctx.say(`  the fault came too late (${err.message}); once more`);
        await rig.quiet();
      }
    }
  })();
  /** @type {Row} */
  let row;
  try {
    row = await raceAbort(work, controller.signal);
  } catch (err) {
    row = brokenRow(scenario.name, err);
    ctx.say(`  could not be carried out: ${err instanceof Error ? err.stack : String(err)}`);
  } finally {
    clearTimeout(timer);
  }
  if (controller.signal.aborted) {
    await rig.reset();
    if (!(await settlesWithin(work, CLEANUP_MS))) row.violations.push(`its work was still running ${CLEANUP_MS / 1000} s after its deadline`);
  }
  rig.signal = undefined;
  row.notes.push(...missed.map((m) => `first attempt: the fault came too late (${m})`));
  row.violations.push(...rig.journalTrouble(logFrom));
  ctx.say(`  ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  return row;
}

/**
 * Stops the rig. Its directory (logs, database, the boards' journals) is removed only when every
 * scenario gave a row and none failed; returns whether it was kept, and adds a row for any process
 * that outlived the rig.
 * @param {FaultRig} rig
 * @param {Row[]} rows  the rows so far (closeRig adds one when a process survived)
 * @param {Scenario[]} scenarios  those that were to run
 */
export async function closeRig(rig, rows, scenarios) {
  const survivors = await rig.close();
  if (survivors.length > 0) rows.push({ ...brokenRow("rig close", "processes outlived the rig"), violations: survivors });
  const kept = rows.length < scenarios.length || failures(rows).length > 0;
  if (!kept) rig.remove();
  return kept;
}
