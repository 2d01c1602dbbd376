// @ts-check
// The link between agent and hub: cut for 1 s, a longer while (6 s in the short form; 30 s and
// 5 min in the full one), and a silent socket replaced by the host's next connection.
import { sleep } from "@labrig/shared";
import { waitFor } from "../lib/launch.js";
import { Probe } from "./probes.js";
import { DEADLINE_MS, finish, requireWindow } from "./scenario.js";

/** @typedef {import("./scenario.js").Scenario} Scenario */

/** The hub's deadline for a serial.write: the action timeout (LABRIG_ACTION_TIMEOUT_MS, 10 s) plus its 5 s margin. */
const WRITE_DEADLINE_MS = 15_000;

/**
 * A cut of `cutMs`: one write on the wire when it starts, one sent into the dead link, and (when the
 * cut outlasts the offline threshold) one by selector queued while the host is offline.
 * @param {string} name
 * @param {number} cutMs
 * @param {("short" | "full")[]} forms
 * @returns {Scenario}
 */
function linkCut(name, cutMs, forms) {
  return {
    name,
    what: `the link goes silent both ways for ${cutMs / 1000} s, holding its connections and refusing new ones, then heals`,
    forms,
    deadlineMs: cutMs + DEADLINE_MS,
    async run(rig) {
      const withinDeadline = cutMs + 3000 < WRITE_DEADLINE_MS;
      // Within the hub's deadline both finish once the link is back; beyond it the hub gives up on them
      // (action_timeout: outcome unknown), and the one that had not started is declined when its start arrives.
      const inFlight = new Probe(rig, "on the wire", { slow: true, expect: withinDeadline ? { status: ["succeeded"], count: [1] } : { count: [1] } }).submit();
      await inFlight.started();
      const cutAt = Date.now();
      rig.link.cut();
      const into = new Probe(rig, "sent into the cut", { device: "dut2", expect: withinDeadline ? { status: ["succeeded"], count: [1] } : { code: ["action_timeout", "host_lost"], count: [0] } }).submit();
      await into.sent();
      const probes = [inFlight, into];
      const notes = [];
      const offlineAfterMs = 3 * rig.heartbeatMs;
      /** @type {Probe | null} */
      let waiting = null;
      if (cutMs > offlineAfterMs + 1000) {
        await waitFor(async () => rig.hostRow()?.state === "offline", offlineAfterMs + 3000, "the hub to mark the silent host offline", { signal: rig.signal });
        notes.push(`host offline ${Date.now() - cutAt} ms into the cut`);
        waiting = new Probe(rig, "queued while offline", { selector: true, queueTimeoutMs: cutMs + 120_000, expect: { status: ["succeeded"], count: [1] } }).submit();
        await waiting.queued();
        probes.push(waiting);
      }
      await sleep(Math.max(0, cutAt + cutMs - Date.now()), rig.signal);
      const healedAt = Date.now();
      rig.link.heal();
      if (waiting) notes.push("re-dispatch ms: heal → the queued action started");
      // Once healed, all end within the agent's reconnect backoff (≤ 10 s) and a write: 45 s is ample.
      const redispatchMs = () => (waiting ? waiting.startedAfter(healedAt) : null);
      return finish(rig, { name: this.name, probes, redispatchMs, notes, endTimeoutMs: 45_000 });
    },
  };
}

/** @type {Scenario} */
const silentSocketReplaced = {
  name: "silent socket replaced",
  what: "the agent's connection goes half-open, the agent dies unseen, and its restart connects again for the same host",
  forms: ["short", "full"],
  async run(rig) {
    // Started on the old socket: a new agent process will never report it, so host_lost once its hello shows that.
    const started = new Probe(rig, "started", { slow: true, expect: { status: ["failed"], code: ["host_lost"], count: [0] } }).submit();
    await started.started();
    rig.link.freezeOpen();
    // Sent on the old socket, never received: handed back at the replacement and re-dispatched, not left to time out.
    const unstarted = new Probe(rig, "unstarted", { device: "dut2", expect: { status: ["succeeded"], count: [1], minAttempts: 2 } }).submit();
    await unstarted.sent();
    const faultAt = Date.now();
    // kill -9 behind a silent link: the hub still holds the old socket as live when the new one comes.
    await rig.killAgent();
    // Its write must not have completed before the freeze and the kill, or it ran (×1) where none must.
    requireWindow(started, "board");
    const integrity = await rig.restartAgent();
    await unstarted.ended();
    await started.ended();
    rig.link.sever();
    return finish(rig, { name: this.name, probes: [started, unstarted], integrity, redispatchMs: unstarted.startedAfter(faultAt), notes: ["re-dispatch ms: kill → the unstarted action ran on the new connection"] });
  },
};

export const LINK_SCENARIOS = [
  linkCut("link cut 1 s", 1000, ["short", "full"]),
  linkCut("link cut 6 s", 6000, ["short"]),
  linkCut("link cut 30 s", 30_000, ["full"]),
  linkCut("link cut 5 min", 300_000, ["full"]),
  silentSocketReplaced,
];
