import { execFileSync } from "node:child_process";
import { EncodedVideoChunk, VideoDecoder } from "node-webcodecs";
import { findExecutable } from "../src/capture/ffmpeg-source.js";

/** Fails (never skips) when ffmpeg/ffprobe are missing, with the install command. */
export function requireFfmpeg(): void {
  for (const tool of ["ffmpeg", "ffprobe"]) {
    if (findExecutable(tool) === null) throw new Error(`${tool} not found: sudo apt-get install ffmpeg`);
  }
}

export interface ProbedStream {
  codec_name: string;
  width: number;
  height: number;
  nb_read_frames: string;
}

/** ffprobe's view of a media file's first video stream, counting frames by decoding them. */
export function ffprobe(path: string): { stream: ProbedStream; formatName: string; duration: number } {
  const out = execFileSync(
    "ffprobe",
    ["-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries", "stream=codec_name,width,height,nb_read_frames", "-show_entries", "format=format_name,duration", "-of", "json", path],
    { encoding: "utf8" },
  );
  const json = JSON.parse(out) as { streams: ProbedStream[]; format: { format_name: string; duration: string } };
  const stream = json.streams[0];
  if (!stream) throw new Error(`ffprobe found no video stream in ${path}`);
  return { stream, formatName: json.format.format_name, duration: Number(json.format.duration) };
}

export interface Chunk {
  type: "key" | "delta";
  timestampUs: number;
  data: Uint8Array;
}

/** Decodes chunks with node-webcodecs' VideoDecoder and returns each decoded frame's size. */
export async function decodeChunks(codec: string, width: number, height: number, chunks: readonly Chunk[]): Promise<{ width: number; height: number }[]> {
  const frames: { width: number; height: number }[] = [];
  let failure: Error | null = null;
  const decoder = new VideoDecoder({
    output: (f) => {
      frames.push({ width: f.codedWidth, height: f.codedHeight });
      f.close();
    },
    error: (e) => (failure = new Error(e.message)),
  });
  decoder.configure({ codec, codedWidth: width, codedHeight: height });
  for (const c of chunks) decoder.decode(new EncodedVideoChunk({ type: c.type, timestamp: c.timestampUs, data: c.data }));
  await decoder.flush();
  decoder.close();
  if (failure) throw failure;
  return frames;
}
