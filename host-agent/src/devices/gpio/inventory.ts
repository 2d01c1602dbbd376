import { chardevChipPaths, listChardevLines, readChardevChip, type ChardevChip, type ChardevLineInfo } from "./chardev-chips.js";
import { listGpioChips, type GpioChip } from "./chips.js";
import { nativeUapi, type GpioUapi } from "./uapi.js";

/** A chip seen through its character device, with every line. */
export interface ChardevChipReport extends ChardevChip {
  line_info: ChardevLineInfo[];
}

/** What this machine offers for GPIO, through both interfaces; a chip that cannot be read is named with the reason. */
export interface GpioInventory {
  chardev: ChardevChipReport[];
  /** Character devices that could not be read (permissions, addon not built), with why. */
  chardev_errors: { path: string; error: string }[];
  sysfs: GpioChip[];
  sysfs_error?: string;
}

/** Reads every GPIO chip under `devDir` (character devices) and `sysfsRoot` (sysfs). Never throws for a finding. */
export function gpioInventory(options: { devDir: string; sysfsRoot: string; uapi?: GpioUapi }): GpioInventory {
  const out: GpioInventory = { chardev: [], chardev_errors: [], sysfs: [] };
  const paths = chardevChipPaths(options.devDir);
  let uapi = options.uapi;
  for (const path of paths) {
    try {
      uapi ??= nativeUapi();
      const chip = readChardevChip(uapi, path);
      out.chardev.push({ ...chip, line_info: listChardevLines(uapi, chip) });
    } catch (err) {
      out.chardev_errors.push({ path, error: (err as Error).message });
    }
  }
  try {
    out.sysfs = listGpioChips(options.sysfsRoot);
  } catch (err) {
    out.sysfs_error = (err as Error).message;
  }
  return out;
}

/** "GPIO17" → 17 on that chip; null when no line has the name. */
export function lineByName(chip: ChardevChipReport, name: string): ChardevLineInfo | null {
  return chip.line_info.find((l) => l.name === name) ?? null;
}
