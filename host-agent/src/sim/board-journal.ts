import { appendFileSync, mkdirSync } from "node:fs";
import { dirname } from "node:path";
import type { Logger } from "../logger.js";
import type { DutState } from "./simulated-dut.js";

/** One line of a board journal: a complete line that arrived on the simulated board's console. */
export interface BoardJournalEntry {
  at: string;
  /** What the board was doing when the line arrived (`off`: it reached the wire, nobody read it). */
  state: DutState;
  line: string;
}

/**
 * What reached a simulated board's UART, one JSON line per received line, appended synchronously:
 * each line is in the file before the next byte is read, so it survives a kill -9 of the agent
 * that hosts the board. The fault suite counts these lines to prove no action ran twice.
 */
export class BoardJournal {
  /** Lines lost since appending began to fail (0 while it works). */
  private missed = 0;

  constructor(
    readonly path: string,
    private readonly logger: Logger,
  ) {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  }

  record(line: string, state: DutState): void {
    const entry: BoardJournalEntry = { at: new Date().toISOString(), state, line };
    try {
      appendFileSync(this.path, `${JSON.stringify(entry)}\n`, { mode: 0o600 });
    } catch (err) {
      // Logged once per failing stretch (a full disk must not flood the log with a line per line received),
      // with `board_journal` set: the fault suite fails the scenario it sees this in, as its count is too low.
      if (this.missed === 0) this.logger.error({ path: this.path, err: (err as Error).message, board_journal: "append_failed" }, "cannot append to the board journal; lines are missing from it until this clears");
      this.missed += 1;
      return;
    }
    if (this.missed > 0) this.logger.warn({ path: this.path, missed: this.missed, board_journal: "append_resumed" }, "the board journal appends again; lines are missing from it");
    this.missed = 0;
  }
}
