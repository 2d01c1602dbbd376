import { OkAckSchema, type StreamChunk } from "@labrig/shared";
import type { HubBus } from "../bus.js";
import type { Logger } from "../logger.js";
import type { AgentConnections } from "../realtime/agent-connections.js";
import type { AgentNamespace } from "../realtime/agent-namespace.js";

export type StreamListener = (chunk: StreamChunk) => void;

interface Subscriber {
  fn: StreamListener;
  /** A subscriber joining mid-stream gets nothing until the next keyframe: deltas without one do not decode. */
  waitingForKey: boolean;
}

interface Stream {
  host: string;
  device: string;
  resource: string;
  subscribers: Set<Subscriber>;
  /** The last keyframe, for a still picture at once when someone starts watching. */
  lastKey: StreamChunk | null;
}

const key = (host: string, device: string, resource: string): string => `${host}\u0000${device}\u0000${resource}`;

/** How often an unwatched stream is told again to stop. */
const STRAY_STOP_EVERY_MS = 5000;
/** Unwatched streams remembered at once; an agent naming ever new device or resource ids cannot grow the map past this. */
const MAX_STRAY_STREAMS = 1024;

/**
 * In-memory fan-out of live video from agents to watchers (the dashboard). The agent streams
 * only while somebody watches: the first subscriber sends `stream.start`, the last unsubscribe
 * `stream.stop`, and a host that reconnects is asked again. Listeners are called synchronously
 * and must not queue without bound themselves (socket.io volatile emits, for instance); the
 * relay keeps only the latest keyframe per stream.
 */
export class VideoRelay {
  private readonly streams = new Map<string, Stream>();
  /** Streams an agent sends that nobody watches; told to stop once, then again at most every few seconds. */
  private readonly strayStops = new Map<string, number>();

  private unsubscribe: (() => void) | null = null;

  constructor(
    private readonly connections: AgentConnections,
    agents: AgentNamespace,
    private readonly bus: HubBus,
    private readonly logger: Logger,
    private readonly controlTimeoutMs = 5000,
  ) {
    agents.handle("stream.chunk", (session, chunk, ack) => {
      this.handleChunk(session.host, chunk);
      // Acked once relayed: the agent keeps at most a few chunks unacknowledged, so this paces it to the link.
      ack?.({ ok: true });
    });
  }

  /** Asks a host's agent again for the streams people watch once its new connection's hello is accepted. */
  start(): void {
    this.unsubscribe = this.bus.on("agent.hello", (e) => this.hostReady(e.host));
  }

  stop(): void {
    this.unsubscribe?.();
    this.unsubscribe = null;
  }

  /** Starts watching a stream; returns the unsubscribe function. */
  subscribe(host: string, device: string, resource: string, fn: StreamListener): () => void {
    const k = key(host, device, resource);
    let stream = this.streams.get(k);
    if (!stream) {
      stream = { host, device, resource, subscribers: new Set(), lastKey: null };
      this.streams.set(k, stream);
    }
    const sub: Subscriber = { fn, waitingForKey: true };
    stream.subscribers.add(sub);
    if (stream.subscribers.size === 1) this.control(host, "stream.start", device, resource);
    const s = stream;
    let done = false;
    return () => {
      if (done) return;
      done = true;
      s.subscribers.delete(sub);
      if (s.subscribers.size > 0 || this.streams.get(k) !== s) return;
      this.streams.delete(k);
      this.control(host, "stream.stop", device, resource);
    };
  }

  /** Number of watchers of a stream. */
  watchers(host: string, device: string, resource: string): number {
    return this.streams.get(key(host, device, resource))?.subscribers.size ?? 0;
  }

  /** Streams being watched and their watchers, summed (the metrics' video gauges). */
  stats(): { streams: number; viewers: number } {
    let viewers = 0;
    for (const s of this.streams.values()) viewers += s.subscribers.size;
    return { streams: this.streams.size, viewers };
  }

  /** The most recent keyframe of a watched stream (null before the first one). */
  latestKeyframe(host: string, device: string, resource: string): StreamChunk | null {
    return this.streams.get(key(host, device, resource))?.lastKey ?? null;
  }

  /** A validated chunk from `host`'s agent. Returns false when nobody watches it (the agent is told to stop). */
  handleChunk(host: string, chunk: StreamChunk): boolean {
    const k = key(host, chunk.device, chunk.resource);
    const stream = this.streams.get(k);
    if (!stream) {
      const now = Date.now();
      const last = this.strayStops.get(k) ?? 0;
      if (now - last > STRAY_STOP_EVERY_MS) {
        if (!this.strayStops.has(k) && this.strayStops.size >= MAX_STRAY_STREAMS) this.pruneStrayStops(now);
        // Re-inserted so the map's order stays oldest first for the pruning above.
        this.strayStops.delete(k);
        this.strayStops.set(k, now);
        this.control(host, "stream.stop", chunk.device, chunk.resource);
      }
      return false;
    }
    if (chunk.type === "key") stream.lastKey = chunk;
    for (const sub of stream.subscribers) {
      if (sub.waitingForKey && chunk.type !== "key") continue;
      sub.waitingForKey = false;
      try {
        sub.fn(chunk);
      } catch (err) {
        this.logger.error({ host, device: chunk.device, resource: chunk.resource, err: (err as Error).message }, "video watcher failed; it stays subscribed");
      }
    }
    return true;
  }

  /** Unwatched streams remembered (for tests: the map stays bounded). */
  get strayStreams(): number {
    return this.strayStops.size;
  }

  /** Forgets stop requests old enough to be sent again anyway; when all are recent, the oldest go (Map keeps insertion order). */
  private pruneStrayStops(now: number): void {
    for (const [k, at] of this.strayStops) if (now - at > STRAY_STOP_EVERY_MS) this.strayStops.delete(k);
    for (const k of this.strayStops.keys()) {
      if (this.strayStops.size < MAX_STRAY_STREAMS) break;
      this.strayStops.delete(k);
    }
  }

  /** The host's agent (re)connected: ask it again for the streams people are watching. */
  hostReady(host: string): void {
    for (const s of this.streams.values()) {
      if (s.host !== host) continue;
      for (const sub of s.subscribers) sub.waitingForKey = true;
      this.control(host, "stream.start", s.device, s.resource);
    }
  }

  private control(host: string, event: "stream.start" | "stream.stop", device: string, resource: string): void {
    const socket = this.connections.get(host);
    if (!socket) {
      this.logger.debug({ host, device, resource, event }, "host offline; stream request sent when it reconnects");
      return;
    }
    socket
      .timeout(this.controlTimeoutMs)
      .emitWithAck(event, { device, resource })
      .then((ack: unknown) => {
        const parsed = OkAckSchema.safeParse(ack);
        if (!parsed.success) this.logger.warn({ host, device, resource, event }, "agent answered a stream request in an unexpected shape");
        else if (!parsed.data.ok) this.logger.warn({ host, device, resource, event, error_code: parsed.data.error.error_code, message: parsed.data.error.message }, "agent refused a stream request");
      })
      .catch((err: unknown) => this.logger.warn({ host, device, resource, event, err: (err as Error).message }, "agent did not answer a stream request"));
  }
}
