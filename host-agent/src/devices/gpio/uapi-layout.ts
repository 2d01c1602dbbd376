/**
 * The GPIO character device's uAPI v2 (linux/gpio.h, stable since Linux 5.10): the structs the
 * ioctls exchange, laid out byte for byte, and the ioctl request numbers.
 *
 * The layout is written here rather than compiled from the header (as Go's go-gpiocdev and
 * Rust's gpio-cdev also do) so the native part stays a bare ioctl/poll shim with no struct
 * knowledge, and so the structs are testable against the kernel's own header on any machine
 * (host-agent/test/gpio-uapi-layout.test.ts compiles a probe against /usr/include/linux/gpio.h).
 * Every u64 in v2 is __aligned_u64, so the layout is the same on 32-bit and 64-bit ARM; the
 * request numbers use the asm-generic _IOC encoding (arm, arm64, x86, riscv).
 */

export const GPIO_MAX_NAME_SIZE = 32;
export const GPIO_V2_LINES_MAX = 64;
export const GPIO_V2_LINE_NUM_ATTRS_MAX = 10;

/** enum gpio_v2_line_flag (bit values; all fit in the low 32 bits). */
export const LINE_FLAG = {
  USED: 1 << 0,
  ACTIVE_LOW: 1 << 1,
  INPUT: 1 << 2,
  OUTPUT: 1 << 3,
  EDGE_RISING: 1 << 4,
  EDGE_FALLING: 1 << 5,
  OPEN_DRAIN: 1 << 6,
  OPEN_SOURCE: 1 << 7,
  BIAS_PULL_UP: 1 << 8,
  BIAS_PULL_DOWN: 1 << 9,
  BIAS_DISABLED: 1 << 10,
  EVENT_CLOCK_REALTIME: 1 << 11,
  EVENT_CLOCK_HTE: 1 << 12,
} as const;

/** enum gpio_v2_line_attr_id. */
export const ATTR_ID = { FLAGS: 1, OUTPUT_VALUES: 2, DEBOUNCE: 3 } as const;

/** enum gpio_v2_line_event_id. */
export const EVENT_ID = { RISING_EDGE: 1, FALLING_EDGE: 2 } as const;

/** sizeof and offsetof of every struct and field the driver uses. */
export const LAYOUT = {
  gpiochip_info: { size: 68, name: 0, label: 32, lines: 64 },
  gpio_v2_line_attribute: { size: 16, id: 0, padding: 4, value: 8 },
  gpio_v2_line_config_attribute: { size: 24, attr: 0, mask: 16 },
  gpio_v2_line_config: { size: 272, flags: 0, num_attrs: 8, padding: 12, attrs: 32 },
  gpio_v2_line_request: { size: 592, offsets: 0, consumer: 256, config: 288, num_lines: 560, event_buffer_size: 564, padding: 568, fd: 588 },
  gpio_v2_line_info: { size: 256, name: 0, consumer: 32, offset: 64, num_attrs: 68, flags: 72, attrs: 80, padding: 240 },
  gpio_v2_line_values: { size: 16, bits: 0, mask: 8 },
  gpio_v2_line_event: { size: 48, timestamp_ns: 0, id: 8, offset: 12, seqno: 16, line_seqno: 20, padding: 24 },
} as const;

const IOC_WRITE = 1;
const IOC_READ = 2;
const GPIO_IOC_MAGIC = 0xb4;

/** _IOC(dir, type, nr, size) of asm-generic/ioctl.h, as an unsigned 32-bit number. */
function ioc(dir: number, nr: number, size: number): number {
  return dir * 2 ** 30 + size * 2 ** 16 + GPIO_IOC_MAGIC * 2 ** 8 + nr;
}

/** The ioctl request numbers of uAPI v2 (and the chip info ioctl it shares with v1). */
export const IOCTL = {
  GET_CHIPINFO: ioc(IOC_READ, 0x01, LAYOUT.gpiochip_info.size),
  GET_LINEINFO: ioc(IOC_READ | IOC_WRITE, 0x05, LAYOUT.gpio_v2_line_info.size),
  GET_LINE: ioc(IOC_READ | IOC_WRITE, 0x07, LAYOUT.gpio_v2_line_request.size),
  LINE_SET_CONFIG: ioc(IOC_READ | IOC_WRITE, 0x0d, LAYOUT.gpio_v2_line_config.size),
  LINE_GET_VALUES: ioc(IOC_READ | IOC_WRITE, 0x0e, LAYOUT.gpio_v2_line_values.size),
  LINE_SET_VALUES: ioc(IOC_READ | IOC_WRITE, 0x0f, LAYOUT.gpio_v2_line_values.size),
} as const;

export interface ChipInfo {
  name: string;
  label: string;
  lines: number;
}

export interface LineAttribute {
  id: number;
  /** flags or output values (as a bigint bitmap), or the debounce period in µs. */
  value: bigint;
}

export interface LineInfo {
  name: string;
  consumer: string;
  offset: number;
  flags: number;
  attrs: LineAttribute[];
}

export interface LineConfigAttribute {
  attr: LineAttribute;
  /** Which of the request's lines (by index) the attribute applies to. */
  mask: bigint;
}

export interface LineConfig {
  flags: number;
  attrs: LineConfigAttribute[];
}

export interface LineRequest {
  offsets: number[];
  consumer: string;
  config: LineConfig;
  /** Edge events the kernel buffers; 0 lets it choose (16 per line). */
  eventBufferSize: number;
}

export interface LineEvent {
  timestampNs: bigint;
  id: number;
  offset: number;
  seqno: number;
  lineSeqno: number;
}

function readCString(buf: Buffer, at: number, size: number): string {
  const end = buf.indexOf(0, at);
  return buf.toString("utf8", at, end < 0 || end > at + size ? at + size : end);
}

function writeCString(buf: Buffer, at: number, size: number, text: string): void {
  // NUL-terminated, truncated to fit: the kernel reads at most size-1 characters.
  buf.write(text, at, Math.min(Buffer.byteLength(text), size - 1), "utf8");
}

/** Decodes struct gpiochip_info. */
export function decodeChipInfo(buf: Buffer): ChipInfo {
  const L = LAYOUT.gpiochip_info;
  return { name: readCString(buf, L.name, GPIO_MAX_NAME_SIZE), label: readCString(buf, L.label, GPIO_MAX_NAME_SIZE), lines: buf.readUInt32LE(L.lines) };
}

/** Encodes struct gpiochip_info (the stand-in kernel's answer). */
export function encodeChipInfo(info: ChipInfo, buf: Buffer = Buffer.alloc(LAYOUT.gpiochip_info.size)): Buffer {
  const L = LAYOUT.gpiochip_info;
  buf.fill(0);
  writeCString(buf, L.name, GPIO_MAX_NAME_SIZE, info.name);
  writeCString(buf, L.label, GPIO_MAX_NAME_SIZE, info.label);
  buf.writeUInt32LE(info.lines, L.lines);
  return buf;
}

function decodeAttribute(buf: Buffer, at: number): LineAttribute {
  const A = LAYOUT.gpio_v2_line_attribute;
  const id = buf.readUInt32LE(at + A.id);
  // The union holds a u32 debounce period or a u64 bitmap; the id says which.
  const value = id === ATTR_ID.DEBOUNCE ? BigInt(buf.readUInt32LE(at + A.value)) : buf.readBigUInt64LE(at + A.value);
  return { id, value };
}

function encodeAttribute(buf: Buffer, at: number, attr: LineAttribute): void {
  const A = LAYOUT.gpio_v2_line_attribute;
  buf.writeUInt32LE(attr.id, at + A.id);
  if (attr.id === ATTR_ID.DEBOUNCE) buf.writeUInt32LE(Number(attr.value), at + A.value);
  else buf.writeBigUInt64LE(attr.value, at + A.value);
}

/** Decodes struct gpio_v2_line_info. */
export function decodeLineInfo(buf: Buffer): LineInfo {
  const L = LAYOUT.gpio_v2_line_info;
  const n = Math.min(buf.readUInt32LE(L.num_attrs), GPIO_V2_LINE_NUM_ATTRS_MAX);
  const attrs: LineAttribute[] = [];
  for (let i = 0; i < n; i++) attrs.push(decodeAttribute(buf, L.attrs + i * LAYOUT.gpio_v2_line_attribute.size));
  return {
    name: readCString(buf, L.name, GPIO_MAX_NAME_SIZE),
    consumer: readCString(buf, L.consumer, GPIO_MAX_NAME_SIZE),
    offset: buf.readUInt32LE(L.offset),
    flags: Number(buf.readBigUInt64LE(L.flags)),
    attrs,
  };
}

/** Encodes struct gpio_v2_line_info (the stand-in kernel's answer). */
export function encodeLineInfo(info: LineInfo, buf: Buffer = Buffer.alloc(LAYOUT.gpio_v2_line_info.size)): Buffer {
  const L = LAYOUT.gpio_v2_line_info;
  buf.fill(0);
  writeCString(buf, L.name, GPIO_MAX_NAME_SIZE, info.name);
  writeCString(buf, L.consumer, GPIO_MAX_NAME_SIZE, info.consumer);
  buf.writeUInt32LE(info.offset, L.offset);
  buf.writeUInt32LE(info.attrs.length, L.num_attrs);
  buf.writeBigUInt64LE(BigInt(info.flags), L.flags);
  info.attrs.forEach((a, i) => encodeAttribute(buf, L.attrs + i * LAYOUT.gpio_v2_line_attribute.size, a));
  return buf;
}

/** A line-info buffer asking about `offset` (the kernel reads only the offset; the rest must be zero). */
export function lineInfoQuery(offset: number): Buffer {
  const buf = Buffer.alloc(LAYOUT.gpio_v2_line_info.size);
  buf.writeUInt32LE(offset, LAYOUT.gpio_v2_line_info.offset);
  return buf;
}

/** Encodes struct gpio_v2_line_config at `at` in `buf`. */
export function encodeLineConfig(config: LineConfig, buf: Buffer = Buffer.alloc(LAYOUT.gpio_v2_line_config.size), at = 0): Buffer {
  const C = LAYOUT.gpio_v2_line_config;
  if (config.attrs.length > GPIO_V2_LINE_NUM_ATTRS_MAX) throw new RangeError(`a line config holds at most ${GPIO_V2_LINE_NUM_ATTRS_MAX} attributes`);
  buf.fill(0, at, at + C.size);
  buf.writeBigUInt64LE(BigInt(config.flags), at + C.flags);
  buf.writeUInt32LE(config.attrs.length, at + C.num_attrs);
  config.attrs.forEach((a, i) => {
    const base = at + C.attrs + i * LAYOUT.gpio_v2_line_config_attribute.size;
    encodeAttribute(buf, base + LAYOUT.gpio_v2_line_config_attribute.attr, a.attr);
    buf.writeBigUInt64LE(a.mask, base + LAYOUT.gpio_v2_line_config_attribute.mask);
  });
  return buf;
}

/** Decodes struct gpio_v2_line_config at `at` in `buf`. */
export function decodeLineConfig(buf: Buffer, at = 0): LineConfig {
  const C = LAYOUT.gpio_v2_line_config;
  const n = Math.min(buf.readUInt32LE(at + C.num_attrs), GPIO_V2_LINE_NUM_ATTRS_MAX);
  const attrs: LineConfigAttribute[] = [];
  for (let i = 0; i < n; i++) {
    const base = at + C.attrs + i * LAYOUT.gpio_v2_line_config_attribute.size;
    attrs.push({ attr: decodeAttribute(buf, base + LAYOUT.gpio_v2_line_config_attribute.attr), mask: buf.readBigUInt64LE(base + LAYOUT.gpio_v2_line_config_attribute.mask) });
  }
  return { flags: Number(buf.readBigUInt64LE(at + C.flags)), attrs };
}

/** Encodes struct gpio_v2_line_request (fd is filled in by the kernel). */
export function encodeLineRequest(req: LineRequest): Buffer {
  const R = LAYOUT.gpio_v2_line_request;
  if (req.offsets.length === 0 || req.offsets.length > GPIO_V2_LINES_MAX) throw new RangeError(`a request holds 1 to ${GPIO_V2_LINES_MAX} lines`);
  const buf = Buffer.alloc(R.size);
  req.offsets.forEach((o, i) => buf.writeUInt32LE(o, R.offsets + i * 4));
  writeCString(buf, R.consumer, GPIO_MAX_NAME_SIZE, req.consumer);
  encodeLineConfig(req.config, buf, R.config);
  buf.writeUInt32LE(req.offsets.length, R.num_lines);
  buf.writeUInt32LE(req.eventBufferSize, R.event_buffer_size);
  return buf;
}

/** Decodes struct gpio_v2_line_request (the stand-in kernel reads what the driver asked for). */
export function decodeLineRequest(buf: Buffer): LineRequest & { fd: number } {
  const R = LAYOUT.gpio_v2_line_request;
  const n = Math.min(buf.readUInt32LE(R.num_lines), GPIO_V2_LINES_MAX);
  const offsets: number[] = [];
  for (let i = 0; i < n; i++) offsets.push(buf.readUInt32LE(R.offsets + i * 4));
  return {
    offsets,
    consumer: readCString(buf, R.consumer, GPIO_MAX_NAME_SIZE),
    config: decodeLineConfig(buf, R.config),
    eventBufferSize: buf.readUInt32LE(R.event_buffer_size),
    fd: buf.readInt32LE(R.fd),
  };
}

/** The line request's fd, as the kernel wrote it into the request. */
export function requestFd(buf: Buffer): number {
  return buf.readInt32LE(LAYOUT.gpio_v2_line_request.fd);
}

/** Encodes struct gpio_v2_line_values. */
export function encodeLineValues(bits: bigint, mask: bigint, buf: Buffer = Buffer.alloc(LAYOUT.gpio_v2_line_values.size)): Buffer {
  buf.writeBigUInt64LE(bits, LAYOUT.gpio_v2_line_values.bits);
  buf.writeBigUInt64LE(mask, LAYOUT.gpio_v2_line_values.mask);
  return buf;
}

/** Decodes struct gpio_v2_line_values. */
export function decodeLineValues(buf: Buffer): { bits: bigint; mask: bigint } {
  return { bits: buf.readBigUInt64LE(LAYOUT.gpio_v2_line_values.bits), mask: buf.readBigUInt64LE(LAYOUT.gpio_v2_line_values.mask) };
}

/** Decodes every whole struct gpio_v2_line_event in the first `bytes` of `buf`. */
export function decodeLineEvents(buf: Buffer, bytes: number): LineEvent[] {
  const E = LAYOUT.gpio_v2_line_event;
  const out: LineEvent[] = [];
  for (let at = 0; at + E.size <= bytes; at += E.size) {
    out.push({
      timestampNs: buf.readBigUInt64LE(at + E.timestamp_ns),
      id: buf.readUInt32LE(at + E.id),
      offset: buf.readUInt32LE(at + E.offset),
      seqno: buf.readUInt32LE(at + E.seqno),
      lineSeqno: buf.readUInt32LE(at + E.line_seqno),
    });
  }
  return out;
}

/** Encodes one struct gpio_v2_line_event (the stand-in kernel's edge). */
export function encodeLineEvent(e: LineEvent, buf: Buffer = Buffer.alloc(LAYOUT.gpio_v2_line_event.size), at = 0): Buffer {
  const E = LAYOUT.gpio_v2_line_event;
  buf.fill(0, at, at + E.size);
  buf.writeBigUInt64LE(e.timestampNs, at + E.timestamp_ns);
  buf.writeUInt32LE(e.id, at + E.id);
  buf.writeUInt32LE(e.offset, at + E.offset);
  buf.writeUInt32LE(e.seqno, at + E.seqno);
  buf.writeUInt32LE(e.lineSeqno, at + E.line_seqno);
  return buf;
}
