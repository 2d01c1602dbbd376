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
 * Turns a console's many small reads into a few `console.output` events: output after a quiet
 * spell goes at once (a typed character's echo is not held back), what follows is gathered for
 * ~50 ms or 16 KiB, and all of it is held (bounded) while the hub is away so the dashboard gets the
 * recent past when the link comes back. dropped_bytes counts characters of decoded text,
 * which equals bytes for the ASCII consoles boards print.
 */
export class ConsoleStream {
  private readonly buffer: TextRing;
  private timer: NodeJS.Timeout | null = null;
  private seq = 0;
  private reportedDropped = 0;
  private stopped = false;
  /** When the last chunk went out (monotonic ms); -Infinity before the first. */
  private lastSentAtMs = Number.NEGATIVE_INFINITY;
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
      // At most one gathered chunk per interval: send now when the last one is that old, else when it will be.
      const wait = this.lastSentAtMs + this.flushIntervalMs - performance.now();
      if (wait <= 0) this.flush();
      else this.timer = setTimeout(() => this.flush(), wait);
    }
  }

  /** Sends what is buffered, if the hub is there; called by the timer and when the link comes back. */
  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.buffer.length === 0 || !this.sink.canSend()) return;
    const text = this.buffer.drain();
    this.lastSentAtMs = performance.now();
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
