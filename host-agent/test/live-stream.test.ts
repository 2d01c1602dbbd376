import type { StreamChunk } from "@labrig/shared";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { ArtifactStore } from "../src/capture/artifact-store.js";
import { LiveStream, type StreamSink } from "../src/capture/live-stream.js";
import { TestPatternSource } from "../src/capture/test-pattern.js";
import { VideoCapture } from "../src/capture/video-capture.js";
import { decodeChunks } from "./capture-helpers.js";
import { makeTempDir, testLogger, until } from "./helpers.js";

/** A link that acknowledges chunks only when told to, like a hub behind a slow network. */
class SlowLink implements StreamSink {
  readonly chunks: StreamChunk[] = [];
  inFlight = 0;
  constructor(private readonly maxInFlight: number) {}
  streamCongested(): boolean {
    return this.inFlight >= this.maxInFlight;
  }
  sendStreamChunk(chunk: StreamChunk): boolean {
    if (this.streamCongested()) return false;
    this.inFlight++;
    this.chunks.push(chunk);
    return true;
  }
  ackAll(): void {
    this.inFlight = 0;
  }
}

describe("live stream", () => {
  let source: TestPatternSource;
  beforeEach(async () => {
    source = new TestPatternSource({ name: "dut1/screen", width: 160, height: 120, fps: 20 }, testLogger());
    await source.start();
  });
  afterEach(async () => {
    await source.stop();
  });

  const ids = { host: "h1", device: "dut1", resource: "screen" };

  it("sends decodable chunks only between start and stop, beginning with a keyframe", async () => {
    const link = new SlowLink(1000);
    const stream = new LiveStream(source, link, { ids, codec: "vp8", fps: 20, bitrate: 300_000 }, testLogger());
    await new Promise((r) => setTimeout(r, 200));
    expect(link.chunks).toHaveLength(0);
    stream.start();
    await until(() => link.chunks.length >= 10, "ten chunks", 5000);
    stream.stop();
    const count = link.chunks.length;
    await new Promise((r) => setTimeout(r, 300));
    expect(link.chunks.length).toBe(count);
    expect(link.chunks[0]).toMatchObject({ ...ids, seq: 0, codec: "vp8", type: "key", width: 160, height: 120 });
    expect(link.chunks.map((c) => c.seq)).toEqual(link.chunks.map((_, i) => i));
    const decoded = await decodeChunks("vp8", 160, 120, link.chunks.map((c) => ({ type: c.type, timestampUs: c.timestamp_us, data: c.data })));
    expect(decoded).toHaveLength(count);
  });

  it("stamps every chunk with the wall-clock time its frame was captured, in order and just before it was sent", async () => {
    const sentAt: number[] = [];
    const link = new SlowLink(1000);
    const timed: StreamSink = {
      streamCongested: () => link.streamCongested(),
      sendStreamChunk: (chunk) => {
        sentAt.push(Date.now());
        return link.sendStreamChunk(chunk);
      },
    };
    const before = Date.now();
    const stream = new LiveStream(source, timed, { ids, codec: "vp8", fps: 20, bitrate: 300_000 }, testLogger());
    stream.start();
    await until(() => link.chunks.length >= 8, "eight chunks", 5000);
    stream.stop();
    const stamps = link.chunks.map((c) => c.captured_at_ms);
    for (const [i, at] of stamps.entries()) {
      expect(at, `chunk ${i}`).toBeTypeOf("number");
      // Captured after the stream started, before its chunk went out, and never by more than the encoder's delay.
      expect(at as number).toBeGreaterThanOrEqual(before - 1);
      expect(at as number).toBeLessThanOrEqual((sentAt[i] as number) + 1);
      expect((sentAt[i] as number) - (at as number)).toBeLessThan(1000);
      if (i > 0) expect(at as number).toBeGreaterThan(stamps[i - 1] as number);
    }
  });

  it("drops frames instead of queueing them when the link does not acknowledge, and recovers with a keyframe", async () => {
    const link = new SlowLink(2);
    const stream = new LiveStream(source, link, { ids, codec: "avc1.42001f", fps: 20, bitrate: 300_000 }, testLogger());
    stream.start();
    await until(() => stream.stats.dropped >= 10, "dropped frames", 5000);
    // Nothing acknowledged: exactly two chunks went out, everything else was dropped, nothing waits in memory.
    expect(link.chunks).toHaveLength(2);
    expect(stream.stats.sent).toBe(2);
    link.ackAll();
    await until(() => link.chunks.length >= 3, "a chunk after the link recovered", 5000);
    stream.stop();
    // Frames dropped before encoding leave the delta chain intact; the stream decodes from its first keyframe.
    const decoded = await decodeChunks("avc1.42001f", 160, 120, link.chunks.map((c) => ({ type: c.type, timestampUs: c.timestamp_us, data: c.data })));
    expect(decoded.length).toBe(link.chunks.length);
  });
});

describe("VideoCapture stream control", () => {
  it("restarting a stream that stopped by itself (encoder failure) leaves no stats timer behind", async () => {
    // Only intervals are faked, so vi.getTimerCount() counts exactly the stats timers; frames still flow on real timeouts.
    vi.useFakeTimers({ toFake: ["setInterval", "clearInterval"] });
    const temp = makeTempDir();
    const capture = new VideoCapture(
      "dut1",
      { name: "screen", kind: "video", source: "test-pattern", width: 64, height: 48, fps: 10, input_format: "mjpeg", codec: "vp8", bitrate: 200_000 },
      {
        host: "h1",
        logger: testLogger(),
        artifacts: new ArtifactStore(temp.dir, { maxBytes: 1e7, maxCount: 10, maxAgeS: 3600 }, testLogger()),
        sink: new SlowLink(1000),
        ffmpeg: "ffmpeg",
        reportState: () => undefined,
      },
    );
    try {
      await capture.start();
      const before = vi.getTimerCount();
      capture.startStream();
      expect(vi.getTimerCount()).toBe(before + 1);
      // What LiveStream's encoder error handler does; a real encoder only fails on broken hardware or codecs.
      (capture as unknown as { stream: LiveStream }).stream.stop();
      expect(capture.streaming).toBe(false);
      capture.startStream();
      expect(capture.streaming).toBe(true);
      capture.stopStream();
      expect(vi.getTimerCount()).toBe(before);
    } finally {
      await capture.stop();
      vi.useRealTimers();
      temp.remove();
    }
  });
});
