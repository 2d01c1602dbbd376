// @ts-check
// Capture figures for the host agent: encode fps of node-webcodecs (the agent's encoder, H.264 via
// OpenH264 and VP8 via libvpx) on test-pattern frames at 640x480 and 1280x720, next to ffmpeg's own
// encoders fed the very same raw frames through a pipe in the same run. Figures, not pass/fail.
// Needs a build (npm run build) and ffmpeg (sudo apt-get install ffmpeg).
import { spawn } from "node:child_process";
import { performance } from "node:perf_hooks";
import { FrameEncoder, TestPatternSource, createLogger, findExecutable } from "../../host-agent/dist/index.js";

const SIZES = [
  { width: 640, height: 480, frames: 150 },
  { width: 1280, height: 720, frames: 90 },
];
/** Distinct frames rendered once and cycled: rendering must not be what is measured. */
const DISTINCT_FRAMES = 30;
const FPS = 15;
const BITRATE = 1_000_000;
/** Any single measurement stops here, whatever it reached. */
const MAX_RUN_MS = 30_000;

const logger = createLogger("silent");
/** @param {string} msg */
const progress = (msg) => process.stdout.write(`  … ${msg}\n`);

/**
 * Which ffmpeg encoders to compare with, by codec, in order of preference.
 * @type {Record<"avc1.42001f" | "vp8", {encoder: string, args: string[]}[]>}
 */
const FFMPEG_ENCODERS = {
  "avc1.42001f": [
    { encoder: "libopenh264", args: ["-c:v", "libopenh264", "-b:v", String(BITRATE)] },
    { encoder: "libx264", args: ["-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency", "-b:v", String(BITRATE)] },
  ],
  vp8: [{ encoder: "libvpx", args: ["-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "8", "-b:v", String(BITRATE)] }],
};

/** @param {string} ffmpeg @returns {Promise<Set<string>>} */
function availableEncoders(ffmpeg) {
  return new Promise((resolve) => {
    const child = spawn(ffmpeg, ["-hide_banner", "-encoders"], { stdio: ["ignore", "pipe", "ignore"] });
    let out = "";
    child.stdout.on("data", (d) => (out += d));
    child.on("exit", () => resolve(new Set([...out.matchAll(/^\s*V\S*\s+(\S+)/gm)].map((m) => /** @type {string} */ (m[1])))));
  });
}

/** @param {number} width @param {number} height */
function renderFrames(width, height) {
  const source = new TestPatternSource({ name: "bench", width, height, fps: FPS }, logger);
  return Array.from({ length: DISTINCT_FRAMES }, (_, i) => source.render(i, 0));
}

/**
 * node-webcodecs: frames in at the encoder's pace (queue kept ≤ 8), flushed at the end.
 * @param {"avc1.42001f" | "vp8"} codec @param {ReturnType<typeof renderFrames>} frames @param {number} count
 */
async function webcodecsFps(codec, frames, count) {
  const first = /** @type {NonNullable<typeof frames[number]>} */ (frames[0]);
  let chunks = 0;
  let failure = /** @type {Error | null} */ (null);
  const encoder = new FrameEncoder(
    { codec, width: first.width, height: first.height, fps: FPS, bitrate: BITRATE },
    () => chunks++,
    (err) => (failure = err),
  );
  const t0 = performance.now();
  let n = 0;
  for (; n < count && performance.now() - t0 < MAX_RUN_MS; n++) {
    const f = /** @type {NonNullable<typeof frames[number]>} */ (frames[n % frames.length]);
    encoder.encode({ ...f, seq: n, timestampUs: Math.round((n * 1e6) / FPS) }, n % (FPS * 2) === 0);
    await encoder.waitForRoom(8);
  }
  await encoder.flush();
  const ms = performance.now() - t0;
  encoder.close();
  if (failure) throw failure;
  return { fps: (chunks * 1000) / ms, frames: chunks };
}

/**
 * ffmpeg: the same RGBA frames through stdin, encoded and thrown away (-f null). Includes ffmpeg's startup (~50 ms).
 * @param {string} ffmpeg @param {string[]} encoderArgs @param {ReturnType<typeof renderFrames>} frames @param {number} count
 */
async function ffmpegFps(ffmpeg, encoderArgs, frames, count) {
  const first = /** @type {NonNullable<typeof frames[number]>} */ (frames[0]);
  const args = ["-hide_banner", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "rgba", "-s", `${first.width}x${first.height}`, "-r", String(FPS), "-i", "pipe:0", "-pix_fmt", "yuv420p", ...encoderArgs, "-f", "null", "-"];
  const t0 = performance.now();
  const child = spawn(ffmpeg, args, { stdio: ["pipe", "ignore", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (d) => (stderr = (stderr + d).slice(-2000)));
  const exited = new Promise((resolve) => child.on("exit", (code) => resolve(code)));
  // ffmpeg refusing its settings closes the pipe early: reported with its stderr below, not as EPIPE.
  child.stdin.on("error", () => undefined);
  let n = 0;
  for (; n < count && performance.now() - t0 < MAX_RUN_MS; n++) {
    const f = /** @type {NonNullable<typeof frames[number]>} */ (frames[n % frames.length]);
    if (child.exitCode !== null) break;
    if (!child.stdin.write(f.data)) {
      await new Promise((resolve) => {
        const done = () => {
          child.stdin.off("drain", done);
          child.off("exit", done);
          resolve(undefined);
        };
        child.stdin.once("drain", done);
        child.once("exit", done);
      });
    }
  }
  child.stdin.end();
  const code = await exited;
  if (code !== 0) throw new Error(`ffmpeg ${encoderArgs.join(" ")} failed (${code}): ${stderr}`);
  return { fps: (n * 1000) / (performance.now() - t0), frames: n };
}

async function main() {
  const ffmpeg = findExecutable(process.env.LABRIG_FFMPEG ?? "ffmpeg");
  if (ffmpeg === null) throw new Error("ffmpeg not found: sudo apt-get install ffmpeg");
  const have = await availableEncoders(ffmpeg);
  /** @type {string[][]} */
  const rows = [];
  for (const size of SIZES) {
    progress(`rendering ${DISTINCT_FRAMES} test-pattern frames at ${size.width}x${size.height}`);
    const frames = renderFrames(size.width, size.height);
    for (const codec of /** @type {const} */ (["avc1.42001f", "vp8"])) {
      progress(`node-webcodecs ${codec} ${size.width}x${size.height}, ${size.frames} frames`);
      const wc = await webcodecsFps(codec, frames, size.frames);
      const choices = FFMPEG_ENCODERS[codec].filter((c) => have.has(c.encoder));
      if (choices.length === 0) {
        rows.push([`${size.width}x${size.height}`, codec, wc.fps.toFixed(1), "(none in this ffmpeg)", "-", "-"]);
        continue;
      }
      for (const choice of choices) {
        progress(`ffmpeg ${choice.encoder} ${size.width}x${size.height}, ${size.frames} frames`);
        const ff = await ffmpegFps(ffmpeg, choice.args, frames, size.frames);
        rows.push([`${size.width}x${size.height}`, codec, wc.fps.toFixed(1), choice.encoder, ff.fps.toFixed(1), (wc.fps / ff.fps).toFixed(2)]);
      }
    }
  }
  const header = ["size", "codec", "webcodecs fps", "ffmpeg encoder", "ffmpeg fps", "ratio wc/ffmpeg"];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (/** @type {string[]} */ cells) => cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join("  ");
  console.log(`\nEncode speed on test-pattern frames (${FPS} fps timestamps, ${BITRATE / 1e6} Mbit/s target, RGBA input to both):`);
  console.log(line(header));
  console.log(line(widths.map((w) => "-".repeat(w))));
  for (const r of rows) console.log(line(r));
  console.log("\nffmpeg figures include process start-up and the RGBA pipe; webcodecs runs in-process on a worker thread.");
}

main().catch((err) => {
  console.error(`capture benchmark failed: ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = 1;
});
