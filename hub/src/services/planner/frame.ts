import jpeg from "jpeg-js";
import { LabrigError, downscaleRgba } from "@labrig/shared";

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
  // Reading the size from the header costs microseconds; a full decode (tens of ms) only when it must shrink.
  const size = jpegSize(input);
  if (size && Math.max(size.width, size.height) <= maxEdge) return { jpeg: input, width: size.width, height: size.height, scaled: false };
  let decoded: { width: number; height: number; data: Uint8Array };
  try {
    decoded = jpeg.decode(input, { useTArray: true, formatAsRGBA: true, maxResolutionInMP: MAX_DECODE_MP, maxMemoryUsageInMB: MAX_DECODE_MEMORY_MB });
  } catch (err) {
    throw new LabrigError("validation_failed", `The frame is not a JPEG the hub can read: ${(err as Error).message}`, { cause: err });
  }
  const { width, height } = decoded;
  const longest = Math.max(width, height);
  if (longest <= maxEdge) return { jpeg: input, width, height, scaled: false };

  const small = downscaleRgba(decoded.data, width, height, maxEdge);
  return { jpeg: jpeg.encode({ width: small.width, height: small.height, data: small.data }, quality).data, width: small.width, height: small.height, scaled: true };
}

/**
 * Width and height from a JPEG's start-of-frame marker, without decoding; null when the data is not a
 * well-formed JPEG header (the caller then decodes, which reports the problem).
 */
export function jpegSize(data: Buffer): { width: number; height: number } | null {
  if (data.length < 4 || data[0] !== 0xff || data[1] !== 0xd8) return null;
  let i = 2;
  while (i + 9 < data.length) {
    if (data[i] !== 0xff) return null;
    const marker = data[i + 1] ?? 0;
    // Fill bytes and markers without a length.
    if (marker === 0xff) {
      i += 1;
      continue;
    }
    if (marker === 0xd8 || (marker >= 0xd0 && marker <= 0xd7) || marker === 0x01) {
      i += 2;
      continue;
    }
    const length = data.readUInt16BE(i + 2);
    // SOF0..SOF15 except DHT (C4), JPG (C8) and DAC (CC) carry the frame size.
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      const height = data.readUInt16BE(i + 5);
      const width = data.readUInt16BE(i + 7);
      return width > 0 && height > 0 ? { width, height } : null;
    }
    if (marker === 0xda || length < 2) return null;
    i += 2 + length;
  }
  return null;
}
