// @ts-check
// Faults on the agent's side of the hardware: the serial PTY closing mid-expect (the simulated
// board's socat dies) and the artifact disks filling up (agent and hub, each on a small tmpfs).
import { closeSync, openSync, readdirSync, rmSync, writeSync } from "node:fs";
import { join } from "node:path";
import { sleep } from "@labrig/shared";
import { waitFor } from "../lib/launch.js";
import { Probe } from "./probes.js";
import { finish } from "./scenario.js";

/** @typedef {import("./scenario.js").Scenario} Scenario */
/** @typedef {import("./rig.js").FaultRig} FaultRig */

/**
 * Writes a probe until one succeeds (each attempt a probe of its own, judged like any other): one
 * refused (device_unavailable) must not have reached the board, one that succeeded must have, once.
 * Returns them all.
 * @param {FaultRig} rig
 * @param {string} tag
 * @param {{device?: string, timeoutMs?: number}} [options]
 */
async function writeUntilItWorks(rig, tag, options = {}) {
  const probes = [];
  const deadline = Date.now() + (options.timeoutMs ?? 15_000);
  for (;;) {
    // A console that is still reopening refuses at once (device_unavailable) without touching the board.
    const p = new Probe(rig, `${tag} #${probes.length + 1}`, { ...(options.device ? { device: options.device } : {}), expect: { status: ["succeeded", "failed"], code: ["device_unavailable"] } }).submit();
    probes.push(p);
    const row = await p.ended();
    p.expect = { ...p.expect, count: [row.status === "succeeded" ? 1 : 0] };
    if (row.status === "succeeded") return probes;
    if (Date.now() > deadline) return probes;
    await sleep(200, rig.signal);
  }
}

/** @type {Scenario} */
const ptyClosedMidExpect = {
  name: "serial PTY closed mid-expect",
  what: "the boards' socat processes are killed while a serial.expect waits on one console",
  forms: ["short", "full"],
  async run(rig) {
    // The expect ends at once with device_unavailable (not at its 8 s timeout): the console went away under it.
    const waiting = new Probe(rig, "expect", { action: "serial.expect", params: (m) => ({ pattern: `never-${m}`, timeout_ms: 8000 }), expect: { status: ["failed"], code: ["device_unavailable"], count: [0] } }).submit();
    await waiting.started();
    await sleep(200, rig.signal);
    const socat = rig.socatPids();
    if (socat.length !== 2) throw new Error(`expected the two boards' socat processes under the agent, found ${socat.length}`);
    const faultAt = Date.now();
    // Both consoles lose their PTY: the one waiting and the other, which must recover as well.
    for (const pid of socat) process.kill(pid, "SIGKILL");
    const row = await waiting.ended(10_000);
    const retries = [...(await writeUntilItWorks(rig, "after")), ...(await writeUntilItWorks(rig, "other board", { device: "dut2" }))];
    const backAt = retries.filter((p) => p.row()?.status === "succeeded").map((p) => Date.parse(p.row()?.finished_at ?? ""));
    const notes = [`expect ended ${row.finished_at ? Date.parse(row.finished_at) - faultAt : "?"} ms after the PTY closed (its timeout: 8000 ms)`];
    if (backAt.length === 2) notes.push(`both consoles wrote again ${Math.max(...backAt) - faultAt} ms after the PTY closed`);
    const violations = backAt.length === 2 ? [] : ["a console did not come back within 15 s"];
    const last = retries.filter((p) => p.tag.startsWith("after")).at(-1);
    if (last) last.expect = { status: ["succeeded"], count: [1] };
    return finish(rig, { name: this.name, probes: [waiting, ...retries], notes, violations });
  },
};

/**
 * Fills the filesystem under `dir` until it refuses (ENOSPC); returns the bytes written.
 * @param {string} dir  as seen from here (/proc/<pid>/root/… reaches a process's private mounts)
 */
function fillUp(dir) {
  const fd = openSync(join(dir, "filler"), "w");
  const chunk = Buffer.alloc(64 * 1024, 0x55);
  let bytes = 0;
  try {
    for (;;) bytes += writeSync(fd, chunk);
  } catch (err) {
    if (/** @type {NodeJS.ErrnoException} */ (err).code !== "ENOSPC") throw err;
  } finally {
    closeSync(fd);
  }
  // What is left is less than a chunk; take that too.
  const fd2 = openSync(join(dir, "filler-tail"), "w");
  try {
    for (;;) bytes += writeSync(fd2, Buffer.alloc(512, 0x55));
  } catch (err) {
    if (/** @type {NodeJS.ErrnoException} */ (err).code !== "ENOSPC") throw err;
  } finally {
    closeSync(fd2);
  }
  return bytes;
}

/** @param {string} dir */
function freeUp(dir) {
  rmSync(join(dir, "filler"), { force: true });
  rmSync(join(dir, "filler-tail"), { force: true });
}

/** @type {Scenario} */
const artifactDiskFull = {
  name: "artifact disk full",
  what: "the agent's data disk and the hub's run-artifact disk, small tmpfs mounts, are filled to the last byte, then freed",
  forms: ["short", "full"],
  namespaces: true,
  async run(rig) {
    await rig.stopAgent();
    await rig.stopHub();
    await rig.startHub({ runsTmpfsKiB: 2048 });
    await rig.startAgent({ dataTmpfsKiB: 4096 });
    const hubRuns = `/proc/${rig.hub?.pid}/root${join(rig.hubDataDir, "runs")}`;
    const agentData = `/proc/${rig.agent?.pid}/root${rig.agentDataDir}`;
    const filled = fillUp(hubRuns) + fillUp(agentData);
    const notes = [`filled ${Math.round(filled / 1024)} KiB`];

    // The snapshot cannot be stored: it fails storage_full (not a hardware error), and nothing else suffers.
    const snapshot = new Probe(rig, "snapshot on a full disk", { action: "capture.snapshot", params: () => ({}), expect: { status: ["failed"], code: ["storage_full"] } }).submit();
    await snapshot.reply;
    // A snapshot that could not be written leaves no half-written file taking what space there is.
    const halfWritten = readdirSync(join(agentData, "artifacts")).filter((f) => f.endsWith(".part"));
    const violations = halfWritten.length === 0 ? [] : [`the failed snapshot left ${halfWritten.length} half-written file(s) on the agent's disk`];
    const write = new Probe(rig, "write on a full disk", { expect: { status: ["succeeded"], count: [1] } }).submit();
    await write.ended();

    // A run whose artifacts cannot be stored still ends, and gives its lease back.
    const step1 = new Probe(rig, "run step 1", { expect: { status: ["succeeded"], count: [1] } });
    // The board echoes what it is sent, so the expect finds the echo's marker and has a transcript to store on the full disk.
    const echo = new Probe(rig, "run echo", { expect: { status: ["succeeded"], count: [1] } });
    const expectStep = new Probe(rig, "run expect", { action: "serial.expect", params: (m) => ({ pattern: `${echo.marker}(?:-${m})?`, regex: true, timeout_ms: 5000 }), expect: { status: ["succeeded"], count: [0] } });
    const last = new Probe(rig, "run last", { expect: { status: ["succeeded"], count: [1] } });
    const tc = await rig.api("POST", "/api/testcases", {
      name: `fault disk ${step1.marker}`,
      target: { selector: { capabilities: ["serial"], labels: { rig: "faults" } } },
      setup: [{ name: "on", action: "power.on", params: {} }],
      // The first line typed at the login prompt is echoed (the second would be a hidden password).
      steps: [echo.step, expectStep.step, step1.step, { name: "snap", action: "capture.snapshot", params: {}, continue_on_failure: true }, last.step],
      teardown: [{ name: "off", action: "power.off", params: {} }],
    });
    if (tc.status !== 201 && tc.status !== 200) throw new Error(`could not create the test case: ${tc.status} ${JSON.stringify(tc.body)}`);
    const started = await rig.api("POST", `/api/testcases/${tc.body.id}/runs`, {});
    if (started.status !== 202) throw new Error(`could not start the run: ${started.status} ${JSON.stringify(started.body)}`);
    const run = await waitFor(
      async () => {
        const r = await rig.api("GET", `/api/runs/${started.body.id}`);
        return r.status === 200 && r.body.status !== "running" && r.body.status !== "queued" ? r.body : null;
      },
      45_000,
      "the run on a full disk to end",
      { signal: rig.signal },
    );
    notes.push(`run on a full disk: ${run.status}${run.reason ? ` (${run.reason})` : ""}`);

    // Space again: the same snapshot works, nothing needs a restart.
    freeUp(hubRuns);
    freeUp(agentData);
    const again = new Probe(rig, "snapshot after freeing", { action: "capture.snapshot", params: () => ({}), expect: { status: ["succeeded"] } }).submit();
    await again.reply;
    const row = await finish(rig, { name: this.name, probes: [snapshot, write, step1, echo, expectStep, last, again], notes, violations });
    // Back to the plain disk for whatever runs next.
    await rig.stopAgent();
    await rig.stopHub();
    return row;
  },
};

export const DEVICE_SCENARIOS = [ptyClosedMidExpect, artifactDiskFull];
