import { backoffMs } from "@labrig/shared";
import { spawn, type ChildProcess } from "node:child_process";
import { accessSync, constants, existsSync, statSync } from "node:fs";
import { delimiter, join } from "node:path";
import type { Logger } from "../logger.js";
import { FrameFanout, frameBytes, type Frame, type FrameSource, type FrameSubscription, type PixelFormat, type SourceStatus } from "./frame.js";

/** What to tell a person when ffmpeg is missing. */
export const FFMPEG_INSTALL_HINT = "ffmpeg not found: sudo apt-get install ffmpeg";

const STDERR_TAIL_BYTES = 4096;

/** `nameOrPath` as an absolute executable: a path is checked as is, a bare name is looked up on PATH. Null when there is none. */
export function findExecutable(nameOrPath: string, env: NodeJS.ProcessEnv = process.env): string | null {
  const isExe = (p: string): boolean => {
    try {
      accessSync(p, constants.X_OK);
      return statSync(p).isFile();
    } catch {
      // Not there or not executable: both mean "not this one", which the caller reports.
      return false;
    }
  };
  if (nameOrPath.includes("/")) return isExe(nameOrPath) ? nameOrPath : null;
  for (const dir of (env.PATH ?? "/usr/local/bin:/usr/bin:/bin").split(delimiter)) {
    if (dir === "") continue;
    const candidate = join(dir, nameOrPath);
    if (isExe(candidate)) return candidate;
  }
  return null;
}

export interface V4l2InputOptions {
  path: string;
  width: number;
  height: number;
  fps: number;
  inputFormat: "mjpeg" | "yuyv422";
}

/** ffmpeg input arguments that read a V4L2 device in the format and mode the config asks for. */
export function v4l2InputArgs(o: V4l2InputOptions): string[] {
  return ["-f", "v4l2", "-input_format", o.inputFormat, "-video_size", `${o.width}x${o.height}`, "-framerate", String(o.fps), "-i", o.path];
}

/**
 * The whole ffmpeg command line around an input: raw frames of exactly width×height on stdout.
 * The scale filter is there because a dongle that cannot do the requested mode silently
 * picks another, and fixed-size frame reading would then tear every frame.
 */
export function ffmpegFrameArgs(input: readonly string[], o: { width: number; height: number; format: PixelFormat }): string[] {
  return [
    "-hide_banner",
    "-nostdin",
    "-loglevel",
    "error",
    ...input,
    "-an",
    "-vf",
    `scale=${o.width}:${o.height}`,
    "-f",
    "rawvideo",
    "-pix_fmt",
    o.format === "RGBA" ? "rgba" : "yuv420p",
    "pipe:1",
  ];
}

export interface FfmpegSourceOptions {
  name: string;
  width: number;
  height: number;
  fps: number;
  format?: PixelFormat;
  /** ffmpeg as a path or a name looked up on PATH. */
  ffmpeg: string;
  /** Input arguments (v4l2InputArgs for a dongle; tests use lavfi). */
  inputArgs: string[];
  /** A file that must exist before ffmpeg starts (the V4L2 device node); checked before every start. */
  devicePath?: string;
  retryBaseMs?: number;
  retryMaxMs?: number;
  /** No frame for this long (at least ten frame intervals) means ffmpeg is stalled: it is restarted (default 5000). */
  stallMs?: number;
}

export type SourceStateHook = (status: SourceStatus, detail: string) => void;

/**
 * Frames read from an ffmpeg child process as fixed-size raw frames on its stdout. The read
 * buffer is exactly one frame; completed frames replace the latest one, so a slow consumer
 * costs dropped frames, never memory. When ffmpeg is missing, the device is absent or ffmpeg
 * dies (dongle unplugged), the source reports why and tries again with capped backoff; the
 * agent itself keeps running.
 */
export class FfmpegFrameSource implements FrameSource {
  readonly width: number;
  readonly height: number;
  readonly fps: number;
  readonly format: PixelFormat;
  private readonly frameSize: number;
  private readonly fanout: FrameFanout;
  private child: ChildProcess | null = null;
  private partial: Buffer;
  private filled = 0;
  private seq = 0;
  private t0 = 0;
  private lastFrameAtMs = Number.NEGATIVE_INFINITY;
  private launchedAtMs = 0;
  private watchdog: NodeJS.Timeout | null = null;
  private running = false;
  private retryTimer: NodeJS.Timeout | null = null;
  private attempt = 0;
  private stderrTail = "";
  private currentProblem: string | null = "not started";

  constructor(
    private readonly options: FfmpegSourceOptions,
    private readonly logger: Logger,
    private readonly onState: SourceStateHook = () => undefined,
  ) {
    this.width = options.width;
    this.height = options.height;
    this.fps = options.fps;
    this.format = options.format ?? "RGBA";
    this.frameSize = frameBytes(this.width, this.height, this.format);
    this.partial = Buffer.allocUnsafe(this.frameSize);
    this.fanout = new FrameFanout(logger, options.name);
  }

  get problem(): string | null {
    return this.currentProblem;
  }

  /** The command line this source runs (for logs, doctor and tests). */
  commandLine(): string[] {
    return ffmpegFrameArgs(this.options.inputArgs, { width: this.width, height: this.height, format: this.format });
  }

  /** Never throws: a source that cannot run reports `unavailable` and keeps retrying. */
  async start(): Promise<void> {
    if (this.running) return;
    this.running = true;
    this.t0 = performance.now();
    this.watchdog = setInterval(() => this.checkStall(), 1000);
    this.launch();
  }

  async stop(): Promise<void> {
    this.running = false;
    if (this.watchdog) clearInterval(this.watchdog);
    this.watchdog = null;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.fanout.clear();
    const child = this.child;
    this.child = null;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    child.kill("SIGTERM");
    const killer = setTimeout(() => {
      this.logger.warn({ source: this.options.name, pid: child.pid }, "ffmpeg ignored SIGTERM; killing it");
      child.kill("SIGKILL");
    }, 2000);
    await exited;
    clearTimeout(killer);
  }

  latest(): Frame | null {
    // A frame older than the stall limit is no picture of the present: better no frame than a stale one.
    if (performance.now() - this.lastFrameAtMs > this.stallMs()) return null;
    return this.fanout.latest();
  }

  /** How long ffmpeg may run without delivering a frame before it is considered stalled and restarted. */
  private stallMs(): number {
    return Math.max(this.options.stallMs ?? 5000, (10 * 1000) / this.fps);
  }

  /** Restarts an ffmpeg that runs but delivers nothing (a wedged dongle or driver). */
  private checkStall(): void {
    const child = this.child;
    if (!this.running || !child || performance.now() - Math.max(this.lastFrameAtMs, this.launchedAtMs) <= this.stallMs()) return;
    this.logger.warn({ source: this.options.name, pid: child.pid, stall_ms: this.stallMs() }, "ffmpeg delivers no frames; restarting it");
    this.child = null;
    child.kill("SIGKILL");
    this.fail("error", `no frames from ${this.options.devicePath ?? "ffmpeg"} for ${Math.round(this.stallMs() / 1000)} s; restarting the capture`);
  }

  subscribe(fn: (frame: Frame) => void | Promise<void>): FrameSubscription {
    return this.fanout.subscribe(fn);
  }

  next(afterSeq: number, timeoutMs: number): Promise<Frame | null> {
    return this.fanout.next(afterSeq, timeoutMs);
  }

  /** ffmpeg's pid while it runs (tests check it is gone after stop). */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  private fail(status: SourceStatus, detail: string): void {
    const changed = this.currentProblem !== detail;
    this.currentProblem = detail;
    this.fanout.clear();
    if (changed) {
      this.logger.error({ source: this.options.name, detail }, "video source unavailable; retrying");
      this.onState(status, detail);
    }
    this.scheduleRetry();
  }

  private scheduleRetry(): void {
    if (!this.running || this.retryTimer) return;
    const delay = backoffMs(this.attempt++, this.options.retryBaseMs ?? 1000, this.options.retryMaxMs ?? 30_000);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.launch();
    }, delay);
  }

  private launch(): void {
    if (!this.running || this.child) return;
    const o = this.options;
    // Checked on every attempt, so installing ffmpeg or plugging the dongle in later needs no agent restart.
    const bin = findExecutable(o.ffmpeg);
    if (bin === null) {
      this.fail("unavailable", `${FFMPEG_INSTALL_HINT} (looked for '${o.ffmpeg}'; or set LABRIG_FFMPEG to its path)`);
      return;
    }
    if (o.devicePath !== undefined && !existsSync(o.devicePath)) {
      this.fail("unavailable", `video device ${o.devicePath} not found: is the capture dongle plugged in? 'ls /dev/v4l/by-id' lists the ones the kernel sees`);
      return;
    }
    this.filled = 0;
    this.stderrTail = "";
    const child = spawn(bin, this.commandLine(), { stdio: ["ignore", "pipe", "pipe"] });
    this.child = child;
    this.launchedAtMs = performance.now();
    this.logger.info({ source: o.name, pid: child.pid, args: this.commandLine().join(" ") }, "ffmpeg started");
    child.stdout?.on("data", (chunk: Buffer) => this.onData(chunk));
    child.stderr?.on("data", (chunk: Buffer) => {
      this.stderrTail = (this.stderrTail + chunk.toString("utf8")).slice(-STDERR_TAIL_BYTES);
    });
    child.on("error", (err) => {
      // spawn itself failed (EACCES, ENOENT after the check); 'exit' may not follow.
      if (this.child !== child) return;
      this.child = null;
      this.fail("error", `cannot run ${bin}: ${err.message}`);
    });
    child.on("exit", (code, signal) => {
      if (this.child !== child) return;
      this.child = null;
      if (!this.running) return;
      const why = this.stderrTail.trim().split("\n").slice(-3).join(" | ") || "no message";
      this.fail("error", `ffmpeg exited (${signal ?? `code ${code}`}) reading ${o.devicePath ?? "its input"}: ${why}`.slice(0, 1000));
    });
  }

  private onData(chunk: Buffer): void {
    let offset = 0;
    while (offset < chunk.length) {
      const n = Math.min(chunk.length - offset, this.frameSize - this.filled);
      chunk.copy(this.partial, this.filled, offset, offset + n);
      this.filled += n;
      offset += n;
      if (this.filled === this.frameSize) {
        const data = this.partial;
        this.partial = Buffer.allocUnsafe(this.frameSize);
        this.filled = 0;
        this.publish(data);
      }
    }
  }

  private publish(data: Buffer): void {
    if (this.currentProblem !== null) {
      this.currentProblem = null;
      this.attempt = 0;
      this.logger.info({ source: this.options.name }, "video frames arriving");
      this.onState("ready", `${this.width}x${this.height}@${this.fps} from ${this.options.devicePath ?? "ffmpeg"}`);
    }
    this.lastFrameAtMs = performance.now();
    const timestampUs = Math.round((performance.now() - this.t0) * 1000);
    this.fanout.publish({ seq: this.seq++, timestampUs, width: this.width, height: this.height, format: this.format, data });
  }
}
