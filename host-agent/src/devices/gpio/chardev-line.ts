import { LabrigError } from "@labrig/shared";
import type { Logger } from "../../logger.js";
import { chooseChip } from "./chips.js";
import { chardevChipPaths, lineInfoOf, readChardevChip, withChip, type ChardevChip } from "./chardev-chips.js";
import type { Bit, GpioLine, LineBias, LineDirection, LineFactory, LineSpec } from "./gpio-line.js";
import { nativeUapi, UapiError, type GpioUapi } from "./uapi.js";
import {
  ATTR_ID,
  IOCTL,
  LAYOUT,
  LINE_FLAG,
  decodeLineEvents,
  decodeLineValues,
  encodeLineConfig,
  encodeLineRequest,
  encodeLineValues,
  requestFd,
  type LineConfig,
} from "./uapi-layout.js";

const BIAS_FLAGS: Record<LineBias, number> = {
  "as-is": 0,
  "pull-up": LINE_FLAG.BIAS_PULL_UP,
  "pull-down": LINE_FLAG.BIAS_PULL_DOWN,
  disabled: LINE_FLAG.BIAS_DISABLED,
};

/** Edge events read per read(2); the kernel buffers 16 per line by default. */
const EVENTS_PER_READ = 16;

/** The consumer name the kernel shows for our lines (gpioinfo, doctor): at most 31 characters. */
export function consumerName(lineName: string): string {
  return `labrig:${lineName}`.slice(0, 31);
}

/** The line config for one line of a request: direction, polarity, bias, and edges with the kernel's debounce when watched. */
function lineConfig(spec: LineSpec, edges: boolean, initial?: Bit): LineConfig {
  let flags = spec.activeLow ? LINE_FLAG.ACTIVE_LOW : 0;
  const attrs: LineConfig["attrs"] = [];
  if (spec.direction === "out") {
    flags |= LINE_FLAG.OUTPUT;
    // uAPI v2 values are logical (active-low applied by the kernel), so the initial level needs no inverting.
    attrs.push({ attr: { id: ATTR_ID.OUTPUT_VALUES, value: BigInt(initial ?? spec.initial) }, mask: 1n });
  } else {
    flags |= LINE_FLAG.INPUT | BIAS_FLAGS[spec.bias ?? "as-is"];
    if (edges) {
      // Both edges, filtered in the watcher: a missed bounce never leaves the last reported level stale.
      flags |= LINE_FLAG.EDGE_RISING | LINE_FLAG.EDGE_FALLING;
      if ((spec.debounceMs ?? 0) > 0) attrs.push({ attr: { id: ATTR_ID.DEBOUNCE, value: BigInt((spec.debounceMs ?? 0) * 1000) }, mask: 1n });
    }
  }
  return { flags, attrs };
}

/**
 * One line held through a uAPI v2 line request: values are logical (the kernel applies
 * active-low), edges arrive as events on the request fd, and release() closes the request,
 * which gives the line back to the kernel.
 */
export class ChardevLine implements GpioLine {
  readonly direction: LineDirection;
  private released = false;
  private stopWatch: (() => void) | null = null;
  private lastSeqno = 0;
  private debounced = false;

  constructor(
    readonly name: string,
    private readonly uapi: GpioUapi,
    private readonly fd: number,
    private readonly spec: LineSpec,
    private readonly where: string,
    private readonly logger: Logger,
  ) {
    this.direction = spec.direction;
  }

  get kernelDebounced(): boolean {
    return this.debounced;
  }

  read(): Bit {
    const buf = encodeLineValues(0n, 1n);
    this.call(IOCTL.LINE_GET_VALUES, buf, "Reading");
    return (decodeLineValues(buf).bits & 1n) === 1n ? 1 : 0;
  }

  write(value: Bit): void {
    this.call(IOCTL.LINE_SET_VALUES, encodeLineValues(BigInt(value), 1n), "Writing");
  }

  /**
   * Reconfigures the request for both edges (and the kernel's debounce) and reads the events from
   * the request fd as the event loop sees it readable: interrupts, no polling. Throws where the
   * chip has no interrupt for this line (the kernel refuses edge detection), so the watcher polls.
   */
  watchInterrupts(onEdge: () => void): void {
    try {
      this.call(IOCTL.LINE_SET_CONFIG, encodeLineConfig(lineConfig(this.spec, true)), "Enabling edge detection on");
    } catch (err) {
      throw new LabrigError("hardware_error", `GPIO line ${this.name} has no edge interrupts: ${(err as Error).message}`, { cause: err });
    }
    this.debounced = (this.spec.debounceMs ?? 0) > 0;
    const buf = Buffer.alloc(LAYOUT.gpio_v2_line_event.size * EVENTS_PER_READ);
    this.stopWatch = this.uapi.watch(this.fd, () => {
      if (this.released) return;
      let bytes: number;
      try {
        bytes = this.uapi.read(this.fd, buf);
      } catch (err) {
        this.logger.warn({ line: this.name, err: (err as Error).message }, "reading edge events failed; the level is read again on the next edge");
        return;
      }
      const events = decodeLineEvents(buf, bytes);
      for (const e of events) {
        if (this.lastSeqno !== 0 && e.lineSeqno > this.lastSeqno + 1) {
          this.logger.warn({ line: this.name, missed: e.lineSeqno - this.lastSeqno - 1 }, "the kernel's edge buffer overflowed; some edges were lost (the level is still read after each)");
        }
        this.lastSeqno = e.lineSeqno;
      }
      if (events.length > 0) onEdge();
    });
  }

  unwatchInterrupts(): void {
    this.stopWatching();
    if (this.released) return;
    this.call(IOCTL.LINE_SET_CONFIG, encodeLineConfig(lineConfig(this.spec, false)), "Disabling edge detection on");
  }

  release(): void {
    if (this.released) return;
    this.stopWatching();
    this.released = true;
    // Closing the request is what releases the line; the kernel keeps an output's last level.
    this.uapi.close(this.fd);
  }

  private stopWatching(): void {
    const stop = this.stopWatch;
    this.stopWatch = null;
    this.debounced = false;
    stop?.();
  }

  private call(request: number, buf: Buffer, what: string): void {
    if (this.released) throw new LabrigError("device_unavailable", `GPIO line ${this.name} was released; the agent is stopping.`);
    try {
      this.uapi.ioctl(this.fd, request, buf);
    } catch (err) {
      throw new LabrigError("hardware_error", `${what} GPIO line ${this.name} (${this.where}) failed: ${(err as Error).message}`, { cause: err });
    }
  }
}

/**
 * Opens lines through the GPIO character device (/dev/gpiochipN, uAPI v2): the chip is found by
 * label among the chips in devDir (chooseChip, the same rule as sysfs), the line by its offset.
 */
export class ChardevLineFactory implements LineFactory {
  readonly driver = "chardev" as const;
  private uapiInstance: GpioUapi | null;

  constructor(
    private readonly devDir: string,
    private readonly logger: Logger,
    /** The kernel's interface; tests pass a stand-in. Default: the native addon, loaded on first use. */
    uapi?: GpioUapi,
  ) {
    this.uapiInstance = uapi ?? null;
  }

  private get uapi(): GpioUapi {
    this.uapiInstance ??= nativeUapi();
    return this.uapiInstance;
  }

  /** The chips in devDir with their labels. */
  chips(): ChardevChip[] {
    return chardevChipPaths(this.devDir).map((path) => readChardevChip(this.uapi, path));
  }

  async open(spec: LineSpec): Promise<ChardevLine> {
    const candidates = this.chips().map((c) => ({ ...c, describe: `${c.label} (${c.name}, ${c.lines} lines)` }));
    const chip = chooseChip(candidates, spec.line, spec.chip, `in ${this.devDir}`);
    const where = `${chip.label} line ${spec.line}, ${chip.path}`;
    const request = encodeLineRequest({ offsets: [spec.line], consumer: consumerName(spec.name), config: lineConfig(spec, false), eventBufferSize: 0 });
    const fd = withChip(this.uapi, chip.path, (chipFd) => {
      try {
        this.uapi.ioctl(chipFd, IOCTL.GET_LINE, request);
      } catch (err) {
        if (err instanceof UapiError && err.code === "EBUSY") {
          const holder = lineInfoOf(this.uapi, chipFd, spec.line).consumer || "another user";
          throw new LabrigError("device_unavailable", `GPIO ${where} is in use by '${holder}' (another process or a kernel driver); free it or wire ${spec.name} to another line.`, { cause: err });
        }
        throw new LabrigError("hardware_error", `Requesting GPIO ${where} for ${spec.name} failed: ${(err as Error).message}`, { cause: err });
      }
      return requestFd(request);
    });
    this.logger.info({ line: spec.name, chip: chip.label, device: chip.path, offset: spec.line, direction: spec.direction, bias: spec.bias ?? "as-is" }, "gpio line requested");
    return new ChardevLine(spec.name, this.uapi, fd, spec, where, this.logger);
  }
}
