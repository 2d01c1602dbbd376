import { existsSync } from "node:fs";
import type { AgentConfig } from "../../config.js";
import type { Logger } from "../../logger.js";
import { ChardevLineFactory } from "./chardev-line.js";
import { chardevChipPaths } from "./chardev-chips.js";
import type { GpioDriverName, LineFactory } from "./gpio-line.js";
import { MemoryLineFactory } from "./memory-line.js";
import { ONOFF_SYSFS_ROOT, SysfsLineFactory } from "./sysfs-line.js";
import type { GpioUapi } from "./uapi.js";

/** Which driver the agent's GPIO lines use, and the reason in words a person can check. */
export interface GpioDriverChoice {
  driver: GpioDriverName;
  reason: string;
}

/**
 * auto = the character device where /dev/gpiochip* exists (every kernel since 4.8, and the only
 * interface on kernels built without CONFIG_GPIO_SYSFS, such as Raspberry Pi OS Trixie's), sysfs
 * where only the sysfs tree exists, memory where neither does (a laptop, CI).
 */
export function chooseGpioDriver(gpio: AgentConfig["gpio"]): GpioDriverChoice {
  if (gpio.driver !== "auto") return { driver: gpio.driver, reason: `gpio.driver is ${gpio.driver} in the config` };
  const chips = chardevChipPaths(gpio.dev_dir);
  if (chips.length > 0) return { driver: "chardev", reason: `auto: found ${chips.join(", ")} (the GPIO character device)` };
  if (existsSync(gpio.sysfs_root)) return { driver: "sysfs", reason: `auto: no gpiochip devices in ${gpio.dev_dir}, but ${gpio.sysfs_root} exists (the deprecated sysfs interface)` };
  return { driver: "memory", reason: `auto: no gpiochip devices in ${gpio.dev_dir} and no ${gpio.sysfs_root}; lines are kept in memory and nothing physical is switched` };
}

/** The line factory for the chosen driver; the choice and its reason are logged once. */
export function createLineFactory(gpio: AgentConfig["gpio"], logger: Logger, uapi?: GpioUapi): LineFactory {
  const choice = chooseGpioDriver(gpio);
  logger.info({ driver: choice.driver, reason: choice.reason }, "GPIO driver chosen");
  switch (choice.driver) {
    case "chardev":
      return new ChardevLineFactory(gpio.dev_dir, logger, uapi);
    case "sysfs":
      if (gpio.sysfs_root !== ONOFF_SYSFS_ROOT) logger.warn({ sysfs_root: gpio.sysfs_root }, `chips are looked up under ${gpio.sysfs_root}, but onoff drives pins under ${ONOFF_SYSFS_ROOT}`);
      return new SysfsLineFactory(gpio.sysfs_root, logger);
    case "memory":
      return new MemoryLineFactory();
  }
}
