// @ts-check
// `npm run faults`: the full fault suite (the 30 s and 5 min link cuts included; about 7 minutes).
// Prints the table and exits 1 when a must-be-0 cell is not 0 or a scenario's claim did not hold.
//   node scripts/faults/run.js [--short] [--only TEXT]
import { closeRig, openRig, runScenario, scenariosOf } from "./suite.js";
import { failures, formatTable } from "./table.js";

const argv = process.argv.slice(2);
const form = argv.includes("--short") ? "short" : "full";
const onlyAt = argv.indexOf("--only");
const scenarios = scenariosOf(form, onlyAt >= 0 ? argv[onlyAt + 1] : undefined);
const say = (/** @type {string} */ m) => process.stdout.write(`${m}\n`);
const startedAt = Date.now();
const rig = await openRig(scenarios);
// Every wait inside is bounded; this bounds the whole, should a bound have been missed.
const guard = setTimeout(() => {
  say("fault suite: still running after 25 minutes; stopping it");
  rig.close().finally(() => process.exit(2));
}, 25 * 60_000);
guard.unref();
/** @type {import("./scenario.js").Row[]} */
const rows = [];
let kept = true;
try {
  for (const s of scenarios) rows.push(await runScenario(rig, s, { form, say }));
} finally {
  kept = await closeRig(rig, rows, scenarios);
}
say(`\n${formatTable(rows, { title: `fault suite, ${form} form, ${rows.length} scenarios, ${((Date.now() - startedAt) / 1000).toFixed(0)} s` })}`);
const failed = failures(rows);
if (kept) say(`\nlogs, database and the boards' journals kept in ${rig.dir}`);
process.exit(failed.length === 0 && rows.length >= scenarios.length ? 0 : 1);
