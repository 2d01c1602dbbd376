import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { dirname } from "node:path";
import { LabrigError } from "@labrig/shared";
import { HEADER_CHIP_LABELS, type GpioChip } from "./devices/gpio/chips.js";
import type { GpioDriverChoice } from "./devices/gpio/driver-choice.js";
import type { ChardevChipReport } from "./devices/gpio/inventory.js";
import type { SerialPortInfo } from "./devices/serial-ports.js";

export interface InitOptions {
  host?: string;
  hubUrl?: string;
  ports: SerialPortInfo[];
  /** Chips in the sysfs tree (used when there are no character devices). */
  chips: GpioChip[];
  /** Chips through the character device, with their line names (GPIO17 …) and who holds each line. */
  chardevChips?: ChardevChipReport[];
  /** The driver the agent will use, said in a comment. */
  gpioDriver?: GpioDriverChoice;
  /** Written into the config; the service's state directory by default. */
  dataDir?: string;
  tokenFile?: string;
  now?: Date;
}

/** BCM lines offered in the commented examples, a different pair per device so uncommenting never clashes. */
const EXAMPLE_LINES: [number, number][] = [
  [17, 27],
  [22, 23],
  [24, 25],
  [5, 6],
  [12, 13],
  [16, 26],
];

/** This machine's hostname as a labrig id (lowercase slug). */
export function defaultHostId(name = hostname()): string {
  const slug = name
    .toLowerCase()
    .replace(/[^a-z0-9._-]+/g, "-")
    .replace(/^[^a-z0-9]+/, "")
    .slice(0, 63);
  return slug === "" ? "pi" : slug;
}

const q = (s: string): string => JSON.stringify(s);

/** The chip the examples use (the Pi header controller first), with how to write each example line. */
interface ExampleChip {
  label: string;
  note: string;
  /** The config line for BCM number `n`, with its name when the chip names its lines. */
  line: (n: number) => string;
  /** Lines by name that nobody holds, for the comment that offers them. */
  free: string[];
}

function exampleChip(o: InitOptions): ExampleChip | null {
  const pick = <C extends { label: string }>(chips: readonly C[]): C | undefined => HEADER_CHIP_LABELS.map((l) => chips.find((c) => c.label === l)).find((c) => c !== undefined) ?? chips[0];
  const cd = pick(o.chardevChips ?? []);
  if (cd) {
    const free = cd.line_info.filter((l) => /^GPIO\d+$/.test(l.name) && !l.used);
    return {
      label: cd.label,
      note: `chip ${cd.label} (${cd.path}, ${cd.lines} lines)`,
      line: (n) => {
        const info = cd.line_info[n];
        const name = info?.name ? ` # ${info.name}${info.used ? `, in use by ${info.consumer || "the kernel"}: pick another` : ""}` : "";
        return `line: ${n}${name}`;
      },
      free: free.map((l) => `${l.name}=${l.offset}`),
    };
  }
  const sysfs = pick(o.chips);
  if (sysfs) return { label: sysfs.label, note: `chip ${sysfs.label}, base ${sysfs.base} (the agent adds the base itself)`, line: (n) => `line: ${n}`, free: [] };
  return null;
}

/** A starter config from what doctor found: one device per serial port, power/reset examples commented out. */
export function renderInitConfig(o: InitOptions): string {
  const chip = exampleChip(o);
  const chipLine = chip ? `chip: ${q(chip.label)}` : `chip: "pinctrl-bcm2711"   # no GPIO chip was found here; ls -l /dev/gpiochip* on the Pi`;
  const chipNote = chip ? chip.note : "no GPIO chip detected on this machine";
  const lineOf = (n: number): string => chip?.line(n) ?? `line: ${n}`;
  const driverNote = o.gpioDriver ? `${o.gpioDriver.driver} here: ${o.gpioDriver.reason}` : "the character device where /dev/gpiochip* exists, else sysfs, else in-memory lines";
  const out: string[] = [
    `# labrig host agent config, written by \`labrig-agent init\` on ${(o.now ?? new Date()).toISOString()}.`,
    "# Check it with `labrig-agent doctor`. Environment overrides: LABRIG_HUB_URL, LABRIG_HUB_TOKEN, LOG_LEVEL.",
    `host: ${q(o.host ?? defaultHostId())}`,
    "hub:",
    `  url: ${q(o.hubUrl ?? "https://hub.local")}`,
    "  # This host's enrollment token from the hub; readable by the labrig user only (chmod 0640, group labrig).",
    `  token_file: ${q(o.tokenFile ?? "/etc/labrig/token")}`,
    `data_dir: ${q(o.dataDir ?? "/var/lib/labrig")}`,
    "log_level: info",
    "gpio:",
    `  driver: auto   # ${driverNote}`,
  ];
  if (chip && chip.free.length > 0) out.push(`# Free lines on ${chip.label} (name=line): ${chip.free.join(" ")}`);
  if (o.ports.length === 0) {
    out.push(
      "# No serial port was found when this file was written; a device looks like this:",
      "devices: []",
      "#  - id: dut1",
      "#    resources:",
      '#      - { name: console, kind: serial, path: "/dev/serial/by-id/usb-FTDI_…-if00-port0", baud_rate: 115200 }',
      `#      - { name: power, kind: power, ${chipLine.replace(/ {3}#.*/, "")}, line: 17, cycle_off_ms: 2000 }`,
    );
    return `${out.join("\n")}\n`;
  }
  out.push("devices:");
  o.ports.forEach((p, i) => {
    const [power, reset] = EXAMPLE_LINES[i % EXAMPLE_LINES.length] as [number, number];
    const path = p.byId[0] ?? p.path;
    const what = [p.path, p.manufacturer, p.serialNumber].filter((x) => x !== undefined && x !== "").join(", ");
    out.push(
      `  - id: dut${i + 1}`,
      "    labels: {}",
      "    resources:",
      "      - name: console",
      "        kind: serial",
      `        # ${what}${p.byId[0] ? "; the by-id name survives reboots and re-plugging, ttyUSB numbers do not" : ""}`,
      `        path: ${q(path)}`,
      "        baud_rate: 115200",
      "        # log_max_bytes: 1048576   # on-disk console log per file, rotated log_files times",
      "        # log_files: 3",
      `      # Power relay and reset line, BCM numbering on ${chipNote}; uncomment and set the lines you wired:`,
      "      # - name: power",
      "      #   kind: power",
      `      #   ${chipLine}`,
      `      #   ${lineOf(power)}`,
      "      #   active_low: false",
      "      #   cycle_off_ms: 2000",
      "      # - name: reset",
      "      #   kind: gpio",
      "      #   direction: out",
      `      #   ${chipLine}`,
      `      #   ${lineOf(reset)}`,
      "      #   active_low: true",
    );
  });
  return `${out.join("\n")}\n`;
}

/** Writes the config; refuses to replace an existing file unless `force`. */
export function writeInitConfig(path: string, text: string, force: boolean): void {
  if (existsSync(path) && !force) {
    throw new LabrigError("conflict", `${path} already exists; it was left alone. Pass --force to overwrite it, or --out PATH to write elsewhere.`);
  }
  mkdirSync(dirname(path), { recursive: true });
  // Not world-readable: it names the token file and the rig's layout.
  writeFileSync(path, text, { mode: 0o640 });
}
