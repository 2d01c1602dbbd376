import { AGENT_NAMESPACE } from "@labrig/shared";
import { Ajv2020, type ValidateFunction } from "ajv/dist/2020.js";
import addFormats from "ajv-formats";
import jpeg from "jpeg-js";
import type { Socket } from "socket.io-client";
import { mutate, VALUE_MUTATIONS, type ValueMutation } from "./mutations.js";
import { Random } from "./random.js";
import { validValue, type JsonSchema } from "./schema-values.js";
import { handshake, type FuzzAgent, type FuzzDashboard } from "./socket-sessions.js";
import { Failures, Tally } from "./tally.js";

/*
 * Socket events generated from the published socket schemas (GET /docs/ws): every event the hub
 * receives on /agent and /dashboard, built valid from its payload schema, spoiled like REST bodies
 * (plus socket-only ways: no payload, extra arguments, no ack callback, binary instead of JSON, and a
 * field nested 100,000 levels deep, written as a raw socket.io packet since no client can encode it), and
 * sent twice — once with a valid identity, once with an invalid one (a refused handshake, or on
 * /agent the fuzzer's own connection speaking for another host). Verdicts:
 *   - an event that takes an ack is always answered, with an ack its published ack schema accepts
 *     (checked with ajv), never internal_error; a valid connection is never dropped for a message
 *     under socket.io's limit;
 *   - a handshake with an invalid identity is always refused; an event spoken for another host is
 *     never accepted (and the victim host stays untouched, which the test checks after the run).
 */

export interface ReceivedEvent {
  name: string;
  namespace: string;
  payload: JsonSchema;
  ack: JsonSchema | null;
}

/** The events the hub receives, from the /docs/ws document. */
export function receivedEvents(ws: { events: Record<string, { namespace: string; direction: string; payload: JsonSchema; ack: JsonSchema | null }> }): ReceivedEvent[] {
  return Object.entries(ws.events)
    .filter(([, e]) => e.direction.endsWith("→hub"))
    .map(([name, e]) => ({ name, namespace: e.namespace, payload: e.payload, ack: e.ack }));
}

const SOCKET_MUTATIONS = ["no_payload", "extra_args", "no_ack_callback", "binary_payload", "undeclared_event", "deep_raw"] as const;
type SocketMutation = ValueMutation | (typeof SOCKET_MUTATIONS)[number];

/** socket.io's limit (maxHttpBufferSize on the hub): a bigger message may close the connection. */
const MESSAGE_LIMIT = 1_000_000;
const ACK_TIMEOUT_MS = 8000;

export interface SocketFixture {
  url: string;
  agent: FuzzAgent;
  dashboards: { viewer: FuzzDashboard; operator: FuzzDashboard; admin: FuzzDashboard };
  /** The enrolled host the fuzzer pretends to be when it must be refused. */
  victimHost: string;
  /** Auth objects every handshake must refuse, per namespace. */
  badAgentAuth: Record<string, unknown>[];
  badDashboardAuth: Record<string, unknown>[];
  /** Hints for payload fields (host, device, resource names of the rig). */
  hints: (name: string, path: readonly string[]) => readonly unknown[] | undefined;
}

export interface SocketFuzzResult {
  sent: number;
  /** `namespace event` × `identity: outcome`. */
  byEvent: Tally;
  byMutation: Tally;
  failures: Failures;
}

function tinyJpeg(): Buffer {
  const data = Buffer.alloc(16 * 16 * 4, 0x80);
  return Buffer.from(jpeg.encode({ data, width: 16, height: 16 }, 50).data);
}

function sizeOf(value: unknown): number {
  let binary = 0;
  const text = JSON.stringify(value, (_k, v: unknown) => {
    if (ArrayBuffer.isView(v)) {
      binary += v.byteLength;
      return null;
    }
    if (typeof v === "object" && v !== null && (v as { type?: unknown }).type === "Buffer") return null;
    return v;
  });
  return (text?.length ?? 0) + binary;
}

function withHost(payload: unknown, host: string): unknown {
  return typeof payload === "object" && payload !== null && !Array.isArray(payload) && !ArrayBuffer.isView(payload) && "host" in payload ? { ...payload, host } : null;
}

export class SocketFuzzer {
  private readonly events: ReceivedEvent[];
  private readonly jpeg = tinyJpeg();
  private readonly ackValidators = new Map<string, ValidateFunction>();

  constructor(
    ws: Parameters<typeof receivedEvents>[0],
    private readonly fx: SocketFixture,
  ) {
    this.events = receivedEvents(ws);
    const ajv = new Ajv2020({ strict: false });
    addFormats.default(ajv);
    for (const e of this.events) if (e.ack) this.ackValidators.set(e.name, ajv.compile(e.ack));
  }

  get eventNames(): string[] {
    return this.events.map((e) => `${e.namespace} ${e.name}`);
  }

  /**
   * Sends `count` events (half of them with a valid identity, half with an invalid one), or as many
   * as fit in `budgetMs`; the same seed sends the same events.
   */
  async run(count: number, seed: number, budgetMs: number): Promise<SocketFuzzResult> {
    const rnd = new Random(seed);
    const deadline = Date.now() + budgetMs;
    const result: SocketFuzzResult = { sent: 0, byEvent: new Tally(), byMutation: new Tally(), failures: new Failures() };
    for (let i = 0; result.sent < count && Date.now() < deadline; i++) {
      const spec = this.events[i % this.events.length] as ReceivedEvent;
      const local = rnd.fork();
      const mutation = this.pickMutation(spec, local);
      const args = this.argsOf(spec, mutation, local);
      const name = mutation === "undeclared_event" ? local.pick(["hello ", "Hello", "action.results", "__proto__", "constructor", "x".repeat(300), "ping", "error"]) : spec.name;
      for (const valid of [true, false]) {
        const outcome = valid ? await this.sendValid(spec, name, args, mutation, local) : await this.sendInvalid(spec, name, args, mutation, local);
        const label = `${valid ? "valid" : "invalid"}: ${outcome.label}`;
        result.sent++;
        result.byEvent.add(`${spec.namespace} ${spec.name}`, label);
        result.byMutation.add(mutation, label);
        if (outcome.failure) result.failures.add(outcome.failure, `${spec.namespace} ${name} [${mutation}, ${valid ? "valid" : "invalid"}] ${JSON.stringify(outcome.sent ?? args, (_k, v: unknown) => (ArrayBuffer.isView(v) ? `<${v.byteLength} bytes>` : v)).slice(0, 400)} → ${outcome.label}`);
      }
    }
    return result;
  }

  private pickMutation(spec: ReceivedEvent, rnd: Random): SocketMutation {
    const choices: [SocketMutation, number][] = VALUE_MUTATIONS.map((m) => [m, m === "valid" ? 12 : 5]);
    for (const m of SOCKET_MUTATIONS) choices.push([m, m === "no_ack_callback" && spec.ack === null ? 0 : 3]);
    return rnd.weighted(choices.filter(([, w]) => w > 0));
  }

  private argsOf(spec: ReceivedEvent, mutation: SocketMutation, rnd: Random): unknown[] {
    const hints = (name: string, path: readonly string[]): readonly unknown[] | undefined => (name === "jpeg" ? [this.jpeg] : this.fx.hints(name, path));
    const valid = validValue(spec.payload, { rnd, root: spec.payload, hints }, []);
    if (mutation === "no_payload") return [];
    if (mutation === "extra_args") return [valid, rnd.pick<unknown>([1, "x", null, { more: true }]), rnd.pick<unknown>([[], "y"])];
    if (mutation === "binary_payload") return [Buffer.from(JSON.stringify(valid))];
    if (mutation === "no_ack_callback" || mutation === "undeclared_event" || mutation === "deep_raw") return [valid];
    return [mutate(valid, mutation, rnd)];
  }

  private async sendValid(spec: ReceivedEvent, name: string, args: unknown[], mutation: SocketMutation, rnd: Random): Promise<Outcome> {
    const agentSide = spec.namespace === AGENT_NAMESPACE;
    const socket = agentSide ? await this.fx.agent.ready() : await rnd.pick([this.fx.dashboards.viewer, this.fx.dashboards.operator, this.fx.dashboards.admin]).ready();
    const own = agentSide ? args.map((a, i) => (i === 0 ? (withHost(a, this.fx.agent.host) ?? a) : a)) : args;
    return this.emit(socket, spec, name, own, mutation, agentSide, false);
  }

  private async sendInvalid(spec: ReceivedEvent, name: string, args: unknown[], mutation: SocketMutation, rnd: Random): Promise<Outcome> {
    const agentSide = spec.namespace === AGENT_NAMESPACE;
    const impersonated = agentSide && rnd.chance(0.8) ? withHost(args[0], this.fx.victimHost) : null;
    if (impersonated !== null) return this.emit(await this.fx.agent.ready(), spec, name, [impersonated, ...args.slice(1)], mutation, true, true);
    const auth = rnd.pick(agentSide ? this.fx.badAgentAuth : this.fx.badDashboardAuth);
    const outcome = await handshake(`${this.fx.url}${spec.namespace}`, auth);
    if (outcome.ok) {
      outcome.socket.close();
      return { label: "connected", failure: "a handshake with an invalid identity was accepted" };
    }
    return { label: `handshake refused: ${outcome.code}`, failure: outcome.code === "unauthorized" || outcome.code === "forbidden" ? null : `handshake refused with ${outcome.code}` };
  }

  private async emit(socket: Socket, spec: ReceivedEvent, name: string, args: unknown[], mutation: SocketMutation, agentSide: boolean, impersonating: boolean): Promise<Outcome> {
    const outcome = await this.emitOnce(socket, spec, name, args, mutation, agentSide, impersonating);
    return { ...outcome, sent: args };
  }

  private async emitOnce(socket: Socket, spec: ReceivedEvent, name: string, args: unknown[], mutation: SocketMutation, agentSide: boolean, impersonating: boolean): Promise<Outcome> {
    const oversize = sizeOf(args) > MESSAGE_LIMIT * 0.9;
    const dropped = (): Outcome => ({ label: "disconnected", failure: oversize ? null : "the hub dropped a valid connection" });
    if (spec.ack !== null && mutation !== "no_ack_callback" && mutation !== "undeclared_event" && mutation !== "deep_raw") {
      let ack: unknown;
      try {
        ack = await socket.timeout(ACK_TIMEOUT_MS).emitWithAck(name, ...args);
      } catch {
        // No ack in time: dropped with the connection, or never answered (a finding).
        return socket.connected ? { label: "no ack", failure: "an event that takes an ack was never answered" } : dropped();
      }
      return this.judgeAck(spec, ack, impersonating);
    }
    if (mutation === "deep_raw") this.writeDeep(socket, spec.namespace, name, args[0]);
    else socket.emit(name, ...args);
    // socket.io keeps order: once a probe after the event is answered, the hub has handled the event.
    try {
      if (agentSide) await socket.timeout(ACK_TIMEOUT_MS).emitWithAck("action.started", { id: "fuzz-probe", host: this.fx.agent.host, device: "fz-dev", started_at: new Date().toISOString() });
      else await socket.timeout(ACK_TIMEOUT_MS).emitWithAck("subscribe", { topics: [] });
    } catch {
      // The probe went unanswered: the connection is gone (judged by size), or the hub stopped answering.
      return socket.connected ? { label: "probe unanswered", failure: "the hub stopped answering after an event" } : dropped();
    }
    return { label: mutation === "undeclared_event" ? "ignored" : mutation === "deep_raw" ? "delivered (raw, no ack)" : "delivered (no ack)", failure: null };
  }

  /**
   * Writes `payload` with one field replaced by arrays nested 100,000 levels deep as a raw socket.io
   * EVENT packet: JSON.stringify cannot build that text, but JSON.parse on the hub reads it.
   */
  private writeDeep(socket: Socket, namespace: string, name: string, payload: unknown): void {
    const depth = 100_000;
    const deep = "[".repeat(depth) + "]".repeat(depth);
    const holder = typeof payload === "object" && payload !== null && !Array.isArray(payload) ? { ...(payload as Record<string, unknown>) } : {};
    const key = Object.keys(holder)[0] ?? "deep";
    holder[key] = "\u0000DEEP";
    const text = JSON.stringify([name, holder]).replace(JSON.stringify("\u0000DEEP"), deep);
    socket.io.engine.write(`2${namespace},${text}`);
  }

  private judgeAck(spec: ReceivedEvent, ack: unknown, impersonating: boolean): Outcome {
    if (this.ackValidators.get(spec.name)?.(ack) !== true) return { label: "bad ack", failure: "an ack its published schema refuses" };
    const { ok, error } = ack as { ok: boolean; error?: { error_code: string } };
    if (ok) return { label: "ok", failure: impersonating ? "an event spoken for another host was accepted" : null };
    const code = error?.error_code ?? "ok: false";
    return { label: code, failure: code === "internal_error" ? "internal_error in an ack" : null };
  }
}

interface Outcome {
  label: string;
  failure: string | null;
  /** The arguments as they went out (with the host the identity speaks for). */
  sent?: unknown[];
}
