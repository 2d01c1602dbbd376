import type { Logger } from "../logger.js";
import { GLYPH_ADVANCE, GLYPH_HEIGHT, drawText, fillRect, textWidth, type Rgb } from "./bitmap-font.js";
import { FrameFanout, rgbaToI420, type Frame, type FrameSource, type FrameSubscription, type PixelFormat } from "./frame.js";

/** What a simulated screen shows over the pattern: `blank` turns it black (the clock still runs), `text` is drawn big in the middle. */
export interface ScreenOverlay {
  blank?: boolean;
  text?: string;
}

export interface TestPatternOptions {
  name: string;
  width: number;
  height: number;
  fps: number;
  format?: PixelFormat;
  /** Asked once per frame; the simulated board uses it to show its state. */
  overlay?: () => ScreenOverlay | null;
  /** Clock for the burnt-in timestamp (tests pin it). */
  now?: () => Date;
}

// SMPTE-like bars: white, yellow, cyan, green, magenta, red, blue, black.
const BARS: readonly Rgb[] = [
  [235, 235, 235],
  [235, 235, 16],
  [16, 235, 235],
  [16, 235, 16],
  [235, 16, 235],
  [235, 16, 16],
  [16, 16, 235],
  [16, 16, 16],
];
const BLACK: Rgb = [0, 0, 0];
const WHITE: Rgb = [255, 255, 255];

/** Bounces 0..max..0 as t grows, for the moving box. */
function triangle(t: number, max: number): number {
  if (max <= 0) return 0;
  const period = 2 * max;
  const p = t % period;
  return p <= max ? p : period - p;
}

/**
 * Frames generated in TypeScript: moving colour bars and a bouncing box, with the wall-clock
 * time and the frame counter burnt in along the bottom. Runs at the configured size and fps,
 * so everything downstream (JPEG, encoders, clips) is exercised exactly as with a dongle.
 */
export class TestPatternSource implements FrameSource {
  readonly width: number;
  readonly height: number;
  readonly fps: number;
  readonly format: PixelFormat;
  readonly problem = null;
  private readonly fanout: FrameFanout;
  private timer: NodeJS.Timeout | null = null;
  private seq = 0;
  private t0 = 0;
  private tick = 0;

  constructor(
    private readonly options: TestPatternOptions,
    logger: Logger,
  ) {
    this.width = options.width;
    this.height = options.height;
    this.fps = options.fps;
    this.format = options.format ?? "RGBA";
    this.fanout = new FrameFanout(logger, options.name);
  }

  async start(): Promise<void> {
    if (this.timer) return;
    this.t0 = performance.now();
    this.tick = 0;
    this.emit();
    this.schedule();
  }

  async stop(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.fanout.clear();
  }

  latest(): Frame | null {
    return this.fanout.latest();
  }

  subscribe(fn: (frame: Frame) => void | Promise<void>): FrameSubscription {
    return this.fanout.subscribe(fn);
  }

  /** The next frame after `afterSeq` within `timeoutMs` (null on timeout). */
  next(afterSeq: number, timeoutMs: number): Promise<Frame | null> {
    return this.fanout.next(afterSeq, timeoutMs);
  }

  /** Renders one frame without publishing it (benchmarks and tests). */
  render(seq: number, timestampUs: number): Frame {
    const rgba = this.renderRgba(seq);
    const data = this.format === "RGBA" ? rgba : rgbaToI420(rgba, this.width, this.height);
    return { seq, timestampUs, width: this.width, height: this.height, format: this.format, data };
  }

  private schedule(): void {
    // Paced against the start time, not chained intervals: timers on a busy Pi drift, the clip's frame rate must not.
    const interval = 1000 / this.fps;
    this.tick++;
    const delay = Math.max(0, this.t0 + this.tick * interval - performance.now());
    this.timer = setTimeout(() => {
      // Behind by more than a frame (a busy event loop): skip the missed ticks instead of bursting.
      const due = Math.floor((performance.now() - this.t0) / interval);
      if (due > this.tick) this.tick = due;
      this.emit();
      this.schedule();
    }, delay);
  }

  private emit(): void {
    const ts = Math.round((performance.now() - this.t0) * 1000);
    this.fanout.publish(this.render(this.seq++, ts));
  }

  private renderRgba(seq: number): Buffer {
    const { width: w, height: h } = this;
    const buf = Buffer.allocUnsafe(w * h * 4);
    const overlay = this.options.overlay?.() ?? null;
    const scale = Math.max(1, Math.floor(w / 240));
    const bandH = (GLYPH_HEIGHT + 4) * scale;
    const picH = Math.max(0, h - bandH);
    if (overlay?.blank) {
      fillRect(buf, w, h, 0, 0, w, h, BLACK);
    } else {
      const barW = w / BARS.length;
      const offset = (seq * Math.max(1, Math.round(w / 160))) % w;
      for (let x = 0; x < w; x++) {
        const c = BARS[Math.floor(((x + offset) % w) / barW)] ?? BLACK;
        const i = x * 4;
        buf[i] = c[0];
        buf[i + 1] = c[1];
        buf[i + 2] = c[2];
        buf[i + 3] = 255;
      }
      for (let y = 1; y < picH; y++) buf.copy(buf, y * w * 4, 0, w * 4);
      const box = Math.max(4, Math.floor(Math.min(w, picH) / 6));
      const bx = triangle(seq * 3 * scale, w - box);
      const by = triangle(seq * 2 * scale, picH - box);
      fillRect(buf, w, h, bx, by, box, box, BLACK);
      fillRect(buf, w, h, bx + 2, by + 2, box - 4, box - 4, WHITE);
      fillRect(buf, w, h, 0, picH, w, h - picH, BLACK);
    }
    const now = (this.options.now ?? (() => new Date()))();
    const clock = now.toISOString().slice(11, 23);
    drawText(buf, w, h, 2 * scale, picH + 2 * scale, `${clock} #${String(seq).padStart(6, "0")}`, scale, WHITE);
    if (overlay?.text) {
      const text = overlay.text.slice(0, 32);
      const big = Math.max(1, Math.floor(Math.min((w * 0.8) / (text.length * GLYPH_ADVANCE), (picH * 0.4) / GLYPH_HEIGHT)));
      const tw = textWidth(text, big);
      const th = GLYPH_HEIGHT * big;
      const x = Math.floor((w - tw) / 2);
      const y = Math.floor((picH - th) / 2);
      fillRect(buf, w, h, x - 2 * big, y - 2 * big, tw + 4 * big, th + 4 * big, BLACK);
      drawText(buf, w, h, x, y, text, big, WHITE);
    }
    return buf;
  }
}
