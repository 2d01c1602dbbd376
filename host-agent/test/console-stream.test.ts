import type { ConsoleOutput } from "@labrig/shared";
import { describe, expect, it } from "vitest";
import { ConsoleStream } from "../src/console-stream.js";

const ids = { host: "h", device: "dut1", resource: "console" };

describe("console stream to the hub", () => {
  it("sends output after a quiet spell at once, so a typed character's echo is not held back", () => {
    const sent: ConsoleOutput[] = [];
    const stream = new ConsoleStream(ids, { canSend: () => true, sendConsole: (c) => sent.push(c) }, { flushIntervalMs: 50 });
    stream.push("a");
    expect(sent.map((c) => c.data)).toEqual(["a"]);
    stream.stop();
  });

  it("gathers what follows within the interval into one chunk, sent when the interval is over", async () => {
    const sent: ConsoleOutput[] = [];
    const stream = new ConsoleStream(ids, { canSend: () => true, sendConsole: (c) => sent.push(c) }, { flushIntervalMs: 50 });
    stream.push("first");
    const t0 = performance.now();
    for (let i = 0; i < 100; i++) stream.push(`.${i}`);
    expect(sent).toHaveLength(1);
    await new Promise((r) => setTimeout(r, 120));
    expect(sent).toHaveLength(2);
    expect(sent[1]?.data).toBe(Array.from({ length: 100 }, (_, i) => `.${i}`).join(""));
    expect(performance.now() - t0).toBeGreaterThanOrEqual(45);
    stream.stop();
  });
});
