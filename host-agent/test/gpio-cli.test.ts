import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { GpioUsageError, runGpioCommand } from "../src/gpio-cli.js";
import { FakeGpioKernel } from "./fake-gpio-kernel.js";
import { makeTempDir, until } from "./helpers.js";

/*
 * `labrig-agent gpio` over a stand-in for the kernel (FakeGpioKernel, below the uAPI interface;
 * this machine has no GPIO chips), in process so the stand-in can be handed in; and the real CLI
 * binary for what needs no chip.
 */
const CLI = new URL("../dist/cli.js", import.meta.url).pathname;
const names = (n: number): string[] => Array.from({ length: n }, (_, i) => (i < 28 ? `GPIO${i}` : `SOC_${i}`));

function bench(): { k: FakeGpioKernel; config: string; chip: string; remove: () => void } {
  const temp = makeTempDir();
  const chip = join(temp.dir, "gpiochip0");
  writeFileSync(chip, "");
  const k = new FakeGpioKernel();
  k.addChip({ path: chip, label: "pinctrl-rp1", names: names(54), kernelUsed: { 9: "spi0 MISO" } });
  const config = join(temp.dir, "agent.yaml");
  writeFileSync(config, `host: pi5\nhub: { url: "http://127.0.0.1:9", token: t }\ngpio: { driver: auto, dev_dir: ${JSON.stringify(temp.dir)} }\n`);
  return { k, config, chip, remove: temp.remove };
}

function capture(): { out: (t: string) => void; text: () => string } {
  let text = "";
  return { out: (t) => void (text += t), text: () => text };
}

describe("labrig-agent gpio", () => {
  it("list shows the driver and why, each chip with its lines by name and who holds them", async () => {
    const b = bench();
    try {
      const c = capture();
      expect(await runGpioCommand(["list", "--config", b.config], { out: c.out, uapi: b.k })).toBe(0);
      expect(c.text()).toContain(`driver: chardev (auto: found ${b.chip} (the GPIO character device))`);
      expect(c.text()).toContain(`gpiochip0 [pinctrl-rp1] 54 lines (${b.chip})`);
      expect(c.text()).toMatch(/^ {3}17 {2}GPIO17 +free$/m);
      expect(c.text()).toMatch(/^ {4}9 {2}GPIO9 +used by "spi0 MISO" in$/m);
    } finally {
      b.remove();
    }
  });

  it("read, write, pulse and watch a line given by offset or by name, releasing it afterwards", async () => {
    const b = bench();
    try {
      const io = { uapi: b.k };
      let c = capture();
      b.k.drive(b.chip, 22, 1);
      expect(await runGpioCommand(["read", "GPIO22", "--bias", "pull-up", "--config", b.config], { ...io, out: c.out })).toBe(0);
      expect(c.text()).toBe("1\n");

      c = capture();
      expect(await runGpioCommand(["write", "17", "1", "--active-low", "--hold-ms", "20", "--config", b.config], { ...io, out: c.out })).toBe(0);
      expect(c.text()).toContain("line 17 = 1; holding 20 ms");
      expect(b.k.physical(b.chip, 17)).toBe(0);

      c = capture();
      expect(await runGpioCommand(["pulse", "GPIO27", "25", "--config", b.config], { ...io, out: c.out })).toBe(0);
      const took = Number(/for ([\d.]+) ms \(asked 25\)/.exec(c.text())?.[1]);
      expect(took).toBeGreaterThanOrEqual(25);
      expect(b.k.physical(b.chip, 27)).toBe(0);

      c = capture();
      const watching = runGpioCommand(["watch", "GPIO5", "--count", "2", "--debounce-ms", "0", "--timeout-ms", "5000", "--config", b.config], { ...io, out: c.out });
      await until(() => c.text().includes("watching line 5"), "the watch to start");
      expect(c.text()).toContain("(both edges, interrupts); level now 0");
      b.k.drive(b.chip, 5, 1);
      await until(() => c.text().includes("rising → 1"), "the rising edge");
      b.k.drive(b.chip, 5, 0);
      expect(await watching).toBe(0);
      expect(c.text()).toMatch(/falling → 0/);
      expect(b.k.openFds).toBe(0);
    } finally {
      b.remove();
    }
  });

  it("refuses a busy line naming its holder, an unknown name, and bad arguments", async () => {
    const b = bench();
    try {
      const io = { uapi: b.k, out: () => undefined };
      await expect(runGpioCommand(["read", "9", "--config", b.config], io)).rejects.toThrow(/in use by 'spi0 MISO'/);
      await expect(runGpioCommand(["read", "GPIO99", "--config", b.config], io)).rejects.toThrow(/No line named 'GPIO99'/);
      await expect(runGpioCommand(["write", "17", "2", "--config", b.config], io)).rejects.toBeInstanceOf(GpioUsageError);
      await expect(runGpioCommand(["pulse", "17", "0", "--config", b.config], io)).rejects.toThrow(/WIDTH_MS/);
      await expect(runGpioCommand(["read", "17", "--bias", "up"], io)).rejects.toThrow(/--bias must be/);
      await expect(runGpioCommand(["frob"], io)).rejects.toThrow(/unknown gpio command/);
      expect(b.k.openFds).toBe(0);
    } finally {
      b.remove();
    }
  });

  it("the real command on this machine says there is no GPIO hardware and why, with exit codes 0, 1 and 2", () => {
    const temp = makeTempDir();
    try {
      const config = join(temp.dir, "agent.yaml");
      writeFileSync(config, `host: h\nhub: { url: "http://127.0.0.1:9", token: t }\ngpio: { dev_dir: ${JSON.stringify(join(temp.dir, "dev"))}, sysfs_root: ${JSON.stringify(join(temp.dir, "gpio"))} }\n`);
      const list = spawnSync(process.execPath, [CLI, "gpio", "list", "--config", config], { encoding: "utf8" });
      expect(list.status).toBe(0);
      expect(list.stdout).toContain("driver: memory (auto: no gpiochip devices in");
      // What install-agent.sh reads to decide which access to grant: the driver on the first line, the reason after.
      const driver = spawnSync(process.execPath, [CLI, "gpio", "driver", "--config", config], { encoding: "utf8" });
      expect(driver.status).toBe(0);
      expect(driver.stdout).toMatch(/^memory\nauto: no gpiochip devices in .* nothing physical is switched\n$/);
      const read = spawnSync(process.execPath, [CLI, "gpio", "read", "17", "--config", config], { encoding: "utf8" });
      expect(read.status).toBe(1);
      expect(read.stderr).toContain("there is no GPIO hardware to talk to here");
      const bad = spawnSync(process.execPath, [CLI, "gpio", "write", "17"], { encoding: "utf8" });
      expect(bad.status).toBe(2);
      expect(bad.stderr).toContain("Usage: labrig-agent gpio list");
    } finally {
      temp.remove();
    }
  });
});
