import { readdir, readlink } from "node:fs/promises";
import { join, resolve } from "node:path";
import { SerialPort } from "serialport";
import type { Logger } from "../logger.js";

/** A serial port found on this machine. */
export interface SerialPortInfo {
  /** The device node, e.g. /dev/ttyUSB0. */
  path: string;
  /** Stable names under /dev/serial/by-id pointing at it: what a config should use, since ttyUSB numbers change across boots. */
  byId: string[];
  manufacturer?: string;
  serialNumber?: string;
  vendorId?: string;
  productId?: string;
}

export interface SerialPortList {
  ports: SerialPortInfo[];
  /** udev = SerialPort.list() answered; scan = it failed (no udevadm) and /dev was read instead. */
  source: "udev" | "scan";
  /** Why SerialPort.list() was not used, when it was not. */
  fallbackReason?: string;
}

const NODE_PATTERN = /^(ttyUSB\d+|ttyACM\d+|ttyAMA\d+|serial\d+)$/;

/** /dev/serial/by-id links by the device node they resolve to. */
async function byIdLinks(devDir: string): Promise<Map<string, string[]>> {
  const dir = join(devDir, "serial", "by-id");
  const map = new Map<string, string[]>();
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENOTDIR") return map;
    throw err;
  }
  for (const name of names.sort()) {
    const link = join(dir, name);
    let target: string;
    try {
      target = resolve(dir, await readlink(link));
    } catch (err) {
      // Not a symlink (EINVAL) or gone meanwhile (ENOENT): udev only puts symlinks here, so skip it.
      if ((err as NodeJS.ErrnoException).code === "EINVAL" || (err as NodeJS.ErrnoException).code === "ENOENT") continue;
      throw err;
    }
    map.set(target, [...(map.get(target) ?? []), link]);
  }
  return map;
}

/** Serial device nodes in `devDir` by name (ttyUSB*, ttyACM*, ttyAMA*, serial*). */
async function scanNodes(devDir: string): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(devDir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw err;
  }
  return names.filter((n) => NODE_PATTERN.test(n)).map((n) => join(devDir, n));
}

/**
 * The serial ports of this machine. SerialPort.list() needs udevadm and throws without it
 * (containers, minimal images), so on failure /dev/serial/by-id and the usual device nodes
 * are read directly. by-id names are attached either way. `devDir` exists for tests.
 */
export async function listSerialPorts(options: { devDir?: string; logger?: Logger; useUdev?: boolean } = {}): Promise<SerialPortList> {
  const devDir = options.devDir ?? "/dev";
  const links = await byIdLinks(devDir);
  let source: SerialPortList["source"] = "scan";
  let fallbackReason: string | undefined;
  const ports = new Map<string, SerialPortInfo>();
  if (options.useUdev ?? devDir === "/dev") {
    try {
      for (const p of await SerialPort.list()) {
        const info: SerialPortInfo = { path: p.path, byId: [] };
        if (p.manufacturer) info.manufacturer = p.manufacturer;
        if (p.serialNumber) info.serialNumber = p.serialNumber;
        if (p.vendorId) info.vendorId = p.vendorId;
        if (p.productId) info.productId = p.productId;
        ports.set(p.path, info);
      }
      source = "udev";
    } catch (err) {
      fallbackReason = `SerialPort.list() failed (${(err as Error).message.split("\n")[0]}); read ${devDir} instead`;
      options.logger?.debug({ err: (err as Error).message }, "SerialPort.list() failed; scanning /dev");
    }
  }
  if (source === "scan") {
    for (const path of await scanNodes(devDir)) ports.set(path, { path, byId: [] });
  }
  // A by-id link to a node the scan did not name (another driver's name) still is a serial port.
  for (const [target, names] of links) {
    const info = ports.get(target) ?? { path: target, byId: [] };
    info.byId = names;
    ports.set(target, info);
  }
  const out: SerialPortList = { ports: [...ports.values()].sort((a, b) => a.path.localeCompare(b.path)), source };
  if (fallbackReason !== undefined) out.fallbackReason = fallbackReason;
  return out;
}
