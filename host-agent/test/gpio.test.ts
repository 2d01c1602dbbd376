import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { DEFAULT_POWER_CYCLE_OFF_MS, type ActionName } from "@labrig/shared";
import { describe, expect, it } from "vitest";
import { parseConfig } from "../src/config.js";
import { Device, type ResourceStateReport } from "../src/devices/device.js";
import { listGpioChips, resolveSysfsNumber } from "../src/devices/gpio/chips.js";
import type { LineFactory, LineSpec } from "../src/devices/gpio/gpio-line.js";
import { MemoryLine, MemoryLineFactory } from "../src/devices/gpio/memory-line.js";
import { makeTempDir, testLogger } from "./helpers.js";

describe("MemoryLine", () => {
  it("applies active_low at the line: logical 1 drives the wire low", () => {
    const line = new MemoryLine({ name: "dut1/reset", direction: "out", activeLow: true, initial: 0 });
    expect(line.read()).toBe(0);
    expect(line.readPhysical()).toBe(1);
    const seen: number[] = [];
    line.onChange((v) => seen.push(v));
    line.write(1);
    expect(line.read()).toBe(1);
    expect(line.readPhysical()).toBe(0);
    line.write(1);
    line.write(0);
    expect(seen).toEqual([1, 0]);
  });

  it("refuses use after release", () => {
    const line = new MemoryLine({ name: "x", direction: "out", activeLow: false, initial: 0 });
    line.release();
    expect(() => line.write(1)).toThrow(/released/);
  });
});

async function gpioDevice(extraPower: Record<string, unknown> = {}): Promise<{ device: Device; lines: MemoryLineFactory; states: ResourceStateReport[] }> {
  const config = parseConfig(
    {
      host: "gpio-host",
      hub: { url: "http://127.0.0.1:9", token: "t" },
      devices: [
        {
          id: "dut1",
          resources: [
            { name: "power", kind: "power", line: 17, ...extraPower },
            { name: "reset", kind: "gpio", line: 27, direction: "out", active_low: true, initial: 0 },
            { name: "button", kind: "gpio", line: 22 },
          ],
        },
      ],
    },
    { baseDir: "/tmp" },
  );
  const lines = new MemoryLineFactory();
  const states: ResourceStateReport[] = [];
  const device = new Device(config.devices[0]!, { lineFactory: lines, logger: testLogger(), reportState: (s) => states.push(s), onConsoleData: () => undefined });
  await device.start();
  return { device, lines, states };
}

const run = (device: Device, action: ActionName, resource: string | null, params: Record<string, unknown>, signal = new AbortController().signal) =>
  device.run(action, resource, params, signal);

describe("GPIO and power on a device", () => {
  it("gpio.write / gpio.read use logical values; the active-low wire is inverted", async () => {
    const { device, lines } = await gpioDevice();
    try {
      expect(await run(device, "gpio.write", "reset", { value: 1 })).toEqual({ value: 1 });
      expect(lines.get("dut1/reset")?.readPhysical()).toBe(0);
      expect(await run(device, "gpio.read", "reset", {})).toEqual({ value: 1 });
    } finally {
      await device.stop();
    }
  });

  it("gpio.pulse drives the line for width_ms, measured on the agent, then back", async () => {
    const { device, lines } = await gpioDevice();
    try {
      const reset = lines.get("dut1/reset") as MemoryLine;
      const changes: { v: number; t: number }[] = [];
      reset.onChange((v) => changes.push({ v, t: performance.now() }));
      const r = (await run(device, "gpio.pulse", "reset", { width_ms: 50, value: 1 })) as { width_ms: number };
      expect(r.width_ms).toBeGreaterThanOrEqual(50);
      expect(changes.map((c) => c.v)).toEqual([1, 0]);
      expect(changes[1]!.t - changes[0]!.t).toBeGreaterThanOrEqual(49);
      expect(reset.read()).toBe(0);
    } finally {
      await device.stop();
    }
  });

  it("an aborted pulse still returns the line to inactive", async () => {
    const { device, lines } = await gpioDevice();
    try {
      const controller = new AbortController();
      setTimeout(() => controller.abort(), 20);
      await expect(run(device, "gpio.pulse", "reset", { width_ms: 5000, value: 1 }, controller.signal)).rejects.toMatchObject({ code: "canceled" });
      expect(lines.get("dut1/reset")?.read()).toBe(0);
    } finally {
      await device.stop();
    }
  });

  it("refuses to drive an input line", async () => {
    const { device } = await gpioDevice();
    try {
      await expect(run(device, "gpio.write", "button", { value: 1 })).rejects.toMatchObject({ code: "forbidden_line" });
      expect(await run(device, "gpio.read", "button", {})).toEqual({ value: 0 });
    } finally {
      await device.stop();
    }
  });

  it("power.cycle switches off, waits off_ms, then on, and reports each state", async () => {
    const { device, lines, states } = await gpioDevice();
    try {
      const power = lines.get("dut1/power") as MemoryLine;
      expect(await run(device, "power.on", "power", {})).toEqual({ state: "on" });
      const changes: { v: number; t: number }[] = [];
      power.onChange((v) => changes.push({ v, t: performance.now() }));
      expect(await run(device, "power.cycle", "power", { off_ms: 120 })).toEqual({ state: "on" });
      expect(changes.map((c) => c.v)).toEqual([0, 1]);
      expect(changes[1]!.t - changes[0]!.t).toBeGreaterThanOrEqual(119);
      expect(states.filter((s) => s.resource === "power").map((s) => s.power)).toEqual(["off", "on", "off", "on"]);
    } finally {
      await device.stop();
    }
  });

  it("power.cycle without off_ms uses cycle_off_ms from the config, else the catalogue default", async () => {
    const configured = await gpioDevice({ cycle_off_ms: 80 });
    try {
      const t0 = performance.now();
      await run(configured.device, "power.cycle", "power", {});
      const took = performance.now() - t0;
      expect(took).toBeGreaterThanOrEqual(79);
      expect(took).toBeLessThan(DEFAULT_POWER_CYCLE_OFF_MS);
    } finally {
      await configured.device.stop();
    }
  });
});

describe("a device whose start fails part-way", () => {
  it("releases the lines it had already opened, and stops watching inputs, before rethrowing", async () => {
    const config = parseConfig(
      {
        host: "gpio-host",
        hub: { url: "http://127.0.0.1:9", token: "t" },
        devices: [
          {
            id: "dut1",
            resources: [
              { name: "power", kind: "power", line: 17, initial: 1 },
              { name: "button", kind: "gpio", line: 22, edge: "both", poll_ms: 5 },
              { name: "reset", kind: "gpio", line: 27, direction: "out" },
            ],
          },
        ],
      },
      { baseDir: "/tmp" },
    );
    const memory = new MemoryLineFactory();
    // The third line cannot be opened (a missing chip, a pin owned by another process).
    const failing: LineFactory = {
      driver: "memory",
      open: async (spec: LineSpec) => {
        if (spec.name === "dut1/reset") throw new Error("no such pin");
        return memory.open(spec);
      },
    };
    const device = new Device(config.devices[0]!, { lineFactory: failing, logger: testLogger(), reportState: () => undefined, onConsoleData: () => undefined });
    await expect(device.start()).rejects.toThrow("no such pin");
    // A released MemoryLine refuses use; before the fix both stayed open (and the button kept being polled).
    expect(() => memory.get("dut1/power")!.read()).toThrow(/released/);
    expect(() => memory.get("dut1/button")!.read()).toThrow(/released/);
    await expect(device.run("power.on", "power", {}, new AbortController().signal)).rejects.toMatchObject({ code: "device_unavailable" });
  });
});

describe("GPIO chips in sysfs", () => {
  function fakeChip(root: string, name: string, label: string, base: number, ngpio: number): void {
    const dir = join(root, name);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, "label"), `${label}\n`);
    writeFileSync(join(dir, "base"), `${base}\n`);
    writeFileSync(join(dir, "ngpio"), `${ngpio}\n`);
  }

  it("finds the chip by label and adds its base (never a fixed offset)", () => {
    const temp = makeTempDir();
    try {
      fakeChip(temp.dir, "gpiochip512", "pinctrl-bcm2711", 512, 58);
      fakeChip(temp.dir, "gpiochip570", "raspberrypi-exp-gpio", 570, 8);
      writeFileSync(join(temp.dir, "export"), "");
      expect(listGpioChips(temp.dir).map((c) => c.label)).toEqual(["pinctrl-bcm2711", "raspberrypi-exp-gpio"]);
      expect(resolveSysfsNumber(temp.dir, 17, "pinctrl-bcm2711").number).toBe(529);
      expect(resolveSysfsNumber(temp.dir, 2, "raspberrypi-exp-gpio").number).toBe(572);
      expect(resolveSysfsNumber(temp.dir, 17, null).number).toBe(529);
      expect(() => resolveSysfsNumber(temp.dir, 17, "pinctrl-rp1")).toThrow(/Chips found: pinctrl-bcm2711 \(base 512/);
      expect(() => resolveSysfsNumber(temp.dir, 60, "pinctrl-bcm2711")).toThrow(/lines 0-57/);
    } finally {
      temp.remove();
    }
  });

  it("prefers the Pi header controller when no chip is named (Pi 5 layout)", () => {
    const temp = makeTempDir();
    try {
      fakeChip(temp.dir, "gpiochip512", "gpio-brcmstb@107d508500", 512, 32);
      fakeChip(temp.dir, "gpiochip571", "pinctrl-rp1", 571, 54);
      expect(resolveSysfsNumber(temp.dir, 17, null)).toMatchObject({ number: 588, chip: { label: "pinctrl-rp1" } });
    } finally {
      temp.remove();
    }
  });

  it("an absent sysfs root has no chips and says what to do", () => {
    expect(listGpioChips("/nonexistent/gpio")).toEqual([]);
    expect(() => resolveSysfsNumber("/nonexistent/gpio", 17, null)).toThrow(/gpio.driver be memory/);
  });
});
