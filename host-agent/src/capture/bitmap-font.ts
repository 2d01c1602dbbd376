/**
 * A tiny 5×7 bitmap font (upper-case letters, digits, a few signs) for drawing text into
 * frames: timestamps and frame counters on the test pattern, and the simulated board's
 * screen words, big enough that a planner reading a snapshot can tell them apart.
 * Lower case is drawn as upper case; unknown characters as '?'.
 */
const GLYPH_ROWS: Record<string, string> = {
  A: ".###.#...##...#######...##...##...#",
  B: "####.#...##...#####.#...##...#####.",
  C: ".###.#...##....#....#....#...#.###.",
  D: "####.#...##...##...##...##...#####.",
  E: "######....#....####.#....#....#####",
  F: "######....#....####.#....#....#....",
  G: ".###.#...##....#.####...##...#.####",
  H: "#...##...##...#######...##...##...#",
  I: ".###...#....#....#....#....#...###.",
  J: "..###...#....#....#....##..#..##...",
  K: "#...##..#.#.#..##...#.#..#..#.#...#",
  L: "#....#....#....#....#....#....#####",
  M: "#...###.###.#.##.#.##...##...##...#",
  N: "#...##...###..##.#.##..###...##...#",
  O: ".###.#...##...##...##...##...#.###.",
  P: "####.#...##...#####.#....#....#....",
  Q: ".###.#...##...##...##.#.##..#..##.#",
  R: "####.#...##...#####.#.#..#..#.#...#",
  S: ".#####....#.....###.....#....#####.",
  T: "#####..#....#....#....#....#....#..",
  U: "#...##...##...##...##...##...#.###.",
  V: "#...##...##...##...##...#.#.#...#..",
  W: "#...##...##...##.#.##.#.##.#.#.#.#.",
  X: "#...##...#.#.#...#...#.#.#...##...#",
  Y: "#...##...#.#.#...#....#....#....#..",
  Z: "#####....#...#...#...#...#....#####",
  "0": ".###.#...##..###.#.###..##...#.###.",
  "1": "..#...##....#....#....#....#...###.",
  "2": ".###.#...#....#...#...#...#...#####",
  "3": "#####...#...#.....#.....##...#.###.",
  "4": "...#...##..#.#.#..#.#####...#....#.",
  "5": "######....####.....#....##...#.###.",
  "6": "..##..#...#....####.#...##...#.###.",
  "7": "#####....#...#...#...#....#....#...",
  "8": ".###.#...##...#.###.#...##...#.###.",
  "9": ".###.#...##...#.####....#...#..##..",
  " ": "...................................",
  ":": "......##...##.........##...##......",
  ".": ".........................##...##...",
  "-": "...............#####...............",
  "/": ".........#...#...#...#...#.........",
  "#": ".#.#.#####.#.#..#.#.#####.#.#......",
  "?": ".###.#...#....#...#...#.........#..",
};

export const GLYPH_WIDTH = 5;
export const GLYPH_HEIGHT = 7;
/** Horizontal advance per character, in font pixels (glyph plus one column of spacing). */
export const GLYPH_ADVANCE = 6;

const GLYPHS: ReadonlyMap<string, Uint8Array> = new Map(
  Object.entries(GLYPH_ROWS).map(([ch, rows]) => {
    const cells = new Uint8Array(GLYPH_WIDTH * GLYPH_HEIGHT);
    for (let i = 0; i < cells.length; i++) cells[i] = rows[i] === "#" ? 1 : 0;
    return [ch, cells];
  }),
);

/** Width in pixels of `text` drawn at `scale`. */
export function textWidth(text: string, scale: number): number {
  return text.length === 0 ? 0 : (text.length * GLYPH_ADVANCE - 1) * scale;
}

/** A colour as [r, g, b]. */
export type Rgb = readonly [number, number, number];

/**
 * Draws `text` into an RGBA buffer with its top-left corner at (x, y), each font pixel a
 * scale×scale block; anything outside the frame is clipped.
 */
export function drawText(rgba: Buffer, width: number, height: number, x: number, y: number, text: string, scale: number, color: Rgb): void {
  const s = Math.max(1, Math.floor(scale));
  let penX = Math.floor(x);
  const top = Math.floor(y);
  for (const raw of text.toUpperCase()) {
    const glyph = GLYPHS.get(raw) ?? (GLYPHS.get("?") as Uint8Array);
    for (let gy = 0; gy < GLYPH_HEIGHT; gy++) {
      for (let gx = 0; gx < GLYPH_WIDTH; gx++) {
        if (glyph[gy * GLYPH_WIDTH + gx] !== 1) continue;
        fillRect(rgba, width, height, penX + gx * s, top + gy * s, s, s, color);
      }
    }
    penX += GLYPH_ADVANCE * s;
  }
}

/** Fills a rectangle of an RGBA buffer (clipped to the frame), alpha 255. */
export function fillRect(rgba: Buffer, width: number, height: number, x: number, y: number, w: number, h: number, color: Rgb): void {
  const x0 = Math.max(0, Math.floor(x));
  const y0 = Math.max(0, Math.floor(y));
  const x1 = Math.min(width, Math.floor(x + w));
  const y1 = Math.min(height, Math.floor(y + h));
  if (x1 <= x0 || y1 <= y0) return;
  const pixel = Buffer.from([color[0], color[1], color[2], 255]);
  const rowStart = (y0 * width + x0) * 4;
  const rowBytes = (x1 - x0) * 4;
  // Fill the first row pixel by pixel, then copy it: far faster than a per-pixel loop for big boxes.
  for (let i = 0; i < rowBytes; i += 4) pixel.copy(rgba, rowStart + i);
  for (let yy = y0 + 1; yy < y1; yy++) rgba.copy(rgba, (yy * width + x0) * 4, rowStart, rowStart + rowBytes);
}
