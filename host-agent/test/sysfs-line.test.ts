import { spawnSync } from "node:child_process";
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { makeTempDir } from "./helpers.js";

const DIST = new URL("../dist/", import.meta.url).pathname;

/**
 * onoff always works under /sys/class/gpio, so the test gives it a fake one: a tmpfs mounted
 * there inside a private mount namespace (unshare -m, root). Nothing outside the child sees it.
 * The fake kernel cannot create gpioN on export, so the pin directory is made up front.
 */
describe("SysfsLine (onoff) on a fake sysfs tree in a private mount namespace", () => {
  it("finds the chip by label, adds its base, sets the raw initial level for active-low, writes and releases", () => {
    if (!existsSync(join(DIST, "devices/gpio/sysfs-line.js"))) throw new Error("host-agent is not built; run: cd /work/main && npx tsc -b");
    const unshare = spawnSync("unshare", ["--version"]);
    if (unshare.error) throw new Error("unshare is missing; install it: apt-get install util-linux");
    const temp = makeTempDir();
    try {
      const script = join(temp.dir, "probe.mjs");
      writeFileSync(
        script,
        `
import { readFileSync } from "node:fs";
const { SysfsLineFactory } = await import(${JSON.stringify(join(DIST, "devices/gpio/sysfs-line.js"))});
const { createLogger } = await import(${JSON.stringify(join(DIST, "logger.js"))});
const root = "/sys/class/gpio";
const read = (p) => readFileSync(root + "/" + p, "utf8").trim();
const factory = new SysfsLineFactory(root, createLogger("silent"));
const line = await factory.open({ name: "dut1/reset", line: 17, chip: "pinctrl-bcm2711", direction: "out", activeLow: true, initial: 0 });
const out = { direction: read("gpio529/direction"), active_low: read("gpio529/active_low") };
line.write(1);
out.value_after_write = read("gpio529/value");
out.read = line.read();
line.release();
out.unexport = read("unexport");
console.log(JSON.stringify(out));
`,
      );
      const setup = [
        "set -e",
        "mount -t tmpfs labrig-test-gpio /sys/class",
        "G=/sys/class/gpio",
        "mkdir -p $G/gpiochip512 $G/gpiochip570 $G/gpio529",
        "echo pinctrl-bcm2711 > $G/gpiochip512/label; echo 512 > $G/gpiochip512/base; echo 58 > $G/gpiochip512/ngpio",
        "echo raspberrypi-exp-gpio > $G/gpiochip570/label; echo 570 > $G/gpiochip570/base; echo 8 > $G/gpiochip570/ngpio",
        ": > $G/export; : > $G/unexport",
        "echo in > $G/gpio529/direction; echo 0 > $G/gpio529/active_low; echo 0 > $G/gpio529/value",
        `exec ${JSON.stringify(process.execPath)} ${JSON.stringify(script)}`,
      ].join("\n");
      const r = spawnSync("unshare", ["-m", "--propagation", "private", "sh", "-c", setup], { encoding: "utf8", timeout: 20_000 });
      if (r.status !== 0) throw new Error(`the namespaced probe failed (needs root for unshare -m): ${r.stderr}`);
      expect(JSON.parse(r.stdout.trim().split("\n").pop() as string)).toEqual({
        // Active-low with logical 0 at start is electrically high; the kernel takes "high" raw.
        direction: "high",
        active_low: "1",
        value_after_write: "1",
        read: 1,
        unexport: "529",
      });
    } finally {
      temp.remove();
    }
  });
});
