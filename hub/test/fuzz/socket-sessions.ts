import { makeEnvelope } from "@labrig/shared";
import { io, type Socket } from "socket.io-client";
import { helloPayload } from "../helpers.js";

/*
 * The socket fuzzer's connections: one agent socket speaking as its own host (answering the hub's
 * requests the way a minimal agent would, so work the fuzzer causes ends instead of timing out),
 * dashboard sockets per role, and one-off handshakes with identities that must be refused.
 */

export type ConnectOutcome = { ok: true; socket: Socket } | { ok: false; code: string };

function open(url: string, auth: Record<string, unknown>): Socket {
  return io(url, { auth, transports: ["websocket"], reconnection: false, autoConnect: false, forceNew: true });
}

/** Connects a socket and resolves once the hub accepted or refused the handshake (refusals carry the envelope's code). */
export function handshake(url: string, auth: Record<string, unknown>, timeoutMs = 5000): Promise<ConnectOutcome> {
  const socket = open(url, auth);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      socket.close();
      resolve({ ok: false, code: "handshake timeout" });
    }, timeoutMs);
    socket.once("connect", () => {
      clearTimeout(timer);
      resolve({ ok: true, socket });
    });
    socket.once("connect_error", (err: Error & { data?: { error_code?: string } }) => {
      clearTimeout(timer);
      socket.close();
      resolve({ ok: false, code: err.data?.error_code ?? `connect_error: ${err.message}` });
    });
    socket.connect();
  });
}

/** The device the fuzzer's agent declares: a console and a camera. */
const FUZZ_DEVICE = { id: "fz-dev", labels: { board: "fuzz" }, capabilities: ["serial", "video"], resources: [{ name: "console", kind: "serial" }, { name: "cam", kind: "video" }] };

/** A hello the hub accepts, for (re)connecting the fuzzer's agent before its generated events. */
export function baseHello(host: string): Record<string, unknown> {
  return helloPayload(host, [FUZZ_DEVICE], "2024-01-01T00:00:00.000Z");
}

/** An agent socket that keeps itself connected and hello'd, and answers the hub like an agent that runs nothing. */
export class FuzzAgent {
  private socket: Socket | null = null;
  reconnects = 0;

  constructor(
    private readonly url: string,
    readonly host: string,
    private readonly token: string,
  ) {}

  /** The live socket, reconnected (and hello'd) when the hub dropped it. */
  async ready(): Promise<Socket> {
    if (this.socket?.connected) return this.socket;
    this.socket?.close();
    const outcome = await handshake(`${this.url}/agent`, { host: this.host, token: this.token });
    if (!outcome.ok) throw new Error(`the fuzz agent ${this.host} could not connect: ${outcome.code}`);
    const socket = outcome.socket;
    this.answerTheHub(socket);
    let ack: { ok: boolean };
    try {
      ack = (await socket.timeout(5000).emitWithAck("hello", baseHello(this.host))) as { ok: boolean };
    } catch (err) {
      socket.close();
      throw err;
    }
    if (!ack.ok) {
      socket.close();
      throw new Error(`the fuzz agent's hello was refused: ${JSON.stringify(ack)}`);
    }
    if (this.socket !== null) this.reconnects++;
    this.socket = socket;
    return socket;
  }

  close(): void {
    this.socket?.close();
    this.socket = null;
  }

  private answerTheHub(socket: Socket): void {
    const nothing = makeEnvelope("hardware_error", "The fuzzer's agent runs nothing.");
    socket.on("action.request", (req: { id: string; device: string; confirm_start?: boolean }) => {
      const at = new Date().toISOString();
      const result = { id: req.id, host: this.host, device: req.device, status: "failed", result: null, error: nothing, started_at: at, finished_at: at, duration_ms: 0 };
      const finish = (): void => void socket.emit("action.result", result, () => undefined);
      if (req.confirm_start === false) finish();
      else socket.emit("action.started", { id: req.id, host: this.host, device: req.device, started_at: at }, (ack: { ok: boolean }) => ack.ok && finish());
    });
    socket.on("artifact.fetch", (_req: unknown, ack?: (a: unknown) => void) => ack?.({ ok: false, error: makeEnvelope("not_found", "The fuzzer's agent keeps no artifacts.") }));
    socket.on("artifact.delete", (_req: unknown, ack?: (a: unknown) => void) => ack?.({ ok: true }));
    socket.on("stream.start", (_req: unknown, ack?: (a: unknown) => void) => ack?.({ ok: true }));
    socket.on("stream.stop", (_req: unknown, ack?: (a: unknown) => void) => ack?.({ ok: true }));
  }
}

/** A dashboard socket for a credential, reconnected when the hub dropped it. */
export class FuzzDashboard {
  private socket: Socket | null = null;
  reconnects = 0;

  constructor(
    private readonly url: string,
    private readonly token: string,
  ) {}

  async ready(): Promise<Socket> {
    if (this.socket?.connected) return this.socket;
    this.socket?.close();
    const outcome = await handshake(`${this.url}/dashboard`, { token: this.token });
    if (!outcome.ok) throw new Error(`a fuzz dashboard could not connect: ${outcome.code}`);
    if (this.socket !== null) this.reconnects++;
    this.socket = outcome.socket;
    return outcome.socket;
  }

  close(): void {
    this.socket?.close();
    this.socket = null;
  }
}
