import { join } from "node:path";
import { LabrigError } from "@labrig/shared";
import { gpiochipEntries } from "./chips.js";
import type { GpioUapi } from "./uapi.js";
import { UapiError } from "./uapi.js";
import { IOCTL, LAYOUT, LINE_FLAG, decodeChipInfo, decodeLineInfo, lineInfoQuery } from "./uapi-layout.js";

/** A GPIO chip as its character device describes it. */
export interface ChardevChip {
  /** Device node name, e.g. gpiochip0. */
  name: string;
  path: string;
  label: string;
  lines: number;
}

/** One line of a chip as the kernel reports it (GPIO_V2_GET_LINEINFO_IOCTL). */
export interface ChardevLineInfo {
  offset: number;
  /** From the device tree's gpio-line-names, e.g. GPIO17; empty when the chip names none. */
  name: string;
  /** Who holds the line ("labrig:dut1/power", a kernel driver such as "spi0 CS0"), empty when free. */
  consumer: string;
  used: boolean;
  direction: "in" | "out";
  activeLow: boolean;
  bias: "pull-up" | "pull-down" | "disabled" | "as-is";
}

/** The /dev/gpiochipN nodes in `devDir`, lowest number first; none when the folder has none. */
export function chardevChipPaths(devDir: string): string[] {
  return gpiochipEntries(devDir).map((n) => join(devDir, n));
}

/** Opens a chip, runs `fn` on its fd and closes it again, turning refusals into errors that say what to do. */
export function withChip<T>(uapi: GpioUapi, path: string, fn: (fd: number) => T): T {
  let fd: number;
  try {
    fd = uapi.open(path);
  } catch (err) {
    if (err instanceof UapiError && (err.code === "EACCES" || err.code === "EPERM")) {
      throw new LabrigError("device_unavailable", `No permission to open ${path}; add the agent's user to the group that owns it (gpio on Raspberry Pi OS): sudo usermod -aG gpio <user>.`, { cause: err });
    }
    throw new LabrigError("hardware_error", `Opening ${path} failed: ${(err as Error).message}`, { cause: err });
  }
  try {
    return fn(fd);
  } finally {
    uapi.close(fd);
  }
}

/** The chip behind one character device. */
export function readChardevChip(uapi: GpioUapi, path: string): ChardevChip {
  return withChip(uapi, path, (fd) => {
    const buf = Buffer.alloc(LAYOUT.gpiochip_info.size);
    uapi.ioctl(fd, IOCTL.GET_CHIPINFO, buf);
    const info = decodeChipInfo(buf);
    return { name: path.slice(path.lastIndexOf("/") + 1), path, label: info.label, lines: info.lines };
  });
}

/** Every chip in `devDir`, read through its character device. */
export function listChardevChips(uapi: GpioUapi, devDir: string): ChardevChip[] {
  return chardevChipPaths(devDir).map((path) => readChardevChip(uapi, path));
}

function toLineInfo(buf: Buffer): ChardevLineInfo {
  const info = decodeLineInfo(buf);
  const f = info.flags;
  const bias = f & LINE_FLAG.BIAS_PULL_UP ? "pull-up" : f & LINE_FLAG.BIAS_PULL_DOWN ? "pull-down" : f & LINE_FLAG.BIAS_DISABLED ? "disabled" : "as-is";
  return {
    offset: info.offset,
    name: info.name,
    consumer: info.consumer,
    used: (f & LINE_FLAG.USED) !== 0,
    direction: f & LINE_FLAG.OUTPUT ? "out" : "in",
    activeLow: (f & LINE_FLAG.ACTIVE_LOW) !== 0,
    bias,
  };
}

/** What the kernel says of one line of an open chip. */
export function lineInfoOf(uapi: GpioUapi, chipFd: number, offset: number): ChardevLineInfo {
  const buf = lineInfoQuery(offset);
  uapi.ioctl(chipFd, IOCTL.GET_LINEINFO, buf);
  return toLineInfo(buf);
}

/** Every line of a chip: names (GPIO17 …), who holds them, direction and bias. */
export function listChardevLines(uapi: GpioUapi, chip: ChardevChip): ChardevLineInfo[] {
  return withChip(uapi, chip.path, (fd) => Array.from({ length: chip.lines }, (_, offset) => lineInfoOf(uapi, fd, offset)));
}
