import { spawn, type ChildProcess } from "node:child_process";
import { LabrigError, abortReason, sleep, type VideoCodec } from "@labrig/shared";
import type { Logger } from "../logger.js";
import type { ArtifactStore } from "./artifact-store.js";
import { FrameEncoder, type EncodedChunk } from "./encoder.js";
import { FFMPEG_INSTALL_HINT, findExecutable } from "./ffmpeg-source.js";
import type { FrameSource } from "./frame.js";

/*
 * How a clip is made: node-webcodecs encodes (VP8 for WebM, H.264 for MP4), and ffmpeg only
 * muxes (`-c copy`), reading the encoded stream on stdin and writing the container.
 * Why this split:
 *  - the encoder is the same one the live stream uses, with the same bitrate control, and it
 *    is the fast path on a Pi (OpenH264 / libvpx in-process, no raw frames through a pipe:
 *    18 MB/s of RGBA at 640x480@15 would cost more than the encoding);
 *  - ffmpeg is already what the agent reads V4L2 through, and its muxers are the reference
 *    ones: MP4 needs avcC built from the SPS/PPS, a moov with sample tables and faststart,
 *    which a home-made muxer gets subtly wrong in ways only some players notice;
 *  - `-c copy` costs ffmpeg almost no CPU.
 * VP8 goes to ffmpeg as IVF (a 32-byte header, then size + pts before each frame); H.264 as
 * an Annex B elementary stream with the frame rate given on the command line. Frames are taken
 * from the source at a steady fps against the wall clock, so the clip has exactly
 * round(duration × fps) frames whatever rate the source delivers.
 */

export interface ClipOptions {
  durationS: number;
  format: "webm" | "mp4";
  fps: number;
  bitrate: number;
  /** ffmpeg as a path or a name on PATH. */
  ffmpeg: string;
}

export interface ClipResult {
  artifact: string;
  mime_type: string;
  duration_ms: number;
  frames: number;
}

const MAX_ENCODER_QUEUE = 4;
const STDERR_TAIL = 2048;
/** strerror(ENOSPC) and strerror(EDQUOT), as ffmpeg prints them. */
const NO_SPACE = /No space left on device|Disk quota exceeded/;

/** Writes encoded frames into an ffmpeg that muxes them into a file; backpressure via the pipe. */
class ClipMuxer {
  private readonly child: ChildProcess;
  private readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private stderr = "";
  private drainWait: Promise<void> | null = null;
  private pipeError: Error | null = null;
  private frames = 0;

  constructor(
    bin: string,
    private readonly codec: VideoCodec,
    private readonly width: number,
    private readonly height: number,
    private readonly fps: number,
    format: "webm" | "mp4",
    outPath: string,
  ) {
    const input = codec === "vp8" ? ["-f", "ivf", "-i", "pipe:0"] : ["-f", "h264", "-framerate", String(fps), "-i", "pipe:0"];
    const output = format === "mp4" ? ["-movflags", "+faststart", "-f", "mp4"] : ["-f", "webm"];
    this.child = spawn(bin, ["-hide_banner", "-loglevel", "error", "-y", ...input, "-c", "copy", ...output, outPath], { stdio: ["pipe", "ignore", "pipe"] });
    this.child.stderr?.on("data", (d: Buffer) => (this.stderr = (this.stderr + d.toString("utf8")).slice(-STDERR_TAIL)));
    // EPIPE when ffmpeg dies early: remembered and reported with ffmpeg's own message at the end.
    this.child.stdin?.on("error", (err) => (this.pipeError = err));
    this.exited = new Promise((resolve) => {
      this.child.on("exit", (code, signal) => resolve({ code, signal }));
      this.child.on("error", (err) => {
        this.pipeError = err;
        resolve({ code: -1, signal: null });
      });
    });
    if (codec === "vp8") {
      const h = Buffer.alloc(32);
      h.write("DKIF", 0, "ascii");
      h.writeUInt16LE(0, 4);
      h.writeUInt16LE(32, 6);
      h.write("VP80", 8, "ascii");
      h.writeUInt16LE(width, 12);
      h.writeUInt16LE(height, 14);
      h.writeUInt32LE(fps, 16); // time base denominator: pts count frames
      h.writeUInt32LE(1, 20);
      h.writeUInt32LE(0, 24); // frame count: unknown up front, ffmpeg does not need it
      this.write(h);
    }
  }

  add(chunk: EncodedChunk): void {
    if (this.codec === "vp8") {
      const fh = Buffer.alloc(12);
      fh.writeUInt32LE(chunk.data.length, 0);
      fh.writeBigUInt64LE(BigInt(Math.round((chunk.timestampUs * this.fps) / 1e6)), 4);
      this.write(fh);
    }
    this.write(chunk.data);
    this.frames++;
  }

  get written(): number {
    return this.frames;
  }

  /** Resolves when the pipe has room again (bounded memory while ffmpeg is busy). */
  drained(): Promise<void> {
    return this.drainWait ?? Promise.resolve();
  }

  async finish(): Promise<void> {
    this.child.stdin?.end();
    const { code, signal } = await this.exited;
    const printed = this.stderr.trim();
    // ffmpeg exits 0 when writing its output fails (a full disk: "Error writing trailer of …: No space
    // left on device"), and at -loglevel error it prints nothing else: anything printed is a failure.
    if (code !== 0 || this.pipeError || printed !== "") {
      const why = printed || this.pipeError?.message || "no message";
      const message = `ffmpeg could not write the clip (${signal ?? `exit code ${code}`}): ${why}`.slice(0, 1000);
      // A full disk as the errno error it is, which the artifact store reports as storage_full.
      if (NO_SPACE.test(printed)) throw Object.assign(new Error(message), { code: "ENOSPC" });
      throw new LabrigError("hardware_error", message);
    }
  }

  abort(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill("SIGKILL");
  }

  private write(data: Buffer): void {
    const stdin = this.child.stdin;
    if (!stdin || this.pipeError) return;
    if (!stdin.write(data) && !this.drainWait) {
      this.drainWait = new Promise((resolve) => {
        const done = (): void => {
          this.drainWait = null;
          resolve();
        };
        stdin.once("drain", done);
        stdin.once("close", done);
      });
    }
  }
}

/** Records `durationS` seconds of the source into a WebM (VP8) or MP4 (H.264) artifact. */
export async function recordClip(source: FrameSource, store: ArtifactStore, o: ClipOptions, signal: AbortSignal, logger: Logger): Promise<ClipResult> {
  const bin = findExecutable(o.ffmpeg);
  if (bin === null) throw new LabrigError("hardware_error", `${FFMPEG_INSTALL_HINT} (the agent uses it to write clip containers; or set LABRIG_FFMPEG to its path)`);
  const first = await source.next(-1, Math.max(2000, 3000 / o.fps));
  if (!first) throw new LabrigError("device_unavailable", `No video frames to record: ${source.problem ?? "the source delivered none within 2 s"}.`);
  const codec: VideoCodec = o.format === "mp4" ? "avc1.42001f" : "vp8";
  const ext = o.format;
  const { id, partPath } = store.reserve(ext);
  let encoderError: Error | null = null;
  // The encoder first: it throws when it cannot open (no native binding, a size the codec
  // refuses), and an ffmpeg muxer started before that would wait on its stdin forever.
  const encoder = new FrameEncoder(
    { codec, width: source.width, height: source.height, fps: o.fps, bitrate: o.bitrate },
    (chunk) => muxer.add(chunk),
    (err) => (encoderError = err),
  );
  let muxer: ClipMuxer;
  try {
    muxer = new ClipMuxer(bin, codec, source.width, source.height, o.fps, o.format, partPath);
  } catch (err) {
    encoder.close();
    throw err;
  }
  const total = Math.max(1, Math.round(o.durationS * o.fps));
  const keyEvery = Math.max(1, Math.round(o.fps * 2));
  const interval = 1000 / o.fps;
  const t0 = performance.now();
  try {
    for (let i = 0; i < total; i++) {
      const wait = t0 + i * interval - performance.now();
      if (wait > 0) await sleep(wait, signal);
      if (signal.aborted) throw abortReason(signal);
      if (encoderError) throw encoderError;
      const frame = source.latest();
      if (!frame) throw new LabrigError("device_unavailable", `The video source stopped during the recording: ${source.problem ?? "no frames"}.`);
      encoder.encode({ ...frame, timestampUs: Math.round((i * 1e6) / o.fps) }, i % keyEvery === 0);
      await encoder.waitForRoom(MAX_ENCODER_QUEUE);
      await muxer.drained();
    }
    await encoder.flush();
    if (encoderError) throw encoderError;
    encoder.close();
    await muxer.finish();
    const info = await store.commit(id, ext);
    logger.info({ artifact: id, format: o.format, frames: muxer.written, bytes: info.size }, "clip recorded");
    return { artifact: id, mime_type: info.mimeType, duration_ms: Math.round((total * 1000) / o.fps), frames: muxer.written };
  } catch (err) {
    encoder.close();
    muxer.abort();
    await store.discard(partPath).catch((e: unknown) => logger.warn({ path: partPath, err: (e as Error).message }, "could not remove a half-written clip"));
    throw store.storageFailure(err);
  }
}
