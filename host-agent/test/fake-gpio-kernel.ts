import { UapiError, type GpioUapi } from "../src/devices/gpio/uapi.js";
import {
  ATTR_ID,
  EVENT_ID,
  IOCTL,
  LAYOUT,
  LINE_FLAG,
  decodeLineConfig,
  decodeLineRequest,
  decodeLineValues,
  encodeChipInfo,
  encodeLineEvent,
  encodeLineInfo,
  encodeLineValues,
  type LineConfig,
} from "../src/devices/gpio/uapi-layout.js";

/*
 * A stand-in for the kernel below the GpioUapi interface, for a machine without /dev/gpiochip*
 * or gpio-sim: it decodes the same uAPI v2 structs the driver encodes (uapi-layout.ts, which
 * gpio-uapi-layout.test.ts checks against linux/gpio.h), keeps per-line state the way gpiolib
 * does (requested, consumer, direction, active-low, bias, physical level, edge detection,
 * software debounce), and answers with the errnos the kernel uses. It is not the kernel: what
 * only real hardware shows is in the README's hardware checklist.
 */

interface FakeLine {
  name: string;
  /** A kernel driver holding the line (e.g. "spi0 CS0"); requests for it get EBUSY. */
  kernelConsumer: string;
  /** False for a line whose chip gives it no interrupt: edge detection is refused with ENXIO. */
  irq: boolean;
  physical: 0 | 1;
  request: FakeRequest | null;
  flags: number;
  debounceUs: number;
  debounceTimer: NodeJS.Timeout | null;
  lineSeqno: number;
}

interface FakeChip {
  path: string;
  label: string;
  denied: boolean;
  lines: FakeLine[];
}

interface FakeRequest {
  chip: FakeChip;
  offsets: number[];
  consumer: string;
  events: Buffer[];
  watchers: Set<() => void>;
  seqno: number;
}

type Handle = { kind: "chip"; chip: FakeChip } | { kind: "request"; req: FakeRequest };

export interface FakeChipSpec {
  path: string;
  label: string;
  /** Line names by offset (GPIO17 …); the chip has this many lines. */
  names: string[];
  /** Offsets a kernel driver holds, with its consumer name. */
  kernelUsed?: Record<number, string>;
  /** Offsets without an interrupt. */
  noIrq?: number[];
  /** open() fails with EACCES (a chip the agent's user may not open). */
  denied?: boolean;
}

const errno = (code: string, what: string): UapiError => new UapiError(code, 0, `${what}: ${code}`);

export class FakeGpioKernel implements GpioUapi {
  readonly chips = new Map<string, FakeChip>();
  private readonly handles = new Map<number, Handle>();
  private nextFd = 100;
  /** Every ioctl request number seen, in order (tests check what the driver asked for). */
  readonly calls: number[] = [];
  /** The decoded line configs of every GET_LINE and SET_CONFIG, in order. */
  readonly configs: Array<{ offsets: number[]; consumer?: string; config: LineConfig }> = [];

  addChip(spec: FakeChipSpec): void {
    this.chips.set(spec.path, {
      path: spec.path,
      label: spec.label,
      denied: spec.denied ?? false,
      lines: spec.names.map((name, offset) => ({
        name,
        kernelConsumer: spec.kernelUsed?.[offset] ?? "",
        irq: !(spec.noIrq ?? []).includes(offset),
        physical: 0,
        request: null,
        flags: LINE_FLAG.INPUT,
        debounceUs: 0,
        debounceTimer: null,
        lineSeqno: 0,
      })),
    });
  }

  /** Open file descriptors (chips and line requests); a released line leaves none behind. */
  get openFds(): number {
    return this.handles.size;
  }

  /** The electrical level on a line, as a multimeter would read it. */
  physical(path: string, offset: number): 0 | 1 {
    return this.line(path, offset).physical;
  }

  consumer(path: string, offset: number): string {
    const l = this.line(path, offset);
    return l.request?.consumer ?? l.kernelConsumer;
  }

  /** The far end of the wire drives an input: edges are queued as the kernel would (after its debounce period, if set). */
  drive(path: string, offset: number, level: 0 | 1): void {
    const l = this.line(path, offset);
    if (l.physical === level) return;
    l.physical = level;
    if (!l.request || !(l.flags & (LINE_FLAG.EDGE_RISING | LINE_FLAG.EDGE_FALLING))) return;
    if (l.debounceUs === 0) {
      this.edge(l, offset);
      return;
    }
    // Software debounce as gpiolib-cdev does it: an edge is reported once the level held for the period.
    if (l.debounceTimer) clearTimeout(l.debounceTimer);
    l.debounceTimer = setTimeout(() => {
      l.debounceTimer = null;
      this.edge(l, offset);
    }, l.debounceUs / 1000);
  }

  open(path: string): number {
    const chip = this.chips.get(path);
    if (!chip) throw errno("ENOENT", `open ${path}`);
    if (chip.denied) throw errno("EACCES", `open ${path}`);
    return this.handle({ kind: "chip", chip });
  }

  close(fd: number): void {
    const h = this.handles.get(fd);
    if (!h) throw errno("EBADF", `close ${fd}`);
    this.handles.delete(fd);
    if (h.kind !== "request") return;
    for (const offset of h.req.offsets) {
      const l = h.req.chip.lines[offset] as FakeLine;
      if (l.debounceTimer) clearTimeout(l.debounceTimer);
      // Released: no consumer, no edge detection; the level stays where it was.
      l.request = null;
      l.flags &= ~(LINE_FLAG.EDGE_RISING | LINE_FLAG.EDGE_FALLING | LINE_FLAG.USED);
    }
    h.req.watchers.clear();
  }

  ioctl(fd: number, request: number, buf: Buffer): void {
    this.calls.push(request);
    const h = this.handles.get(fd);
    if (!h) throw errno("EBADF", "ioctl");
    if (h.kind === "chip") this.chipIoctl(h.chip, request, buf);
    else this.requestIoctl(h.req, request, buf);
  }

  read(fd: number, buf: Buffer): number {
    const h = this.handles.get(fd);
    if (!h || h.kind !== "request") throw errno("EBADF", "read");
    let bytes = 0;
    while (h.req.events.length > 0 && bytes + LAYOUT.gpio_v2_line_event.size <= buf.length) {
      (h.req.events.shift() as Buffer).copy(buf, bytes);
      bytes += LAYOUT.gpio_v2_line_event.size;
    }
    if (bytes === 0) throw errno("EAGAIN", "read");
    return bytes;
  }

  watch(fd: number, onReadable: () => void): () => void {
    const h = this.handles.get(fd);
    if (!h || h.kind !== "request") throw errno("EBADF", "watch");
    h.req.watchers.add(onReadable);
    return () => h.req.watchers.delete(onReadable);
  }

  private handle(h: Handle): number {
    const fd = this.nextFd++;
    this.handles.set(fd, h);
    return fd;
  }

  private line(path: string, offset: number): FakeLine {
    const l = this.chips.get(path)?.lines[offset];
    if (!l) throw new Error(`the fake kernel has no line ${offset} on ${path}`);
    return l;
  }

  private chipIoctl(chip: FakeChip, request: number, buf: Buffer): void {
    switch (request) {
      case IOCTL.GET_CHIPINFO:
        encodeChipInfo({ name: chip.path.slice(chip.path.lastIndexOf("/") + 1), label: chip.label, lines: chip.lines.length }, buf);
        return;
      case IOCTL.GET_LINEINFO: {
        const offset = buf.readUInt32LE(LAYOUT.gpio_v2_line_info.offset);
        const l = chip.lines[offset];
        if (!l) throw errno("EINVAL", "GET_LINEINFO");
        const used = l.request !== null || l.kernelConsumer !== "";
        encodeLineInfo({ name: l.name, consumer: l.request?.consumer ?? l.kernelConsumer, offset, flags: l.flags | (used ? LINE_FLAG.USED : 0), attrs: [] }, buf);
        return;
      }
      case IOCTL.GET_LINE: {
        const req = decodeLineRequest(buf);
        for (const o of req.offsets) {
          const l = chip.lines[o];
          if (!l) throw errno("EINVAL", "GET_LINE offset");
          if (l.request || l.kernelConsumer) throw errno("EBUSY", "GET_LINE");
        }
        this.checkConfig(chip, req.offsets, req.config);
        const r: FakeRequest = { chip, offsets: req.offsets, consumer: req.consumer, events: [], watchers: new Set(), seqno: 0 };
        req.offsets.forEach((o) => ((chip.lines[o] as FakeLine).request = r));
        this.apply(r, req.config);
        this.configs.push({ offsets: req.offsets, consumer: req.consumer, config: req.config });
        buf.writeInt32LE(this.handle({ kind: "request", req: r }), LAYOUT.gpio_v2_line_request.fd);
        return;
      }
      default:
        throw errno("ENOTTY", `chip ioctl 0x${request.toString(16)}`);
    }
  }

  private requestIoctl(req: FakeRequest, request: number, buf: Buffer): void {
    switch (request) {
      case IOCTL.LINE_GET_VALUES: {
        const { mask } = decodeLineValues(buf);
        let bits = 0n;
        req.offsets.forEach((o, i) => {
          const l = req.chip.lines[o] as FakeLine;
          const logical = l.flags & LINE_FLAG.ACTIVE_LOW ? 1 - l.physical : l.physical;
          if (mask & (1n << BigInt(i)) && logical === 1) bits |= 1n << BigInt(i);
        });
        encodeLineValues(bits, mask, buf);
        return;
      }
      case IOCTL.LINE_SET_VALUES: {
        const { bits, mask } = decodeLineValues(buf);
        req.offsets.forEach((o, i) => {
          if (!(mask & (1n << BigInt(i)))) return;
          const l = req.chip.lines[o] as FakeLine;
          if (!(l.flags & LINE_FLAG.OUTPUT)) throw errno("EPERM", "SET_VALUES on an input");
          const logical = bits & (1n << BigInt(i)) ? 1 : 0;
          l.physical = (l.flags & LINE_FLAG.ACTIVE_LOW ? 1 - logical : logical) as 0 | 1;
        });
        return;
      }
      case IOCTL.LINE_SET_CONFIG: {
        const config = decodeLineConfig(buf);
        this.checkConfig(req.chip, req.offsets, config);
        this.apply(req, config);
        this.configs.push({ offsets: req.offsets, config });
        return;
      }
      default:
        throw errno("ENOTTY", `line request ioctl 0x${request.toString(16)}`);
    }
  }

  /** The kernel's gpio_v2_line_config validation, as far as the driver can trip it. */
  private checkConfig(chip: FakeChip, offsets: number[], config: LineConfig): void {
    const f = config.flags;
    const dirs = (f & LINE_FLAG.INPUT ? 1 : 0) + (f & LINE_FLAG.OUTPUT ? 1 : 0);
    if (dirs !== 1) throw errno("EINVAL", "line config needs exactly one of INPUT and OUTPUT");
    const edges = f & (LINE_FLAG.EDGE_RISING | LINE_FLAG.EDGE_FALLING);
    if (edges && !(f & LINE_FLAG.INPUT)) throw errno("EINVAL", "edge detection needs INPUT");
    const biases = [LINE_FLAG.BIAS_PULL_UP, LINE_FLAG.BIAS_PULL_DOWN, LINE_FLAG.BIAS_DISABLED].filter((b) => f & b).length;
    if (biases > 1) throw errno("EINVAL", "more than one bias flag");
    if (edges && offsets.some((o) => !(chip.lines[o] as FakeLine).irq)) throw errno("ENXIO", "the line has no interrupt");
  }

  private apply(req: FakeRequest, config: LineConfig): void {
    req.offsets.forEach((o, i) => {
      const l = req.chip.lines[o] as FakeLine;
      const bit = 1n << BigInt(i);
      l.flags = config.flags;
      l.debounceUs = 0;
      for (const { attr, mask } of config.attrs) {
        if (!(mask & bit)) continue;
        if (attr.id === ATTR_ID.FLAGS) l.flags = Number(attr.value);
        if (attr.id === ATTR_ID.DEBOUNCE) l.debounceUs = Number(attr.value);
        if (attr.id === ATTR_ID.OUTPUT_VALUES && l.flags & LINE_FLAG.OUTPUT) {
          const logical = attr.value & bit ? 1 : 0;
          l.physical = (l.flags & LINE_FLAG.ACTIVE_LOW ? 1 - logical : logical) as 0 | 1;
        }
      }
    });
  }

  private edge(l: FakeLine, offset: number): void {
    const req = l.request;
    if (!req) return;
    const rising = l.physical === 1;
    if (!(l.flags & (rising ? LINE_FLAG.EDGE_RISING : LINE_FLAG.EDGE_FALLING))) return;
    l.lineSeqno++;
    req.events.push(encodeLineEvent({ timestampNs: process.hrtime.bigint(), id: rising ? EVENT_ID.RISING_EDGE : EVENT_ID.FALLING_EDGE, offset, seqno: ++req.seqno, lineSeqno: l.lineSeqno }));
    // Like poll(2) on the request fd: readable while events wait, reported from the event loop.
    setImmediate(() => {
      for (const w of [...req.watchers]) if (req.events.length > 0) w();
    });
  }
}
