/*
 * There is no camera on the test machine: the V4L2 path is tested as far as its command line
 * and its error paths (missing device node, missing ffmpeg). Everything after the input —
 * spawning ffmpeg, reading fixed-size raw frames through a one-frame buffer, publishing,
 * restarting after ffmpeg dies, stopping — runs for real with ffmpeg's lavfi test source as
 * the input instead of /dev/video*.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ArtifactStore } from "../src/capture/artifact-store.js";
import { FfmpegFrameSource, ffmpegFrameArgs, findExecutable, v4l2InputArgs } from "../src/capture/ffmpeg-source.js";
import { VideoCapture } from "../src/capture/video-capture.js";
import { parseConfig, type VideoResourceConfig } from "../src/config.js";
import { requireFfmpeg } from "./capture-helpers.js";
import { makeTempDir, testLogger, until } from "./helpers.js";

const lavfi = (w: number, h: number, fps: number, extra = ""): string[] => ["-f", "lavfi", "-i", `testsrc=size=${w}x${h}:rate=${fps}${extra}`];

describe("V4L2 source (no camera here: command line and error paths)", () => {
  let temp: ReturnType<typeof makeTempDir>;
  beforeEach(() => (temp = makeTempDir()));
  afterEach(() => temp.remove());

  it("builds the ffmpeg command line from the config", () => {
    const config = parseConfig(
      {
        host: "h1",
        hub: { url: "http://hub:8080", token: "t" },
        devices: [{ id: "dut1", resources: [{ name: "hdmi", kind: "video", path: "/dev/v4l/by-id/usb-cam-video-index0", width: 1280, height: 720, fps: 30, input_format: "yuyv422" }] }],
      },
      { baseDir: temp.dir },
    );
    const r = config.devices[0]?.resources[0] as VideoResourceConfig;
    expect(r).toMatchObject({ source: "v4l2", codec: "vp8", bitrate: 1_000_000 });
    const input = v4l2InputArgs({ path: r.path as string, width: r.width, height: r.height, fps: r.fps, inputFormat: r.input_format });
    expect(ffmpegFrameArgs(input, { width: r.width, height: r.height, format: "RGBA" })).toEqual([
      "-hide_banner",
      "-nostdin",
      "-loglevel",
      "error",
      "-f",
      "v4l2",
      "-input_format",
      "yuyv422",
      "-video_size",
      "1280x720",
      "-framerate",
      "30",
      "-i",
      "/dev/v4l/by-id/usb-cam-video-index0",
      "-an",
      "-vf",
      "scale=1280:720",
      "-f",
      "rawvideo",
      "-pix_fmt",
      "rgba",
      "pipe:1",
    ]);
    expect(ffmpegFrameArgs(input, { width: 2, height: 2, format: "I420" })).toContain("yuv420p");
  });

  it("applies the documented defaults and rejects a v4l2 source without a path", () => {
    const base = { host: "h1", hub: { url: "http://hub:8080", token: "t" } };
    const ok = parseConfig({ ...base, devices: [{ id: "d", resources: [{ name: "cam", kind: "video", path: "./video0" }] }] }, { baseDir: temp.dir });
    expect(ok.devices[0]?.resources[0]).toEqual({
      name: "cam",
      kind: "video",
      source: "v4l2",
      path: join(temp.dir, "video0"),
      width: 640,
      height: 480,
      fps: 15,
      input_format: "mjpeg",
      codec: "vp8",
      bitrate: 1_000_000,
    });
    expect(ok.artifacts).toEqual({ max_bytes: 256 * 1024 * 1024, max_count: 1000, max_age_s: 86_400 });
    expect(ok.ffmpeg_path).toBe("ffmpeg");
    expect(() => parseConfig({ ...base, devices: [{ id: "d", resources: [{ name: "cam", kind: "video" }] }] }, { baseDir: temp.dir })).toThrow(/resources\[0\]\.path: a v4l2 video source needs path/);
    expect(parseConfig({ ...base }, { baseDir: temp.dir, env: { LABRIG_FFMPEG: "/opt/ffmpeg/bin/ffmpeg" } }).ffmpeg_path).toBe("/opt/ffmpeg/bin/ffmpeg");
  });

  it("reports a missing device node as unavailable with a clear detail, and snapshots fail with device_unavailable", async () => {
    requireFfmpeg();
    const states: { status: string; detail: string }[] = [];
    const store = new ArtifactStore(join(temp.dir, "artifacts"), { maxBytes: 1e7, maxCount: 10, maxAgeS: 3600 }, testLogger());
    store.start();
    const capture = new VideoCapture(
      "dut1",
      { name: "hdmi", kind: "video", source: "v4l2", path: "/dev/video-labrig-missing", width: 64, height: 48, fps: 5, input_format: "mjpeg", codec: "vp8", bitrate: 200_000 },
      { host: "h1", logger: testLogger(), artifacts: store, sink: { streamCongested: () => true, sendStreamChunk: () => false }, ffmpeg: "ffmpeg", reportState: (status, detail) => states.push({ status, detail }) },
    );
    await capture.start();
    try {
      expect(states[0]).toEqual({ status: "unavailable", detail: expect.stringContaining("video device /dev/video-labrig-missing not found: is the capture dongle plugged in?") });
      await expect(capture.snapshot(new AbortController().signal)).rejects.toMatchObject({ code: "device_unavailable", message: expect.stringContaining("/dev/video-labrig-missing not found") });
      await expect(capture.record(1, "webm", new AbortController().signal)).rejects.toMatchObject({ code: "device_unavailable" });
    } finally {
      await capture.stop();
      store.stop();
    }
  });

  it("reports a missing ffmpeg (LABRIG_FFMPEG pointing nowhere) as unavailable with the install command", async () => {
    const config = parseConfig(
      { host: "h1", hub: { url: "http://hub:8080", token: "t" }, devices: [{ id: "d", resources: [{ name: "cam", kind: "video", path: "/dev/video0" }] }] },
      { baseDir: temp.dir, env: { LABRIG_FFMPEG: join(temp.dir, "bin", "ffmpeg") } },
    );
    expect(findExecutable(config.ffmpeg_path)).toBeNull();
    const states: { status: string; detail: string }[] = [];
    const source = new FfmpegFrameSource(
      { name: "d/cam", width: 64, height: 48, fps: 5, ffmpeg: config.ffmpeg_path, inputArgs: [], devicePath: "/dev/video0", retryBaseMs: 10_000 },
      testLogger(),
      (status, detail) => states.push({ status, detail }),
    );
    await source.start();
    expect(states).toEqual([{ status: "unavailable", detail: expect.stringMatching(/^ffmpeg not found: sudo apt-get install ffmpeg \(looked for '.*bin\/ffmpeg'/) }]);
    expect(source.problem).toContain("sudo apt-get install ffmpeg");
    await source.stop();
  });
});

describe("ffmpeg frame pipeline (lavfi test source standing in for the camera)", () => {
  beforeEach(() => requireFfmpeg());

  it("reads fixed-size raw frames from ffmpeg, reports ready, and kills ffmpeg on stop", async () => {
    const states: string[] = [];
    const source = new FfmpegFrameSource({ name: "t/cam", width: 96, height: 64, fps: 10, ffmpeg: "ffmpeg", inputArgs: lavfi(128, 96, 10) }, testLogger(), (s) => states.push(s));
    const seqs: number[] = [];
    const sizes = new Set<number>();
    // Recorded, not asserted here: FrameFanout catches what a subscriber throws, so an expect inside could never fail the test.
    const sub = source.subscribe((f) => {
      sizes.add(f.data.length);
      seqs.push(f.seq);
    });
    await source.start();
    try {
      await until(() => seqs.length >= 5, "five frames from ffmpeg", 10_000);
      expect(seqs.slice(0, 5)).toEqual([0, 1, 2, 3, 4]);
      expect([...sizes]).toEqual([96 * 64 * 4]);
      expect(states).toEqual(["ready"]);
      expect(source.problem).toBeNull();
      const frame = source.latest();
      expect(frame).toMatchObject({ width: 96, height: 64, format: "RGBA" });
    } finally {
      const pid = source.pid as number;
      sub.unsubscribe();
      await source.stop();
      expect(() => process.kill(pid, 0)).toThrow();
    }
  });

  it("delivers I420 frames when asked", async () => {
    const source = new FfmpegFrameSource({ name: "t/cam", width: 64, height: 48, fps: 10, format: "I420", ffmpeg: "ffmpeg", inputArgs: lavfi(64, 48, 10) }, testLogger());
    await source.start();
    try {
      const f = await source.next(-1, 10_000);
      expect(f?.data.length).toBe((64 * 48 * 3) / 2);
      expect(f?.format).toBe("I420");
    } finally {
      await source.stop();
    }
  });

  it("reports ffmpeg exiting (a dongle unplugged) with its message and starts it again", async () => {
    const states: { status: string; detail: string }[] = [];
    // Half a second of input, then ffmpeg exits by itself: the source must notice and restart it.
    const source = new FfmpegFrameSource(
      { name: "t/cam", width: 32, height: 24, fps: 10, ffmpeg: "ffmpeg", inputArgs: lavfi(32, 24, 10, ":duration=0.5"), retryBaseMs: 50, retryMaxMs: 100 },
      testLogger(),
      (status, detail) => states.push({ status, detail }),
    );
    await source.start();
    try {
      await until(() => states.filter((s) => s.status === "ready").length >= 2, "ready after a restart", 15_000);
      expect(states.map((s) => s.status).slice(0, 3)).toEqual(["ready", "error", "ready"]);
      expect(states[1]?.detail).toMatch(/^ffmpeg exited \(code 0\) reading its input/);
    } finally {
      await source.stop();
    }
  });

  it("a consumer slower than the source costs dropped frames, not memory", async () => {
    const source = new FfmpegFrameSource({ name: "t/cam", width: 64, height: 48, fps: 30, ffmpeg: "ffmpeg", inputArgs: lavfi(64, 48, 30) }, testLogger());
    let handled = 0;
    const sub = source.subscribe(async () => {
      handled++;
      await new Promise((r) => setTimeout(r, 200));
    });
    await source.start();
    try {
      await until(() => sub.dropped >= 10, "dropped frames", 10_000);
      expect(handled).toBeLessThan(sub.dropped);
    } finally {
      sub.unsubscribe();
      await source.stop();
    }
  });
});

describe("a capture that stalls", () => {
  let temp: ReturnType<typeof makeTempDir>;
  beforeEach(() => (temp = makeTempDir()));
  afterEach(() => temp.remove());

  it("serves no stale frame and restarts an ffmpeg that runs but stops delivering frames", async () => {
    // A stand-in for a wedged dongle: one frame, then silence while the process stays alive.
    const fake = join(temp.dir, "ffmpeg-stalls");
    writeFileSync(fake, "#!/bin/sh\nhead -c 3072 /dev/zero\nexec sleep 30\n", { mode: 0o755 });
    const states: { status: string; detail: string }[] = [];
    const source = new FfmpegFrameSource(
      { name: "t/cam", width: 32, height: 24, fps: 10, ffmpeg: fake, inputArgs: [], stallMs: 300, retryBaseMs: 50, retryMaxMs: 100 },
      testLogger(),
      (status, detail) => states.push({ status, detail }),
    );
    await source.start();
    try {
      const first = await source.next(-1, 5000);
      expect(first?.seq).toBe(0);
      // The stall limit is at least ten frame intervals (1 s at 10 fps).
      await until(() => states.some((s) => s.status === "error" && s.detail.includes("no frames")), "the stall to be reported", 5000);
      expect(source.latest()).toBeNull();
      // Restarted: the new process delivers a frame again.
      const again = await source.next(0, 5000);
      expect(again?.seq).toBe(1);
    } finally {
      await source.stop();
    }
  });
});
