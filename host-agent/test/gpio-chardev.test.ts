import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { describe, expect, it } from "vitest";
import { parseConfig } from "../src/config.js";
import { Device, type ResourceStateReport } from "../src/devices/device.js";
import { listChardevChips, listChardevLines } from "../src/devices/gpio/chardev-chips.js";
import { ChardevLineFactory } from "../src/devices/gpio/chardev-line.js";
import { chooseGpioDriver, createLineFactory } from "../src/devices/gpio/driver-choice.js";
import { ATTR_ID, IOCTL, LINE_FLAG } from "../src/devices/gpio/uapi-layout.js";
import { FakeGpioKernel } from "./fake-gpio-kernel.js";
import { makeTempDir, testLogger, until } from "./helpers.js";

/*
 * The character-device driver above a stand-in for the kernel (FakeGpioKernel, below the GpioUapi
 * interface): this machine has no /dev/gpiochip* and no gpio-sim module. Everything above the
 * system calls is the production code: chip lookup, request encoding, values, edge events,
 * release. The structs themselves are checked against linux/gpio.h in gpio-uapi-layout.test.ts.
 */

const pi4Names = (n: number): string[] => Array.from({ length: n }, (_, i) => (i === 0 ? "ID_SDA" : i === 1 ? "ID_SCL" : i < 28 ? `GPIO${i}` : `SOC_${i}`));

/** A Pi 4 as its kernel shows it: the header controller and the firmware's expander; SPI0 CE0 (GPIO8) held by a kernel driver; GPIO5 without an interrupt. */
function pi4(): FakeGpioKernel {
  const k = new FakeGpioKernel();
  k.addChip({ path: "/dev/gpiochip0", label: "pinctrl-bcm2711", names: pi4Names(58), kernelUsed: { 8: "spi0 CS0" }, noIrq: [5] });
  k.addChip({ path: "/dev/gpiochip1", label: "raspberrypi-exp-gpio", names: ["BT_ON", "WL_ON", "PWR_LED_OFF", "GLOBAL_RESET", "VDD_SD_IO_SEL", "CAM_GPIO", "SD_PWR_ON", "SD_OC_N"] });
  return k;
}

function deviceConfig(resources: unknown[]) {
  return parseConfig({ host: "pi1", hub: { url: "http://127.0.0.1:9", token: "t" }, gpio: { driver: "chardev" }, devices: [{ id: "dut1", resources }] }, { baseDir: "/tmp" }).devices[0]!;
}

const run = (device: Device, action: Parameters<Device["run"]>[0], resource: string, params: Record<string, unknown> = {}) => device.run(action, resource, params, new AbortController().signal);

/** A temp /dev with gpiochip nodes (plain files: the stand-in answers for them by path). */
function fakeDevDir(names: string[]): { dir: string; remove: () => void } {
  const temp = makeTempDir();
  for (const n of names) writeFileSync(join(temp.dir, n), "");
  return temp;
}

function kernelFor(dir: string, k: FakeGpioKernel): FakeGpioKernel {
  // Re-home the stand-in's chips under the temp dev dir.
  for (const [path, chip] of [...k.chips]) {
    k.chips.delete(path);
    chip.path = join(dir, path.slice(path.lastIndexOf("/") + 1));
    k.chips.set(chip.path, chip);
  }
  return k;
}

describe("the GPIO character-device driver (against a stand-in kernel)", () => {
  it("lists chips and lines through the uAPI: label, line count, names, and who holds a line", () => {
    const temp = fakeDevDir(["gpiochip1", "gpiochip0", "gpiochip-not"]);
    const k = kernelFor(temp.dir, pi4());
    try {
      const chips = listChardevChips(k, temp.dir);
      expect(chips.map((c) => [c.name, c.label, c.lines])).toEqual([
        ["gpiochip0", "pinctrl-bcm2711", 58],
        ["gpiochip1", "raspberrypi-exp-gpio", 8],
      ]);
      const lines = listChardevLines(k, chips[0]!);
      expect(lines).toHaveLength(58);
      expect(lines[17]).toEqual({ offset: 17, name: "GPIO17", consumer: "", used: false, direction: "in", activeLow: false, bias: "as-is" });
      expect(lines[8]).toMatchObject({ name: "GPIO8", consumer: "spi0 CS0", used: true });
      expect(k.openFds).toBe(0);
    } finally {
      temp.remove();
    }
  });
});

describe("a device on character-device lines", () => {
  const resources = [
    { name: "power", kind: "power", chip: "pinctrl-bcm2711", line: 17, cycle_off_ms: 40 },
    { name: "reset", kind: "gpio", line: 27, direction: "out", active_low: true },
    { name: "button", kind: "gpio", line: 22, bias: "pull-up", edge: "both", debounce_ms: 10 },
    { name: "nirq", kind: "gpio", line: 5, edge: "rising", poll_ms: 10, debounce_ms: 0 },
    { name: "led", kind: "gpio", chip: "raspberrypi-exp-gpio", line: 2, direction: "out", initial: 1 },
  ];

  it("requests each line by chip label and offset with its direction, polarity, initial level and bias, and drives them", async () => {
    const temp = fakeDevDir(["gpiochip0", "gpiochip1"]);
    const k = kernelFor(temp.dir, pi4());
    const factory = new ChardevLineFactory(temp.dir, testLogger(), k);
    const states: ResourceStateReport[] = [];
    const device = new Device(deviceConfig(resources), { lineFactory: factory, logger: testLogger(), reportState: (s) => states.push(s), onConsoleData: () => undefined });
    await device.start();
    const chip0 = join(temp.dir, "gpiochip0");
    const chip1 = join(temp.dir, "gpiochip1");
    try {
      expect(factory.chips().map((c) => [c.name, c.label, c.lines])).toEqual([
        ["gpiochip0", "pinctrl-bcm2711", 58],
        ["gpiochip1", "raspberrypi-exp-gpio", 8],
      ]);
      const requested = k.configs.filter((c) => c.consumer !== undefined).map((c) => ({ offsets: c.offsets, consumer: c.consumer, flags: c.config.flags, attrs: c.config.attrs }));
      expect(requested).toEqual([
        { offsets: [17], consumer: "labrig:dut1/power", flags: LINE_FLAG.OUTPUT, attrs: [{ attr: { id: ATTR_ID.OUTPUT_VALUES, value: 0n }, mask: 1n }] },
        { offsets: [27], consumer: "labrig:dut1/reset", flags: LINE_FLAG.OUTPUT | LINE_FLAG.ACTIVE_LOW, attrs: [{ attr: { id: ATTR_ID.OUTPUT_VALUES, value: 0n }, mask: 1n }] },
        { offsets: [22], consumer: "labrig:dut1/button", flags: LINE_FLAG.INPUT | LINE_FLAG.BIAS_PULL_UP, attrs: [] },
        { offsets: [5], consumer: "labrig:dut1/nirq", flags: LINE_FLAG.INPUT, attrs: [] },
        { offsets: [2], consumer: "labrig:dut1/led", flags: LINE_FLAG.OUTPUT, attrs: [{ attr: { id: ATTR_ID.OUTPUT_VALUES, value: 1n }, mask: 1n }] },
      ]);
      // The button's request is reconfigured for both edges with the kernel's debounce (10 ms = 10000 µs).
      expect(k.configs.find((c) => c.consumer === undefined && c.offsets[0] === 22)?.config).toEqual({
        flags: LINE_FLAG.INPUT | LINE_FLAG.BIAS_PULL_UP | LINE_FLAG.EDGE_RISING | LINE_FLAG.EDGE_FALLING,
        attrs: [{ attr: { id: ATTR_ID.DEBOUNCE, value: 10_000n }, mask: 1n }],
      });
      // Active-low reset at logical 0 is electrically high; the LED on the expander starts on.
      expect([k.physical(chip0, 17), k.physical(chip0, 27), k.physical(chip1, 2)]).toEqual([0, 1, 1]);
      expect(k.consumer(chip0, 27)).toBe("labrig:dut1/reset");

      expect(await run(device, "gpio.write", "reset", { value: 1 })).toEqual({ value: 1 });
      expect(k.physical(chip0, 27)).toBe(0);
      expect(await run(device, "gpio.read", "reset")).toEqual({ value: 1 });
      const pulse = (await run(device, "gpio.pulse", "reset", { width_ms: 30, value: 0 })) as { width_ms: number };
      expect(pulse.width_ms).toBeGreaterThanOrEqual(30);
      expect(k.physical(chip0, 27)).toBe(0);
      expect(await run(device, "power.cycle", "power", {})).toEqual({ state: "on" });
      expect(k.physical(chip0, 17)).toBe(1);
      expect(k.calls).toContain(IOCTL.LINE_SET_VALUES);
    } finally {
      await device.stop();
      temp.remove();
    }
    // Every request fd and chip fd is closed, the lines are free again, and outputs keep their last level.
    expect(k.openFds).toBe(0);
    expect(k.consumer(chip0, 27)).toBe("");
    expect(k.physical(chip0, 17)).toBe(1);
  });

  it("reports an input's edges from the request's events (interrupts, debounced by the kernel), and polls a line the chip gives no interrupt", async () => {
    const temp = fakeDevDir(["gpiochip0", "gpiochip1"]);
    const k = kernelFor(temp.dir, pi4());
    const chip0 = join(temp.dir, "gpiochip0");
    const states: ResourceStateReport[] = [];
    const device = new Device(deviceConfig(resources), { lineFactory: new ChardevLineFactory(temp.dir, testLogger(), k), logger: testLogger(), reportState: (s) => states.push(s), onConsoleData: () => undefined });
    await device.start();
    try {
      expect(states.filter((s) => s.resource === "button")).toEqual([{ resource: "button", status: "ready", value: 0 }]);
      expect(states.find((s) => s.resource === "nirq")).toEqual({ resource: "nirq", status: "ready", value: 0, detail: "edge interrupts unavailable: polling every 10 ms" });
      // A bouncing press: the kernel's debounce swallows the bounces; one level change reaches the hub.
      const t0 = performance.now();
      k.drive(chip0, 22, 1);
      k.drive(chip0, 22, 0);
      k.drive(chip0, 22, 1);
      await until(() => states.some((s) => s.resource === "button" && s.value === 1), "the press to be reported");
      expect(performance.now() - t0).toBeGreaterThanOrEqual(9);
      await new Promise((r) => setTimeout(r, 50));
      expect(states.filter((s) => s.resource === "button").map((s) => s.value)).toEqual([0, 1]);
      k.drive(chip0, 5, 1);
      await until(() => states.some((s) => s.resource === "nirq" && s.value === 1), "the polled line's rise to be reported");
    } finally {
      await device.stop();
      temp.remove();
    }
    expect(k.openFds).toBe(0);
  });

  it("a line a kernel driver holds fails the device with who holds it, and the lines already requested are released", async () => {
    const temp = fakeDevDir(["gpiochip0", "gpiochip1"]);
    const k = kernelFor(temp.dir, pi4());
    const device = new Device(deviceConfig([resources[0], { name: "cs", kind: "gpio", line: 8, direction: "out" }]), {
      lineFactory: new ChardevLineFactory(temp.dir, testLogger(), k),
      logger: testLogger(),
      reportState: () => undefined,
      onConsoleData: () => undefined,
    });
    try {
      await expect(device.start()).rejects.toMatchObject({ code: "device_unavailable", message: expect.stringContaining("in use by 'spi0 CS0'") });
      expect(k.openFds).toBe(0);
      expect(k.consumer(join(temp.dir, "gpiochip0"), 17)).toBe("");
    } finally {
      temp.remove();
    }
  });

  it("a chip the agent may not open says to add the user to the gpio group; an unknown label lists the chips found", async () => {
    const temp = fakeDevDir(["gpiochip0"]);
    const k = new FakeGpioKernel();
    k.addChip({ path: join(temp.dir, "gpiochip0"), label: "pinctrl-rp1", names: pi4Names(54), denied: true });
    try {
      await expect(new ChardevLineFactory(temp.dir, testLogger(), k).open({ name: "d/p", line: 17, chip: null, direction: "out", activeLow: false, initial: 0 })).rejects.toThrow(/usermod -aG gpio/);
      k.chips.get(join(temp.dir, "gpiochip0"))!.denied = false;
      await expect(new ChardevLineFactory(temp.dir, testLogger(), k).open({ name: "d/p", line: 17, chip: "pinctrl-bcm2711", direction: "out", activeLow: false, initial: 0 })).rejects.toThrow(
        /No GPIO chip labelled 'pinctrl-bcm2711' in .*Chips found: pinctrl-rp1 \(gpiochip0, 54 lines\)/,
      );
      // Without a label the Pi 5's header controller is chosen.
      const line = await new ChardevLineFactory(temp.dir, testLogger(), k).open({ name: "d/p", line: 17, chip: null, direction: "out", activeLow: false, initial: 1 });
      expect(k.physical(join(temp.dir, "gpiochip0"), 17)).toBe(1);
      line.release();
      expect(() => line.write(0)).toThrow(/released/);
      expect(k.openFds).toBe(0);
    } finally {
      temp.remove();
    }
  });
});

describe("gpio.driver: auto", () => {
  it("picks the character device when /dev/gpiochip* exists, sysfs when only the sysfs tree does, memory otherwise, and says why", () => {
    const temp = makeTempDir();
    try {
      const dev = join(temp.dir, "dev");
      const sysfs = join(temp.dir, "sys-class-gpio");
      mkdirSync(dev);
      const gpio = { driver: "auto" as const, dev_dir: dev, sysfs_root: sysfs };
      expect(chooseGpioDriver(gpio)).toEqual({ driver: "memory", reason: expect.stringContaining("nothing physical is switched") });
      expect(createLineFactory(gpio, testLogger()).driver).toBe("memory");
      mkdirSync(sysfs);
      expect(chooseGpioDriver(gpio)).toEqual({ driver: "sysfs", reason: expect.stringContaining(`${sysfs} exists`) });
      // A kernel without /sys/class/gpio (Trixie) but with character devices; and one with both: the character device wins.
      writeFileSync(join(dev, "gpiochip0"), "");
      writeFileSync(join(dev, "gpiochip10"), "");
      writeFileSync(join(dev, "gpiochipX"), "");
      expect(chooseGpioDriver(gpio)).toEqual({ driver: "chardev", reason: `auto: found ${join(dev, "gpiochip0")}, ${join(dev, "gpiochip10")} (the GPIO character device)` });
      expect(createLineFactory(gpio, testLogger(), new FakeGpioKernel()).driver).toBe("chardev");
      expect(chooseGpioDriver({ ...gpio, driver: "sysfs" })).toEqual({ driver: "sysfs", reason: "gpio.driver is sysfs in the config" });
    } finally {
      temp.remove();
    }
  });
});
