import { performance } from "node:perf_hooks";
import { LabrigError, sleep } from "@labrig/shared";
import type { GpioResourceConfig } from "../../config.js";
import type { Logger } from "../../logger.js";
import type { ResourceStateReport } from "../device.js";
import type { Bit, GpioLine } from "../gpio/gpio-line.js";
import { InputWatcher } from "../gpio/input-watcher.js";
import type { ActionHandlers, ResourceDriver } from "./resource-driver.js";

/**
 * Holds `line` at `value` for at least `widthMs`, timed here next to the pin (the hub's clock
 * would add network jitter), and always returns it to the inactive level, also when aborted:
 * a reset held forever is worse than a short pulse.
 */
export async function pulseLine(line: GpioLine, value: Bit, widthMs: number, signal: AbortSignal): Promise<number> {
  const inactive = (1 - value) as Bit;
  const t0 = performance.now();
  line.write(value);
  try {
    await sleep(widthMs, signal);
    // Timers may fire up to a millisecond early against performance.now(); a pulse is never shorter than asked.
    while (performance.now() - t0 < widthMs) {
      /* spin for the sub-millisecond remainder */
    }
  } finally {
    line.write(inactive);
  }
  return performance.now() - t0;
}

/** A named GPIO line (a reset, a button): read, write and pulse outputs; report an input's debounced edges. */
export class GpioDriver implements ResourceDriver<"gpio"> {
  readonly kind = "gpio" as const;
  private watcher: InputWatcher | null = null;

  constructor(
    readonly resource: string,
    private readonly deviceId: string,
    readonly line: GpioLine,
    private readonly config: GpioResourceConfig,
    private readonly report: (state: ResourceStateReport) => void,
    private readonly logger: Logger,
  ) {}

  readonly handlers: ActionHandlers<"gpio"> = {
    "gpio.write": (p) => {
      this.output().write(p.value);
      this.report({ resource: this.resource, status: "ready", value: p.value });
      return { value: p.value };
    },
    "gpio.read": () => ({ value: this.line.read() }),
    "gpio.pulse": async (p, signal) => ({ width_ms: await pulseLine(this.output(), p.value, p.width_ms, signal) }),
  };

  /** Starts watching an input's edges when configured, and reports the line's first state (with how it is watched). */
  async start(): Promise<void> {
    const r = this.config;
    let detail: string | undefined;
    const state = (value: Bit): ResourceStateReport => ({ resource: this.resource, status: "ready", value, ...(detail === undefined ? {} : { detail }) });
    if (r.direction === "in" && r.edge !== "none") {
      this.watcher = new InputWatcher(this.line, { edge: r.edge, debounceMs: r.debounce_ms, pollMs: r.poll_ms }, (value) => this.report(state(value)), this.logger);
      detail = this.watcher.start().detail;
    }
    this.report(state(this.line.read()));
  }

  async stop(): Promise<void> {
    this.watcher?.stop();
    this.watcher = null;
    releaseLine(this.line, this.deviceId, this.resource, this.logger);
  }

  private output(): GpioLine {
    if (this.config.direction !== "out") {
      throw new LabrigError("forbidden_line", `Line '${this.config.name}' of ${this.deviceId} is an input; set direction: out in the agent config to drive it.`);
    }
    return this.line;
  }
}

/** Gives a line back; a failure is logged, not thrown, so the device's other resources are still released. */
export function releaseLine(line: GpioLine, deviceId: string, resource: string, logger: Logger): void {
  try {
    line.release();
  } catch (err) {
    logger.warn({ device: deviceId, resource, err: (err as Error).message }, "releasing GPIO line failed; it may stay claimed until the agent exits");
  }
}
