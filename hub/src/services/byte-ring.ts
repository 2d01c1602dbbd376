/** Smallest allocation of a ring that holds anything; avoids regrowing for every tiny chunk. */
const MIN_ALLOCATION = 1024;

/**
 * The newest `capacity` bytes of a stream, in one buffer of its own that never holds more than
 * `capacity` bytes: it grows (doubling) up to the capacity as data arrives, then wraps. Nothing it
 * keeps references a larger buffer, unlike a `subarray` of a concatenation, which keeps all of it alive.
 */
export class ByteRing {
  private buf: Buffer | null = null;
  /** Index of the oldest byte. */
  private start = 0;
  private used = 0;

  constructor(private cap: number) {}

  get capacity(): number {
    return this.cap;
  }

  /** Bytes held. */
  get size(): number {
    return this.used;
  }

  /** Bytes allocated (what the ring costs in memory). */
  get allocated(): number {
    return this.buf?.length ?? 0;
  }

  /** Appends `data`, dropping the oldest bytes beyond the capacity. */
  append(data: Buffer): void {
    if (this.cap === 0 || data.length === 0) return;
    if (data.length >= this.cap) {
      if (this.allocated !== this.cap) this.reallocate(this.cap, Buffer.alloc(0));
      data.copy(this.buf as Buffer, 0, data.length - this.cap);
      this.start = 0;
      this.used = this.cap;
      return;
    }
    const needed = Math.min(this.cap, this.used + data.length);
    if (this.allocated < needed) this.reallocate(Math.min(this.cap, Math.max(needed, this.allocated * 2, MIN_ALLOCATION)), this.bytes());
    const buf = this.buf as Buffer;
    const overflow = this.used + data.length - buf.length;
    if (overflow > 0) {
      this.start = (this.start + overflow) % buf.length;
      this.used -= overflow;
    }
    const at = (this.start + this.used) % buf.length;
    const first = Math.min(data.length, buf.length - at);
    data.copy(buf, at, 0, first);
    if (first < data.length) data.copy(buf, 0, first);
    this.used += data.length;
  }

  /** Lowers (or raises) the capacity; lowering keeps the newest bytes and frees the rest at once. */
  resize(capacity: number): void {
    if (capacity === this.cap) return;
    this.cap = capacity;
    if (this.allocated <= capacity) return;
    const kept = this.bytes();
    this.reallocate(capacity, kept.subarray(Math.max(0, kept.length - capacity)));
  }

  /** The bytes held, oldest first, as a new buffer. */
  bytes(): Buffer {
    const buf = this.buf;
    if (!buf || this.used === 0) return Buffer.alloc(0);
    const out = Buffer.allocUnsafe(this.used);
    const first = Math.min(this.used, buf.length - this.start);
    buf.copy(out, 0, this.start, this.start + first);
    if (first < this.used) buf.copy(out, first, 0, this.used - first);
    return out;
  }

  private reallocate(size: number, content: Buffer): void {
    // allocUnsafeSlow: a buffer of its own, never a slice of Node's shared pool (which would keep the pool slab alive).
    this.buf = size === 0 ? null : Buffer.allocUnsafeSlow(size);
    this.start = 0;
    this.used = Math.min(content.length, size);
    if (this.buf) content.copy(this.buf, 0, content.length - this.used);
  }
}
