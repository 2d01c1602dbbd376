import { spawnSync } from "node:child_process";
import { mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { listSerialPorts } from "../src/devices/serial-ports.js";
import { makeTempDir } from "./helpers.js";

describe("listSerialPorts", () => {
  it("works on this machine whatever udevadm does: no throw, and the fallback is named when udevadm is missing", async () => {
    const hasUdevadm = spawnSync("udevadm", ["--version"]).error === undefined;
    const list = await listSerialPorts();
    expect(Array.isArray(list.ports)).toBe(true);
    if (!hasUdevadm) {
      expect(list.source).toBe("scan");
      expect(list.fallbackReason).toMatch(/SerialPort\.list\(\) failed/);
    }
  });

  it("reads /dev/serial/by-id links and the usual device nodes when udev cannot be asked", async () => {
    const temp = makeTempDir();
    try {
      const dev = temp.dir;
      for (const n of ["ttyUSB0", "ttyUSB1", "ttyACM0", "ttyAMA0", "ttyS0", "tty1", "video0"]) writeFileSync(join(dev, n), "");
      symlinkSync("ttyAMA0", join(dev, "serial0"));
      mkdirSync(join(dev, "serial", "by-id"), { recursive: true });
      symlinkSync("../../ttyUSB1", join(dev, "serial", "by-id", "usb-FTDI_FT232R_USB_UART_A50285BI-if00-port0"));
      symlinkSync("../../ttyACM0", join(dev, "serial", "by-id", "usb-Raspberry_Pi_Pico_E660-if00"));
      const list = await listSerialPorts({ devDir: dev, useUdev: false });
      expect(list.source).toBe("scan");
      expect(list.ports).toEqual([
        { path: join(dev, "serial0"), byId: [] },
        { path: join(dev, "ttyACM0"), byId: [join(dev, "serial/by-id/usb-Raspberry_Pi_Pico_E660-if00")] },
        { path: join(dev, "ttyAMA0"), byId: [] },
        { path: join(dev, "ttyUSB0"), byId: [] },
        { path: join(dev, "ttyUSB1"), byId: [join(dev, "serial/by-id/usb-FTDI_FT232R_USB_UART_A50285BI-if00-port0")] },
      ]);
    } finally {
      temp.remove();
    }
  });
});
