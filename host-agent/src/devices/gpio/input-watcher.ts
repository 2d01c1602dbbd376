import type { Logger } from "../../logger.js";
import type { Bit, GpioLine } from "./gpio-line.js";

export type EdgeSetting = "none" | "rising" | "falling" | "both";

export interface InputWatcherOptions {
  edge: EdgeSetting;
  /** A new level is reported only once it has held this long. */
  debounceMs: number;
  /** Sampling period where the line has no edge interrupts. */
  pollMs: number;
}

/** How a watcher learns of changes: interrupts, or sampling, with the reason in `detail`. */
export interface WatchMode {
  mode: "interrupt" | "poll" | "off";
  detail?: string;
}

/**
 * Reports debounced level changes of an input line. It uses the line's edge interrupts
 * when it has them, and otherwise samples the line every pollMs (and says so): some pins
 * have no interrupt, in-memory lines have none, and a fake sysfs tree refuses epoll.
 * Interrupts are taken on both edges and filtered here, so the last level stays exact.
 */
export class InputWatcher {
  private reported: Bit = 0;
  private pollTimer: NodeJS.Timeout | null = null;
  private debounceTimer: NodeJS.Timeout | null = null;
  private interrupts = false;
  private running = false;
  private currentMode: WatchMode = { mode: "off" };

  constructor(
    private readonly line: GpioLine,
    private readonly options: InputWatcherOptions,
    private readonly onValue: (value: Bit) => void,
    private readonly logger: Logger,
  ) {}

  get mode(): WatchMode {
    return this.currentMode;
  }

  /** Starts watching and returns how; edge none watches nothing. */
  start(): WatchMode {
    if (this.options.edge === "none") return this.currentMode;
    this.running = true;
    this.reported = this.line.read();
    if (this.line.watchInterrupts) {
      try {
        this.line.watchInterrupts(() => this.onSuspectedChange());
        this.interrupts = true;
        this.currentMode = { mode: "interrupt" };
        return this.currentMode;
      } catch (err) {
        this.logger.info({ line: this.line.name, err: (err as Error).message, poll_ms: this.options.pollMs }, "edge interrupts unavailable; polling the line");
      }
    }
    this.pollTimer = setInterval(() => this.sample(), this.options.pollMs);
    this.currentMode = { mode: "poll", detail: `edge interrupts unavailable: polling every ${this.options.pollMs} ms` };
    return this.currentMode;
  }

  stop(): void {
    this.running = false;
    if (this.pollTimer) clearInterval(this.pollTimer);
    if (this.debounceTimer) clearTimeout(this.debounceTimer);
    this.pollTimer = null;
    this.debounceTimer = null;
    if (this.interrupts) {
      this.interrupts = false;
      try {
        this.line.unwatchInterrupts?.();
      } catch (err) {
        this.logger.warn({ line: this.line.name, err: (err as Error).message }, "stopping edge interrupts failed; the line is released next anyway");
      }
    }
  }

  private sample(): void {
    if (this.readSafe() !== this.reported) this.onSuspectedChange();
  }

  /** A change may have happened: confirm the level after the debounce time, then report it. */
  private onSuspectedChange(): void {
    if (!this.running || this.debounceTimer) return;
    // Edges the kernel already debounced need no second wait; the level is still confirmed by a read.
    const wait = this.interrupts && this.line.kernelDebounced === true ? 0 : this.options.debounceMs;
    this.debounceTimer = setTimeout(() => {
      this.debounceTimer = null;
      if (!this.running) return;
      const value = this.readSafe();
      if (value === this.reported) return;
      this.reported = value;
      const { edge } = this.options;
      if (edge === "both" || (edge === "rising" && value === 1) || (edge === "falling" && value === 0)) this.onValue(value);
    }, wait);
  }

  private readSafe(): Bit {
    try {
      return this.line.read();
    } catch (err) {
      this.logger.warn({ line: this.line.name, err: (err as Error).message }, "reading a watched input failed; keeping the last level");
      return this.reported;
    }
  }
}
