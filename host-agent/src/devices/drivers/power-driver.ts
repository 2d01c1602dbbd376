import type { Logger } from "../../logger.js";
import type { GpioLine } from "../gpio/gpio-line.js";
import type { PowerSwitch } from "../power-switch.js";
import type { ResourceStateReport } from "../device.js";
import { releaseLine } from "./gpio-driver.js";
import type { ActionHandlers, ResourceDriver } from "./resource-driver.js";

/** A power relay on one line: on, off, and a cycle timed on the agent. */
export class PowerDriver implements ResourceDriver<"power"> {
  readonly kind = "power" as const;

  constructor(
    readonly resource: string,
    private readonly deviceId: string,
    readonly line: GpioLine,
    private readonly power: PowerSwitch,
    private readonly report: (state: ResourceStateReport) => void,
    private readonly logger: Logger,
  ) {}

  readonly handlers: ActionHandlers<"power"> = {
    "power.on": () => ({ state: this.power.on() }),
    "power.off": () => ({ state: this.power.off() }),
    "power.cycle": async (p, signal) => ({ state: await this.power.cycle(p.off_ms, signal) }),
  };

  async start(): Promise<void> {
    this.report({ resource: this.resource, status: "ready", power: this.power.state });
  }

  async stop(): Promise<void> {
    releaseLine(this.line, this.deviceId, this.resource, this.logger);
  }
}
