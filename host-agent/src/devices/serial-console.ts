import { randomBytes } from "node:crypto";
import { realpathSync } from "node:fs";
import { StringDecoder } from "node:string_decoder";
import { LabrigError, abortReason, backoffMs, formatSerialCursor, parseSerialCursor, sleep, type ActionResultOf } from "@labrig/shared";
import { SerialPort } from "serialport";
import type { Logger } from "../logger.js";
import { ConsoleHistory, type ConsoleEntry } from "./console-history.js";
import { ConsoleLogFile, type ConsoleLogFileOptions } from "./console-log-file.js";
import { DEFAULT_EXPECT_BUFFER_CHARS, ExpectEngine, type ExpectOptions, type ExpectResult } from "./expect-engine.js";

export type { ExpectOptions, ExpectResult } from "./expect-engine.js";

export interface SerialConsoleOptions {
  /** `device/resource`, for logs and messages. */
  name: string;
  path: string;
  baudRate: number;
  dataBits: 5 | 6 | 7 | 8;
  parity: "none" | "even" | "odd";
  stopBits: 1 | 2;
  rtsCts: boolean;
  txCharDelayMs: number;
  /** Size of the console log that serial.read and serial.tail read from. */
  logChars?: number;
  /** Size of the not-yet-consumed buffer serial.expect searches. */
  expectBufferChars?: number;
  reopenBaseMs?: number;
  reopenMaxMs?: number;
  /** How often an open port's path is checked (see presenceCheck). */
  presenceCheckMs?: number;
  /** The rotating on-disk console log; none when absent. */
  logFile?: ConsoleLogFileOptions;
}

export interface SerialConsoleHooks {
  /** Every chunk received, decoded as UTF-8, in order. */
  onData?: (text: string) => void;
  /** The port became usable (ready) or was lost / could not be opened (unavailable). */
  onState?: (status: "ready" | "unavailable", detail?: string) => void;
}

export const DEFAULT_LOG_CHARS = 256 * 1024;
export { DEFAULT_EXPECT_BUFFER_CHARS };

/**
 * A serial console on the real serialport binding: the transport under an ExpectEngine, and
 * the console log that serial.read (by cursor) and serial.tail read.
 *
 * Memory is bounded everywhere: the log is a ring, the expect buffer drops its oldest text,
 * and no line parser is used (a peer that never sends a newline would grow one forever).
 * serialport does not reopen after an unplug, so this class does, with capped backoff.
 */
export class SerialConsole {
  private port: SerialPort | null = null;
  private decoder = new StringDecoder("utf8");
  private readonly log: ConsoleHistory;
  private readonly logFile: ConsoleLogFile | null;
  private readonly engine: ExpectEngine;
  /** Names this run of the console in its cursors: a cursor from an earlier run never reads as an offset into this one. */
  private readonly epoch = randomBytes(6).toString("hex");
  private reopenTimer: NodeJS.Timeout | null = null;
  private presenceTimer: NodeJS.Timeout | null = null;
  /** What the configured path resolved to when the port was opened. */
  private openedTarget: string | null = null;
  private reopenAttempt = 0;
  private running = false;
  private available: boolean | null = null;
  private openWaiters = new Set<() => void>();

  constructor(
    private readonly options: SerialConsoleOptions,
    private readonly logger: Logger,
    private readonly hooks: SerialConsoleHooks = {},
  ) {
    this.log = new ConsoleHistory({ capacityChars: options.logChars ?? DEFAULT_LOG_CHARS });
    this.logFile = options.logFile === undefined ? null : new ConsoleLogFile(options.logFile, logger);
    this.engine = new ExpectEngine({ name: options.name, bufferChars: options.expectBufferChars ?? DEFAULT_EXPECT_BUFFER_CHARS });
  }

  get name(): string {
    return this.options.name;
  }

  get isOpen(): boolean {
    return this.port?.isOpen === true;
  }

  /** Characters held for expect (bounded by expectBufferChars). */
  get pendingLength(): number {
    return this.engine.pendingLength;
  }

  /** Characters held in the console log (bounded by logChars). */
  get logLength(): number {
    return this.log.length;
  }

  /**
   * Tries to open the port once. A missing port is not fatal: a board may be unplugged when
   * the agent starts, so the console reports itself unavailable and keeps trying.
   */
  async start(): Promise<void> {
    if (this.logFile) {
      try {
        await this.logFile.start();
      } catch (err) {
        // The console still works without its disk log; memory and the hub stream keep the output.
        this.logger.warn({ console: this.name, path: this.logFile.path, err: (err as Error).message }, "cannot open the console log file; check data_dir permissions");
      }
    }
    this.running = true;
    await this.tryOpen();
  }

  async stop(): Promise<void> {
    this.running = false;
    if (this.reopenTimer) clearTimeout(this.reopenTimer);
    this.reopenTimer = null;
    this.stopPresenceCheck();
    this.engine.failAll(new LabrigError("device_unavailable", `Serial console ${this.name} was stopped; the agent is shutting down.`));
    const port = this.port;
    this.port = null;
    if (port?.isOpen) {
      await new Promise<void>((resolve) => {
        port.close((err) => {
          if (err) this.logger.warn({ console: this.name, err: err.message }, "closing serial port failed; the descriptor is released on exit anyway");
          resolve();
        });
      });
    }
    await this.logFile?.stop();
  }

  /** The on-disk log (tests, bench), or null when none is configured. */
  get consoleLogFile(): ConsoleLogFile | null {
    return this.logFile;
  }

  /** Resolves once the port is open (used by start-up code and tests), or rejects after `timeoutMs`. */
  async waitUntilOpen(timeoutMs: number): Promise<void> {
    if (this.isOpen) return;
    await new Promise<void>((resolve, reject) => {
      const done = (): void => {
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        this.openWaiters.delete(done);
        reject(new LabrigError("device_unavailable", `Serial port ${this.options.path} (${this.name}) did not open within ${timeoutMs} ms.`));
      }, timeoutMs);
      this.openWaiters.add(done);
    });
  }

  /** The newest `maxChars` of the console log. Works while the port is away: the log is how one sees why it went. */
  tail(maxChars: number): string {
    return this.log.tail(maxChars);
  }

  /**
   * What arrived after cursor `since` (up to `maxChars`), with the cursor to pass next. Without
   * `since` nothing is returned and the cursor marks now. A cursor of another epoch (an earlier
   * run of the agent) restarts at the oldest output held; one past the end is refused.
   */
  read(since: string | undefined, maxChars: number): ActionResultOf<"serial.read"> {
    if (since === undefined) return { text: "", cursor: formatSerialCursor(this.epoch, this.log.end), more: false, dropped: 0, restarted: false };
    const cursor = parseSerialCursor(since);
    const restarted = cursor.epoch !== this.epoch;
    if (!restarted && cursor.offset > this.log.end) {
      throw new LabrigError("validation_failed", `params.since: cursor ${since} is past the end of ${this.name}'s output (${this.log.end}); pass back a cursor that serial.read returned.`);
    }
    const r = this.log.readFrom(restarted ? 0 : cursor.offset, maxChars);
    return { text: r.text, cursor: formatSerialCursor(this.epoch, r.next), more: r.more, dropped: r.dropped, restarted };
  }

  /** The newest `maxChars` of the console log with the time each stretch arrived. */
  history(maxChars: number): ConsoleEntry[] {
    return this.log.tailEntries(maxChars);
  }

  /** Writes `data`; with tx_char_delay_ms, one character at a time with that pause after each. Returns bytes written. */
  async write(data: string, signal?: AbortSignal): Promise<number> {
    const port = this.requireOpen();
    const delay = this.options.txCharDelayMs;
    if (delay <= 0) {
      await this.writeAndDrain(port, data);
      return Buffer.byteLength(data);
    }
    let bytes = 0;
    for (const ch of data) {
      if (signal?.aborted) throw abortReason(signal);
      await this.writeAndDrain(port, ch);
      bytes += Buffer.byteLength(ch);
      await sleep(delay, signal);
    }
    return bytes;
  }

  /**
   * Waits for `pattern` in output not consumed by an earlier expect (see ExpectEngine); refuses
   * at once while the port is not open.
   */
  expect(options: ExpectOptions, signal?: AbortSignal): Promise<ExpectResult> {
    this.requireOpen();
    return this.engine.expect(options, signal);
  }

  private requireOpen(): SerialPort {
    const port = this.port;
    if (!port?.isOpen) {
      throw new LabrigError(
        "device_unavailable",
        `Serial console ${this.name} (${this.options.path}) is not open; check the cable/adapter. The agent keeps trying to reopen it.`,
      );
    }
    return port;
  }

  private writeAndDrain(port: SerialPort, data: string): Promise<void> {
    return new Promise((resolve, reject) => {
      port.write(data, (err) => {
        if (err) {
          reject(new LabrigError("hardware_error", `Writing to ${this.name} failed: ${err.message}`, { cause: err }));
          return;
        }
        port.drain((drainErr) => {
          if (drainErr) reject(new LabrigError("hardware_error", `Waiting for ${this.name} to send failed: ${drainErr.message}`, { cause: drainErr }));
          else resolve();
        });
      });
    });
  }

  private async tryOpen(): Promise<void> {
    const o = this.options;
    const port = new SerialPort({
      path: o.path,
      baudRate: o.baudRate,
      dataBits: o.dataBits,
      parity: o.parity,
      stopBits: o.stopBits,
      rtscts: o.rtsCts,
      autoOpen: false,
    });
    try {
      await new Promise<void>((resolve, reject) => port.open((err) => (err ? reject(err) : resolve())));
    } catch (err) {
      this.markUnavailable(`cannot open ${o.path}: ${(err as Error).message}`);
      this.scheduleReopen();
      return;
    }
    if (!this.running) {
      // stop() ran while the open was in flight: give the descriptor back at once.
      port.close((err) => {
        if (err) this.logger.warn({ console: this.name, err: err.message }, "closing a port opened during shutdown failed");
      });
      return;
    }
    this.port = port;
    this.decoder = new StringDecoder("utf8");
    this.reopenAttempt = 0;
    this.openedTarget = resolveTarget(o.path);
    this.stopPresenceCheck();
    this.presenceTimer = setInterval(() => this.presenceCheck(port), this.options.presenceCheckMs ?? 1000);
    this.presenceTimer.unref();
    port.on("data", (chunk: Buffer) => this.onData(chunk));
    port.on("error", (err: Error) => this.logger.warn({ console: this.name, err: err.message }, "serial port error"));
    port.on("close", (err: Error | null) => this.onClose(port, err));
    this.available = true;
    this.logger.info({ console: this.name, path: o.path, baud_rate: o.baudRate }, "serial console open");
    this.hooks.onState?.("ready");
    for (const done of [...this.openWaiters]) done();
    this.openWaiters.clear();
  }

  /**
   * serialport notices most unplugs through a read error, but after some hangups the device
   * reads as end-of-file forever and the binding just reads again (seen with PTYs under load).
   * So an open port's path is also checked: gone, or now naming another device node (a quick
   * replug), means the port is lost.
   */
  private presenceCheck(port: SerialPort): void {
    if (port !== this.port || !this.running) return;
    const now = resolveTarget(this.options.path);
    if (now === this.openedTarget) return;
    const detail = now === null ? `port ${this.options.path} disappeared` : `port ${this.options.path} now points at ${now} (was ${this.openedTarget})`;
    this.port = null;
    port.close((err) => {
      if (err) this.logger.debug({ console: this.name, err: err.message }, "closing a vanished port failed; its descriptor is dropped anyway");
    });
    this.lose(detail);
  }

  private stopPresenceCheck(): void {
    if (this.presenceTimer) clearInterval(this.presenceTimer);
    this.presenceTimer = null;
  }

  private onClose(port: SerialPort, err: Error | null): void {
    if (port !== this.port) return;
    this.port = null;
    if (!this.running) return;
    this.lose(`port ${this.options.path} closed${err ? `: ${err.message}` : ""}`);
  }

  /** The open port went away: fail waiting expects, report it, and start reopening. */
  private lose(detail: string): void {
    this.stopPresenceCheck();
    this.engine.failAll(new LabrigError("device_unavailable", `Serial console ${this.name} went away while waiting (${detail}). The agent is reopening it; retry shortly.`));
    this.markUnavailable(detail);
    this.scheduleReopen();
  }

  private markUnavailable(detail: string): void {
    if (this.available === false) {
      this.logger.debug({ console: this.name, detail, attempt: this.reopenAttempt }, "serial port still unavailable");
      return;
    }
    this.available = false;
    this.logger.warn({ console: this.name, detail }, "serial console unavailable; retrying with backoff");
    this.hooks.onState?.("unavailable", detail);
  }

  private scheduleReopen(): void {
    if (!this.running || this.reopenTimer) return;
    const delay = backoffMs(this.reopenAttempt++, this.options.reopenBaseMs ?? 250, this.options.reopenMaxMs ?? 5000);
    this.reopenTimer = setTimeout(() => {
      this.reopenTimer = null;
      if (!this.running) return;
      this.tryOpen().catch((err: unknown) => {
        this.logger.error({ console: this.name, err: (err as Error).message }, "reopening serial port failed unexpectedly");
        this.scheduleReopen();
      });
    }, delay);
  }

  private onData(chunk: Buffer): void {
    const text = this.decoder.write(chunk);
    if (text === "") return;
    const at = Date.now();
    this.log.append(text, at);
    this.logFile?.write(text, at);
    this.hooks.onData?.(text);
    this.engine.push(text);
  }
}

/** The device node `path` resolves to (following by-id links), or null when it does not exist. */
function resolveTarget(path: string): string | null {
  try {
    return realpathSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return null;
    // Unreadable (EACCES on a parent, ELOOP): treat as present; opening it will say what is wrong.
    return path;
  }
}
