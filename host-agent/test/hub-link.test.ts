import { createServer, type Server as HttpServer } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { Writable } from "node:stream";
import { ActionResultSchema, HelloSchema, HeartbeatSchema, type ActionRequestSchema, type ActionResult, type ConsoleOutput, type DeviceState, type Hello, type Heartbeat } from "@labrig/shared";
import { Server, type Socket as ServerSocket } from "socket.io";
import type { z } from "zod";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createAgent, type Agent } from "../src/agent.js";
import { parseConfig } from "../src/config.js";
import { createLogger } from "../src/logger.js";
import { makeTempDir, requireSocat, until } from "./helpers.js";

const TOKEN = "lrh_test_token_5f3a9c";

/** A tiny hub: the /agent namespace with a token check, recording everything the agent sends. */
class FakeHub {
  readonly hellos: Hello[] = [];
  readonly heartbeats: Heartbeat[] = [];
  readonly results: ActionResult[] = [];
  readonly consoleChunks: ConsoleOutput[] = [];
  readonly states: DeviceState[] = [];
  refusing = false;
  socket: ServerSocket | null = null;
  private http: HttpServer | null = null;
  private io: Server | null = null;

  async start(): Promise<string> {
    this.http = createServer();
    this.io = new Server(this.http);
    const nsp = this.io.of("/agent");
    nsp.use((socket, next) => {
      const auth = socket.handshake.auth as { host?: string; token?: string };
      if (this.refusing || auth.token !== TOKEN) {
        next(Object.assign(new Error("unauthorized"), { data: { error_code: "unauthorized", message: "Unknown host token; enroll the host again." } }));
        return;
      }
      next();
    });
    nsp.on("connection", (socket) => {
      this.socket = socket;
      socket.on("hello", (hello: Hello, ack: (a: unknown) => void) => {
        this.hellos.push(HelloSchema.parse(hello));
        ack({ ok: true, heartbeat_interval_ms: 100, hub_version: "test-hub" });
      });
      socket.on("heartbeat", (hb: Heartbeat) => this.heartbeats.push(HeartbeatSchema.parse(hb)));
      socket.on("action.result", (r: ActionResult, ack: (a: unknown) => void) => {
        this.results.push(ActionResultSchema.parse(r));
        ack({ ok: true });
      });
      socket.on("console.output", (c: ConsoleOutput) => this.consoleChunks.push(c));
      socket.on("device.state", (s: DeviceState) => this.states.push(s));
    });
    await new Promise<void>((resolve) => this.http?.listen(0, "127.0.0.1", resolve));
    return `http://127.0.0.1:${(this.http.address() as AddressInfo).port}`;
  }

  /** What a hub puts on the wire (confirm_start defaults to true there). */
  send(req: z.input<typeof ActionRequestSchema>): void {
    if (!this.socket) throw new Error("no agent connected");
    this.socket.emit("action.request", req);
  }

  async waitResult(id: string, timeoutMs = 5000): Promise<ActionResult> {
    await until(() => this.results.some((r) => r.id === id), `the result of ${id}`, timeoutMs);
    return this.results.find((r) => r.id === id) as ActionResult;
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => (this.io ? this.io.close(() => resolve()) : resolve()));
  }
}

function captureLogs(): { lines: string[]; stream: Writable } {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(chunk.toString());
      cb();
    },
  });
  return { lines, stream };
}

describe("hub link against a real socket.io server", () => {
  let temp: ReturnType<typeof makeTempDir>;
  let hub: FakeHub;
  let url: string;
  const agents: Agent[] = [];

  beforeEach(async () => {
    requireSocat();
    temp = makeTempDir();
    hub = new FakeHub();
    url = await hub.start();
  });

  afterEach(async () => {
    for (const a of agents.splice(0)) await a.stop();
    await hub.stop();
    temp.remove();
  });

  function makeAgent(token: string, logs: Writable): Agent {
    const config = parseConfig(
      {
        host: "sim-1",
        hub: { url, token },
        data_dir: "./data",
        gpio: { driver: "memory" },
        devices: [
          {
            id: "dut1",
            labels: { board: "sim" },
            capabilities: ["boots-linux"],
            simulated: true,
            resources: [
              { name: "console", kind: "serial", path: "./dut1-console" },
              { name: "power", kind: "power", line: 17 },
              { name: "reset", kind: "gpio", line: 27, direction: "out", active_low: true, initial: 0 },
            ],
          },
        ],
      },
      { baseDir: temp.dir },
    );
    const agent = createAgent(config, createLogger("debug", logs), { sim: { bootMs: 200 } });
    agents.push(agent);
    return agent;
  }

  it("says hello with its devices, sends heartbeats, runs actions and streams the console", async () => {
    const logs = captureLogs();
    const agent = makeAgent(TOKEN, logs.stream);
    await agent.start();
    await until(() => hub.hellos.length === 1, "hello");
    expect(hub.hellos[0]).toMatchObject({
      host: "sim-1",
      devices: [
        {
          id: "dut1",
          labels: { board: "sim" },
          capabilities: ["boots-linux", "gpio", "power", "serial"],
          resources: [
            { name: "console", kind: "serial" },
            { name: "power", kind: "power" },
            { name: "reset", kind: "gpio" },
          ],
        },
      ],
    });
    await until(() => hub.heartbeats.length >= 3, "three heartbeats", 3000);
    expect(hub.heartbeats.map((h) => h.seq).slice(0, 3)).toEqual([0, 1, 2]);

    hub.send({ id: "p1", device: "dut1", action: "power.on", resource: null, params: {}, timeout_ms: 5000 });
    expect(await hub.waitResult("p1")).toMatchObject({ host: "sim-1", device: "dut1", status: "succeeded", result: { state: "on" }, error: null });
    hub.send({ id: "e1", device: "dut1", action: "serial.expect", resource: "console", params: { pattern: "login: ", timeout_ms: 3000 }, timeout_ms: 13_000 });
    const e1 = await hub.waitResult("e1");
    expect(e1.status).toBe("succeeded");
    expect((e1.result as { transcript: string }).transcript).toContain("Booting Linux");
    await until(() => hub.consoleChunks.map((c) => c.data).join("").includes("labrig-sim login: "), "the console stream");
    expect(hub.consoleChunks.map((c) => c.seq)).toEqual(hub.consoleChunks.map((_, i) => i));
    expect(hub.states).toContainEqual(expect.objectContaining({ device: "dut1", resource: "power", status: "ready", power: "on" }));
    expect(hub.states).toContainEqual(expect.objectContaining({ device: "dut1", resource: "console", status: "ready" }));

    hub.send({ id: "bad1", device: "dut1", action: "serial.write", resource: null, params: { data: "" }, timeout_ms: 5000 });
    expect((await hub.waitResult("bad1")).error?.error_code).toBe("validation_failed");
    hub.send({ id: "w1", device: "dut1", action: "wait", resource: null, params: { ms: 5000 }, timeout_ms: 10_000 });
    await new Promise((r) => setTimeout(r, 50));
    hub.socket?.emit("action.cancel", { id: "w1" });
    expect((await hub.waitResult("w1")).status).toBe("canceled");

    const socatPid = agent.sims.get("dut1")?.pty.pid as number;
    await agent.stop();
    agents.length = 0;
    expect(() => process.kill(socatPid, 0)).toThrow();
    expect(logs.lines.join("")).not.toContain(TOKEN);
  });

  it("delivers a result produced while the hub was away exactly once after reconnecting", async () => {
    const agent = makeAgent(TOKEN, captureLogs().stream);
    await agent.start();
    await until(() => hub.hellos.length === 1, "hello");
    hub.send({ id: "slow", device: "dut1", action: "wait", resource: null, params: { ms: 300 }, timeout_ms: 5000 });
    await new Promise((r) => setTimeout(r, 20));
    hub.refusing = true;
    hub.socket?.disconnect(true);
    await new Promise((r) => setTimeout(r, 600));
    expect(hub.results.filter((r) => r.id === "slow")).toHaveLength(0);
    expect(agent.outbox.size).toBe(1);
    hub.refusing = false;
    await hub.waitResult("slow", 15_000);
    expect(hub.hellos.length).toBe(2);
    await new Promise((r) => setTimeout(r, 500));
    expect(hub.results.filter((r) => r.id === "slow")).toHaveLength(1);
    expect(hub.results.find((r) => r.id === "slow")?.status).toBe("succeeded");
    expect(agent.outbox.size).toBe(0);
  }, 30_000);

  it("logs a refused connection at error level with the hub's message, never the token, and keeps retrying", async () => {
    const logs = captureLogs();
    const agent = makeAgent("lrh_wrong_secret", logs.stream);
    await agent.start();
    await until(() => logs.lines.filter((l) => l.includes("cannot connect to the hub")).length >= 2, "two refused attempts", 5000);
    const refused = JSON.parse(logs.lines.find((l) => l.includes("cannot connect to the hub")) as string) as Record<string, unknown>;
    expect(refused).toMatchObject({ level: 50, error_code: "unauthorized", message: "Unknown host token; enroll the host again." });
    expect(logs.lines.join("")).not.toContain("lrh_wrong_secret");
    expect(hub.hellos).toHaveLength(0);
  });
});
