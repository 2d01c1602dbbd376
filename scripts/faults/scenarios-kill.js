// @ts-check
// kill -9 of the agent at each point of an action's life, and of the hub mid-action and mid-campaign.
import { waitFor } from "../lib/launch.js";
import { Probe } from "./probes.js";
import { finish, requireWindow } from "./scenario.js";

/** @typedef {import("./scenario.js").Scenario} Scenario */

/** @type {Scenario} */
const agentKillQueued = {
  name: "agent kill: queued on the hub",
  what: "kill -9 the agent while an action waits on the hub behind a running one; restart it",
  forms: ["short", "full"],
  async run(rig) {
    const running = new Probe(rig, "running", { slow: true, expect: { status: ["failed"], code: ["host_lost"], count: [0] } }).submit();
    await running.started();
    const queued = new Probe(rig, "queued", { expect: { status: ["succeeded"], count: [1] } }).submit();
    await queued.queued();
    const faultAt = Date.now();
    await rig.killAgent();
    requireWindow(running, "board");
    const integrity = await rig.restartAgent();
    await queued.ended();
    return finish(rig, { name: this.name, probes: [running, queued], integrity, redispatchMs: queued.startedAfter(faultAt) });
  },
};

/** @type {Scenario} */
const agentKillSent = {
  name: "agent kill: sent, not started",
  what: "the hub sends an action the agent never receives over its silent link, then the agent is killed and its connection resets; restart it",
  forms: ["short", "full"],
  async run(rig) {
    rig.link.freezeOpen();
    const sent = new Probe(rig, "sent", { expect: { status: ["succeeded"], count: [1], minAttempts: 2 } }).submit();
    await sent.sent();
    const faultAt = Date.now();
    const integrity = await rig.killAndRestartAgent({ sever: true });
    await sent.ended();
    return finish(rig, { name: this.name, probes: [sent], integrity, redispatchMs: sent.startedAfter(faultAt) });
  },
};

/** @type {Scenario} */
const agentKillStarted = {
  name: "agent kill: start confirmed",
  what: "kill -9 the agent while a confirmed serial.write is on the wire; restart it",
  forms: ["short", "full"],
  async run(rig) {
    // Killed mid-write: the board saw a partial line (not a run), the hub cannot know, so host_lost; never sent again.
    const started = new Probe(rig, "started", { slow: true, expect: { status: ["failed"], code: ["host_lost"], count: [0] } }).submit();
    await started.started();
    await rig.killAgent();
    requireWindow(started, "board");
    const integrity = await rig.restartAgent();
    return finish(rig, { name: this.name, probes: [started], integrity });
  },
};

/** @type {Scenario} */
const agentKillOutbox = {
  name: "agent kill: result in the outbox",
  what: "the action ran but its result cannot reach the hub over the silent link, then the agent is killed; restart it",
  forms: ["short", "full"],
  async run(rig) {
    // It ran once; the result died with the agent's memory, so the hub says host_lost (outcome unknown), never "not run".
    const done = new Probe(rig, "outbox", { slow: true, expect: { status: ["failed"], code: ["host_lost"], count: [1] } }).submit();
    await done.started();
    rig.link.freezeOpen();
    // Frozen before the write completed, so its result cannot have reached the hub.
    requireWindow(done, "board");
    await done.onBoard();
    const integrity = await rig.killAndRestartAgent({ sever: true });
    return finish(rig, { name: this.name, probes: [done], integrity });
  },
};

/** @type {Scenario} */
const hubKillAction = {
  name: "hub kill: mid-action",
  what: "kill -9 the hub while one action runs and one waits; restart it on the same data dir",
  forms: ["short", "full"],
  async run(rig) {
    const running = new Probe(rig, "running", { slow: true, expect: { status: ["succeeded"], count: [1], reconciled: true } }).submit();
    await running.started();
    const queued = new Probe(rig, "queued", { expect: { status: ["failed"], code: ["shutting_down"], count: [0] } }).submit();
    await queued.queued();
    const faultAt = Date.now();
    await rig.killHub();
    // Its result must not have reached the hub before the kill (nor the queued one started).
    requireWindow(running, "record");
    const integrity = [rig.integrity()];
    // The agent finishes the write while the hub is away; its result waits in the agent's outbox.
    await running.onBoard();
    await rig.startHub();
    // Not reconciled in time: the probe's own `reconciled` expectation reports it.
    const reconciled = await running.waitRow((r) => r.reconciled_at !== null, "to be reconciled from the agent's outbox", 20_000).catch(() => {
      rig.signal?.throwIfAborted();
      return null;
    });
    const after = new Probe(rig, "after restart", { expect: { status: ["succeeded"], count: [1] } }).submit();
    await after.ended();
    const notes = reconciled?.reconciled_at ? [`reconciled ${Date.parse(reconciled.reconciled_at) - faultAt} ms after the kill`] : [];
    return finish(rig, { name: this.name, probes: [running, queued, after], integrity, notes });
  },
};

/** @type {Scenario} */
const hubKillCampaign = {
  name: "hub kill: mid-campaign",
  what: "kill -9 the hub while a campaign run's test holds its lease and runs a step; restart it",
  forms: ["short", "full"],
  async run(rig) {
    const first = new Probe(rig, "step 1", { expect: { status: ["succeeded"], count: [1] } });
    // Its result reaches the restarted hub from the agent's outbox (reconciled) — or, had the kill come first, not at all.
    const second = new Probe(rig, "step 2", { slow: true, expect: { count: [1] } });
    const third = new Probe(rig, "step 3", { expect: { count: [0] } });
    const tc = await rig.api("POST", "/api/testcases", {
      name: `fault campaign ${first.marker}`,
      target: { selector: { capabilities: ["serial"], labels: { rig: "faults" } } },
      steps: [first.step, second.step, third.step],
    });
    if (tc.status !== 201 && tc.status !== 200) throw new Error(`could not create the test case: ${tc.status} ${JSON.stringify(tc.body)}`);
    const campaign = await rig.api("POST", "/api/campaigns", { name: `fault-${first.marker}`, testcases: [tc.body.id], target: { selector: { capabilities: ["serial"], labels: { rig: "faults" } } }, retries: 0 });
    if (campaign.status !== 201 && campaign.status !== 200) throw new Error(`could not create the campaign: ${campaign.status} ${JSON.stringify(campaign.body)}`);
    const started = await rig.api("POST", `/api/campaigns/${campaign.body.id}/runs`, {});
    if (started.status !== 202) throw new Error(`could not start the run: ${started.status} ${JSON.stringify(started.body)}`);
    const runId = /** @type {string} */ (started.body.id);
    await second.started();
    const held = rig.leftovers().leases;
    await rig.killHub();
    // Step 2 must still have been running at the kill: had it ended, step 3 would have been sent.
    requireWindow(second, "record");
    const integrity = [rig.integrity()];
    await rig.startHub();
    const run = await waitFor(
      async () => {
        const r = await rig.api("GET", `/api/runs/${runId}`);
        return r.status === 200 && r.body.status !== "running" && r.body.status !== "queued" ? r.body : null;
      },
      20_000,
      "the interrupted run to be closed",
      { signal: rig.signal },
    );
    // Never on the board: its `count` expectation reports it.
    await second.onBoard().catch(() => rig.signal?.throwIfAborted());
    const violations = run.status === "interrupted" ? [] : [`run ended ${run.status}, expected interrupted`];
    if (held !== 1) violations.push(`the run held ${held} leases while its step ran, expected 1`);
    return finish(rig, { name: this.name, probes: [first, second, third], integrity, violations, notes: [`run: ${run.status} (${run.reason ?? "no reason"})`] });
  },
};

export const KILL_SCENARIOS = [agentKillQueued, agentKillSent, agentKillStarted, agentKillOutbox, hubKillAction, hubKillCampaign];
