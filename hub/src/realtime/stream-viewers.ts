import { CONSOLE_PENDING_MAX_BYTES, type ConsoleDataEvent, type StreamChunk } from "@labrig/shared";
import type { Socket } from "socket.io";

// What one dashboard connection is watching, and how output reaches it without queueing without
// bound: console text is held (up to CONSOLE_PENDING_MAX_BYTES, oldest dropped and counted) while
// the connection's write buffer is full; video chunks are dropped and the viewer skips to the next
// keyframe, so the newest picture always wins.

/** Engine.io packets waiting on a connection above which it counts as congested (one binary emit is 2 packets). */
const CONGESTED_PACKETS = 16;

/** True when the browser's connection is not taking what it was already sent. */
export function congested(socket: Socket): boolean {
  // engine.io keeps its write buffer private in the types, but it is the one honest measure of what the browser has not taken yet.
  const buffered = (socket.conn as unknown as { writeBuffer: unknown[] }).writeBuffer;
  return buffered.length >= CONGESTED_PACKETS;
}

/** One console stream one connection watches. */
export class ConsoleViewer {
  private pending = "";
  private dropped = 0;

  constructor(
    private readonly socket: Socket,
    readonly host: string,
    readonly device: string,
    readonly resource: string,
  ) {}

  /** New output of the console: sent now, or held while the connection is congested. */
  push(data: string): void {
    if (this.pending === "" && this.dropped === 0 && !congested(this.socket)) {
      this.emit(data, 0);
      return;
    }
    this.pending += data;
    if (this.pending.length > CONSOLE_PENDING_MAX_BYTES) {
      const cut = this.pending.length - CONSOLE_PENDING_MAX_BYTES;
      this.dropped += Buffer.byteLength(this.pending.slice(0, cut), "utf8");
      this.pending = this.pending.slice(cut);
    }
  }

  /** The connection drained: send what was held, with the count of what had to be dropped. */
  flush(): void {
    if ((this.pending === "" && this.dropped === 0) || congested(this.socket)) return;
    const data = this.pending;
    const dropped = this.dropped;
    this.pending = "";
    this.dropped = 0;
    this.emit(data, dropped);
  }

  private emit(data: string, droppedBytes: number): void {
    const event: ConsoleDataEvent = { host: this.host, device: this.device, resource: this.resource, data, dropped_bytes: droppedBytes };
    this.socket.emit("console.data", event);
  }
}

/** One video stream one connection watches. */
export class VideoViewer {
  /** Deltas are useless without the keyframe before them: after a drop, wait for the next one. */
  private needKey = true;
  sent = 0;
  dropped = 0;
  unsubscribe: () => void = () => undefined;

  constructor(
    private readonly socket: Socket,
    readonly host: string,
    readonly device: string,
    readonly resource: string,
  ) {}

  push(chunk: StreamChunk): void {
    if (this.needKey && chunk.type !== "key") {
      this.dropped++;
      return;
    }
    if (congested(this.socket)) {
      this.dropped++;
      this.needKey = true;
      return;
    }
    this.needKey = false;
    this.sent++;
    this.socket.emit("video.chunk", chunk);
  }
}
