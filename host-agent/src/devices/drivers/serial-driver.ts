import type { SerialConsole } from "../serial-console.js";
import type { ActionHandlers, ResourceDriver } from "./resource-driver.js";

/** A serial console resource: write, expect (through the console's expect engine), read by cursor, tail. */
export class SerialDriver implements ResourceDriver<"serial"> {
  readonly kind = "serial" as const;

  constructor(
    readonly resource: string,
    readonly console: SerialConsole,
  ) {}

  readonly handlers: ActionHandlers<"serial"> = {
    "serial.write": async (p, signal) => ({ bytes: await this.console.write(p.data, signal) }),
    "serial.expect": async (p, signal) => ({ ...(await this.console.expect({ pattern: p.pattern, regex: p.regex, timeoutMs: p.timeout_ms, flush: p.flush }, signal)) }),
    "serial.read": (p) => this.console.read(p.since, p.max_bytes),
    "serial.tail": (p) => ({ text: this.console.tail(p.max_bytes) }),
  };

  start(): Promise<void> {
    return this.console.start();
  }

  stop(): Promise<void> {
    return this.console.stop();
  }
}
