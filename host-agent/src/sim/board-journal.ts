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
  private failed = false;

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
      this.failed = false;
    } catch (err) {
      // Logged once per failing stretch: a full disk must not flood the log with one line per character received.
      if (!this.failed) this.logger.error({ path: this.path, err: (err as Error).message }, "cannot append to the board journal; lines are missing from it until this clears");
      this.failed = true;
    }
  }
}
