import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { FaultRig } from "../scripts/faults/rig.js";
import type { Row } from "../scripts/faults/scenario.js";
import { closeRig, openRig, runScenario, scenarioBoundMs, scenariosOf } from "../scripts/faults/suite.js";
import { failures, formatTable } from "../scripts/faults/table.js";

// The fault suite's short form (`npm run faults` runs the full one, with the 30 s and 5 min cuts):
// real hub and agent processes on 127.0.0.1, a TCP proxy between them, kill -9, a socat that dies,
// small tmpfs disks filled to the last byte (unshare -m, root). What ran is counted on the
// simulated boards' journals, not taken from the hub's records.
const scenarios = scenariosOf("short");

describe("fault suite, short form", () => {
  let rig: FaultRig | undefined;
  const rows: Row[] = [];
  const say = (m: string): void => void process.stdout.write(`${m}\n`);

  beforeAll(async () => {
    rig = await openRig(scenarios);
  }, 90_000);

  afterAll(async () => {
    if (!rig) return;
    const kept = await closeRig(rig, rows, scenarios);
    if (rows.length > 0) say(`\n${formatTable(rows, { title: "fault suite, short form" })}\n`);
    if (kept) say(`logs, database and the boards' journals kept in ${rig.dir}`);
    // A process that outlived the rig is a row of its own, added by closeRig.
    expect(failures(rows.slice(scenarios.length))).toEqual([]);
  }, 60_000);

  for (const scenario of scenarios) {
    // runScenario ends within its bound (its deadline, then the clean-up), so the row is always there to judge.
    it(`${scenario.name} — ${scenario.what}: no action lost or run twice, no lease leaked, no run left running, database intact`, async () => {
      if (!rig) throw new Error("the rig did not start");
      const row = await runScenario(rig, scenario, { form: "short", say });
      rows.push(row);
      expect(failures([row])).toEqual([]);
    }, scenarioBoundMs(scenario) + 10_000);
  }
});
