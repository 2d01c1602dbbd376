import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { LabrigError } from "@labrig/shared";

/** A GPIO controller as sysfs lists it under <sysfs_root>/gpiochipN. */
export interface GpioChip {
  /** Directory name, e.g. gpiochip512. */
  name: string;
  label: string;
  /** First sysfs number of the chip; 512 on a Pi 4 and 571 on a Pi 5 with current kernels, but only the kernel knows. */
  base: number;
  ngpio: number;
}

/**
 * Controllers that drive the 40-pin header on Raspberry Pi models, most specific first.
 * Used only when the config names no chip; the number still comes from the chip's base.
 */
export const HEADER_CHIP_LABELS: readonly string[] = ["pinctrl-rp1", "pinctrl-bcm2711", "pinctrl-bcm2835"];

function readTrimmed(path: string): string {
  return readFileSync(path, "utf8").trim();
}

/** The `gpiochipN` entries of `dir` (a sysfs root or /dev), lowest number first; an absent folder has none. */
export function gpiochipEntries(dir: string): string[] {
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw err;
  }
  return entries.filter((e) => /^gpiochip\d+$/.test(e)).sort((a, b) => Number(a.slice(8)) - Number(b.slice(8)));
}

/** Lists the GPIO chips under `sysfsRoot`; an absent root means no chips. */
export function listGpioChips(sysfsRoot: string): GpioChip[] {
  return gpiochipEntries(sysfsRoot)
    .map((name) => {
      const dir = join(sysfsRoot, name);
      const base = Number.parseInt(readTrimmed(join(dir, "base")), 10);
      const ngpio = Number.parseInt(readTrimmed(join(dir, "ngpio")), 10);
      if (!Number.isFinite(base) || !Number.isFinite(ngpio)) {
        throw new LabrigError("hardware_error", `${dir} has an unreadable base or ngpio; is ${sysfsRoot} a GPIO sysfs tree?`);
      }
      return { name, label: readTrimmed(join(dir, "label")), base, ngpio };
    })
    .sort((a, b) => a.base - b.base);
}

/** What choosing a chip needs to know of one, whichever interface listed it. */
export interface ChipCandidate {
  label: string;
  /** Number of lines (ngpio in sysfs, lines in the character device's chip info). */
  lines: number;
  /** How the chip shows in messages, e.g. "pinctrl-bcm2711 (base 512, 58 lines)". */
  describe: string;
}

/**
 * The one rule for which chip a configured line is on: the chip labelled `chipLabel`, or without
 * a label the Pi header controller (HEADER_CHIP_LABELS), else the first chip with that many
 * lines. `chips` come in the interface's order (sysfs by base, the character device by number).
 */
export function chooseChip<C extends ChipCandidate>(chips: readonly C[], line: number, chipLabel: string | null, where: string): C {
  if (chips.length === 0) {
    throw new LabrigError("device_unavailable", `No GPIO chips ${where}. Is this a Pi, or should gpio.driver be memory?`);
  }
  const known = chips.map((c) => c.describe).join(", ");
  let chip: C | undefined;
  if (chipLabel !== null) {
    chip = chips.find((c) => c.label === chipLabel);
    if (!chip) throw new LabrigError("device_unavailable", `No GPIO chip labelled '${chipLabel}' ${where}. Chips found: ${known}. Fix 'chip' in the config.`);
  } else {
    const fits = chips.filter((c) => line < c.lines);
    chip = HEADER_CHIP_LABELS.map((label) => fits.find((c) => c.label === label)).find((c) => c !== undefined) ?? fits[0];
    if (!chip) throw new LabrigError("device_unavailable", `No GPIO chip has a line ${line}. Chips found: ${known}.`);
  }
  if (line >= chip.lines) {
    throw new LabrigError("device_unavailable", `GPIO chip '${chip.label}' has lines 0-${chip.lines - 1}; line ${line} does not exist. Fix 'line' in the config.`);
  }
  return chip;
}

/**
 * The sysfs number of `line` on the chip labelled `chipLabel` (base + line); the chip is chosen
 * by chooseChip.
 */
export function resolveSysfsNumber(sysfsRoot: string, line: number, chipLabel: string | null): { number: number; chip: GpioChip } {
  const candidates = listGpioChips(sysfsRoot).map((chip) => ({ chip, label: chip.label, lines: chip.ngpio, describe: `${chip.label} (base ${chip.base}, ${chip.ngpio} lines)` }));
  const { chip } = chooseChip(candidates, line, chipLabel, `under ${sysfsRoot}`);
  return { number: chip.base + line, chip };
}
