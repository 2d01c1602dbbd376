import { ActionRecordSchema, ActionRequestSchema, HelloAckSchema, type ActionRequest } from "@labrig/shared";
import type { Socket as ClientSocket } from "socket.io-client";
import { afterEach, describe, expect, it } from "vitest";
import {
  addHost,
  agentSocket,
  cleanupTempDirs,
  cli,
  connect,
  connectedAgent,
  getJson,
  memoryLogger,
  postJson,
  queryDb,
  sayHello,
  startHub,
  stopAll,
  testEnv,
  waitFor,
  type RunningHub,
} from "./helpers.js";

afterEach(async () => {
  await stopAll();
  cleanupTempDirs();
});

async function hubWithAgent(env: Record<string, string> = {}, logger?: ReturnType<typeof memoryLogger>["logger"]) {
  const hub = await startHub({ env, ...(logger ? { logger } : {}) });
  const token = await addHost(hub.dataDir, "sim-1");
  const agent = await connectedAgent(hub.url, "sim-1", token);
  const ack = await sayHello(agent, "sim-1");
  expect(ack.ok).toBe(true);
  return { hub, token, agent };
}

/** Answers every action.request like a healthy agent would; returns the requests it saw. */
function answerActions(agent: ClientSocket, reply: (req: ActionRequest) => Record<string, unknown>): ActionRequest[] {
  const seen: ActionRequest[] = [];
  agent.on("action.request", (raw: unknown) => {
    const req = ActionRequestSchema.parse(raw);
    seen.push(req);
    const started = new Date();
    agent.emit("action.result", {
      id: req.id,
      host: "sim-1",
      device: req.device,
      started_at: started.toISOString(),
      finished_at: new Date(started.getTime() + 3).toISOString(),
      duration_ms: 3,
      ...reply(req),
    });
  });
  return seen;
}

const actionsUrl = (hub: RunningHub) => `${hub.url}/api/hosts/sim-1/devices/dut-1/actions`;

describe("/agent authentication", () => {
  it("refuses a bad token with unauthorized", async () => {
    const hub = await startHub();
    await addHost(hub.dataDir, "sim-1");
    const socket = agentSocket(hub.url, { host: "sim-1", token: "lrh_wrong" });
    const err = (await connect(socket).then(
      () => null,
      (e: unknown) => e,
    )) as (Error & { data?: { error_code: string; message: string } }) | null;
    expect(err).not.toBeNull();
    expect(err?.data?.error_code).toBe("unauthorized");
    expect(err?.data?.message).toContain("labrig-hub host token sim-1");
  });

  it("refuses a handshake without credentials and one for an unknown host", async () => {
    const hub = await startHub();
    const token = await addHost(hub.dataDir, "sim-1");
    for (const auth of [{}, { host: "ghost", token }]) {
      const err = (await connect(agentSocket(hub.url, auth)).then(
        () => null,
        (e: unknown) => e,
      )) as (Error & { data?: { error_code: string } }) | null;
      expect(err?.data?.error_code, JSON.stringify(auth)).toBe("unauthorized");
    }
  });

  it("refuses a hello naming another host, and logs both ids", async () => {
    const { logger, lines } = memoryLogger();
    const hub = await startHub({ logger });
    const token = await addHost(hub.dataDir, "sim-1");
    await addHost(hub.dataDir, "sim-2");
    const agent = await connectedAgent(hub.url, "sim-1", token);
    const ack = HelloAckSchema.parse(await sayHello(agent, "sim-2"));
    expect(ack.ok).toBe(false);
    if (!ack.ok) expect(ack.error.error_code).toBe("forbidden");
    const warn = lines.find((l) => l.level === 40 && l.authenticated_host === "sim-1" && l.claimed_host === "sim-2");
    expect(warn).toBeDefined();
    const hosts = (await getJson(`${hub.url}/api/hosts`)).body.hosts as { id: string; state: string }[];
    expect(hosts.every((h) => h.state === "offline")).toBe(true);
    // The token never reaches the log.
    expect(JSON.stringify(lines)).not.toContain(token);
  });
});

describe("/agent hello and presence", () => {
  it("hello marks the host online with its devices in GET /api/hosts", async () => {
    const { hub } = await hubWithAgent();
    const res = await getJson(`${hub.url}/api/hosts`);
    const [host] = res.body.hosts as Record<string, unknown>[];
    expect(host).toMatchObject({ id: "sim-1", state: "online", agent_version: "0.1.0-test" });
    expect(typeof host?.last_seen).toBe("string");
    expect(host?.devices).toEqual([
      {
        id: "dut-1",
        labels: { board: "rpi4" },
        capabilities: ["gpio", "power", "serial"],
        resources: [
          { name: "console", kind: "serial" },
          { name: "power", kind: "power" },
          { name: "reset", kind: "gpio" },
          { name: "boot-sel", kind: "gpio" },
        ],
        state: {},
        health: "good",
        health_reason: null,
        lease: null,
        load: 0,
      },
    ]);
    const detail = await getJson(`${hub.url}/api/hosts/sim-1`);
    expect((detail.body.events as { kind: string }[])[0]?.kind).toBe("online");
    expect((await getJson(`${hub.url}/api/health`)).body.hosts_online).toBe(1);
  });

  it("the hello ack tells the agent the heartbeat interval and hub version", async () => {
    const hub = await startHub({ env: { LABRIG_HEARTBEAT_MS: "1234" } });
    const token = await addHost(hub.dataDir, "sim-1");
    const agent = await connectedAgent(hub.url, "sim-1", token);
    const ack = HelloAckSchema.parse(await sayHello(agent, "sim-1"));
    expect(ack).toEqual({ ok: true, heartbeat_interval_ms: 1234, hub_version: expect.any(String), confirm_start: true });
  });

  it("a second hello replaces the device set: devices not listed are removed", async () => {
    const { hub, agent } = await hubWithAgent();
    await sayHello(agent, "sim-1", [{ id: "dut-2", resources: [{ name: "relay", kind: "power" }] }]);
    const res = await getJson(`${hub.url}/api/hosts/sim-1`);
    expect((res.body.devices as { id: string }[]).map((d) => d.id)).toEqual(["dut-2"]);
  });

  it("an invalid hello is refused with validation_failed", async () => {
    const hub = await startHub();
    const token = await addHost(hub.dataDir, "sim-1");
    const agent = await connectedAgent(hub.url, "sim-1", token);
    const ack = (await agent.timeout(2000).emitWithAck("hello", { host: "sim-1", devices: "none" })) as { ok: boolean; error: { error_code: string } };
    expect(ack.ok).toBe(false);
    expect(ack.error.error_code).toBe("validation_failed");
  });

  it("a disconnect marks the host offline at once, with the reason", async () => {
    const { hub, agent } = await hubWithAgent();
    agent.disconnect();
    await waitFor(async () => ((await getJson(`${hub.url}/api/hosts/sim-1`)).body.state === "offline" ? true : null), 2000);
    const events = (await getJson(`${hub.url}/api/hosts/sim-1`)).body.events as { kind: string; detail: string }[];
    expect(events[0]).toMatchObject({ kind: "offline", detail: expect.stringContaining("disconnected:") });
  });

  it("when heartbeats stop (socket still open) the host goes offline within missed × interval + 1 interval", async () => {
    const interval = 200;
    const { hub, agent } = await hubWithAgent({ LABRIG_HEARTBEAT_MS: String(interval), LABRIG_MISSED_HEARTBEATS: "3" });
    // Beat for a while: the host must stay online.
    let lastBeat = 0;
    for (let seq = 0; seq < 5; seq++) {
      await new Promise((r) => setTimeout(r, interval));
      agent.emit("heartbeat", { host: "sim-1", seq, sent_at: new Date().toISOString() });
      lastBeat = Date.now();
    }
    expect((await getJson(`${hub.url}/api/hosts/sim-1`)).body.state).toBe("online");
    await waitFor(async () => ((await getJson(`${hub.url}/api/hosts/sim-1`)).body.state === "offline" ? true : null), 4 * interval + 500, 10);
    const elapsed = Date.now() - lastBeat;
    expect(elapsed).toBeGreaterThanOrEqual(3 * interval - 50);
    expect(elapsed).toBeLessThanOrEqual(4 * interval + 50);
    expect(agent.connected).toBe(true);
    const events = (await getJson(`${hub.url}/api/hosts/sim-1`)).body.events as { kind: string; detail: string }[];
    expect(events[0]).toMatchObject({ kind: "offline", detail: "missed 3 heartbeats" });

    // Heartbeats resuming on the same socket bring it back.
    agent.emit("heartbeat", { host: "sim-1", seq: 6, sent_at: new Date().toISOString() });
    await waitFor(async () => ((await getJson(`${hub.url}/api/hosts/sim-1`)).body.state === "online" ? true : null), 2000);
  });

  it("heartbeats reach last_seen within one sweep, and a clean stop writes the last ones", async () => {
    const { hub, agent } = await hubWithAgent({ LABRIG_HEARTBEAT_MS: "4000" }); // sweeps every 1000 ms
    const lastSeen = () => (queryDb(hub.dataDir, "SELECT last_seen FROM hosts WHERE id = 'sim-1'")[0] as { last_seen: string }).last_seen;
    const afterHello = lastSeen();
    await new Promise((r) => setTimeout(r, 20));
    agent.emit("heartbeat", { host: "sim-1", seq: 1, sent_at: new Date().toISOString() });
    await waitFor(() => (lastSeen() > afterHello ? true : null), 1500, 5);

    const beforeStop = lastSeen();
    await new Promise((r) => setTimeout(r, 20));
    agent.emit("heartbeat", { host: "sim-1", seq: 2, sent_at: new Date().toISOString() });
    await new Promise((r) => setTimeout(r, 30)); // the beat has arrived; a sweep has just run, the next is ~950 ms away
    await hub.hub.stop();
    expect(lastSeen() > beforeStop).toBe(true);
  });

  it("a newer connection for the same host replaces the older one without marking it offline", async () => {
    const { hub, token, agent: first } = await hubWithAgent();
    const firstGone = new Promise<void>((r) => first.once("disconnect", () => r()));
    const second = await connectedAgent(hub.url, "sim-1", token);
    await firstGone;
    expect((await getJson(`${hub.url}/api/hosts/sim-1`)).body.state).toBe("online");
    expect((await sayHello(second, "sim-1")).ok).toBe(true);
    // Actions now go to the new socket.
    answerActions(second, () => ({ status: "succeeded", result: { waited_ms: 1 }, error: null }));
    const res = await postJson(actionsUrl(hub), { action: "wait", params: { ms: 1 } });
    expect(res.body.status).toBe("succeeded");
  });

  it("rotating the token disconnects the agent at its next heartbeat and refuses the old token", async () => {
    const { hub, token, agent } = await hubWithAgent();
    // The CLI is a separate process in production; here it opens its own connection to the same file.
    expect((await cli(["host", "token", "sim-1"], testEnv(hub.dataDir))).code).toBe(0);
    const gone = new Promise<void>((r) => agent.once("disconnect", () => r()));
    agent.emit("heartbeat", { host: "sim-1", seq: 1, sent_at: new Date().toISOString() });
    await gone;
    const err = (await connect(agentSocket(hub.url, { host: "sim-1", token })).then(
      () => null,
      (e: unknown) => e,
    )) as (Error & { data?: { error_code: string } }) | null;
    expect(err?.data?.error_code).toBe("unauthorized");
  });

  it("hosts stored online get one window after a hub restart, then go offline if they did not reconnect", async () => {
    const env = { LABRIG_HEARTBEAT_MS: "200", LABRIG_MISSED_HEARTBEATS: "3" };
    const { hub } = await hubWithAgent(env);
    await hub.hub.stop();
    expect(queryDb<{ state: string }>(hub.dataDir, "SELECT state FROM hosts")).toEqual([{ state: "online" }]);
    const restarted = await startHub({ dataDir: hub.dataDir, env });
    const started = Date.now();
    await new Promise((r) => setTimeout(r, 300));
    expect((await getJson(`${restarted.url}/api/hosts/sim-1`)).body.state).toBe("online");
    await waitFor(async () => ((await getJson(`${restarted.url}/api/hosts/sim-1`)).body.state === "offline" ? true : null), 2000, 10);
    expect(Date.now() - started).toBeGreaterThanOrEqual(600 - 50);
  });
});

describe("actions through a live agent", () => {
  it("a POSTed action is delivered as action.request, answered, returned as the record and stored", async () => {
    const { hub, agent } = await hubWithAgent();
    const seen = answerActions(agent, () => ({ status: "succeeded", result: { width_ms: 100.2 }, error: null }));
    const res = await postJson(actionsUrl(hub), { action: "gpio.pulse", resource: "reset", params: { width_ms: 100 } });
    expect(res.status).toBe(200);
    const record = ActionRecordSchema.parse(res.body);
    expect(seen).toHaveLength(1);
    expect(seen[0]).toEqual({ id: record.id, device: "dut-1", action: "gpio.pulse", resource: "reset", params: { width_ms: 100, value: 1 }, timeout_ms: 10_100, confirm_start: true });
    expect(record).toMatchObject({
      host: "sim-1",
      device: "dut-1",
      action: "gpio.pulse",
      resource: "reset",
      params: { width_ms: 100, value: 1 },
      status: "succeeded",
      result: { width_ms: 100.2 },
      error: null,
      requested_by: "env-admin",
      duration_ms: 3,
    });
    expect(record.finished_at).not.toBeNull();
    const stored = await getJson(`${hub.url}/api/actions/${record.id}`);
    expect(stored.body).toEqual(res.body);
    expect(queryDb(hub.dataDir, "SELECT status FROM actions")).toEqual([{ status: "succeeded" }]);
  });

  it("a hardware failure is 200 with status failed and the agent's envelope", async () => {
    const { hub, agent } = await hubWithAgent();
    const envelope = { error_code: "hardware_error", message: "relay did not switch; check the wiring", recoverable: true };
    answerActions(agent, () => ({ status: "failed", result: null, error: envelope }));
    const res = await postJson(actionsUrl(hub), { action: "power.on", params: {} });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ status: "failed", result: null, error: envelope, resource: "power" });
  });

  it("an agent disconnect while an action it had started is pending fails it with host_lost", async () => {
    const { hub, agent } = await hubWithAgent();
    agent.on("action.request", async (raw: unknown) => {
      const req = ActionRequestSchema.parse(raw);
      // The agent confirms the start (as the real one does before touching hardware), then vanishes.
      const ack = (await agent.timeout(2000).emitWithAck("action.started", { id: req.id, host: "sim-1", device: req.device, started_at: new Date().toISOString() })) as { ok: boolean };
      expect(ack.ok).toBe(true);
      agent.disconnect();
    });
    const res = await postJson(actionsUrl(hub), { action: "wait", params: { ms: 60_000 } });
    expect(res.status).toBe(200);
    expect(res.body.status).toBe("failed");
    expect((res.body.error as { error_code: string }).error_code).toBe("host_lost");
    expect(queryDb<{ status: string; error_json: string }>(hub.dataDir, "SELECT status, error_json FROM actions")[0]?.status).toBe("failed");
  });

  it("a duplicate action.result is acknowledged and does not change the stored record", async () => {
    const { hub, agent } = await hubWithAgent();
    let request: ActionRequest | undefined;
    agent.on("action.request", (raw: unknown) => (request = ActionRequestSchema.parse(raw)));
    const pending = postJson(actionsUrl(hub), { action: "serial.write", params: { data: "reboot\n" } });
    await waitFor(() => request);
    const id = request!.id;
    const result = (bytes: number) => ({
      id,
      host: "sim-1",
      device: "dut-1",
      status: "succeeded",
      result: { bytes },
      error: null,
      started_at: new Date().toISOString(),
      finished_at: new Date().toISOString(),
      duration_ms: 1,
    });
    expect(await agent.timeout(2000).emitWithAck("action.result", result(7))).toEqual({ ok: true });
    const first = await pending;
    expect(first.body.result).toEqual({ bytes: 7 });
    // Redelivered from the outbox, even with a different body: acknowledged, ignored.
    expect(await agent.timeout(2000).emitWithAck("action.result", result(999))).toEqual({ ok: true });
    expect((await getJson(`${hub.url}/api/actions/${id}`)).body).toEqual(first.body);
    // An id the hub never issued is acknowledged too, so the agent's outbox drains.
    expect(await agent.timeout(2000).emitWithAck("action.result", { ...result(1), id: "never-issued" })).toEqual({ ok: true });
    expect(queryDb<{ n: number }>(hub.dataDir, "SELECT COUNT(*) AS n FROM actions")[0]?.n).toBe(1);
  });

  it("a result for another host's action is refused", async () => {
    const { hub, agent } = await hubWithAgent();
    const token2 = await addHost(hub.dataDir, "sim-2");
    const other = await connectedAgent(hub.url, "sim-2", token2);
    await sayHello(other, "sim-2");
    let request: ActionRequest | undefined;
    agent.on("action.request", (raw: unknown) => (request = ActionRequestSchema.parse(raw)));
    const pending = postJson(actionsUrl(hub), { action: "gpio.read", resource: "reset", params: {} });
    await waitFor(() => request);
    const forged = { id: request!.id, host: "sim-2", device: "dut-1", status: "succeeded", result: { value: 1 }, error: null, started_at: "", finished_at: "", duration_ms: 0 };
    const ack = (await other.timeout(2000).emitWithAck("action.result", forged)) as { ok: boolean };
    expect(ack.ok).toBe(false);
    expect((await getJson(`${hub.url}/api/actions/${request!.id}`)).body.status).toBe("running");
    agent.emit("action.result", { ...forged, host: "sim-1", result: { value: 0 } });
    expect((await pending).body).toMatchObject({ status: "succeeded", result: { value: 0 } });
  });

  it("an action whose resource is ambiguous is refused before anything is sent", async () => {
    const { hub, agent } = await hubWithAgent();
    const seen = answerActions(agent, () => ({ status: "succeeded", result: { value: 1 }, error: null }));
    const res = await postJson(actionsUrl(hub), { action: "gpio.read", params: {} });
    expect(res.status).toBe(400);
    expect(res.body.error_code).toBe("ambiguous_resource");
    expect(seen).toHaveLength(0);
    expect(queryDb(hub.dataDir, "SELECT id FROM actions")).toEqual([]);
  });

  it("stopping the hub fails a pending action with shutting_down", async () => {
    const { hub, agent } = await hubWithAgent();
    let request: ActionRequest | undefined;
    agent.on("action.request", (raw: unknown) => (request = ActionRequestSchema.parse(raw)));
    const pending = postJson(actionsUrl(hub), { action: "wait", params: { ms: 60_000 } });
    await waitFor(() => request);
    const stopped = hub.hub.stop();
    const res = await pending;
    await stopped;
    expect(res.body.status).toBe("failed");
    expect((res.body.error as { error_code: string }).error_code).toBe("shutting_down");
    // Hosts keep their stored state across a hub restart (the grace window handles them).
    expect(queryDb<{ state: string }>(hub.dataDir, "SELECT state FROM hosts")).toEqual([{ state: "online" }]);
  });
});

describe("console and device state", () => {
  it("keeps the console tail per device resource and serves it over REST", async () => {
    const { hub, agent } = await hubWithAgent();
    const chunk = (seq: number, data: string) => ({ host: "sim-1", device: "dut-1", resource: "console", seq, at: new Date().toISOString(), data });
    expect(await agent.timeout(2000).emitWithAck("console.output", chunk(0, "U-Boot 2024.01\n"))).toEqual({ ok: true });
    await agent.timeout(2000).emitWithAck("console.output", chunk(1, "login: "));
    const res = await getJson(`${hub.url}/api/hosts/sim-1/devices/dut-1/console?resource=console`);
    expect(res.body.text).toBe("U-Boot 2024.01\nlogin: ");
    // The only serial resource is picked when none is named.
    expect((await getJson(`${hub.url}/api/hosts/sim-1/devices/dut-1/console`)).body.text).toBe("U-Boot 2024.01\nlogin: ");
    // Only the last 64 KiB are kept.
    await agent.timeout(2000).emitWithAck("console.output", chunk(2, "a".repeat(70 * 1024)));
    const tail = (await getJson(`${hub.url}/api/hosts/sim-1/devices/dut-1/console`)).body.text as string;
    expect(tail).toBe("a".repeat(64 * 1024));
    expect((await getJson(`${hub.url}/api/hosts/sim-1/devices/dut-1/console?resource=power`)).body.error_code).toBe("unknown_resource");
  });

  it("merges device.state into the device's state, keyed by resource", async () => {
    const { hub, agent } = await hubWithAgent();
    const at = new Date().toISOString();
    await agent.timeout(2000).emitWithAck("device.state", { host: "sim-1", device: "dut-1", resource: "power", status: "ready", power: "on", at });
    await agent.timeout(2000).emitWithAck("device.state", { host: "sim-1", device: "dut-1", resource: "console", status: "unavailable", detail: "port unplugged", at });
    const ack = (await agent.timeout(2000).emitWithAck("device.state", { host: "sim-1", device: "dut-1", resource: "nope", status: "ready", at })) as { ok: boolean };
    expect(ack.ok).toBe(false);
    const [device] = (await getJson(`${hub.url}/api/hosts/sim-1`)).body.devices as { state: Record<string, unknown> }[];
    expect(device?.state).toEqual({
      power: { status: "ready", power: "on", at },
      console: { status: "unavailable", detail: "port unplugged", at },
    });
  });
});

describe("hub-side deadline", () => {
  it("an action with no result by timeout_ms + 5 s fails with action_timeout and is canceled on the agent", async () => {
    const { hub, agent } = await hubWithAgent({ LABRIG_ACTION_TIMEOUT_MS: "100" });
    const requests: ActionRequest[] = [];
    const cancels: unknown[] = [];
    agent.on("action.request", (raw: unknown) => requests.push(ActionRequestSchema.parse(raw)));
    agent.on("action.cancel", (raw: unknown) => cancels.push(raw));
    const started = Date.now();
    const res = await postJson(actionsUrl(hub), { action: "wait", params: { ms: 50 } });
    const elapsed = Date.now() - started;
    expect(requests[0]?.timeout_ms).toBe(150);
    expect(elapsed).toBeGreaterThanOrEqual(5150 - 20);
    expect(res.body.status).toBe("failed");
    expect((res.body.error as { error_code: string }).error_code).toBe("action_timeout");
    expect(cancels).toEqual([{ id: requests[0]?.id }]);
    // A result arriving after the deadline is acknowledged but changes nothing.
    const late = { id: requests[0]?.id, host: "sim-1", device: "dut-1", status: "succeeded", result: { waited_ms: 50 }, error: null, started_at: "", finished_at: "", duration_ms: 50 };
    expect(await agent.timeout(2000).emitWithAck("action.result", late)).toEqual({ ok: true });
    expect((await getJson(`${hub.url}/api/actions/${requests[0]?.id}`)).body.status).toBe("failed");
  });
});
