import jpeg from "jpeg-js";
import { LabrigError } from "@labrig/shared";

export interface ScaledFrame {
  jpeg: Buffer;
  width: number;
  height: number;
  /** True when the frame was larger than the limit and was shrunk. */
  scaled: boolean;
}

// A capture frame is at most a few megapixels; anything bigger is refused rather than decoded.
const MAX_DECODE_MP = 40;
const MAX_DECODE_MEMORY_MB = 512;

/**
 * Shrinks a JPEG so its longer edge is at most `maxEdge` (area-averaged, so text in the frame stays
 * legible), re-encoding only when it had to shrink. The model sees fewer tokens; nothing else changes.
 */
export function scaleJpeg(input: Buffer, maxEdge: number, quality = 85): ScaledFrame {
  let decoded: { width: number; height: number; data: Uint8Array };
  try {
    decoded = jpeg.decode(input, { useTArray: true, formatAsRGBA: true, maxResolutionInMP: MAX_DECODE_MP, maxMemoryUsageInMB: MAX_DECODE_MEMORY_MB });
  } catch (err) {
    throw new LabrigError("validation_failed", `The frame is not a JPEG the hub can read: ${(err as Error).message}`, { cause: err });
  }
  const { width, height } = decoded;
  const longest = Math.max(width, height);
  if (longest <= maxEdge) return { jpeg: input, width, height, scaled: false };

  const factor = maxEdge / longest;
  const outW = Math.max(1, Math.round(width * factor));
  const outH = Math.max(1, Math.round(height * factor));
  const out = Buffer.alloc(outW * outH * 4);
  const src = decoded.data;
  for (let y = 0; y < outH; y++) {
    const y0 = Math.floor((y * height) / outH);
    const y1 = Math.max(y0 + 1, Math.floor(((y + 1) * height) / outH));
    for (let x = 0; x < outW; x++) {
      const x0 = Math.floor((x * width) / outW);
      const x1 = Math.max(x0 + 1, Math.floor(((x + 1) * width) / outW));
      let r = 0;
      let g = 0;
      let b = 0;
      for (let sy = y0; sy < y1; sy++) {
        let i = (sy * width + x0) * 4;
        for (let sx = x0; sx < x1; sx++, i += 4) {
          r += src[i] ?? 0;
          g += src[i + 1] ?? 0;
          b += src[i + 2] ?? 0;
        }
      }
      const n = (y1 - y0) * (x1 - x0);
      const o = (y * outW + x) * 4;
      out[o] = r / n;
      out[o + 1] = g / n;
      out[o + 2] = b / n;
      out[o + 3] = 255;
    }
  }
  return { jpeg: jpeg.encode({ width: outW, height: outH, data: out }, quality).data, width: outW, height: outH, scaled: true };
}
