import type { Logger } from "../logger.js";

/** Pixel layouts frame sources deliver: RGBA (what jpeg-js wants) or I420 (what encoders eat natively). */
export type PixelFormat = "RGBA" | "I420";

/** One uncompressed video frame. `data` is never written to after the frame is published. */
export interface Frame {
  /** Counts up from 0 over the life of the source object (restarts continue the count). */
  seq: number;
  /** Microseconds since the source started. */
  timestampUs: number;
  width: number;
  height: number;
  format: PixelFormat;
  data: Buffer;
}

/** What a frame source reports about itself (mapped to the resource's device state). */
export type SourceStatus = "ready" | "unavailable" | "error";

/** A subscription to a source's frames; `dropped` counts frames this subscriber was too slow to take. */
export interface FrameSubscription {
  unsubscribe(): void;
  readonly dropped: number;
}

/**
 * A stream of frames from somewhere (a V4L2 dongle through ffmpeg, a generated pattern).
 * Bounded by design: only the latest frame is kept, and a subscriber still busy with the
 * previous frame gets the newest one afterwards, never a queue.
 */
export interface FrameSource {
  readonly width: number;
  readonly height: number;
  readonly fps: number;
  readonly format: PixelFormat;
  start(): Promise<void>;
  stop(): Promise<void>;
  /** The most recent frame, or null before the first one. */
  latest(): Frame | null;
  /** Calls `fn` for each new frame. If `fn` returns a promise, frames arriving before it settles are dropped but the newest. */
  subscribe(fn: (frame: Frame) => void | Promise<void>): FrameSubscription;
  /** The next frame newer than `afterSeq` (pass -1 for any), or null when none came within `timeoutMs`. */
  next(afterSeq: number, timeoutMs: number): Promise<Frame | null>;
  /** Why frames are not coming, when they are not (null while the source is fine). */
  readonly problem: string | null;
}

/** Bytes in one frame of this size and layout. */
export function frameBytes(width: number, height: number, format: PixelFormat): number {
  return format === "RGBA" ? width * height * 4 : (width * height * 3) / 2;
}

interface Subscriber {
  fn: (frame: Frame) => void | Promise<void>;
  busy: boolean;
  pending: Frame | null;
  dropped: number;
  active: boolean;
}

/**
 * Latest-frame holder and fan-out shared by the sources. Each subscriber has at most one
 * frame in hand and one waiting; anything older is dropped and counted.
 */
export class FrameFanout {
  private current: Frame | null = null;
  private readonly subscribers = new Set<Subscriber>();
  private readonly waiters = new Set<{ afterSeq: number; resolve: (f: Frame) => void }>();

  constructor(
    private readonly logger: Logger,
    private readonly name: string,
  ) {}

  latest(): Frame | null {
    return this.current;
  }

  /** Forgets the last frame (the source stopped: an old picture must not pass for a current one). */
  clear(): void {
    this.current = null;
  }

  publish(frame: Frame): void {
    this.current = frame;
    for (const w of [...this.waiters]) {
      if (frame.seq > w.afterSeq) {
        this.waiters.delete(w);
        w.resolve(frame);
      }
    }
    for (const s of this.subscribers) this.deliver(s, frame);
  }

  subscribe(fn: (frame: Frame) => void | Promise<void>): FrameSubscription {
    const sub: Subscriber = { fn, busy: false, pending: null, dropped: 0, active: true };
    this.subscribers.add(sub);
    return {
      unsubscribe: () => {
        sub.active = false;
        sub.pending = null;
        this.subscribers.delete(sub);
      },
      get dropped() {
        return sub.dropped;
      },
    };
  }

  /** The next frame newer than `afterSeq` (or the current one when it already is), within `timeoutMs`; null on timeout. */
  next(afterSeq: number, timeoutMs: number): Promise<Frame | null> {
    const cur = this.current;
    if (cur && cur.seq > afterSeq) return Promise.resolve(cur);
    return new Promise((resolve) => {
      const waiter = {
        afterSeq,
        resolve: (f: Frame) => {
          clearTimeout(timer);
          resolve(f);
        },
      };
      const timer = setTimeout(() => {
        this.waiters.delete(waiter);
        resolve(null);
      }, timeoutMs);
      this.waiters.add(waiter);
    });
  }

  private deliver(sub: Subscriber, frame: Frame): void {
    if (!sub.active) return;
    if (sub.busy) {
      if (sub.pending) sub.dropped++;
      sub.pending = frame;
      return;
    }
    sub.busy = true;
    let result: void | Promise<void>;
    try {
      result = sub.fn(frame);
    } catch (err) {
      // One failing consumer (an encoder that died) must not stop the others from getting frames.
      this.logger.error({ source: this.name, err: (err as Error).message }, "frame subscriber failed");
      result = undefined;
    }
    if (result instanceof Promise) {
      result
        .catch((err: unknown) => this.logger.error({ source: this.name, err: (err as Error).message }, "frame subscriber failed"))
        .finally(() => this.afterDelivery(sub));
    } else {
      this.afterDelivery(sub);
    }
  }

  private afterDelivery(sub: Subscriber): void {
    sub.busy = false;
    const next = sub.pending;
    sub.pending = null;
    if (next) this.deliver(sub, next);
  }
}

const clamp = (v: number): number => (v < 0 ? 0 : v > 255 ? 255 : v);

/** RGBA → I420 (BT.601, limited range), 2×2 chroma averaging. Width and height must be even. */
export function rgbaToI420(rgba: Buffer, width: number, height: number): Buffer {
  const out = Buffer.allocUnsafe((width * height * 3) / 2);
  const uOff = width * height;
  const vOff = uOff + (width * height) / 4;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 4;
      const r = rgba[i] as number;
      const g = rgba[i + 1] as number;
      const b = rgba[i + 2] as number;
      out[y * width + x] = clamp(((66 * r + 129 * g + 25 * b + 128) >> 8) + 16);
    }
  }
  const cw = width / 2;
  for (let y = 0; y < height; y += 2) {
    for (let x = 0; x < width; x += 2) {
      let r = 0;
      let g = 0;
      let b = 0;
      for (const [dx, dy] of [
        [0, 0],
        [1, 0],
        [0, 1],
        [1, 1],
      ] as const) {
        const i = ((y + dy) * width + x + dx) * 4;
        r += rgba[i] as number;
        g += rgba[i + 1] as number;
        b += rgba[i + 2] as number;
      }
      r >>= 2;
      g >>= 2;
      b >>= 2;
      const c = (y / 2) * cw + x / 2;
      out[uOff + c] = clamp(((-38 * r - 74 * g + 112 * b + 128) >> 8) + 128);
      out[vOff + c] = clamp(((112 * r - 94 * g - 18 * b + 128) >> 8) + 128);
    }
  }
  return out;
}

/** I420 → RGBA (BT.601, limited range); for JPEG snapshots of I420 sources. */
export function i420ToRgba(yuv: Buffer, width: number, height: number): Buffer {
  const out = Buffer.allocUnsafe(width * height * 4);
  const uOff = width * height;
  const vOff = uOff + (width * height) / 4;
  const cw = width / 2;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const c = (y >> 1) * cw + (x >> 1);
      const yy = ((yuv[y * width + x] as number) - 16) * 298;
      const u = (yuv[uOff + c] as number) - 128;
      const v = (yuv[vOff + c] as number) - 128;
      const i = (y * width + x) * 4;
      out[i] = clamp((yy + 409 * v + 128) >> 8);
      out[i + 1] = clamp((yy - 100 * u - 208 * v + 128) >> 8);
      out[i + 2] = clamp((yy + 516 * u + 128) >> 8);
      out[i + 3] = 255;
    }
  }
  return out;
}

/** The frame as RGBA pixels (a copy only when a conversion is needed). */
export function toRgba(frame: Frame): Buffer {
  return frame.format === "RGBA" ? frame.data : i420ToRgba(frame.data, frame.width, frame.height);
}
