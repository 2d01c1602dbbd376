import { execFileSync } from "node:child_process";
import { readFileSync, readdirSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import jpeg from "jpeg-js";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ArtifactStore } from "../src/capture/artifact-store.js";
import { recordClip } from "../src/capture/clip-recorder.js";
import type { Frame, FrameSource } from "../src/capture/frame.js";
import type { StreamSink } from "../src/capture/live-stream.js";
import type { ScreenOverlay } from "../src/capture/test-pattern.js";
import { VideoCapture } from "../src/capture/video-capture.js";
import type { VideoResourceConfig } from "../src/config.js";
import { ffprobe, requireFfmpeg } from "./capture-helpers.js";
import { makeTempDir, testLogger } from "./helpers.js";

const limits = { maxBytes: 10_000_000, maxCount: 100, maxAgeS: 3600 };
const noSink: StreamSink = { streamCongested: () => true, sendStreamChunk: () => false };

function screenConfig(over: Partial<VideoResourceConfig> = {}): VideoResourceConfig {
  return { name: "screen", kind: "video", source: "test-pattern", width: 160, height: 120, fps: 5, input_format: "mjpeg", codec: "vp8", bitrate: 300_000, ...over };
}

describe("artifact store", () => {
  let temp: ReturnType<typeof makeTempDir>;
  beforeEach(() => (temp = makeTempDir()));
  afterEach(() => temp.remove());

  it("keeps within max_count and max_bytes by deleting the oldest first", async () => {
    const store = new ArtifactStore(temp.dir, { maxBytes: 2_500_000, maxCount: 3, maxAgeS: 3600 }, testLogger());
    store.start();
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await store.put(Buffer.alloc(1000, i), "jpg")).id);
    expect(store.count).toBe(3);
    expect(ids.slice(0, 2).some((id) => store.has(id))).toBe(false);
    expect(ids.slice(2).every((id) => store.has(id))).toBe(true);
    const big = await store.put(Buffer.alloc(2_000_000), "webm");
    // 2 MB + 3 × 1 KB is within 2.5 MB once the oldest of the small ones is gone for count.
    expect(store.has(big.id)).toBe(true);
    const bigger = await store.put(Buffer.alloc(1_000_000), "mp4");
    expect(store.has(big.id)).toBe(false);
    expect(store.has(bigger.id)).toBe(true);
    expect(store.totalBytes).toBeLessThanOrEqual(2_500_000);
    // Oldest first: the small ones went before the big one, and the files on disk are exactly what is indexed.
    expect(readdirSync(temp.dir)).toEqual([`${bigger.id}.mp4`]);
    expect(store.count).toBe(1);
    store.stop();
  });

  it("on a full disk refuses the artifact with a clear error and leaves no half-written file behind", async () => {
    const store = new ArtifactStore(temp.dir, limits, testLogger());
    store.start();
    // /dev/full answers every write with ENOSPC, as a full disk does; the .part name points there.
    // (The whole path, a real tmpfs filled to the last byte, is the fault suite's "artifact disk full".)
    const reserve = store.reserve.bind(store);
    store.reserve = (ext) => {
      const r = reserve(ext);
      symlinkSync("/dev/full", r.partPath);
      return r;
    };
    await expect(store.put(Buffer.alloc(4096, 1), "jpg")).rejects.toMatchObject({ code: "storage_full", message: expect.stringMatching(/^No space left on the agent's disk for the artifact/) });
    expect(readdirSync(temp.dir)).toEqual([]);
    expect(store.count).toBe(0);
    store.stop();
  });

  it("reads artifacts in slices and deletes them", async () => {
    const store = new ArtifactStore(temp.dir, limits, testLogger());
    store.start();
    const data = Buffer.from(Array.from({ length: 3000 }, (_, i) => i % 251));
    const { id } = await store.put(data, "webm");
    const a = await store.read(id, 0, 1024);
    const b = await store.read(id, 1024, 4096);
    expect(a).toMatchObject({ mime_type: "video/webm", size: 3000, offset: 0 });
    expect(Buffer.concat([a.data, b.data]).equals(data)).toBe(true);
    expect(await store.delete(id)).toBe(true);
    expect(await store.delete(id)).toBe(false);
    await expect(store.read(id)).rejects.toMatchObject({ code: "not_found" });
    store.stop();
  });

  it("refuses ids that are not uuids before touching the disk", async () => {
    const store = new ArtifactStore(temp.dir, limits, testLogger());
    store.start();
    for (const bad of ["../../etc/passwd", "x", "", "00000000-0000-0000-0000-00000000000G", null, 42]) {
      await expect(store.read(bad)).rejects.toMatchObject({ code: "validation_failed" });
      await expect(store.delete(bad)).rejects.toMatchObject({ code: "validation_failed" });
    }
    store.stop();
  });

  it("indexes what an earlier run left, drops half-written files and stray names", async () => {
    const first = new ArtifactStore(temp.dir, limits, testLogger());
    first.start();
    const { id } = await first.put(Buffer.from("jpeg"), "jpg");
    first.stop();
    writeFileSync(join(temp.dir, "11111111-2222-4333-8444-555555555555.mp4.part"), "half");
    writeFileSync(join(temp.dir, "notes.txt"), "ignored");
    const second = new ArtifactStore(temp.dir, limits, testLogger());
    second.start();
    expect(second.has(id)).toBe(true);
    expect((await second.read(id)).data.toString()).toBe("jpeg");
    expect(readdirSync(temp.dir).some((n) => n.endsWith(".part"))).toBe(false);
    second.stop();
  });
});

describe("snapshots and clips of a test-pattern source", () => {
  let temp: ReturnType<typeof makeTempDir>;
  let store: ArtifactStore;
  let capture: VideoCapture;
  let overlay: ScreenOverlay | null;
  const states: { status: string; detail: string }[] = [];

  beforeEach(async () => {
    temp = makeTempDir();
    store = new ArtifactStore(join(temp.dir, "artifacts"), limits, testLogger());
    store.start();
    overlay = null;
    states.length = 0;
    capture = new VideoCapture("dut1", screenConfig(), {
      host: "h1",
      logger: testLogger(),
      artifacts: store,
      sink: noSink,
      ffmpeg: "ffmpeg",
      reportState: (status, detail) => states.push({ status, detail }),
      overlay: () => overlay,
    });
    await capture.start();
  });

  afterEach(async () => {
    await capture.stop();
    store.stop();
    temp.remove();
  });

  async function snapshotPixels(): Promise<{ bytes: Buffer; image: { width: number; height: number; data: Uint8Array } }> {
    await capture.source.next(capture.source.latest()?.seq ?? -1, 2000);
    const result = await capture.snapshot(new AbortController().signal);
    expect(result).toMatchObject({ mime_type: "image/jpeg", width: 160, height: 120 });
    const bytes = readFileSync(join(store.dir, `${result.artifact}.jpg`));
    return { bytes, image: jpeg.decode(bytes, { useTArray: true }) };
  }

  /** Mean brightness of the middle third of the picture, where the overlay text goes. */
  function middleBrightness(image: { width: number; height: number; data: Uint8Array }): number {
    let sum = 0;
    let n = 0;
    for (let y = Math.floor(image.height / 3); y < (image.height * 2) / 3; y++) {
      for (let x = Math.floor(image.width / 4); x < (image.width * 3) / 4; x++) {
        const i = (y * image.width + x) * 4;
        sum += (image.data[i] as number) + (image.data[i + 1] as number) + (image.data[i + 2] as number);
        n++;
      }
    }
    return sum / n / 3;
  }

  it("reports the resource ready", () => {
    expect(states).toContainEqual({ status: "ready", detail: "test pattern 160x120@5" });
  });

  it("stores a valid JPEG of the configured size that shows the pattern and the screen's state", async () => {
    overlay = { blank: true };
    const off = await snapshotPixels();
    expect(off.bytes.subarray(0, 2)).toEqual(Buffer.from([0xff, 0xd8]));
    expect(off.bytes.subarray(-2)).toEqual(Buffer.from([0xff, 0xd9]));
    expect([off.image.width, off.image.height]).toEqual([160, 120]);
    expect(middleBrightness(off.image)).toBeLessThan(10);

    overlay = { text: "SHELL" };
    const shell = await snapshotPixels();
    // Bars plus a big white word: far brighter than the dark screen.
    expect(middleBrightness(shell.image)).toBeGreaterThan(60);
    overlay = { text: "BOOTING" };
    const booting = await snapshotPixels();
    const diff = shell.image.data.reduce((acc, v, i) => acc + Math.abs(v - (booting.image.data[i] as number)), 0);
    expect(diff / shell.image.data.length).toBeGreaterThan(5);
  });

  for (const format of ["webm", "mp4"] as const) {
    it(`records a playable ${format} clip: codec, size and frame count checked with ffprobe`, async () => {
      requireFfmpeg();
      const result = await capture.record(1.2, format, new AbortController().signal);
      expect(result).toMatchObject({ mime_type: `video/${format}`, frames: 6, duration_ms: 1200 });
      const probe = ffprobe(join(store.dir, `${result.artifact}.${format}`));
      expect(probe.stream.codec_name).toBe(format === "webm" ? "vp8" : "h264");
      expect([probe.stream.width, probe.stream.height]).toEqual([160, 120]);
      expect(Math.abs(Number(probe.stream.nb_read_frames) - 1.2 * 5)).toBeLessThanOrEqual(1);
      expect(probe.formatName).toContain(format === "webm" ? "webm" : "mp4");
    });
  }

  it("aborts a recording and leaves no half-written file", async () => {
    requireFfmpeg();
    const controller = new AbortController();
    const recording = capture.record(5, "webm", controller.signal);
    setTimeout(() => controller.abort(), 300);
    await expect(recording).rejects.toMatchObject({ code: "canceled" });
    expect(readdirSync(store.dir)).toEqual([]);
  });

  it("fails a recording on a full disk with storage_full and leaves no half-written file (ffmpeg itself exits 0 there)", async () => {
    requireFfmpeg();
    // The clip's .part name points at /dev/full, which answers every write with ENOSPC.
    const reserve = store.reserve.bind(store);
    store.reserve = (ext) => {
      const r = reserve(ext);
      symlinkSync("/dev/full", r.partPath);
      return r;
    };
    try {
      await expect(capture.record(1, "webm", new AbortController().signal)).rejects.toMatchObject({
        code: "storage_full",
        message: expect.stringMatching(/^No space left on the agent's disk for the artifact/),
      });
    } finally {
      store.reserve = reserve;
    }
    expect(readdirSync(store.dir)).toEqual([]);
  });

  it("fails a recording with the install command when ffmpeg is missing", async () => {
    const broken = new VideoCapture("dut1", screenConfig(), {
      host: "h1",
      logger: testLogger(),
      artifacts: store,
      sink: noSink,
      ffmpeg: join(temp.dir, "no-such-ffmpeg"),
      reportState: () => undefined,
    });
    await broken.start();
    try {
      await expect(broken.record(1, "mp4", new AbortController().signal)).rejects.toMatchObject({
        code: "hardware_error",
        message: expect.stringContaining("sudo apt-get install ffmpeg"),
      });
      // Snapshots need no ffmpeg.
      expect((await broken.snapshot(new AbortController().signal)).mime_type).toBe("image/jpeg");
    } finally {
      await broken.stop();
    }
  });
});

describe("a recording whose encoder cannot open", () => {
  /** Commands of this process's children, from ps (independent of the code under test). */
  const children = (): string[] =>
    execFileSync("ps", ["-o", "comm=", "--ppid", String(process.pid)], { encoding: "utf8" })
      .split("\n")
      .map((l) => l.trim())
      .filter((l) => l !== "" && l !== "ps");

  it("fails without leaving an ffmpeg muxer waiting on its stdin, or a half-written file", async () => {
    requireFfmpeg();
    const temp = makeTempDir();
    const store = new ArtifactStore(temp.dir, limits, testLogger());
    store.start();
    // A size no encoder accepts makes FrameEncoder throw while opening, as a missing native binding does.
    const frame: Frame = { seq: 0, timestampUs: 0, width: 0, height: 0, format: "RGBA", data: Buffer.alloc(0) };
    const source: FrameSource = {
      width: 0,
      height: 0,
      fps: 5,
      format: "RGBA",
      problem: null,
      start: async () => undefined,
      stop: async () => undefined,
      latest: () => frame,
      subscribe: () => ({ unsubscribe: () => undefined, dropped: 0 }),
      next: async () => frame,
    };
    try {
      expect(children().filter((c) => c === "ffmpeg")).toEqual([]);
      await expect(recordClip(source, store, { durationS: 1, format: "webm", fps: 5, bitrate: 300_000, ffmpeg: "ffmpeg" }, new AbortController().signal, testLogger())).rejects.toThrow(
        /dimensions/i,
      );
      await new Promise((r) => setTimeout(r, 200));
      expect(children().filter((c) => c === "ffmpeg")).toEqual([]);
      expect(readdirSync(temp.dir)).toEqual([]);
    } finally {
      store.stop();
      temp.remove();
    }
  });
});
