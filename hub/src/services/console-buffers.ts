/** How much console output the hub keeps per device resource. */
export const CONSOLE_BUFFER_BYTES = 64 * 1024;

/**
 * The tail of each console the agents stream, in memory only: the agent keeps the full log,
 * the hub keeps enough for the dashboard and a quick look over REST.
 */
export class ConsoleBuffers {
  private readonly buffers = new Map<string, Buffer>();

  constructor(private readonly capacityBytes = CONSOLE_BUFFER_BYTES) {}

  private static key(host: string, device: string, resource: string): string {
    return `${host}\u0000${device}\u0000${resource}`;
  }

  append(host: string, device: string, resource: string, data: string): void {
    const key = ConsoleBuffers.key(host, device, resource);
    const previous = this.buffers.get(key) ?? Buffer.alloc(0);
    const joined = Buffer.concat([previous, Buffer.from(data, "utf8")]);
    this.buffers.set(key, joined.length > this.capacityBytes ? joined.subarray(joined.length - this.capacityBytes) : joined);
  }

  /** The kept tail as text ("" when nothing arrived). */
  text(host: string, device: string, resource: string): string {
    const buf = this.buffers.get(ConsoleBuffers.key(host, device, resource));
    if (!buf) return "";
    // Trimming by bytes can cut a multi-byte character in half; drop the broken lead bytes.
    let start = 0;
    while (start < buf.length && start < 4 && ((buf[start] ?? 0) & 0xc0) === 0x80) start++;
    return buf.subarray(start).toString("utf8");
  }

  /** Drops the buffers of a device that left the host's device set. */
  forgetDevice(host: string, device: string): void {
    const prefix = `${host}\u0000${device}\u0000`;
    for (const key of this.buffers.keys()) if (key.startsWith(prefix)) this.buffers.delete(key);
  }
}
