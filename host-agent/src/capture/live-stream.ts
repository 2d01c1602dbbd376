import { STREAM_CHUNK_MAX_BYTES, type StreamChunk, type VideoCodec } from "@labrig/shared";
import type { Logger } from "../logger.js";
import { FrameEncoder, type EncodedChunk } from "./encoder.js";
import type { Frame, FrameSource, FrameSubscription } from "./frame.js";

/** Where stream chunks go (the hub link). */
export interface StreamSink {
  /** True when another chunk now would only queue up (hub away, or too many chunks not yet acknowledged). */
  streamCongested(): boolean;
  /** Sends a chunk; false when it was not sent (the stream then waits for a keyframe). */
  sendStreamChunk(chunk: StreamChunk): boolean;
}

export interface LiveStreamStats {
  sent: number;
  /** Frames not sent: skipped before encoding (slow link, busy encoder, slow subscriber) or chunks refused by the link. */
  dropped: number;
}

export interface LiveStreamOptions {
  ids: { host: string; device: string; resource: string };
  codec: VideoCodec;
  fps: number;
  bitrate: number;
  /** Keyframe every this many seconds, so a viewer joining late waits at most that long. */
  keyframeIntervalS?: number;
  /** Frames the encoder may hold before new ones are dropped instead. */
  maxEncoderQueue?: number;
}

/**
 * A live stream of one video resource, running only while the hub has a watcher. Frames are
 * dropped rather than queued: before encoding when the link or the encoder is behind (the
 * delta chain stays intact), and when the link refuses an encoded chunk (then everything
 * up to the next keyframe, which is forced at once).
 */
export class LiveStream {
  private subscription: FrameSubscription | null = null;
  private encoder: FrameEncoder | null = null;
  private seq = 0;
  private framesSinceKey = 0;
  private forceKey = true;
  private waitForKey = true;
  private droppedHere = 0;
  private sentCount = 0;
  /** Wall-clock capture time of each frame in the encoder, by its timestamp; entries leave when their chunk comes out. */
  private readonly capturedAt = new Map<number, number>();

  constructor(
    private readonly source: FrameSource,
    private readonly sink: StreamSink,
    private readonly options: LiveStreamOptions,
    private readonly logger: Logger,
  ) {}

  get running(): boolean {
    return this.subscription !== null;
  }

  get stats(): LiveStreamStats {
    return { sent: this.sentCount, dropped: this.droppedHere + (this.subscription?.dropped ?? 0) };
  }

  start(): void {
    if (this.subscription) return;
    this.forceKey = true;
    this.waitForKey = true;
    this.framesSinceKey = 0;
    this.encoder = new FrameEncoder(
      { codec: this.options.codec, width: this.source.width, height: this.source.height, fps: this.options.fps, bitrate: this.options.bitrate },
      (chunk) => this.onChunk(chunk),
      (err) => {
        this.logger.error({ ...this.options.ids, err: err.message }, "stream encoder failed; stopping the stream");
        this.stop();
      },
    );
    this.subscription = this.source.subscribe((frame) => this.onFrame(frame));
    this.logger.info({ ...this.options.ids, codec: this.options.codec }, "live stream started");
  }

  stop(): void {
    if (!this.subscription) return;
    this.droppedHere += this.subscription.dropped;
    this.subscription.unsubscribe();
    this.subscription = null;
    this.encoder?.close();
    this.encoder = null;
    this.capturedAt.clear();
    this.logger.info({ ...this.options.ids, ...this.stats }, "live stream stopped");
  }

  private onFrame(frame: Frame): void {
    const encoder = this.encoder;
    if (!encoder) return;
    if (this.sink.streamCongested() || encoder.queueSize >= (this.options.maxEncoderQueue ?? 2)) {
      this.droppedHere++;
      return;
    }
    const keyEvery = Math.max(1, Math.round(this.options.fps * (this.options.keyframeIntervalS ?? 2)));
    const key = this.forceKey || this.framesSinceKey >= keyEvery;
    this.forceKey = false;
    this.framesSinceKey = key ? 0 : this.framesSinceKey + 1;
    // Sources publish synchronously as a frame is taken, so now is its capture time. The encoder may drop a
    // frame without output: the map is kept to a few entries so such strays cannot accumulate.
    if (this.capturedAt.size >= 16) this.capturedAt.delete(this.capturedAt.keys().next().value as number);
    this.capturedAt.set(frame.timestampUs, performance.timeOrigin + performance.now());
    encoder.encode(frame, key);
  }

  private onChunk(chunk: EncodedChunk): void {
    if (!this.subscription) return;
    const capturedAtMs = this.capturedAt.get(chunk.timestampUs);
    this.capturedAt.delete(chunk.timestampUs);
    if (chunk.type === "delta" && this.waitForKey) {
      this.droppedHere++;
      return;
    }
    if (chunk.data.length > STREAM_CHUNK_MAX_BYTES) {
      this.logger.warn({ ...this.options.ids, bytes: chunk.data.length }, "encoded frame larger than a stream chunk may be; dropped (lower the bitrate)");
      this.refused();
      return;
    }
    const sent = this.sink.sendStreamChunk({
      ...this.options.ids,
      seq: this.seq++,
      codec: this.options.codec,
      type: chunk.type,
      timestamp_us: Math.max(0, chunk.timestampUs),
      ...(capturedAtMs === undefined ? {} : { captured_at_ms: capturedAtMs }),
      data: chunk.data,
      width: this.source.width,
      height: this.source.height,
    });
    if (!sent) {
      this.refused();
      return;
    }
    this.sentCount++;
    if (chunk.type === "key") this.waitForKey = false;
  }

  /** A chunk could not go out: later deltas would not decode, so skip to a fresh keyframe. */
  private refused(): void {
    this.droppedHere++;
    this.waitForKey = true;
    this.forceKey = true;
  }
}
