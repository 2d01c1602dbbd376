import { LabrigError } from "@labrig/shared";
import type { Gpio } from "onoff";
import type { Logger } from "../../logger.js";
import { resolveSysfsNumber } from "./chips.js";
import type { Bit, GpioLine, LineDirection, LineFactory, LineSpec } from "./gpio-line.js";

/** onoff reads and writes this path whatever sysfs_root says; sysfs_root only changes where chips are looked up. */
export const ONOFF_SYSFS_ROOT = "/sys/class/gpio";

/** A real pin through the kernel's GPIO sysfs interface (onoff). active_low is set in the kernel, so values are logical. */
export class SysfsLine implements GpioLine {
  readonly direction: LineDirection;

  constructor(
    readonly name: string,
    private readonly gpio: Gpio,
    spec: LineSpec,
  ) {
    this.direction = spec.direction;
  }

  read(): Bit {
    try {
      return this.gpio.readSync();
    } catch (err) {
      throw new LabrigError("hardware_error", `Reading GPIO line ${this.name} failed: ${(err as Error).message}`, { cause: err });
    }
  }

  write(value: Bit): void {
    try {
      this.gpio.writeSync(value);
    } catch (err) {
      throw new LabrigError("hardware_error", `Writing GPIO line ${this.name} failed: ${(err as Error).message}`, { cause: err });
    }
  }

  /**
   * Enables interrupts on both edges (the software filters rising/falling, so a missed bounce
   * never leaves the last reported level stale) and watches them through onoff's epoll.
   * Throws where the pin has no edge file or epoll refuses the value file.
   */
  watchInterrupts(onEdge: () => void): void {
    const listener = (err: Error | null | undefined): void => {
      if (err) this.onWatchError?.(err);
      onEdge();
    };
    try {
      this.gpio.setEdge("both");
      this.gpio.watch(listener);
      this.watching = listener;
    } catch (err) {
      // onoff registers the listener before epoll refuses it; clear it so unexport does not trip on it later.
      try {
        this.gpio.unwatchAll();
      } catch (cleanupErr) {
        this.onWatchError?.(cleanupErr as Error);
      }
      throw new LabrigError("hardware_error", `GPIO line ${this.name} has no edge interrupts: ${(err as Error).message}`, { cause: err });
    }
  }

  unwatchInterrupts(): void {
    if (!this.watching) return;
    this.watching = null;
    this.gpio.unwatchAll();
    this.gpio.setEdge("none");
  }

  /** Where interrupt errors go (set by the factory to its logger). */
  onWatchError: ((err: Error) => void) | null = null;
  private watching: ((err: Error | null | undefined) => void) | null = null;

  release(): void {
    this.gpio.unexport();
  }
}

/** Opens sysfs lines: finds the chip by label, adds its base, exports the pin. */
export class SysfsLineFactory implements LineFactory {
  readonly driver = "sysfs" as const;

  constructor(
    private readonly sysfsRoot: string,
    private readonly logger: Logger,
  ) {}

  async open(spec: LineSpec): Promise<SysfsLine> {
    const { number, chip } = resolveSysfsNumber(this.sysfsRoot, spec.line, spec.chip);
    // Loaded lazily: onoff pulls in the epoll addon, which machines without GPIO never need.
    const { Gpio } = await import("onoff");
    if (!Gpio.accessible) {
      throw new LabrigError("device_unavailable", `GPIO sysfs at ${ONOFF_SYSFS_ROOT} is not accessible; add the agent's user to the gpio group or set gpio.driver: memory.`);
    }
    // For outputs, 'high'/'low' set direction and the first level in one write, so a relay never glitches on open.
    // The kernel treats that level as raw (gpiod_direction_output_raw), ignoring active_low, so invert it here.
    const physicalInitial = spec.activeLow ? 1 - spec.initial : spec.initial;
    const direction = spec.direction === "in" ? "in" : physicalInitial === 1 ? "high" : "low";
    let gpio: Gpio;
    try {
      // No edge: reads are on demand, and lines without interrupts have no edge file to write.
      gpio = new Gpio(number, direction, undefined, { activeLow: spec.activeLow });
    } catch (err) {
      throw new LabrigError("hardware_error", `Opening GPIO ${spec.line} on ${chip.label} (sysfs ${number}) for ${spec.name} failed: ${(err as Error).message}`, { cause: err });
    }
    this.logger.info({ line: spec.name, chip: chip.label, base: chip.base, offset: spec.line, sysfs: number, direction: spec.direction }, "gpio line opened");
    if (spec.bias !== undefined && spec.bias !== "as-is") {
      // The sysfs interface has no bias setting; the firmware's is what the pin gets.
      this.logger.warn({ line: spec.name, bias: spec.bias }, `sysfs cannot set a pull resistor; set it in config.txt (gpio=${spec.line}=ip,${spec.bias === "pull-up" ? "pu" : spec.bias === "pull-down" ? "pd" : "pn"}) or use the character-device driver`);
    }
    const line = new SysfsLine(spec.name, gpio, spec);
    line.onWatchError = (err) => this.logger.warn({ line: spec.name, err: err.message }, "gpio interrupt error");
    return line;
  }
}
