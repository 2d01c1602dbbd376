import { nowIso, type ConsoleOutput } from "@labrig/shared";
import { TextRing } from "./text-ring.js";

/** Where console chunks go (the hub link). `canSend` is false while the hub is away. */
export interface ConsoleSink {
  canSend(): boolean;
  sendConsole(chunk: ConsoleOutput): void;
}

export interface ConsoleStreamOptions {
  /** How long small chunks are gathered before one is sent. */
  flushIntervalMs?: number;
  /** A chunk this big is sent at once, and no chunk is bigger. */
  maxChunkChars?: number;
  /** Held while the hub is away; the oldest text is dropped beyond this and counted in dropped_bytes. */
  maxBufferedChars?: number;
}

/**
 * Turns a console's many small reads into a few `console.output` events: chunks are gathered
 * for ~50 ms or 16 KiB, and held (bounded) while the hub is away so the dashboard gets the
 * recent past when the link comes back. dropped_bytes counts characters of decoded text,
 * which equals bytes for the ASCII consoles boards print.
 */
export class ConsoleStream {
  private readonly buffer: TextRing;
  private timer: NodeJS.Timeout | null = null;
  private seq = 0;
  private reportedDropped = 0;
  private stopped = false;
  private readonly flushIntervalMs: number;
  private readonly maxChunkChars: number;

  constructor(
    private readonly ids: { host: string; device: string; resource: string },
    private readonly sink: ConsoleSink,
    options: ConsoleStreamOptions = {},
  ) {
    this.flushIntervalMs = options.flushIntervalMs ?? 50;
    this.maxChunkChars = options.maxChunkChars ?? 16 * 1024;
    this.buffer = new TextRing(options.maxBufferedChars ?? 256 * 1024);
  }

  /** Characters waiting to be sent. */
  get buffered(): number {
    return this.buffer.length;
  }

  push(text: string): void {
    if (this.stopped || text === "") return;
    this.buffer.append(text);
    if (this.buffer.length >= this.maxChunkChars) {
      this.flush();
    } else if (this.timer === null) {
      this.timer = setTimeout(() => this.flush(), this.flushIntervalMs);
    }
  }

  /** Sends what is buffered, if the hub is there; called by the timer and when the link comes back. */
  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.buffer.length === 0 || !this.sink.canSend()) return;
    const text = this.buffer.drain();
    for (let i = 0; i < text.length; i += this.maxChunkChars) {
      const dropped = this.buffer.dropped - this.reportedDropped;
      this.reportedDropped = this.buffer.dropped;
      this.sink.sendConsole({
        ...this.ids,
        seq: this.seq++,
        at: nowIso(),
        data: text.slice(i, i + this.maxChunkChars),
        dropped_bytes: dropped,
      });
    }
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}
