/**
 * Shrinks an RGBA image so its longer edge is at most `maxEdge`, averaging each output pixel over
 * the source area it covers (text stays legible, unlike nearest-neighbour). Returns the input
 * unchanged when it already fits. Pure computation, shared by the agent (snapshots) and the hub (planner frames).
 */
export function downscaleRgba(data: Uint8Array, width: number, height: number, maxEdge: number): { data: Uint8Array; width: number; height: number } {
  const longest = Math.max(width, height);
  if (longest <= maxEdge) return { data, width, height };
  const factor = maxEdge / longest;
  const outW = Math.max(1, Math.round(width * factor));
  const outH = Math.max(1, Math.round(height * factor));
  const out = new Uint8Array(outW * outH * 4);
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
          r += data[i] ?? 0;
          g += data[i + 1] ?? 0;
          b += data[i + 2] ?? 0;
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
  return { data: out, width: outW, height: outH };
}
