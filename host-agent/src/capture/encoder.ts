import { LabrigError, type VideoCodec } from "@labrig/shared";
import { VideoEncoder, VideoFrame, isNativeAvailable } from "node-webcodecs";
import type { Frame } from "./frame.js";

/** The config's codec names as WebCodecs codec strings: H.264 Constrained Baseline level 3.1, or VP8. */
export function webCodecsCodec(codec: "avc1" | "vp8"): VideoCodec {
  return codec === "avc1" ? "avc1.42001f" : "vp8";
}

export interface EncodedChunk {
  type: "key" | "delta";
  timestampUs: number;
  data: Buffer;
}

export interface FrameEncoderOptions {
  codec: VideoCodec;
  width: number;
  height: number;
  fps: number;
  bitrate: number;
}

/**
 * One node-webcodecs VideoEncoder (OpenH264 or libvpx inside, on a worker thread), fed our
 * frames, giving back chunks as Buffers. H.264 comes out as Annex B (start codes, SPS/PPS
 * in every keyframe), so a decoder or muxer can start at any keyframe without extra data.
 */
export class FrameEncoder {
  private readonly encoder: VideoEncoder;
  private failure: Error | null = null;
  private closed = false;

  constructor(
    readonly options: FrameEncoderOptions,
    onChunk: (chunk: EncodedChunk) => void,
    onError: (err: Error) => void,
  ) {
    if (!isNativeAvailable()) {
      throw new LabrigError("hardware_error", "node-webcodecs has no native binding on this machine; reinstall the agent (npm ci) on a supported platform (linux arm64/x64).");
    }
    this.encoder = new VideoEncoder({
      output: (chunk) => {
        const data = Buffer.allocUnsafe(chunk.byteLength);
        chunk.copyTo(data);
        onChunk({ type: chunk.type === "key" ? "key" : "delta", timestampUs: chunk.timestamp, data });
      },
      error: (err) => {
        this.failure = new Error(`${options.codec} encoder failed: ${err.message}`);
        onError(this.failure);
      },
    });
    this.encoder.configure({
      codec: options.codec,
      width: options.width,
      height: options.height,
      bitrate: options.bitrate,
      framerate: options.fps,
      // Live capture: frames must come out as they go in, not after a look-ahead window.
      latencyMode: "realtime",
      ...(options.codec.startsWith("avc1") ? { avc: { format: "annexb" as const } } : {}),
    });
  }

  /** Frames handed to the encoder but not encoded yet. */
  get queueSize(): number {
    return this.encoder.encodeQueueSize;
  }

  encode(frame: Frame, keyFrame: boolean): void {
    if (this.failure) throw this.failure;
    const vf = new VideoFrame(frame.data, { format: frame.format, codedWidth: frame.width, codedHeight: frame.height, timestamp: frame.timestampUs });
    try {
      this.encoder.encode(vf, { keyFrame });
    } finally {
      vf.close();
    }
  }

  /** Resolves once the queue is at most `max` (bounded waiting for recordings, which must not drop frames). */
  async waitForRoom(max: number): Promise<void> {
    while (this.encoder.encodeQueueSize > max && !this.failure && !this.closed) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 50);
        this.encoder.addEventListener(
          "dequeue",
          () => {
            clearTimeout(timer);
            resolve();
          },
          { once: true },
        );
      });
    }
    if (this.failure) throw this.failure;
  }

  async flush(): Promise<void> {
    await this.encoder.flush();
    if (this.failure) throw this.failure;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.encoder.state !== "closed") this.encoder.close();
  }
}
