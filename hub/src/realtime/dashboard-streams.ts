import {
  CONSOLE_WRITE_MAX_BYTES,
  ConsoleWriteSchema,
  LabrigError,
  MAX_CONSOLE_SUBSCRIPTIONS,
  MAX_VIDEO_SUBSCRIPTIONS,
  StreamSelectSchema,
  parseOrThrow,
  resolveResource,
  roleAtLeast,
  toLabrigError,
  type ConsoleSubscribeAck,
  type ConsoleWriteAck,
  type StreamSelect,
  type VideoSubscribeAck,
} from "@labrig/shared";
import type { Socket } from "socket.io";
import type { Logger } from "../logger.js";
import type { StoredAction } from "../repositories/actions.js";
import type { DevicesRepository } from "../repositories/devices.js";
import type { HostsRepository } from "../repositories/hosts.js";
import type { ConsoleBuffers } from "../services/console-buffers.js";
import type { HubBus } from "../bus.js";
import type { ActionSubmission } from "../services/work/work.js";
import type { Principal } from "../services/operator-auth.js";
import type { VideoRelay } from "../services/video-relay.js";
import { ConsoleViewer, VideoViewer } from "./stream-viewers.js";

export interface DashboardStreamsDeps {
  hosts: HostsRepository;
  devices: DevicesRepository;
  consoles: ConsoleBuffers;
  video: VideoRelay;
  bus: HubBus;
  /** Runs an action through the work facade and resolves with its record. */
  submit: (sub: ActionSubmission) => Promise<StoredAction>;
  logger: Logger;
}

/** How long a typed line may wait for the device (behind other actions) before the write fails. */
const CONSOLE_WRITE_QUEUE_MS = 10_000;
/** Console writes one connection may have waiting at once; a browser sends one at a time and batches the rest. */
const MAX_WRITES_IN_FLIGHT = 4;

type Ack = (response: unknown) => void;
type Target = { host: string; device: string; resource: string };

const streamKey = (t: Target): string => `${t.host}\u0000${t.device}\u0000${t.resource}`;

/**
 * The dashboard's live streams: consoles (backlog, then live output, per device and resource) and
 * video (the relay's chunks, newest wins), only while a connection watches, a bounded number per
 * connection; and typing into a console, which becomes a recorded `serial.write` action. Every
 * event is validated and acked with `{ok: true, …}` or the error envelope, and a refused one changes nothing.
 */
export class DashboardStreams {
  /** Console viewers by stream, so output goes only where someone watches. */
  private readonly consoleViewers = new Map<string, Set<ConsoleViewer>>();
  private offAppend: (() => void) | null = null;

  constructor(private readonly deps: DashboardStreamsDeps) {}

  start(): void {
    if (this.offAppend) return;
    this.offAppend = this.deps.bus.on("console.output", (chunk) => {
      for (const viewer of this.consoleViewers.get(streamKey(chunk)) ?? []) viewer.push(chunk.text);
    });
  }

  stop(): void {
    this.offAppend?.();
    this.offAppend = null;
    this.consoleViewers.clear();
  }

  /** Console streams watched now (by anyone), for tests and system info. */
  get watchedConsoles(): number {
    return this.consoleViewers.size;
  }

  /** Wires the stream events of one authenticated dashboard socket; everything it watches ends with it. */
  attach(socket: Socket, principal: Principal, log: Logger): void {
    const consoles = new Map<string, ConsoleViewer>();
    const videos = new Map<string, VideoViewer>();
    let writesInFlight = 0;

    this.on(socket, log, "console.subscribe", (payload) => {
      const target = this.resolve(payload, "serial");
      const key = streamKey(target);
      if (!consoles.has(key)) {
        if (consoles.size >= MAX_CONSOLE_SUBSCRIPTIONS) throw tooMany("console", MAX_CONSOLE_SUBSCRIPTIONS);
        const viewer = new ConsoleViewer(socket, target.host, target.device, target.resource);
        consoles.set(key, viewer);
        let set = this.consoleViewers.get(key);
        if (!set) this.consoleViewers.set(key, (set = new Set()));
        set.add(viewer);
      }
      // Same tick as joining: nothing appended between the backlog and the first live chunk is lost or doubled.
      return { ok: true, ...target, backlog: this.deps.consoles.text(target.host, target.device, target.resource) } satisfies ConsoleSubscribeAck;
    });

    this.on(socket, log, "console.unsubscribe", (payload) => {
      const target = this.resolve(payload, "serial");
      const key = streamKey(target);
      const viewer = consoles.get(key);
      if (viewer) {
        consoles.delete(key);
        this.dropConsoleViewer(key, viewer);
      }
      return { ok: true };
    });

    this.on(socket, log, "console.write", async (payload) => {
      if (!roleAtLeast(principal.role, "operator")) {
        throw new LabrigError("forbidden", `Typing into a console needs the operator role; '${principal.name}' has ${principal.role}. Ask an admin for an operator key.`);
      }
      const data = (payload as { data?: unknown } | null)?.data;
      if (typeof data === "string" && Buffer.byteLength(data, "utf8") > CONSOLE_WRITE_MAX_BYTES) {
        throw new LabrigError("payload_too_large", `A console write may carry at most ${CONSOLE_WRITE_MAX_BYTES} bytes; this one has ${Buffer.byteLength(data, "utf8")}. Send long text in parts.`);
      }
      const body = parseOrThrow(ConsoleWriteSchema, payload, { what: "console.write payload" });
      const target = this.resolve({ host: body.host, device: body.device, resource: body.resource }, "serial");
      if (writesInFlight >= MAX_WRITES_IN_FLIGHT) {
        throw new LabrigError("rate_limited", `At most ${MAX_WRITES_IN_FLIGHT} console writes may wait at once on one connection; wait for their acks.`, { retryAfter: 1 });
      }
      writesInFlight++;
      try {
        const record = await this.deps.submit({
          action: "serial.write",
          resource: target.resource,
          params: { data: body.data },
          target: { host: target.host, device: target.device },
          leaseToken: body.lease_token,
          priority: 0,
          queueTimeoutMs: CONSOLE_WRITE_QUEUE_MS,
          requestedBy: principal.name,
        });
        if (record.status !== "succeeded") {
          return { ok: false, error: record.error ?? toLabrigError(new Error(`serial.write ended ${record.status}`)).toEnvelope() } satisfies ConsoleWriteAck;
        }
        return { ok: true, action_id: record.id, bytes: Number(record.result?.bytes ?? 0) } satisfies ConsoleWriteAck;
      } finally {
        writesInFlight--;
      }
    });

    this.on(socket, log, "video.subscribe", (payload) => {
      const target = this.resolve(payload, "video");
      const key = streamKey(target);
      if (!videos.has(key)) {
        if (videos.size >= MAX_VIDEO_SUBSCRIPTIONS) throw tooMany("video", MAX_VIDEO_SUBSCRIPTIONS);
        const viewer = new VideoViewer(socket, target.host, target.device, target.resource);
        videos.set(key, viewer);
        // The last keyframe first: a picture at once instead of up to one keyframe interval of nothing.
        const last = this.deps.video.latestKeyframe(target.host, target.device, target.resource);
        viewer.unsubscribe = this.deps.video.subscribe(target.host, target.device, target.resource, (chunk) => viewer.push(chunk));
        if (last) setImmediate(() => viewer.push(last));
      }
      return { ok: true, ...target } satisfies VideoSubscribeAck;
    });

    this.on(socket, log, "video.unsubscribe", (payload) => {
      const target = this.resolve(payload, "video");
      const key = streamKey(target);
      const viewer = videos.get(key);
      if (viewer) {
        videos.delete(key);
        viewer.unsubscribe();
        log.debug({ ...target, sent: viewer.sent, dropped: viewer.dropped }, "dashboard stopped watching a video stream");
      }
      return { ok: true };
    });

    socket.conn.on("drain", () => {
      for (const viewer of consoles.values()) viewer.flush();
    });
    socket.on("disconnect", () => {
      for (const [key, viewer] of consoles) this.dropConsoleViewer(key, viewer);
      consoles.clear();
      for (const viewer of videos.values()) viewer.unsubscribe();
      videos.clear();
    });
  }

  private dropConsoleViewer(key: string, viewer: ConsoleViewer): void {
    const set = this.consoleViewers.get(key);
    set?.delete(viewer);
    if (set?.size === 0) this.consoleViewers.delete(key);
  }

  /** The host, device and resource a payload names, or the error a person can act on. */
  private resolve(payload: unknown, kind: "serial" | "video"): Target {
    const sel: StreamSelect = parseOrThrow(StreamSelectSchema, payload, { what: `${kind === "serial" ? "console" : "video"} stream selection` });
    if (!this.deps.hosts.get(sel.host)) throw new LabrigError("unknown_host", `No host '${sel.host}'. The fleet page lists the hosts.`);
    const device = this.deps.devices.get(sel.host, sel.device);
    if (!device) throw new LabrigError("unknown_device", `Host '${sel.host}' has no device '${sel.device}'.`);
    // The catalogue's console and snapshot actions carry the which-resource rule for these kinds.
    const resource = resolveResource(kind === "serial" ? "serial.read" : "capture.snapshot", device.resources, sel.resource ?? null);
    return { host: sel.host, device: sel.device, resource: resource as string };
  }

  /** Registers a handler whose answer (or error envelope) goes into the ack; it never throws out to socket.io. */
  private on(socket: Socket, log: Logger, event: string, handler: (payload: unknown) => unknown): void {
    socket.on(event, (...args: unknown[]) => {
      const last = args[args.length - 1];
      const ack = typeof last === "function" ? (last as Ack) : undefined;
      const payload = args.length > (ack ? 1 : 0) ? args[0] : undefined;
      const refuse = (err: unknown): void => {
        const e = toLabrigError(err);
        if (e.code === "internal_error") log.error({ err, event }, "dashboard stream event failed");
        else log.debug({ event, error_code: e.code, reason: e.message }, "dashboard stream event refused");
        ack?.({ ok: false, error: e.toEnvelope() });
      };
      try {
        Promise.resolve(handler(payload)).then((answer) => ack?.(answer), refuse);
      } catch (err) {
        refuse(err);
      }
    });
  }
}

function tooMany(kind: "console" | "video", max: number): LabrigError {
  return new LabrigError("validation_failed", `One dashboard connection may watch at most ${max} ${kind} streams at once; unsubscribe from one first.`);
}
