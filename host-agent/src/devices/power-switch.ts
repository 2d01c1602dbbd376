import { performance } from "node:perf_hooks";
import { DEFAULT_POWER_CYCLE_OFF_MS, sleep } from "@labrig/shared";
import type { GpioLine } from "./gpio/gpio-line.js";

export type PowerState = "on" | "off";

/**
 * A power switch driven by one line (a relay or a MOSFET): logical 1 = powered.
 * A cycle is off → delay → on with the delay as a named setting, as in labgrid.
 */
export class PowerSwitch {
  constructor(
    private readonly line: GpioLine,
    private readonly options: { cycleOffMs: number | null },
    private readonly onState: (state: PowerState) => void,
  ) {}

  get state(): PowerState {
    return this.line.read() === 1 ? "on" : "off";
  }

  on(): PowerState {
    this.line.write(1);
    this.onState("on");
    return "on";
  }

  off(): PowerState {
    this.line.write(0);
    this.onState("off");
    return "off";
  }

  /**
   * Off, wait, on. If aborted during the wait the device stays off: half a cycle that
   * leaves the board powered would hide the abort from whoever asked for it.
   */
  async cycle(offMs: number | undefined, signal?: AbortSignal): Promise<PowerState> {
    this.off();
    const offFor = offMs ?? this.options.cycleOffMs ?? DEFAULT_POWER_CYCLE_OFF_MS;
    const t0 = performance.now();
    await sleep(offFor, signal);
    // Timers may fire up to a millisecond early; the board must stay off at least as long as asked.
    while (performance.now() - t0 < offFor) {
      /* spin for the sub-millisecond remainder */
    }
    return this.on();
  }
}
