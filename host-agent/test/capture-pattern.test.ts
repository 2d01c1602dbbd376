import { describe, expect, it } from "vitest";
import { drawText, textWidth } from "../src/capture/bitmap-font.js";
import { FrameEncoder, type EncodedChunk } from "../src/capture/encoder.js";
import { FrameFanout, i420ToRgba, rgbaToI420, type Frame } from "../src/capture/frame.js";
import { TestPatternSource } from "../src/capture/test-pattern.js";
import { decodeChunks } from "./capture-helpers.js";
import { testLogger, until } from "./helpers.js";

/** Encodes `count` test-pattern frames and returns the chunks. */
async function encodePattern(codec: "vp8" | "avc1.42001f", format: "RGBA" | "I420", width: number, height: number, count: number): Promise<EncodedChunk[]> {
  const source = new TestPatternSource({ name: "t/screen", width, height, fps: 10, format }, testLogger());
  const chunks: EncodedChunk[] = [];
  // Kept and rethrown below: a throw inside the encoder's error callback would not reach the test.
  let failure: Error | null = null;
  const encoder = new FrameEncoder({ codec, width, height, fps: 10, bitrate: 300_000 }, (c) => chunks.push(c), (err) => (failure = err));
  for (let i = 0; i < count; i++) encoder.encode(source.render(i, i * 100_000), i === 0);
  await encoder.flush();
  encoder.close();
  if (failure) throw failure;
  return chunks;
}

describe("test pattern", () => {
  it("renders frames of the configured size that change from frame to frame", () => {
    const source = new TestPatternSource({ name: "t/screen", width: 160, height: 120, fps: 5 }, testLogger());
    const a = source.render(0, 0);
    const b = source.render(10, 2_000_000);
    expect(a.data.length).toBe(160 * 120 * 4);
    expect(a.format).toBe("RGBA");
    expect(a.data.equals(b.data)).toBe(false);
    // Opaque everywhere: JPEG and encoders treat alpha as noise.
    for (let i = 3; i < a.data.length; i += 4) if (a.data[i] !== 255) throw new Error(`pixel ${i / 4} is not opaque`);
  });

  it("burns in a timestamp and frame counter with the bitmap font", () => {
    const fixed = new Date("2025-01-14T10:00:00.000Z");
    const source = new TestPatternSource({ name: "t/screen", width: 240, height: 120, fps: 5, now: () => fixed }, testLogger());
    const frame = source.render(42, 0);
    const expected = Buffer.alloc(240 * 11 * 4);
    // The bottom band is black with white text: rebuild it and compare.
    for (let i = 0; i < expected.length; i += 4) expected[i + 3] = 255;
    drawText(expected, 240, 11, 2, 2, "10:00:00.000 #000042", 1, [255, 255, 255]);
    expect(frame.data.subarray((120 - 11) * 240 * 4).equals(expected)).toBe(true);
    expect(textWidth("AB", 3)).toBe(33);
  });

  it("shows an overlay: blank is black above the clock, text is drawn big in the middle", () => {
    let overlay: { blank?: boolean; text?: string } | null = { blank: true };
    const source = new TestPatternSource({ name: "t/screen", width: 160, height: 120, fps: 5, overlay: () => overlay }, testLogger());
    const dark = source.render(1, 0);
    let lit = 0;
    for (let i = 0; i < 160 * 100 * 4; i += 4) lit += dark.data[i] as number;
    expect(lit).toBe(0);
    overlay = { text: "SHELL" };
    const shell = source.render(1, 0);
    overlay = { text: "LOGIN" };
    const login = source.render(1, 0);
    expect(shell.data.equals(login.data)).toBe(false);
  });

  it("converts RGBA to I420 and back within rounding", () => {
    const source = new TestPatternSource({ name: "t/screen", width: 64, height: 48, fps: 5 }, testLogger());
    const rgba = source.render(3, 0).data;
    const back = i420ToRgba(rgbaToI420(rgba, 64, 48), 64, 48);
    // A flat area (the top-left of the first bar) survives the round trip closely.
    for (let c = 0; c < 3; c++) expect(Math.abs((back[c] as number) - (rgba[c] as number))).toBeLessThan(8);
  });

  it("publishes at its fps while started and keeps only the latest frame", async () => {
    const source = new TestPatternSource({ name: "t/screen", width: 64, height: 48, fps: 20 }, testLogger());
    const seen: number[] = [];
    const sub = source.subscribe((f) => void seen.push(f.seq));
    await source.start();
    await until(() => seen.length >= 5, "five frames", 3000);
    await source.stop();
    sub.unsubscribe();
    expect(seen.slice(0, 5)).toEqual([0, 1, 2, 3, 4]);
    expect(source.latest()).toBeNull();
  });
});

describe("frame fan-out", () => {
  const frame = (seq: number): Frame => ({ seq, timestampUs: seq, width: 2, height: 2, format: "RGBA", data: Buffer.alloc(16) });

  it("gives a slow subscriber the newest frame afterwards and counts the ones it missed", async () => {
    const fanout = new FrameFanout(testLogger(), "t");
    const got: number[] = [];
    let release: () => void = () => undefined;
    const sub = fanout.subscribe(
      (f) =>
        new Promise<void>((resolve) => {
          got.push(f.seq);
          release = resolve;
        }),
    );
    const fast: number[] = [];
    fanout.subscribe((f) => void fast.push(f.seq));
    for (let i = 0; i < 100; i++) fanout.publish(frame(i));
    expect(fast).toHaveLength(100);
    expect(got).toEqual([0]);
    release();
    await until(() => got.length === 2, "the pending frame");
    expect(got).toEqual([0, 99]);
    expect(sub.dropped).toBe(98);
    release();
  });

  it("resolves next() with the first newer frame, or null after the timeout", async () => {
    const fanout = new FrameFanout(testLogger(), "t");
    expect(await fanout.next(-1, 20)).toBeNull();
    const p = fanout.next(-1, 1000);
    fanout.publish(frame(0));
    expect((await p)?.seq).toBe(0);
    expect((await fanout.next(-1, 10))?.seq).toBe(0);
  });
});

describe("node-webcodecs round trip of the test pattern", () => {
  for (const codec of ["vp8", "avc1.42001f"] as const) {
    for (const format of ["RGBA", "I420"] as const) {
      it(`encodes ${format} frames as ${codec} and decodes them back: same count and size`, async () => {
        const chunks = await encodePattern(codec, format, 160, 120, 12);
        expect(chunks).toHaveLength(12);
        expect(chunks[0]?.type).toBe("key");
        const decoded = await decodeChunks(codec, 160, 120, chunks);
        expect(decoded).toHaveLength(12);
        for (const f of decoded) expect(f).toEqual({ width: 160, height: 120 });
      });
    }
  }
});
