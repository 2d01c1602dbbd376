import { describe, expect, it } from "vitest";
import { InputWatcher } from "../src/devices/gpio/input-watcher.js";
import { MemoryLine } from "../src/devices/gpio/memory-line.js";
import { testLogger, until } from "./helpers.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("InputWatcher on a line without edge interrupts", () => {
  it("polls, says so, reports a level that held for debounce_ms, and ignores a shorter bounce", async () => {
    const line = new MemoryLine({ name: "dut1/button", direction: "in", activeLow: false, initial: 0 });
    const seen: number[] = [];
    // The debounce is far longer than the bounce below, so a stalled event loop on a shared box cannot turn the bounce into a press.
    const w = new InputWatcher(line, { edge: "both", debounceMs: 400, pollMs: 10 }, (v) => seen.push(v), testLogger());
    expect(w.start()).toEqual({ mode: "poll", detail: "edge interrupts unavailable: polling every 10 ms" });
    try {
      // A bounce: up and back down well inside the debounce time.
      line.setPhysical(1);
      await sleep(30);
      line.setPhysical(0);
      await sleep(600);
      expect(seen).toEqual([]);
      line.setPhysical(1);
      await until(() => seen.length === 1, "the press to be reported");
      line.setPhysical(0);
      await until(() => seen.length === 2, "the release to be reported");
      expect(seen).toEqual([1, 0]);
    } finally {
      w.stop();
    }
  });

  it("edge rising reports only changes to 1 but keeps track of releases; edge none watches nothing", async () => {
    const line = new MemoryLine({ name: "dut1/button", direction: "in", activeLow: true, initial: 0 });
    const seen: number[] = [];
    const w = new InputWatcher(line, { edge: "rising", debounceMs: 5, pollMs: 5 }, (v) => seen.push(v), testLogger());
    w.start();
    try {
      // Active-low: pulling the wire low is logical 1.
      line.setPhysical(0);
      await until(() => seen.length === 1, "the press");
      line.setPhysical(1);
      await sleep(100);
      line.setPhysical(0);
      await until(() => seen.length === 2, "the second press");
      expect(seen).toEqual([1, 1]);
    } finally {
      w.stop();
    }
    const idle = new InputWatcher(line, { edge: "none", debounceMs: 5, pollMs: 5 }, () => undefined, testLogger());
    expect(idle.start()).toEqual({ mode: "off" });
  });
});

describe("input config", () => {
  it("defaults edge none, debounce_ms 20, poll_ms 50, and refuses edge on an output", async () => {
    const { parseConfig, ConfigError } = await import("../src/config.js");
    const base = { host: "h", hub: { url: "http://127.0.0.1:9", token: "t" } };
    const c = parseConfig({ ...base, devices: [{ id: "d", resources: [{ name: "button", kind: "gpio", line: 4 }] }] }, { baseDir: "/tmp" });
    expect(c.devices[0]!.resources[0]).toMatchObject({ direction: "in", edge: "none", debounce_ms: 20, poll_ms: 50 });
    let err: unknown;
    try {
      parseConfig({ ...base, devices: [{ id: "d", resources: [{ name: "led", kind: "gpio", line: 4, direction: "out", edge: "rising" }] }] }, { baseDir: "/tmp" });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as InstanceType<typeof ConfigError>).issues).toContain("devices[0].resources[0].edge: only inputs are watched for edges; remove edge or set direction: in");
  });
});
