/**
 * A bounded text log that keeps the newest `capacity` characters. Appends are O(chunk);
 * the oldest text is dropped first, so a console that never stops talking costs a fixed amount of memory.
 */
export class TextRing {
  private chunks: string[] = [];
  private size = 0;
  /** Characters dropped since the ring was created. */
  dropped = 0;

  constructor(readonly capacity: number) {}

  get length(): number {
    return this.size;
  }

  append(text: string): void {
    if (text.length === 0) return;
    if (text.length >= this.capacity) {
      this.dropped += this.size + text.length - this.capacity;
      this.chunks = [text.slice(text.length - this.capacity)];
      this.size = this.capacity;
      return;
    }
    this.chunks.push(text);
    this.size += text.length;
    while (this.size > this.capacity) {
      const first = this.chunks[0] as string;
      const excess = this.size - this.capacity;
      if (first.length <= excess) {
        this.chunks.shift();
        this.size -= first.length;
        this.dropped += first.length;
      } else {
        this.chunks[0] = first.slice(excess);
        this.size -= excess;
        this.dropped += excess;
      }
    }
  }

  /** The newest `max` characters. */
  tail(max: number): string {
    if (max <= 0) return "";
    const parts: string[] = [];
    let need = max;
    for (let i = this.chunks.length - 1; i >= 0 && need > 0; i--) {
      const chunk = this.chunks[i] as string;
      if (chunk.length <= need) {
        parts.push(chunk);
        need -= chunk.length;
      } else {
        parts.push(chunk.slice(chunk.length - need));
        need = 0;
      }
    }
    return parts.reverse().join("");
  }

  /** Removes and returns everything, oldest first. */
  drain(): string {
    const all = this.chunks.join("");
    this.chunks = [];
    this.size = 0;
    return all;
  }
}
