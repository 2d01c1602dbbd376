import { mkdir, open, rename, stat, unlink, type FileHandle } from "node:fs/promises";
import { dirname } from "node:path";
import { settlesWithin } from "@labrig/shared";
import type { Logger } from "../logger.js";

export interface ConsoleLogFileOptions {
  /** The live file, e.g. <data_dir>/console/dut1-console.log; rotated copies get .1, .2, … */
  path: string;
  /** Size at which the live file is rotated. */
  maxBytes: number;
  /** Files kept in all, the live one included: the total on disk stays ≤ maxBytes × files. */
  files: number;
  /** Text waiting for the disk beyond this is dropped (and counted) instead of queued. */
  maxQueuedBytes?: number;
}

/** Where the on-disk console log of one resource lives. */
export function consoleLogPath(dataDir: string, device: string, resource: string): string {
  return `${dataDir}/console/${device}-${resource}.log`;
}

/**
 * The on-disk console log of one serial port: each line prefixed with the time it started,
 * rotated .log → .log.1 → .log.2 so the total stays bounded. Writes are asynchronous and the
 * queue is bounded: when the disk stalls, new output is dropped and a note says how much.
 */
export class ConsoleLogFile {
  private fh: FileHandle | null = null;
  private size = 0;
  private queue: string[] = [];
  private queuedBytes = 0;
  private writing: Promise<void> | null = null;
  private atLineStart = true;
  private droppedSinceNote = 0;
  private running = false;
  /** Bytes of console output never written, since start. */
  droppedBytes = 0;
  private readonly maxQueuedBytes: number;
  private warnedWriteError = false;

  constructor(
    private readonly options: ConsoleLogFileOptions,
    private readonly logger: Logger,
  ) {
    this.maxQueuedBytes = options.maxQueuedBytes ?? 256 * 1024;
  }

  get path(): string {
    return this.options.path;
  }

  async start(): Promise<void> {
    await mkdir(dirname(this.options.path), { recursive: true });
    this.fh = await open(this.options.path, "a");
    this.size = (await this.fh.stat()).size;
    this.running = true;
  }

  /** Queues console text (with its arrival time); never blocks and never grows past maxQueuedBytes. */
  write(text: string, at = Date.now()): void {
    if (!this.running || text === "") return;
    const stamped = this.stamp(text, at);
    const bytes = Buffer.byteLength(stamped);
    if (this.queuedBytes + bytes > this.maxQueuedBytes) {
      this.droppedBytes += Buffer.byteLength(text);
      this.droppedSinceNote += Buffer.byteLength(text);
      return;
    }
    if (this.droppedSinceNote > 0) {
      const note = `${this.atLineStart ? "" : "\n"}${new Date(at).toISOString()} [labrig: ${this.droppedSinceNote} bytes of console output were not logged; the disk was too slow]\n`;
      this.queue.push(note);
      this.queuedBytes += Buffer.byteLength(note);
      this.droppedSinceNote = 0;
    }
    this.queue.push(stamped);
    this.queuedBytes += bytes;
    this.writing ??= this.drain().finally(() => {
      this.writing = null;
    });
  }

  /** Resolves once everything queued so far is on disk (or was given up on). */
  async flushed(): Promise<void> {
    while (this.writing) await this.writing;
  }

  /** Writes what is queued (bounded wait), then closes the file. */
  async stop(timeoutMs = 2000): Promise<void> {
    this.running = false;
    const finished = await settlesWithin(this.flushed(), timeoutMs);
    if (!finished) this.logger.warn({ path: this.options.path, queued_bytes: this.queuedBytes }, "console log did not reach the disk in time; the rest is lost");
    const fh = this.fh;
    this.fh = null;
    await fh?.close();
  }

  private stamp(text: string, at: number): string {
    const iso = new Date(at).toISOString();
    let out = "";
    for (const part of text.split(/(?<=\n)/)) {
      if (this.atLineStart) out += `${iso} `;
      out += part;
      this.atLineStart = part.endsWith("\n");
    }
    return out;
  }

  private async drain(): Promise<void> {
    while (this.queue.length > 0) {
      const text = this.queue.join("");
      this.queue = [];
      const buf = Buffer.from(text);
      try {
        await this.writeRotating(buf);
      } catch (err) {
        this.droppedBytes += buf.length;
        if (!this.warnedWriteError) {
          this.warnedWriteError = true;
          this.logger.warn({ path: this.options.path, err: (err as Error).message }, "writing the console log failed; output is still kept in memory and streamed to the hub");
        }
      } finally {
        this.queuedBytes -= buf.length;
      }
    }
  }

  private async writeRotating(buf: Buffer): Promise<void> {
    let offset = 0;
    while (offset < buf.length) {
      if (this.fh === null) {
        // A failed rotation left no file open: try again, unless the log was stopped.
        if (!this.running) return;
        this.fh = await open(this.options.path, "a");
        this.size = (await this.fh.stat()).size;
      }
      const room = this.options.maxBytes - this.size;
      if (room <= 0) {
        await this.rotate();
        continue;
      }
      let n = Math.min(room, buf.length - offset);
      if (n < buf.length - offset) {
        // Rotate at a line boundary where one fits, so each file starts with a timestamp.
        const nl = buf.lastIndexOf(0x0a, offset + n - 1);
        if (nl >= offset) n = nl + 1 - offset;
        else if (this.size > 0) {
          await this.rotate();
          continue;
        }
      }
      await this.fh.write(buf, offset, n);
      this.size += n;
      offset += n;
    }
  }

  private async rotate(): Promise<void> {
    const path = this.options.path;
    await this.fh?.close();
    this.fh = null;
    if (this.options.files <= 1) {
      await unlinkIfPresent(path);
    } else {
      for (let i = this.options.files - 1; i >= 1; i--) {
        const from = i === 1 ? path : `${path}.${i - 1}`;
        await renameIfPresent(from, `${path}.${i}`);
      }
    }
    this.fh = await open(path, "a");
    this.size = 0;
  }
}

async function renameIfPresent(from: string, to: string): Promise<void> {
  try {
    await rename(from, to);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
}

async function unlinkIfPresent(path: string): Promise<void> {
  try {
    await unlink(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
}

/** Sizes of the live file and its rotated copies (tests and doctor). */
export async function consoleLogSizes(path: string, files: number): Promise<number[]> {
  const sizes: number[] = [];
  for (let i = 0; i < files; i++) {
    const p = i === 0 ? path : `${path}.${i}`;
    try {
      sizes.push((await stat(p)).size);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    }
  }
  return sizes;
}
