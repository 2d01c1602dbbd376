import { existsSync, mkdirSync, readFileSync, realpathSync, renameSync, symlinkSync } from "node:fs";
import { join } from "node:path";
import type { SerialPort } from "serialport";
import { describe, expect, it } from "vitest";
import { parseConfig } from "../src/config.js";
import { ConsoleHistory } from "../src/devices/console-history.js";
import { ConsoleLogFile, consoleLogSizes } from "../src/devices/console-log-file.js";
import { Device, type ResourceStateReport } from "../src/devices/device.js";
import { MemoryLineFactory } from "../src/devices/gpio/memory-line.js";
import { closePeer, makeTempDir, openPeer, startPtyPair, testLogger, until, writePeer } from "./helpers.js";

function serialDevice(dir: string, path: string, extra: Record<string, unknown> = {}): { device: Device; states: ResourceStateReport[] } {
  const config = parseConfig(
    { host: "h1", hub: { url: "http://127.0.0.1:9", token: "t" }, devices: [{ id: "dut1", resources: [{ name: "console", kind: "serial", path, ...extra }] }] },
    { baseDir: dir },
  );
  const states: ResourceStateReport[] = [];
  const device = new Device(config.devices[0]!, { lineFactory: new MemoryLineFactory(), logger: testLogger(), reportState: (s) => states.push(s), onConsoleData: () => undefined, dataDir: dir });
  return { device, states };
}

describe("serial console: unplug and replug of the whole PTY pair", () => {
  it("reports unavailable when the port vanishes, fails actions at once with device_unavailable, and recovers by itself at the same path", async () => {
    const temp = makeTempDir();
    let pair = await startPtyPair(temp.dir);
    let peer: SerialPort | null = await openPeer(pair.b);
    const { device, states } = serialDevice(temp.dir, pair.a);
    const signal = new AbortController().signal;
    try {
      await device.start();
      const console_ = device.serialConsole("console")!;
      await console_.waitUntilOpen(3000);
      expect(states.map((s) => s.status)).toEqual(["ready"]);

      // Unplug: socat exits and takes both PTYs and their links with it.
      await closePeer(peer);
      peer = null;
      await pair.stop();
      expect(existsSync(pair.a)).toBe(false);
      await until(() => states.some((s) => s.status === "unavailable"), "the console to report the lost port", 10_000);
      const lost = states.find((s) => s.status === "unavailable")!;
      expect(lost.detail).toContain(pair.a);
      const t0 = Date.now();
      await expect(device.run("serial.write", "console", { data: "x" }, signal)).rejects.toMatchObject({ code: "device_unavailable" });
      await expect(device.run("serial.expect", "console", { pattern: "x", timeout_ms: 5000, regex: false, flush: false }, signal)).rejects.toMatchObject({
        code: "device_unavailable",
      });
      expect(Date.now() - t0).toBeLessThan(1000);
      // Still missing for a while: several reopen attempts, one state report.
      await new Promise((r) => setTimeout(r, 800));
      expect(states.filter((s) => s.status === "unavailable")).toHaveLength(1);

      // Replug at the same path; the console reopens without anyone restarting it.
      pair = await startPtyPair(temp.dir);
      await until(() => console_.isOpen, "the console to reopen the replugged port", 15_000);
      expect(states.map((s) => s.status)).toEqual(["ready", "unavailable", "ready"]);
      peer = await openPeer(pair.b);
      const expectation = device.run("serial.expect", "console", { pattern: "back (\\d+)", timeout_ms: 5000, regex: true, flush: false }, signal);
      await writePeer(peer, "board is back 42\r\n");
      await expect(expectation).resolves.toMatchObject({ match: "back 42", groups: ["42"] });
    } finally {
      await device.stop();
      if (peer) await closePeer(peer);
      await pair.stop();
      temp.remove();
    }
  }, 45_000);
});

describe("serial console: a by-id style link that moves to another device node", () => {
  it("notices the link now names another port (a quick replug), reports unavailable → ready and talks to the new one", async () => {
    const temp = makeTempDir();
    mkdirSync(join(temp.dir, "one"));
    mkdirSync(join(temp.dir, "two"));
    const first = await startPtyPair(join(temp.dir, "one"));
    const second = await startPtyPair(join(temp.dir, "two"));
    const link = join(temp.dir, "usb-FTDI_test-if00-port0");
    symlinkSync(realpathSync(first.a), link);
    const { device, states } = serialDevice(temp.dir, link);
    let peer: SerialPort | null = null;
    try {
      await device.start();
      const console_ = device.serialConsole("console")!;
      await console_.waitUntilOpen(3000);
      // The old node stays alive (no hangup reaches the agent): only the link's target changes.
      symlinkSync(realpathSync(second.a), `${link}.new`);
      renameSync(`${link}.new`, link);
      await until(() => states.filter((s) => s.status === "ready").length === 2, "the console to move to the new node", 15_000);
      expect(states.map((s) => s.status)).toEqual(["ready", "unavailable", "ready"]);
      expect(states[1]!.detail).toContain("now points at");
      peer = await openPeer(second.b);
      const expectation = device.run("serial.expect", "console", { pattern: "second", timeout_ms: 5000, regex: false, flush: false }, new AbortController().signal);
      await writePeer(peer, "hello from the second adapter\r\n");
      await expect(expectation).resolves.toMatchObject({ match: "second" });
    } finally {
      await device.stop();
      if (peer) await closePeer(peer);
      await first.stop();
      await second.stop();
      temp.remove();
    }
  }, 30_000);
});

describe("serial console logs", () => {
  it("keeps a timestamped on-disk log under data_dir/console that rotates .log → .log.1 → .log.2 within max × files", async () => {
    const temp = makeTempDir();
    const pair = await startPtyPair(temp.dir);
    const peer = await openPeer(pair.b);
    const { device } = serialDevice(temp.dir, pair.a, { log_max_bytes: 8192, log_files: 3 });
    try {
      await device.start();
      const console_ = device.serialConsole("console")!;
      await console_.waitUntilOpen(3000);
      const logPath = join(temp.dir, "console", "dut1-console.log");
      expect(console_.consoleLogFile?.path).toBe(logPath);
      let total = 0;
      for (let i = 0; i < 400; i++) {
        const line = `line ${String(i).padStart(4, "0")} ${"x".repeat(80)}\r\n`;
        total += line.length;
        await writePeer(peer, line);
      }
      await until(() => console_.tail(1 << 20).includes("line 0399"), "all lines to arrive", 10_000);
      await console_.consoleLogFile!.flushed();
      const sizes = await consoleLogSizes(logPath, 5);
      expect(sizes).toHaveLength(3);
      expect(sizes.every((s) => s <= 8192)).toBe(true);
      expect(total).toBeGreaterThan(3 * 8192);
      expect(existsSync(`${logPath}.3`)).toBe(false);
      const live = readFileSync(logPath, "utf8");
      expect(live).toContain("line 0399");
      // Every line starts with the time it arrived.
      const firstFull = live.split("\n").find((l) => l.includes("line "))!;
      expect(firstFull).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z line \d{4} x+\r$/);
      expect(readFileSync(`${logPath}.1`, "utf8")).toMatch(/line \d{4}/);
      expect(console_.consoleLogFile!.droppedBytes).toBe(0);
      // The memory log carries arrival times too.
      const entries = console_.history(200);
      expect(entries.map((e) => e.text).join("")).toBe(console_.tail(200));
      expect(entries.every((e) => Math.abs(Date.now() - e.at) < 60_000)).toBe(true);
    } finally {
      await device.stop();
      await closePeer(peer);
      await pair.stop();
      temp.remove();
    }
  }, 30_000);

  it("drops (and counts) output when the disk cannot keep up, instead of queueing without limit", async () => {
    const temp = makeTempDir();
    const log = new ConsoleLogFile({ path: join(temp.dir, "console", "d-c.log"), maxBytes: 1 << 20, files: 2, maxQueuedBytes: 4096 }, testLogger());
    try {
      await log.start();
      // All in one tick: nothing reaches the disk in between, so the queue bound decides.
      for (let i = 0; i < 100; i++) log.write(`${"y".repeat(99)}\n`);
      expect(log.droppedBytes).toBeGreaterThan(0);
      await log.flushed();
      log.write("after the stall\n");
      await log.flushed();
      const text = readFileSync(log.path, "utf8");
      expect(text).toMatch(/\[labrig: \d+ bytes of console output were not logged; the disk was too slow\]/);
      expect(text).toContain("after the stall");
      expect(text.length).toBeLessThan(8192);
    } finally {
      await log.stop();
      temp.remove();
    }
  });

  it("the in-memory history is bounded in characters and in entries", () => {
    const h = new ConsoleHistory({ capacityChars: 1000, maxEntries: 10, coalesceMs: 0 });
    for (let i = 0; i < 500; i++) h.append("ab", 1000 + i);
    expect(h.length).toBeLessThanOrEqual(1000);
    expect(h.entryCount).toBe(10);
    expect(h.tail(4)).toBe("abab");
    expect(h.tailEntries(3)).toEqual([
      { at: 1498, text: "b" },
      { at: 1499, text: "ab" },
    ]);
    h.append("z".repeat(5000), 2000);
    expect(h.length).toBe(1000);
    expect(h.tail(2000)).toBe("z".repeat(1000));
  });
});
