import { ByteRing } from "./byte-ring.js";

/** Default bytes of console output the hub keeps per device resource (LABRIG_CONSOLE_BUFFER_BYTES). */
export const CONSOLE_BUFFER_BYTES = 64 * 1024;

/** Default bytes of console output the hub keeps per host, all its resources together (LABRIG_CONSOLE_HOST_BYTES). */
export const CONSOLE_HOST_BYTES = 1024 * 1024;

export interface ConsoleBufferLimits {
  /** Most bytes kept per resource. */
  resourceBytes: number;
  /** Most bytes kept per host: its resources that produced output share it equally (each up to resourceBytes). */
  hostBytes: number;
}

/**
 * The tail of each console the agents stream, in memory only: the agent keeps the full log, the hub
 * keeps enough for the dashboard, the planner and a quick look over REST. Memory is bounded by bytes
 * per resource and per host, so a host that declares many consoles, or floods one, cannot grow the hub.
 */
export class ConsoleBuffers {
  /** Per host, its rings by `device\0resource`. */
  private readonly hosts = new Map<string, Map<string, ByteRing>>();
  private readonly limits: ConsoleBufferLimits;

  constructor(limits: Partial<ConsoleBufferLimits> = {}) {
    this.limits = { resourceBytes: limits.resourceBytes ?? CONSOLE_BUFFER_BYTES, hostBytes: limits.hostBytes ?? CONSOLE_HOST_BYTES };
  }

  private static key(device: string, resource: string): string {
    return `${device}\u0000${resource}`;
  }

  append(host: string, device: string, resource: string, data: string): void {
    let rings = this.hosts.get(host);
    if (!rings) {
      rings = new Map();
      this.hosts.set(host, rings);
    }
    const key = ConsoleBuffers.key(device, resource);
    let ring = rings.get(key);
    if (!ring) {
      ring = new ByteRing(0);
      rings.set(key, ring);
      this.share(rings);
    }
    ring.append(Buffer.from(data, "utf8"));
  }

  /** The kept tail as text ("" when nothing arrived). */
  text(host: string, device: string, resource: string): string {
    const buf = this.hosts.get(host)?.get(ConsoleBuffers.key(device, resource))?.bytes();
    if (!buf) return "";
    // Trimming by bytes can cut a multi-byte character in half; drop the broken lead bytes.
    let start = 0;
    while (start < buf.length && start < 4 && ((buf[start] ?? 0) & 0xc0) === 0x80) start++;
    return buf.subarray(start).toString("utf8");
  }

  /** Drops the buffers of a device that left the host's device set; the others get its share. */
  forgetDevice(host: string, device: string): void {
    const rings = this.hosts.get(host);
    if (!rings) return;
    const prefix = `${device}\u0000`;
    for (const key of [...rings.keys()]) if (key.startsWith(prefix)) rings.delete(key);
    if (rings.size === 0) this.hosts.delete(host);
    else this.share(rings);
  }

  /** Bytes allocated for one host's consoles (for tests and system info). */
  allocatedFor(host: string): number {
    let total = 0;
    for (const ring of this.hosts.get(host)?.values() ?? []) total += ring.allocated;
    return total;
  }

  /** Every ring of a host gets an equal share of the host's bound, at most the per-resource bound. */
  private share(rings: Map<string, ByteRing>): void {
    const each = Math.min(this.limits.resourceBytes, Math.floor(this.limits.hostBytes / rings.size));
    for (const ring of rings.values()) ring.resize(each);
  }
}
