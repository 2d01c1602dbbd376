// @ts-check
// Probes: serial.write actions of a unique marker (`echo <marker>`), whose runs the suite counts on the
// simulated board (its journal), never from the hub's records; and the judgement of each one at the
// end of a scenario: lost, run twice, or run without the hub having confirmed its start.
import { existsSync, readFileSync } from "node:fs";
import { waitFor } from "../lib/launch.js";
import { HOST, TX_CHAR_DELAY_MS } from "./rig.js";

/** @typedef {import("./rig.js").FaultRig} FaultRig */

/**
 * @typedef {object} ActionRow  what the hub's database holds for a probe
 * @property {string} id
 * @property {string} status
 * @property {string | null} started_at
 * @property {string | null} finished_at
 * @property {number} attempts
 * @property {string | null} reconciled_at
 * @property {string | null} error_code
 */

/**
 * @typedef {object} Expectation  what a scenario claims about one probe (besides never lost, never twice)
 * @property {string[]} [status]  one of these final statuses
 * @property {string[]} [code]  when failed, one of these error codes
 * @property {number[]} [count]  times it reached the board: one of these
 * @property {number} [minAttempts]  dispatched at least this often (a re-dispatch makes 2)
 * @property {boolean} [reconciled]  the record was reconciled from a late result
 */

/**
 * @typedef {object} Verdict
 * @property {string} tag
 * @property {string} outcome  e.g. "succeeded ×1" or "failed host_lost ×0"
 * @property {boolean} lost
 * @property {boolean} twice
 * @property {string[]} violations
 * @property {ActionRow | null} row
 * @property {number} count
 */

/**
 * @typedef {object} Window  whether a fault landed while the probe it aimed at was still under way
 * @property {boolean} held
 * @property {string} why  when it did not: what had happened already
 */

/**
 * @typedef {object} ProbeOptions
 * @property {boolean} [slow]  SLOW_WRITE_MS on the wire: a window to act in while it runs
 * @property {string} [device]  the exact device (dut1 unless given)
 * @property {boolean} [selector]  targets any device labelled rig=faults instead of an exact one
 * @property {number} [queueTimeoutMs]
 * @property {string} [action]  another action than serial.write of the marker (counted on the board only if its params send the marker)
 * @property {(marker: string) => Record<string, unknown>} [params]  that action's params
 * @property {Expectation} [expect]
 */

/** How long a slow probe takes on the wire: long enough for the suite to submit, poll and kill within it on a busy machine. */
export const SLOW_WRITE_MS = 3000;

const TERMINAL = new Set(["succeeded", "failed", "canceled"]);
let sequence = 0;

/** A marker no other probe of any run uses. */
function newMarker(/** @type {string} */ tag) {
  sequence += 1;
  return `fx${Date.now().toString(36)}${sequence.toString(36)}-${tag}`;
}

/**
 * How many complete lines holding `marker` reached any of the boards (their journals survive agent kills).
 * @param {string[]} journalPaths
 * @param {string} marker
 */
export function boardCount(journalPaths, marker) {
  let n = 0;
  for (const path of journalPaths) {
    if (!existsSync(path)) continue;
    for (const line of readFileSync(path, "utf8").split("\n")) {
      if (line === "") continue;
      const entry = /** @type {{line: string}} */ (JSON.parse(line));
      if (entry.line.includes(marker)) n += 1;
    }
  }
  return n;
}

export class Probe {
  /** @type {Promise<{status: number, body: any} | {error: string}> | null} any: the record or an envelope */
  reply = null;
  /** @type {number | null} Date.now() when it was submitted */
  submittedAt = null;

  /**
   * @param {FaultRig} rig
   * @param {string} tag  names the probe in the table
   * @param {ProbeOptions} [options]
   */
  constructor(rig, tag, options = {}) {
    this.rig = rig;
    this.tag = tag;
    this.marker = newMarker(tag);
    this.options = options;
    const pad = options.slow ? " " + "-".repeat(Math.ceil(SLOW_WRITE_MS / TX_CHAR_DELAY_MS)) : "";
    this.data = `echo ${this.marker}${pad}\n`;
    this.action = options.action ?? "serial.write";
    this.params = options.params ? options.params(this.marker) : { data: this.data };
    /** @type {Expectation} */
    this.expect = options.expect ?? {};
    /** @type {string | null} the action's id, once an answer or the database told it */
    this.id = null;
    /** The hub's answer carried an id: it accepted the action, so losing its record loses the action. */
    this.accepted = false;
  }

  /** How long the probe's data takes on the wire (0 for an action that writes nothing of its own). */
  get wireMs() {
    return this.action === "serial.write" ? this.data.length * TX_CHAR_DELAY_MS : 0;
  }

  /** The body a run step or a request carries for this probe. */
  get step() {
    return { name: `p_${this.tag.replace(/[^A-Za-z0-9_-]+/g, "_")}`, action: this.action, params: this.params };
  }

  /** Submits it without waiting for the answer (which comes when the action ends, or never if the hub dies). */
  submit() {
    const o = this.options;
    const queue = o.queueTimeoutMs ? { queue_timeout_ms: o.queueTimeoutMs } : {};
    const body = o.selector
      ? { action: this.action, params: this.params, target: { selector: { capabilities: ["serial"], labels: { rig: "faults" } } }, ...queue }
      : { action: this.action, params: this.params, ...queue };
    const path = o.selector ? "/api/actions" : `/api/hosts/${HOST}/devices/${o.device ?? "dut1"}/actions`;
    this.submittedAt = Date.now();
    this.reply = this.rig.api("POST", path, body).then(
      (res) => {
        if (typeof res.body?.id === "string") {
          this.id = res.body.id;
          this.accepted = true;
        }
        return res;
      },
      (/** @type {Error} */ err) => ({ error: err.message }),
    );
    return this;
  }

  /** @returns {ActionRow | null} */
  row() {
    const columns = "id, status, started_at, finished_at, attempts, reconciled_at, json_extract(error_json, '$.error_code') AS error_code";
    const row = this.rig.withDb(
      (db) =>
        /** @type {ActionRow | undefined} */ (
          this.id !== null
            ? db.prepare(`SELECT ${columns} FROM actions WHERE id = ?`).get(this.id)
            : this.action === "serial.write"
              ? db.prepare(`SELECT ${columns} FROM actions WHERE action = 'serial.write' AND json_extract(params_json, '$.data') = ?`).get(this.data)
              : db.prepare(`SELECT ${columns} FROM actions WHERE params_json LIKE ?`).get(`%${this.marker}%`)
        ),
    );
    if (row) this.id = row.id;
    return row ?? null;
  }

  get count() {
    return boardCount(this.rig.journalPaths, this.marker);
  }

  /**
   * Waits until the probe's record satisfies `check`.
   * @param {(row: ActionRow) => boolean} check
   * @param {string} what
   */
  async waitRow(check, what, timeoutMs = 15_000) {
    return waitFor(
      async () => {
        const row = this.row();
        return row !== null && check(row) ? row : null;
      },
      timeoutMs,
      `probe ${this.tag} ${what}`,
      { signal: this.rig.signal },
    );
  }

  /** Queued on the hub, not sent. */
  queued() {
    return this.waitRow((r) => r.status === "queued", "to be queued");
  }

  /** Sent to the agent, its start not confirmed. */
  sent() {
    return this.waitRow((r) => r.status === "running" && r.started_at === null, "to be sent");
  }

  /** The agent's start was confirmed by the hub (it runs on the device now). */
  started() {
    return this.waitRow((r) => r.started_at !== null, "to start");
  }

  /** Until it reached the board (the write completed on the wire). */
  async onBoard(timeoutMs = 15_000) {
    await waitFor(async () => this.count > 0, timeoutMs, `probe ${this.tag} to reach the board`, { signal: this.rig.signal });
  }

  /** Until the hub's record has ended. */
  ended(timeoutMs = 30_000) {
    return this.waitRow((r) => TERMINAL.has(r.status), "to end", timeoutMs);
  }

  /** Milliseconds from `sinceMs` to the start of the attempt that ran (agent clock, the same machine). */
  startedAfter(/** @type {number} */ sinceMs) {
    const row = this.row();
    return row?.started_at ? Date.parse(row.started_at) - sinceMs : null;
  }

  /**
   * Right after a fault aimed at this probe while it runs: did it land in time? Too late is the probe
   * done before the fault (on the board, or its record ended) while the wire time since its start
   * had passed (a slow machine); done sooner than its wire time allows is no timing miss, so it holds
   * and the verdict judges it.
   * @param {"board" | "record"} done  what must not have happened yet: the write completed on the board, or the record ended
   * @returns {Window}
   */
  window(done) {
    const row = this.row();
    const happened = done === "board" ? this.count > 0 : row !== null && TERMINAL.has(row.status);
    const sinceStart = row?.started_at ? Date.now() - Date.parse(row.started_at) : 0;
    const held = !happened || sinceStart < this.wireMs * 0.9;
    const what = done === "board" ? "had reached the board" : `had ended (${row?.status})`;
    return { held, why: held ? "" : `probe ${this.tag} ${what} ${sinceStart} ms after its start, before the fault landed (its write takes ${this.wireMs} ms)` };
  }

  /** @returns {Verdict} */
  verdict() {
    const row = this.row();
    const count = this.count;
    const e = this.expect;
    /** @type {string[]} */
    const violations = [];
    const terminal = row !== null && TERMINAL.has(row.status);
    // Lost: accepted (an id in the answer, or a record) but its record gone or never ended, or a write said to have succeeded that the board never saw.
    const lost = row === null ? this.accepted : !terminal || (this.action === "serial.write" && row.status === "succeeded" && count === 0);
    const twice = count > 1;
    if (count > 0 && (row === null || row.started_at === null)) violations.push(`${this.tag}: reached the board ${count}× without a confirmed start`);
    if (e.status && !e.status.includes(row?.status ?? "none")) violations.push(`${this.tag}: ended ${row?.status ?? "without a record"}, expected ${e.status.join(" or ")}`);
    if (e.code && row?.status === "failed" && !e.code.includes(row.error_code ?? "")) violations.push(`${this.tag}: failed ${row.error_code}, expected ${e.code.join(" or ")}`);
    if (e.count && !e.count.includes(count)) violations.push(`${this.tag}: reached the board ${count}×, expected ${e.count.join(" or ")}`);
    if (e.minAttempts !== undefined && (row?.attempts ?? 0) < e.minAttempts) violations.push(`${this.tag}: dispatched ${row?.attempts ?? 0}×, expected a re-dispatch (≥ ${e.minAttempts})`);
    if (e.reconciled && !row?.reconciled_at) violations.push(`${this.tag}: not reconciled from the agent's late result`);
    const status = row === null ? (this.accepted ? "accepted, then its record vanished" : "never submitted") : row.status === "failed" ? `failed ${row.error_code}` : row.status;
    const outcome = `${this.tag}: ${status}${row?.reconciled_at ? " (reconciled)" : ""}${row && row.attempts > 1 ? ` after ${row.attempts} dispatches` : ""}${this.action === "serial.write" || count > 0 ? ` ×${count} on the board` : ""}`;
    return { tag: this.tag, outcome, lost, twice, violations, row, count };
  }
}
