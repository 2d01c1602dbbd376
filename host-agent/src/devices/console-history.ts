/** One stretch of console output and when its first character arrived. */
export interface ConsoleEntry {
  /** Milliseconds since the epoch. */
  at: number;
  text: string;
}

export interface ConsoleHistoryOptions {
  /** Characters kept in memory; the oldest are dropped first. */
  capacityChars: number;
  /** Entries kept; bounds the per-entry overhead when a device sends one byte at a time. */
  maxEntries?: number;
  /** Chunks arriving within this many ms of an entry's start join it, so a burst costs one entry. */
  coalesceMs?: number;
}

/** What arrived after a position: the text, where the next read starts, and what was lost meanwhile. */
export interface HistoryRead {
  text: string;
  /** Absolute offset just after `text`. */
  next: number;
  /** True when `max` stopped the read before the newest character. */
  more: boolean;
  /** Characters after the requested position that were dropped before this read. */
  dropped: number;
}

/**
 * The in-memory console log of one serial port: a ring of timestamped chunks bounded both in
 * characters and in entries, so neither a chatty device nor a one-byte-at-a-time one grows it.
 * Every character has an absolute offset (characters appended since creation), so a reader can
 * ask for what came after the offset it last saw and learn how much fell out of the ring meanwhile.
 */
export class ConsoleHistory {
  private entries: ConsoleEntry[] = [];
  private head = 0;
  private size = 0;
  private readonly capacity: number;
  private readonly maxEntries: number;
  private readonly coalesceMs: number;
  /** Characters dropped since the history was created. */
  dropped = 0;
  /** Characters appended since the history was created: the offset just after the newest one. */
  private total = 0;

  constructor(options: ConsoleHistoryOptions) {
    this.capacity = options.capacityChars;
    this.maxEntries = options.maxEntries ?? 4096;
    this.coalesceMs = options.coalesceMs ?? 10;
  }

  /** Characters held. */
  get length(): number {
    return this.size;
  }

  /** Entries held. */
  get entryCount(): number {
    return this.entries.length - this.head;
  }

  /** Offset just after the newest character. */
  get end(): number {
    return this.total;
  }

  /** Offset of the oldest character still held. */
  get start(): number {
    return this.total - this.size;
  }

  append(text: string, at = Date.now()): void {
    if (text.length === 0) return;
    this.total += text.length;
    if (text.length > this.capacity) {
      this.dropped += text.length - this.capacity;
      text = text.slice(text.length - this.capacity);
    }
    const last = this.entries[this.entries.length - 1];
    if (last !== undefined && this.entries.length > this.head && at - last.at < this.coalesceMs) last.text += text;
    else this.entries.push({ at, text });
    this.size += text.length;
    while (this.size > this.capacity || this.entryCount > this.maxEntries) {
      const first = this.entries[this.head] as ConsoleEntry;
      const excess = this.size - this.capacity;
      if (excess > 0 && first.text.length > excess) {
        first.text = first.text.slice(excess);
        this.size -= excess;
        this.dropped += excess;
        continue;
      }
      this.head++;
      this.size -= first.text.length;
      this.dropped += first.text.length;
    }
    // Compact now and then instead of shifting on every drop.
    if (this.head > 1024 && this.head * 2 > this.entries.length) {
      this.entries = this.entries.slice(this.head);
      this.head = 0;
    }
  }

  /** Up to `max` characters from absolute offset `from` (clamped to what is held; callers check it is not past the end). */
  readFrom(from: number, max: number): HistoryRead {
    const begin = Math.max(from, this.start);
    const dropped = begin - from;
    const parts: string[] = [];
    let need = max;
    let pos = this.start;
    for (let i = this.head; i < this.entries.length && need > 0; i++) {
      const e = this.entries[i] as ConsoleEntry;
      const entryEnd = pos + e.text.length;
      if (entryEnd > begin) {
        const piece = e.text.slice(Math.max(0, begin - pos), Math.max(0, begin - pos) + need);
        parts.push(piece);
        need -= piece.length;
      }
      pos = entryEnd;
    }
    const text = parts.join("");
    const next = begin + text.length;
    return { text, next, more: next < this.total, dropped };
  }

  /** The newest `max` characters as plain text. */
  tail(max: number): string {
    return this.tailEntries(max)
      .map((e) => e.text)
      .join("");
  }

  /** The newest `max` characters with the time each stretch arrived. */
  tailEntries(max: number): ConsoleEntry[] {
    const out: ConsoleEntry[] = [];
    let need = max;
    for (let i = this.entries.length - 1; i >= this.head && need > 0; i--) {
      const e = this.entries[i] as ConsoleEntry;
      if (e.text.length <= need) {
        out.push({ at: e.at, text: e.text });
        need -= e.text.length;
      } else {
        out.push({ at: e.at, text: e.text.slice(e.text.length - need) });
        need = 0;
      }
    }
    return out.reverse();
  }
}
