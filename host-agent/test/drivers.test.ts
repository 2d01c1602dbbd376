import { ACTIONS, ACTION_NAMES, type ResourceKind } from "@labrig/shared";
import { describe, expect, it } from "vitest";
import type { VideoCapture } from "../src/capture/video-capture.js";
import { parseConfig } from "../src/config.js";
import { Device } from "../src/devices/device.js";
import type { ActionsOfKind } from "../src/devices/drivers/resource-driver.js";
import { SerialDriver } from "../src/devices/drivers/serial-driver.js";
import { VideoDriver } from "../src/devices/drivers/video-driver.js";
import { MemoryLineFactory } from "../src/devices/gpio/memory-line.js";
import { PowerDriver } from "../src/devices/drivers/power-driver.js";
import { GpioDriver } from "../src/devices/drivers/gpio-driver.js";
import { SerialConsole } from "../src/devices/serial-console.js";
import { makeTempDir, testLogger } from "./helpers.js";

// Compile-time half of the contract: the kind's action list is derived from the catalogue, so this
// record (and every driver's handler map) stops compiling when a serial action is added or removed.
const SERIAL_ACTIONS: Record<ActionsOfKind<"serial">, true> = { "serial.write": true, "serial.expect": true, "serial.read": true, "serial.tail": true };
const NO_RESOURCE_ACTIONS: Record<ActionsOfKind<null>, true> = { wait: true };

const ofKind = (kind: ResourceKind | null): string[] => ACTION_NAMES.filter((a) => ACTIONS[a].resourceKind === kind).sort();

describe("drivers by resource kind", () => {
  it("each driver has exactly one handler per catalogue action of its kind", async () => {
    const temp = makeTempDir();
    const lines = new MemoryLineFactory();
    const log = testLogger();
    try {
      const serial = new SerialDriver("console", new SerialConsole({ name: "d/console", path: `${temp.dir}/none`, baudRate: 9600, dataBits: 8, parity: "none", stopBits: 1, rtsCts: false, txCharDelayMs: 0 }, log));
      const line = await lines.open({ name: "d/x", line: 1, chip: null, direction: "out", activeLow: false, initial: 0 });
      const gpioConfig = parseConfig({ host: "h", hub: { url: "http://127.0.0.1:9", token: "t" }, devices: [{ id: "d", resources: [{ name: "x", kind: "gpio", line: 1, direction: "out" }] }] }, { baseDir: "/tmp" }).devices[0]!.resources[0];
      if (gpioConfig?.kind !== "gpio") throw new Error("config did not parse as a gpio resource");
      const gpio = new GpioDriver("x", "d", line, gpioConfig, () => undefined, log);
      const power = new PowerDriver("p", "d", line, { on: () => "on", off: () => "off", cycle: async () => "on", state: "off" } as never, () => undefined, log);
      // Only the handler map is inspected; nothing is captured.
      const video = new VideoDriver("cam", "d", {} as VideoCapture, log);
      expect(Object.keys(serial.handlers).sort()).toEqual(ofKind("serial"));
      expect(Object.keys(gpio.handlers).sort()).toEqual(ofKind("gpio"));
      expect(Object.keys(power.handlers).sort()).toEqual(ofKind("power"));
      expect(Object.keys(video.handlers).sort()).toEqual(ofKind("video"));
      expect(Object.keys(SERIAL_ACTIONS).sort()).toEqual(ofKind("serial"));
      expect(Object.keys(NO_RESOURCE_ACTIONS)).toEqual(ofKind(null));
    } finally {
      temp.remove();
    }
  });

  it("a device dispatches by the resource's kind: a wrong-kind serial resource is unknown_resource, a wrong-kind line forbidden_line", async () => {
    const temp = makeTempDir();
    const config = parseConfig(
      {
        host: "h",
        hub: { url: "http://127.0.0.1:9", token: "t" },
        devices: [{ id: "d", resources: [{ name: "console", kind: "serial", path: `${temp.dir}/none` }, { name: "relay", kind: "power", line: 3 }] }],
      },
      { baseDir: "/tmp" },
    );
    const device = new Device(config.devices[0]!, { lineFactory: new MemoryLineFactory(), logger: testLogger(), reportState: () => undefined, onConsoleData: () => undefined });
    await device.start();
    const signal = new AbortController().signal;
    try {
      await expect(device.run("serial.tail", "relay", { max_bytes: 10 }, signal)).rejects.toMatchObject({ code: "unknown_resource", message: expect.stringContaining("is power, not serial") });
      await expect(device.run("power.on", "console", {}, signal)).rejects.toMatchObject({ code: "forbidden_line" });
      expect(await device.run("serial.tail", "console", { max_bytes: 10 }, signal)).toEqual({ text: "" });
      expect(await device.run("power.on", "relay", {}, signal)).toEqual({ state: "on" });
      expect(await device.run("wait", null, { ms: 1 }, signal)).toMatchObject({ waited_ms: expect.any(Number) });
    } finally {
      await device.stop();
      temp.remove();
    }
  });
});
