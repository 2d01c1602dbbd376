import { describe, expect, it } from "vitest";
import { uuidv7 } from "../src/ids.js";

// Action ids: RFC 9562 UUID version 7 — the layout, the time order across milliseconds, no repeats.

describe("uuidv7", () => {
  it("is a version 7, RFC variant UUID whose first 48 bits are the milliseconds given", () => {
    const ms = Date.UTC(2026, 11, 1, 12, 0, 0, 123);
    const id = uuidv7(ms);
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(Number.parseInt(id.replace(/-/g, "").slice(0, 12), 16)).toBe(ms);
  });

  it("sorts ids of later milliseconds after earlier ones, and repeats none of 20,000 made in the same millisecond", () => {
    const ms = Date.now();
    const ordered = [uuidv7(ms - 1), uuidv7(ms), uuidv7(ms + 1), uuidv7(ms + 1000)];
    expect([...ordered].sort()).toEqual(ordered);
    const same = new Set(Array.from({ length: 20_000 }, () => uuidv7(ms)));
    expect(same.size).toBe(20_000);
  });
});
