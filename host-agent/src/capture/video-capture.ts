import { LabrigError, abortReason, downscaleRgba, type ActionResultOf } from "@labrig/shared";
import jpeg from "jpeg-js";
import type { VideoResourceConfig } from "../config.js";
import type { Logger } from "../logger.js";
import type { ArtifactStore } from "./artifact-store.js";
import { recordClip } from "./clip-recorder.js";
import { webCodecsCodec } from "./encoder.js";
import { FfmpegFrameSource, v4l2InputArgs } from "./ffmpeg-source.js";
import { toRgba, type FrameSource, type SourceStatus } from "./frame.js";
import { LiveStream, type StreamSink } from "./live-stream.js";
import { TestPatternSource, type ScreenOverlay } from "./test-pattern.js";

/** JPEG quality of snapshots: text on a board's screen stays legible, files stay ~30-80 KB at 640x480. */
const JPEG_QUALITY = 85;
/** How often stream counters go into the device state while streaming. */
const STATS_INTERVAL_MS = 2000;

export interface VideoCaptureDeps {
  host: string;
  logger: Logger;
  artifacts: ArtifactStore;
  sink: StreamSink;
  /** ffmpeg as a path or a name on PATH. */
  ffmpeg: string;
  reportState: (status: SourceStatus, detail: string) => void;
  /** For test-pattern sources: what a simulated board's screen shows. */
  overlay?: () => ScreenOverlay | null;
}

/**
 * The driver of one video resource: a frame source (V4L2 through ffmpeg, or the test pattern)
 * and what can be done with its frames — JPEG snapshots and recorded clips as artifacts, and a
 * live stream to the hub while someone watches.
 */
export class VideoCapture {
  readonly source: FrameSource;
  private stream: LiveStream | null = null;
  private statsTimer: NodeJS.Timeout | null = null;
  private lastStats = "";
  private readonly describeSource: string;

  constructor(
    private readonly deviceId: string,
    readonly config: VideoResourceConfig,
    private readonly deps: VideoCaptureDeps,
  ) {
    const name = `${deviceId}/${config.name}`;
    const { width, height, fps } = config;
    if (config.source === "test-pattern") {
      this.source = new TestPatternSource({ name, width, height, fps, ...(deps.overlay ? { overlay: deps.overlay } : {}) }, deps.logger);
      this.describeSource = `test pattern ${width}x${height}@${fps}`;
    } else {
      const path = config.path as string;
      this.source = new FfmpegFrameSource(
        { name, width, height, fps, ffmpeg: deps.ffmpeg, devicePath: path, inputArgs: v4l2InputArgs({ path, width, height, fps, inputFormat: config.input_format }) },
        deps.logger,
        (status, detail) => deps.reportState(status, detail),
      );
      this.describeSource = `v4l2 ${path} ${config.input_format} ${width}x${height}@${fps}`;
    }
  }

  async start(): Promise<void> {
    await this.source.start();
    if (this.source instanceof TestPatternSource) this.deps.reportState("ready", this.describeSource);
  }

  async stop(): Promise<void> {
    this.stopStream();
    await this.source.stop();
  }

  /** The current frame as a JPEG artifact; shrunk first (cheap on raw pixels) when `maxEdge` asks for less. */
  async snapshot(signal: AbortSignal, maxEdge?: number): Promise<ActionResultOf<"capture.snapshot">> {
    const frame = this.source.latest() ?? (await this.source.next(-1, Math.max(2000, 3000 / this.config.fps)));
    if (signal.aborted) throw abortReason(signal);
    if (!frame) throw this.unavailable();
    const image = downscaleRgba(toRgba(frame), frame.width, frame.height, maxEdge ?? Number.MAX_SAFE_INTEGER);
    const encoded = jpeg.encode({ data: image.data, width: image.width, height: image.height }, JPEG_QUALITY);
    const info = await this.deps.artifacts.put(encoded.data, "jpg");
    return { artifact: info.id, mime_type: info.mimeType, width: image.width, height: image.height };
  }

  async record(durationS: number, format: "webm" | "mp4", signal: AbortSignal): Promise<ActionResultOf<"capture.record">> {
    if (this.source.problem !== null && this.source.latest() === null && !(this.source instanceof TestPatternSource)) throw this.unavailable();
    return recordClip(this.source, this.deps.artifacts, { durationS, format, fps: this.config.fps, bitrate: this.config.bitrate, ffmpeg: this.deps.ffmpeg }, signal, this.deps.logger);
  }

  get streaming(): boolean {
    return this.stream?.running === true;
  }

  /** Starts the live stream (idempotent); the hub asks when its first watcher arrives. */
  startStream(): void {
    if (this.stream?.running) return;
    // A stream that stopped by itself (its encoder failed) still has its stats timer: clear it, or each restart leaks one.
    if (this.stream) this.stopStream();
    this.stream = new LiveStream(
      this.source,
      this.deps.sink,
      {
        ids: { host: this.deps.host, device: this.deviceId, resource: this.config.name },
        codec: webCodecsCodec(this.config.codec),
        fps: this.config.fps,
        bitrate: this.config.bitrate,
      },
      this.deps.logger,
    );
    this.stream.start();
    this.lastStats = "";
    this.statsTimer = setInterval(() => this.reportStats(), STATS_INTERVAL_MS);
    this.statsTimer.unref();
  }

  stopStream(): void {
    if (this.statsTimer) clearInterval(this.statsTimer);
    this.statsTimer = null;
    if (!this.stream) return;
    this.stream.stop();
    this.reportStats(true);
    this.stream = null;
  }

  /** Stream counters so far (tests, state detail). */
  streamStats(): { sent: number; dropped: number } | null {
    return this.stream ? this.stream.stats : null;
  }

  private reportStats(final = false): void {
    const s = this.stream?.stats;
    if (!s || this.source.problem !== null) return;
    const text = `${this.describeSource}; ${final ? "stream stopped" : `streaming ${this.config.codec}`}: sent ${s.sent} frames, dropped ${s.dropped} (slow link or busy encoder)`;
    if (text === this.lastStats) return;
    this.lastStats = text;
    this.deps.reportState("ready", text);
  }

  private unavailable(): LabrigError {
    return new LabrigError("device_unavailable", `No video from ${this.deviceId}/${this.config.name}: ${this.source.problem ?? "no frame arrived within 2 s"}.`);
  }
}
