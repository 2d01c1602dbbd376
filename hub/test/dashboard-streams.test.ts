import { CONSOLE_WRITE_MAX_BYTES, MAX_CONSOLE_SUBSCRIPTIONS, MAX_VIDEO_SUBSCRIPTIONS, StreamChunkSchema, type ConsoleDataEvent, type StreamChunk } from "@labrig/shared";
import type { Socket as ClientSocket } from "socket.io-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { requireSocat } from "./campaign-helpers.js";
import { addHost, cleanupTempDirs, connect, connectedAgent, dashboardSocket, getJson, postJson, queryDb, sayHello, startHub, stopAll, waitFor, type RunningHub } from "./helpers.js";
import { simulatedBoard, startLocalAgent, stopLocalAgents } from "./local-agents.js";

// The dashboard's streams over real sockets: a hub (createHub) and an in-process agent with the
// simulated board (console on a socat PTY) and a test-pattern screen streamed as VP8.

let hub: RunningHub;
const keys: Record<"viewer" | "operator", string> = { viewer: "", operator: "" };
type Ack = { ok: boolean; error?: { error_code: string; message: string; recoverable: boolean }; [k: string]: unknown };

async function socketFor(key: string): Promise<ClientSocket> {
  const s = dashboardSocket(hub.url, { auth: { token: key } });
  await connect(s);
  return s;
}

const ask = (s: ClientSocket, event: string, payload: unknown): Promise<Ack> => s.timeout(15_000).emitWithAck(event, payload) as Promise<Ack>;
const action = (name: string, params: Record<string, unknown> = {}) => postJson(`${hub.url}/api/hosts/sim-1/devices/dut1/actions`, { action: name, params });
const actionCount = (): number => queryDb<{ n: number }>(hub.dataDir, "SELECT count(*) AS n FROM actions")[0]?.n ?? -1;
const DUT = { host: "sim-1", device: "dut1" };

beforeAll(async () => {
  requireSocat();
  hub = await startHub();
  await startLocalAgent(
    hub,
    "sim-1",
    [simulatedBoard({}, { screen: true })],
    { agent: { sim: { bootMs: 150 } } },
  );
  for (const role of ["viewer", "operator"] as const) keys[role] = (await postJson(`${hub.url}/api/keys`, { name: `${role}-1`, role })).body.key as string;
}, 60_000);

afterAll(async () => {
  await stopLocalAgents();
  await stopAll();
  cleanupTempDirs();
});

describe("console streams", () => {
  it("answers a subscription with the console's backlog, then streams new output to subscribers only, until they unsubscribe", async () => {
    expect((await action("power.on")).body.status).toBe("succeeded");
    expect((await action("serial.expect", { pattern: "login: ", timeout_ms: 10_000 })).body.status).toBe("succeeded");
    const watcher = await socketFor(keys.viewer);
    const bystander = await socketFor(keys.viewer);
    const got: ConsoleDataEvent[] = [];
    const strayed: ConsoleDataEvent[] = [];
    watcher.on("console.data", (e: ConsoleDataEvent) => got.push(e));
    bystander.on("console.data", (e: ConsoleDataEvent) => strayed.push(e));
    const ack = await ask(watcher, "console.subscribe", DUT);
    expect(ack).toMatchObject({ ok: true, host: "sim-1", device: "dut1", resource: "console" });
    // The expect's result and the console's output reach the hub on separate events, so the prompt may
    // still be on its way: the backlog has the boot, and the backlog plus what streams next end at the prompt.
    expect(ack.backlog).toMatch(/Booting Linux/);
    await waitFor(() => /Booting Linux[\s\S]*labrig-sim login: $/.test(String(ack.backlog) + got.map((e) => e.data).join("")), 5000);

    await action("serial.write", { data: "root\r" });
    await waitFor(() => got.map((e) => e.data).join("").includes("Password: "), 5000);
    expect(got.every((e) => e.resource === "console" && e.dropped_bytes === 0)).toBe(true);
    expect(strayed).toHaveLength(0);

    expect(await ask(watcher, "console.unsubscribe", DUT)).toEqual({ ok: true });
    const before = got.length;
    await action("serial.write", { data: "labrig\r" });
    await action("serial.expect", { pattern: "# ", timeout_ms: 5000 });
    await new Promise((r) => setTimeout(r, 200));
    expect(got.length).toBe(before);
  });

  it("runs typing as a serial.write action through the dispatcher, recorded under the operator's name and bound by the device's lease", async () => {
    const s = await socketFor(keys.operator);
    const typed = await ask(s, "console.write", { ...DUT, data: "whoami\r" });
    expect(typed).toMatchObject({ ok: true, bytes: 7 });
    const record = await getJson(`${hub.url}/api/actions/${String(typed.action_id)}`);
    expect(record.body).toMatchObject({ action: "serial.write", status: "succeeded", requested_by: "operator-1", params: { data: "whoami\r" } });

    const lease = await postJson(`${hub.url}/api/leases`, { target: DUT, ttl_s: 30, owner: "someone-else" });
    expect(lease.status).toBe(201);
    const refused = await ask(s, "console.write", { ...DUT, data: "x" });
    expect(refused).toMatchObject({ ok: false, error: { error_code: "lease_required" } });
    expect(await ask(s, "console.write", { ...DUT, data: "\r", lease_token: lease.body.token })).toMatchObject({ ok: true });
    expect((await getJson(`${hub.url}/api/leases/${String(lease.body.id)}`, { method: "DELETE", headers: { "x-lease-token": String(lease.body.token) } })).status).toBe(200);
  });
});

describe("bad input from a dashboard gets the error envelope and changes nothing", () => {
  it("refuses typing from a viewer, an oversized write, a malformed one, and streams of hosts or devices that do not exist", async () => {
    const viewer = await socketFor(keys.viewer);
    const operator = await socketFor(keys.operator);
    const actions = actionCount();
    const cases: Array<[ClientSocket, string, unknown, string]> = [
      [viewer, "console.write", { ...DUT, data: "reboot\r" }, "forbidden"],
      [operator, "console.write", { ...DUT, data: "x".repeat(CONSOLE_WRITE_MAX_BYTES + 1) }, "payload_too_large"],
      [operator, "console.write", { ...DUT, data: "é".repeat(CONSOLE_WRITE_MAX_BYTES / 2 + 1) }, "payload_too_large"],
      [operator, "console.write", { ...DUT, data: "" }, "validation_failed"],
      [operator, "console.write", { ...DUT, data: "x", extra: 1 }, "validation_failed"],
      [operator, "console.write", { host: "sim-1", device: "nope", data: "x" }, "unknown_device"],
      [operator, "console.subscribe", { host: "ghost", device: "dut1" }, "unknown_host"],
      [operator, "console.subscribe", { host: "sim-1", device: "ghost" }, "unknown_device"],
      [operator, "console.subscribe", { ...DUT, resource: "screen" }, "unknown_resource"],
      [operator, "console.subscribe", { ...DUT, resource: "../etc" }, "validation_failed"],
      [operator, "video.subscribe", { ...DUT, resource: "console" }, "unknown_resource"],
      [operator, "video.subscribe", "everything", "validation_failed"],
    ];
    for (const [socket, event, payload, code] of cases) {
      const ack = await ask(socket, event, payload);
      expect(ack, `${event} ${JSON.stringify(payload).slice(0, 80)}`).toMatchObject({ ok: false, error: { error_code: code, recoverable: expect.any(Boolean) } });
      expect(typeof ack.error?.message).toBe("string");
    }
    expect(actionCount()).toBe(actions);
    expect(hub.hub.video()?.watchers("sim-1", "dut1", "screen")).toBe(0);
  });

  it("bounds the streams one connection may watch: of a thousand subscriptions a few succeed, the rest get the envelope, and the agent is asked for those few only", async () => {
    // A host whose hello describes many consoles and cameras (a raw agent socket: only descriptions are needed).
    const token = await addHost(hub.dataDir, "bank-1");
    const agent = await connectedAgent(hub.url, "bank-1", token);
    const starts: unknown[] = [];
    agent.on("stream.start", (payload: unknown, ack: (a: unknown) => void) => {
      starts.push(payload);
      ack({ ok: true });
    });
    agent.on("stream.stop", (_payload: unknown, ack: (a: unknown) => void) => ack({ ok: true }));
    const resources = [
      ...Array.from({ length: 24 }, (_, i) => ({ name: `tty${i}`, kind: "serial" })),
      ...Array.from({ length: 8 }, (_, i) => ({ name: `cam${i}`, kind: "video" })),
    ];
    expect(await sayHello(agent, "bank-1", [{ id: "rack", resources }])).toMatchObject({ ok: true });
    const s = await socketFor(keys.viewer);
    const bank = { host: "bank-1", device: "rack" };

    const consoleAcks = await Promise.all(Array.from({ length: 1000 }, (_, i) => ask(s, "console.subscribe", { ...bank, resource: `tty${i % 24}` })));
    const okConsoles = new Set(consoleAcks.filter((a) => a.ok).map((a) => a.resource));
    expect(okConsoles.size).toBe(MAX_CONSOLE_SUBSCRIPTIONS);
    const refused = consoleAcks.filter((a) => !a.ok);
    expect(refused.length).toBeGreaterThan(0);
    for (const a of refused) expect(a.error).toMatchObject({ error_code: "validation_failed", recoverable: false, message: expect.stringMatching(/at most 16 console streams/) });

    const videoAcks = await Promise.all(Array.from({ length: 1000 }, (_, i) => ask(s, "video.subscribe", { ...bank, resource: `cam${i % 8}` })));
    const okVideos = new Set(videoAcks.filter((a) => a.ok).map((a) => a.resource));
    expect(okVideos.size).toBe(MAX_VIDEO_SUBSCRIPTIONS);
    await waitFor(() => starts.length === MAX_VIDEO_SUBSCRIPTIONS, 5000);
    await new Promise((r) => setTimeout(r, 100));
    expect(starts).toHaveLength(MAX_VIDEO_SUBSCRIPTIONS);
    const watched = Array.from({ length: 8 }, (_, i) => hub.hub.video()?.watchers("bank-1", "rack", `cam${i}`) ?? 0);
    expect(watched.reduce((a, b) => a + b, 0)).toBe(MAX_VIDEO_SUBSCRIPTIONS);

    // Unsubscribing makes room again.
    const first = [...okVideos][0] as string;
    expect(await ask(s, "video.unsubscribe", { ...bank, resource: first })).toEqual({ ok: true });
    expect(okVideos.has("cam7")).toBe(false);
    expect(await ask(s, "video.subscribe", { ...bank, resource: "cam7" })).toMatchObject({ ok: true });
    s.disconnect();
    await waitFor(() => Array.from({ length: 8 }, (_, i) => hub.hub.video()?.watchers("bank-1", "rack", `cam${i}`) ?? 0).every((n) => n === 0), 5000);
    agent.disconnect();
  });
});

describe("video streams", () => {
  it("relays the agent's chunks from a keyframe on, each stamped with its capture time, and stops the agent's stream when the last viewer leaves", async () => {
    const s = await socketFor(keys.viewer);
    const chunks: StreamChunk[] = [];
    s.on("video.chunk", (c: unknown) => chunks.push(StreamChunkSchema.parse({ ...(c as object), data: new Uint8Array((c as { data: ArrayBuffer }).data) })));
    expect(await ask(s, "video.subscribe", { ...DUT, resource: "screen" })).toEqual({ ok: true, host: "sim-1", device: "dut1", resource: "screen" });
    await waitFor(() => chunks.length >= 5, 10_000);
    expect(chunks[0]?.type).toBe("key");
    expect(chunks[0]).toMatchObject({ codec: "vp8", width: 160, height: 120 });
    const latest = chunks.at(-1) as StreamChunk;
    expect(Date.now() - (latest.captured_at_ms ?? 0)).toBeLessThan(2000);
    expect(hub.hub.video()?.watchers("sim-1", "dut1", "screen")).toBe(1);
    s.disconnect();
    await waitFor(() => hub.hub.video()?.watchers("sim-1", "dut1", "screen") === 0, 5000);
  });
});

describe("fleet topics", () => {
  it("announces action progress, resource state, leases and health as they change", async () => {
    const s = await socketFor(keys.viewer);
    const seen: Array<[string, Record<string, unknown>]> = [];
    for (const topic of ["action.queued", "action.running", "action.finished", "resource.state", "lease.granted", "lease.extended", "lease.ended", "device.health"]) {
      s.on(topic, (payload: Record<string, unknown>) => seen.push([topic, payload]));
    }
    const off = await action("power.off");
    const id = off.body.id;
    await waitFor(() => seen.some(([t, p]) => t === "resource.state" && p.resource === "power" && p.power === "off"), 5000);
    const progress = seen.filter(([, p]) => p.id === id).map(([t, p]) => [t, p.status]);
    expect(progress).toEqual([
      ["action.queued", "queued"],
      ["action.running", "running"],
      ["action.finished", "succeeded"],
    ]);

    const lease = await postJson(`${hub.url}/api/leases`, { target: DUT, ttl_s: 30, owner: "alice" });
    await postJson(`${hub.url}/api/leases/${String(lease.body.id)}/keepalive`, { lease_token: lease.body.token, ttl_s: 60 });
    await getJson(`${hub.url}/api/leases/${String(lease.body.id)}`, { method: "DELETE", headers: { "x-lease-token": String(lease.body.token) } });
    await getJson(`${hub.url}/api/hosts/sim-1/devices/dut1/health`, { method: "PUT", headers: { "content-type": "application/json" }, body: JSON.stringify({ health: "maintenance", reason: "reseating" }) });
    await getJson(`${hub.url}/api/hosts/sim-1/devices/dut1/health`, { method: "PUT", headers: { "content-type": "application/json" }, body: JSON.stringify({ health: "good", reason: "done" }) });
    await waitFor(() => seen.filter(([t]) => t === "device.health").length === 2, 5000);
    const leaseEvents = seen.filter(([t]) => t.startsWith("lease.")).map(([t, p]) => [t, p.id, p.owner]);
    expect(leaseEvents).toEqual([
      ["lease.granted", lease.body.id, "alice"],
      ["lease.extended", lease.body.id, "alice"],
      ["lease.ended", lease.body.id, "alice"],
    ]);
    expect(JSON.stringify(seen)).not.toContain(String(lease.body.token));
    expect(seen.filter(([t]) => t === "device.health").map(([, p]) => [p.health, p.reason])).toEqual([
      ["maintenance", "reseating"],
      ["good", "done"],
    ]);
  });
});
