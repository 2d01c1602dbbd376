import { describe, expect, it } from "vitest";
import { ConsoleHistory } from "../src/devices/console-history.js";

describe("ConsoleHistory read by offset", () => {
  it("returns what arrived after an offset, the next offset, and whether max stopped it early", () => {
    const h = new ConsoleHistory({ capacityChars: 100, coalesceMs: 0 });
    h.append("hello ", 1);
    h.append("world", 2);
    expect([h.start, h.end]).toEqual([0, 11]);
    expect(h.readFrom(0, 100)).toEqual({ text: "hello world", next: 11, more: false, dropped: 0 });
    expect(h.readFrom(3, 4)).toEqual({ text: "lo w", next: 7, more: true, dropped: 0 });
    expect(h.readFrom(7, 100)).toEqual({ text: "orld", next: 11, more: false, dropped: 0 });
    expect(h.readFrom(11, 100)).toEqual({ text: "", next: 11, more: false, dropped: 0 });
  });

  it("counts what fell out of the ring before a slow reader came back", () => {
    const h = new ConsoleHistory({ capacityChars: 10, coalesceMs: 0 });
    h.append("0123456789", 1);
    h.append("abcdef", 2);
    expect([h.start, h.end]).toEqual([6, 16]);
    expect(h.readFrom(2, 100)).toEqual({ text: "6789abcdef", next: 16, more: false, dropped: 4 });
    // A chunk larger than the ring: its head is dropped and counted too.
    h.append("X".repeat(25), 3);
    expect(h.readFrom(16, 100)).toEqual({ text: "X".repeat(10), next: 41, more: false, dropped: 15 });
  });

  it("stays exact across entry drops caused by the entry bound", () => {
    const h = new ConsoleHistory({ capacityChars: 1000, maxEntries: 3, coalesceMs: 0 });
    for (let i = 0; i < 6; i++) h.append(`${i}`, i);
    expect(h.start).toBe(3);
    expect(h.readFrom(0, 100)).toEqual({ text: "345", next: 6, more: false, dropped: 3 });
  });
});
