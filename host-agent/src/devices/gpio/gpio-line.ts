/** A logical level: 1 = active. Whether active means high or low is the line's business (active_low). */
export type Bit = 0 | 1;

export type LineDirection = "in" | "out";

/** An input's pull resistor: as-is leaves whatever the firmware or device tree set. */
export type LineBias = "as-is" | "pull-up" | "pull-down" | "disabled";

/** What the agent needs to open one line; the driver decides where it lives (sysfs pin or memory). */
export interface LineSpec {
  /** `device/resource`, for logs and error messages. */
  name: string;
  /** BCM line number (offset within the chip). */
  line: number;
  /** Label of the GPIO chip; null lets the driver pick the header's controller. */
  chip: string | null;
  direction: LineDirection;
  activeLow: boolean;
  /** Logical value an output is driven to when opened. */
  initial: Bit;
  /** Inputs: the pull resistor to set, where the driver can (the character device can; sysfs cannot). */
  bias?: LineBias;
  /** Inputs: the debounce period to ask the kernel for when edges are watched (the character device only). */
  debounceMs?: number;
}

/**
 * One GPIO line as the devices use it. Values are logical: active_low is applied here,
 * at the line layer, so power switches and buttons never think about wiring polarity.
 */
export interface GpioLine {
  readonly name: string;
  readonly direction: LineDirection;
  read(): Bit;
  write(value: Bit): void;
  /** Gives the line back (unexport / forget); the line must not be used afterwards. */
  release(): void;
  /**
   * Calls `onEdge` on every level change the hardware signals (interrupts on both edges).
   * Absent or throwing means the line has no edge interrupts, and callers poll instead.
   */
  watchInterrupts?(onEdge: () => void): void;
  /** Stops what watchInterrupts started. */
  unwatchInterrupts?(): void;
  /**
   * Set while watchInterrupts is active when the kernel debounces the edges itself (the character
   * device's debounce attribute), so the watcher need not wait again before confirming a level.
   */
  readonly kernelDebounced?: boolean;
}

/** How lines reach the hardware: the GPIO character device, the sysfs interface, or memory (nothing physical). */
export type GpioDriverName = "chardev" | "sysfs" | "memory";

/** Opens lines for one driver. */
export interface LineFactory {
  readonly driver: GpioDriverName;
  open(spec: LineSpec): Promise<GpioLine>;
}
