import { ActionRecordSchema } from "@labrig/shared";
import { afterEach, describe, expect, it } from "vitest";
import { FakeAgent, api, countRows, operatorKey, post, waitFor, waitQueued } from "./dispatch-helpers.js";
import { cleanupTempDirs, queryDb, startHub, stopAll, type RunningHub } from "./helpers.js";

afterEach(async () => {
  await stopAll();
  cleanupTempDirs();
});

const gpioRead = (target: unknown, extra: Record<string, unknown> = {}) => ({ action: "gpio.read", params: {}, target, ...extra });
/** A write: unlike a read, its start is confirmed with the hub, so it is never run twice. */
const gpioWrite = (target: unknown) => ({ action: "gpio.write", params: { value: 1 }, target });
const selector = (labels: Record<string, string> = {}, capabilities: string[] = []) => ({ selector: { labels, capabilities } });

async function hostDevices(hub: RunningHub, host: string): Promise<Record<string, Record<string, unknown>>> {
  const res = await api(hub, "GET", `/api/hosts/${host}`);
  return Object.fromEntries((res.body.devices as Record<string, unknown>[]).map((d) => [d.id as string, d]));
}

describe("selector dispatch", () => {
  it("spreads concurrent work over matching devices, one action at a time per device", async () => {
    const hub = await startHub();
    const agents = await Promise.all(
      ["rig-a", "rig-b", "rig-c"].map((h) => FakeAgent.start(hub, h, [{ id: "dut", labels: { board: "rpi4" } }], (a) => (a.delayMs = 150))),
    );
    const results = await Promise.all(Array.from({ length: 6 }, () => post(hub, "/api/actions", gpioRead(selector({ board: "rpi4" })))));
    for (const r of results) {
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      const record = ActionRecordSchema.parse(r.body);
      expect(record.status).toBe("succeeded");
      expect(record.resource).toBe("io");
    }
    // Least loaded first: with three idle devices and six requests, each device runs exactly two.
    expect(agents.map((a) => a.executed.length)).toEqual([2, 2, 2]);
    expect(new Set(results.map((r) => r.body.host))).toEqual(new Set(["rig-a", "rig-b", "rig-c"]));
    const stored = queryDb<{ target_json: string; host_id: string; attempts: number }>(hub.dataDir, "SELECT target_json, host_id, attempts FROM actions");
    expect(stored).toHaveLength(6);
    expect(stored.every((r) => JSON.parse(r.target_json).selector.labels.board === "rpi4" && r.attempts === 1)).toBe(true);
  });

  it("respects labels and capabilities and skips offline, unhealthy and leased devices", async () => {
    const hub = await startHub();
    const good = await FakeAgent.start(hub, "good-1", [{ id: "dut", labels: { board: "x" }, capabilities: ["hdmi"] }]);
    const other = await FakeAgent.start(hub, "other-1", [{ id: "dut", labels: { board: "y" }, capabilities: ["hdmi"] }]);
    const noCap = await FakeAgent.start(hub, "nocap-1", [{ id: "dut", labels: { board: "x" } }]);
    const sick = await FakeAgent.start(hub, "sick-1", [{ id: "dut", labels: { board: "x" }, capabilities: ["hdmi"] }]);
    const gone = await FakeAgent.start(hub, "gone-1", [{ id: "dut", labels: { board: "x" }, capabilities: ["hdmi"] }]);
    const held = await FakeAgent.start(hub, "held-1", [{ id: "dut", labels: { board: "x" }, capabilities: ["hdmi"] }]);

    expect((await api(hub, "PUT", "/api/hosts/sick-1/devices/dut/health", { health: "maintenance", reason: "reflashing the bootloader" })).status).toBe(200);
    gone.disconnect();
    await waitFor(async () => (await api(hub, "GET", "/api/hosts/gone-1")).body.state === "offline");
    const lease = await post(hub, "/api/leases", { target: { host: "held-1", device: "dut" }, ttl_s: 60, owner: "ci-job-7" });
    expect(lease.status, JSON.stringify(lease.body)).toBe(201);

    for (let i = 0; i < 4; i++) {
      const res = await post(hub, "/api/actions", gpioRead(selector({ board: "x" }, ["hdmi"])));
      expect(res.body).toMatchObject({ status: "succeeded", host: "good-1", device: "dut" });
    }
    expect(good.executed).toHaveLength(4);
    for (const a of [other, noCap, sick, gone, held]) expect(a.requests, a.host).toHaveLength(0);

    // A selector no device could ever satisfy is 404, and nothing is stored.
    const before = countRows(hub, "actions");
    const none = await post(hub, "/api/actions", gpioRead(selector({ board: "z" })));
    expect(none.status).toBe(404);
    expect(none.body.error_code).toBe("unknown_device");
    expect(none.body.message).toContain("No device matches selector");
    expect(countRows(hub, "actions")).toBe(before);
  });

  it("queues when no device is free and times out with no_device_available and Retry-After", async () => {
    const hub = await startHub();
    const agent = await FakeAgent.start(hub, "rig-a", [{ id: "dut", labels: { board: "x" } }], (a) => (a.hold = true));
    const first = post(hub, "/api/actions", gpioRead(selector({ board: "x" })));
    await waitFor(() => agent.held.size === 1);
    const started = Date.now();
    const res = await post(hub, "/api/actions", gpioRead(selector({ board: "x" }), { queue_timeout_ms: 300 }));
    expect(Date.now() - started).toBeGreaterThanOrEqual(280);
    expect(res.status).toBe(503);
    expect(res.body).toMatchObject({ error_code: "no_device_available", recoverable: true });
    const retryAfter = res.body.retry_after as number;
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(5);
    expect(res.headers.get("retry-after")).toBe(String(retryAfter));
    const id = (res.body.details as { action_id: string }).action_id;
    const stored = await api(hub, "GET", `/api/actions/${id}`);
    expect(stored.body).toMatchObject({ status: "failed", host: null, error: { error_code: "no_device_available" } });
    expect(agent.requests).toHaveLength(1);
    agent.release();
    expect((await first).body.status).toBe("succeeded");
  });

  it("runs waiting requests by priority, then age", async () => {
    const hub = await startHub();
    const agent = await FakeAgent.start(hub, "rig-a", [{ id: "dut" }], (a) => (a.hold = true));
    const blocker = post(hub, "/api/actions", gpioRead({ host: "rig-a", device: "dut" }));
    await waitFor(() => agent.held.size === 1);
    const low1 = post(hub, "/api/actions", gpioRead(selector(), { priority: 0 }));
    await waitQueued(hub, 1);
    const low2 = post(hub, "/api/actions", gpioRead(selector(), { priority: 0 }));
    await waitQueued(hub, 2);
    const high = post(hub, "/api/actions", gpioRead(selector(), { priority: 10 }));
    await waitQueued(hub, 3);
    agent.hold = false;
    agent.release();
    const [b, l1, l2, h] = await Promise.all([blocker, low1, low2, high]);
    const order = agent.executedIds();
    expect(order).toEqual([b.body.id, h.body.id, l1.body.id, l2.body.id]);
  });
});

describe("failover", () => {
  it("re-dispatches what had not started, fails what had started with host_lost, and runs nothing twice", async () => {
    const hub = await startHub();
    const a = await FakeAgent.start(hub, "rig-a", [{ id: "one", labels: { pool: "p" } }, { id: "two", labels: { pool: "p" } }], (x) => (x.hold = true));
    const running = post(hub, "/api/actions", gpioWrite(selector({ pool: "p" })));
    await waitFor(() => a.held.size === 1);
    // The second device receives its action but never reports it started (the agent is stuck).
    a.confirm = false;
    const unstarted = post(hub, "/api/actions", gpioWrite(selector({ pool: "p" })));
    await waitFor(() => a.requests.length === 2);
    const queued = [post(hub, "/api/actions", gpioWrite(selector({ pool: "p" }))), post(hub, "/api/actions", gpioWrite(selector({ pool: "p" })))];
    await waitQueued(hub, 2);

    a.disconnect();
    const lost = await running;
    expect(lost.body).toMatchObject({ status: "failed", host: "rig-a", error: { error_code: "host_lost" } });

    const b = await FakeAgent.start(hub, "rig-b", [{ id: "dut", labels: { pool: "p" } }]);
    const done = await Promise.all([unstarted, ...queued]);
    for (const r of done) expect(r.body).toMatchObject({ status: "succeeded", host: "rig-b", device: "dut" });
    const redispatched = done[0]?.body as { id: string; attempts: number };
    expect(redispatched.attempts).toBe(2);

    // Nothing ran twice: each id executed exactly once across both agents.
    const all = [...a.executedIds(), ...b.executedIds()];
    expect(new Set(all).size).toBe(all.length);
    expect(a.executedIds()).toEqual([lost.body.id]);
    expect(b.executedIds().sort()).toEqual(done.map((r) => r.body.id as string).sort());

    // The stuck agent comes back and finally asks to start its old request: the hub says no.
    await a.connect();
    const oldRequest = a.requests[1];
    expect(oldRequest).toBeDefined();
    expect(await a.started(oldRequest!)).toBe(false);
    expect((await api(hub, "GET", `/api/actions/${redispatched.id}`)).body.status).toBe("succeeded");
  });

  it("a read in flight when its host vanishes is sent again: reads start without the confirmation round trip", async () => {
    const hub = await startHub();
    const a = await FakeAgent.start(hub, "rig-a", [{ id: "dut", labels: { pool: "r" } }], (x) => (x.hold = true));
    const read = post(hub, "/api/actions", gpioRead(selector({ pool: "r" })));
    await waitFor(() => a.held.size === 1);
    // The agent started it without asking (no action.started for a read), then vanished.
    expect(a.requests[0]?.confirm_start).toBe(false);
    a.disconnect();
    const b = await FakeAgent.start(hub, "rig-b", [{ id: "dut", labels: { pool: "r" } }]);
    const res = await read;
    expect(res.body).toMatchObject({ status: "succeeded", host: "rig-b", attempts: 2 });
    expect(b.executedIds()).toEqual([res.body.id]);
  });

  it("an exact-target action whose host vanished before it started waits for the host to return", async () => {
    const hub = await startHub();
    const a = await FakeAgent.start(hub, "rig-a", [{ id: "dut" }], (x) => (x.confirm = false));
    const pending = post(hub, "/api/hosts/rig-a/devices/dut/actions", { action: "gpio.read", params: {} });
    await waitFor(() => a.requests.length === 1);
    a.disconnect();
    await waitQueued(hub, 1);
    a.confirm = true;
    await a.connect();
    const res = await pending;
    expect(res.body).toMatchObject({ status: "succeeded", host: "rig-a", attempts: 2 });
    expect(a.executedIds()).toEqual([res.body.id]);
  });
});

describe("leases", () => {
  it("hold devices exclusively: exact targets need the token (423), selectors go elsewhere", async () => {
    const hub = await startHub();
    const a = await FakeAgent.start(hub, "rig-a", [{ id: "dut", labels: { board: "x" } }]);
    const b = await FakeAgent.start(hub, "rig-b", [{ id: "dut", labels: { board: "x" } }]);
    const op = await operatorKey(hub);
    const lease = await post(hub, "/api/leases", { target: { host: "rig-a", device: "dut" }, ttl_s: 60, owner: "nightly-42" }, op);
    expect(lease.body.requested_by).toBe("ci-operator");
    expect(lease.status).toBe(201);
    expect(lease.body).toMatchObject({ owner: "nightly-42", devices: [{ host: "rig-a", device: "dut" }] });
    const token = lease.body.token as string;
    expect(token.startsWith("lrl_")).toBe(true);
    // Only the hash is stored.
    expect(JSON.stringify(queryDb(hub.dataDir, "SELECT * FROM leases"))).not.toContain(token);

    const refused = await post(hub, "/api/hosts/rig-a/devices/dut/actions", { action: "gpio.read", params: {} });
    expect(refused.status).toBe(423);
    expect(refused.body.error_code).toBe("lease_required");
    expect(refused.body.message).toContain("nightly-42");
    expect(refused.body.message).toContain(lease.body.expires_at as string);

    const withToken = await post(hub, "/api/hosts/rig-a/devices/dut/actions", { action: "gpio.read", params: {}, lease_token: token });
    expect(withToken.body).toMatchObject({ status: "succeeded", lease_id: lease.body.id });

    for (let i = 0; i < 3; i++) expect((await post(hub, "/api/actions", gpioRead(selector({ board: "x" })))).body.host).toBe("rig-b");
    // With the token, a selector prefers the lease's own device.
    expect((await post(hub, "/api/actions", gpioRead(selector({ board: "x" }), { lease_token: token }))).body.host).toBe("rig-a");
    expect(a.executed).toHaveLength(2);
    expect(b.executed).toHaveLength(3);

    // A second lease on the same device cannot be had now.
    const second = await post(hub, "/api/leases", { target: { host: "rig-a", device: "dut" }, ttl_s: 60, owner: "other" });
    expect(second.status).toBe(503);
    expect(second.body.error_code).toBe("no_device_available");
    expect(second.headers.get("retry-after")).not.toBeNull();

    const devices = await hostDevices(hub, "rig-a");
    expect(devices.dut?.lease).toEqual({ id: lease.body.id, owner: "nightly-42", expires_at: lease.body.expires_at });

    // Releasing needs the token; afterwards anyone may use the device.
    expect((await api(hub, "DELETE", `/api/leases/${lease.body.id as string}`, undefined, { ...op, "x-lease-token": "lrl_wrong" })).status).toBe(403);
    expect((await api(hub, "DELETE", `/api/leases/${lease.body.id as string}`, undefined, op)).status).toBe(423);
    const released = await api(hub, "DELETE", `/api/leases/${lease.body.id as string}`, undefined, { ...op, "x-lease-token": token });
    expect(released.body).toMatchObject({ state: "ended", end_reason: "released by its holder" });
    expect((await post(hub, "/api/hosts/rig-a/devices/dut/actions", { action: "gpio.read", params: {} })).body.status).toBe("succeeded");
    expect((await api(hub, "GET", "/api/leases")).body.leases).toEqual([]);
    expect(((await api(hub, "GET", "/api/leases?all=1")).body.leases as unknown[]).length).toBe(1);
  });

  it("are all-or-nothing for count, and a waiting lease is granted when devices free up", async () => {
    const hub = await startHub();
    await FakeAgent.start(hub, "rig-a", [{ id: "dut", labels: { pool: "p" } }]);
    await FakeAgent.start(hub, "rig-b", [{ id: "dut", labels: { pool: "p" } }]);
    const one = await post(hub, "/api/leases", { target: selector({ pool: "p" }), ttl_s: 60, owner: "one" });
    expect(one.status).toBe(201);
    const before = countRows(hub, "leases");
    const two = await post(hub, "/api/leases", { target: selector({ pool: "p" }), count: 2, ttl_s: 60, owner: "two" });
    expect(two.status).toBe(503);
    expect(countRows(hub, "leases")).toBe(before);
    const waiting = post(hub, "/api/leases", { target: selector({ pool: "p" }), count: 2, ttl_s: 60, owner: "two", wait_ms: 5000 });
    await new Promise((r) => setTimeout(r, 100));
    await api(hub, "DELETE", `/api/leases/${one.body.id as string}`, undefined, { "x-lease-token": one.body.token as string });
    const granted = await waiting;
    expect(granted.status).toBe(201);
    expect((granted.body.devices as unknown[]).length).toBe(2);
  });

  it("keepalive extends the lease; expiry releases it, runs the cleanup action and stores a host event", async () => {
    const hub = await startHub();
    const agent = await FakeAgent.start(hub, "rig-a", [{ id: "dut" }]);
    const lease = await post(hub, "/api/leases", {
      target: { host: "rig-a", device: "dut" },
      ttl_s: 1,
      owner: "flaky-test",
      cleanup: { action: "gpio.write", params: { value: 0 } },
    });
    expect(lease.status, JSON.stringify(lease.body)).toBe(201);
    const id = lease.body.id as string;
    const token = lease.body.token as string;
    const op = await operatorKey(hub);

    expect((await post(hub, `/api/leases/${id}/keepalive`, { ttl_s: 1 }, op)).status).toBe(423);
    const kept = await post(hub, `/api/leases/${id}/keepalive`, { ttl_s: 2 }, { ...op, "x-lease-token": token });
    expect(kept.status).toBe(200);
    expect(Date.parse(kept.body.expires_at as string)).toBeGreaterThan(Date.parse(lease.body.expires_at as string));
    const kept2 = await post(hub, `/api/leases/${id}/keepalive`, { lease_token: token }, op);
    expect(kept2.body.ttl_s).toBe(2);

    await waitFor(async () => (await api(hub, "GET", `/api/leases/${id}`)).body.state === "ended", 5000);
    expect((await api(hub, "GET", `/api/leases/${id}`)).body).toMatchObject({ end_reason: "expired" });
    await waitFor(() => agent.executed.some((r) => r.action === "gpio.write"), 5000);
    const cleanup = agent.executed.find((r) => r.action === "gpio.write");
    expect(cleanup?.params).toEqual({ value: 0 });
    await waitFor(async () => {
      const list = (await api(hub, "GET", "/api/actions?device=dut")).body.actions as { action: string; requested_by: string; status: string }[];
      return list.find((x) => x.action === "gpio.write" && x.status === "succeeded");
    });
    const actions = (await api(hub, "GET", "/api/actions?device=dut")).body.actions as { action: string; requested_by: string }[];
    expect(actions.find((x) => x.action === "gpio.write")?.requested_by).toBe("lease-cleanup");
    const events = queryDb<{ kind: string; detail: string }>(hub.dataDir, "SELECT kind, detail FROM host_events WHERE kind = 'lease' ORDER BY id");
    expect(events.map((e) => e.detail)).toEqual([expect.stringContaining("leased to 'flaky-test'"), expect.stringContaining("ended: expired; cleanup gpio.write queued")]);
    // The token no longer works after expiry.
    expect((await post(hub, `/api/leases/${id}/keepalive`, {}, { ...op, "x-lease-token": token })).status).toBe(409);
    // An admin may extend or release any lease without its token (here: one that has ended → 409, not 423).
    expect((await post(hub, `/api/leases/${id}/keepalive`, {})).status).toBe(409);
  });

  it("survive a hub restart", async () => {
    const hub = await startHub();
    const agent = await FakeAgent.start(hub, "rig-a", [{ id: "dut" }]);
    const lease = await post(hub, "/api/leases", { target: { host: "rig-a", device: "dut" }, ttl_s: 600, owner: "long-run" });
    await hub.hub.stop();
    const again = await startHub({ dataDir: hub.dataDir });
    await agent.connect(again);
    expect(((await api(again, "GET", "/api/leases")).body.leases as { id: string }[]).map((l) => l.id)).toEqual([lease.body.id]);
    expect((await post(again, "/api/hosts/rig-a/devices/dut/actions", { action: "gpio.read", params: {} })).status).toBe(423);
    expect((await post(again, "/api/hosts/rig-a/devices/dut/actions", { action: "gpio.read", params: {}, lease_token: lease.body.token })).body.status).toBe("succeeded");
  });
});

describe("device health", () => {
  it("N hardware failures in a row make a device unknown; it then gets no work until an admin sets it good", async () => {
    const hub = await startHub({ env: { LABRIG_HEALTH_FAILURE_THRESHOLD: "2" } });
    const agent = await FakeAgent.start(hub, "rig-a", [{ id: "dut", labels: { board: "x" } }], (a) => (a.failWith = "hardware_error"));
    const exact = "/api/hosts/rig-a/devices/dut/actions";
    // A success between failures resets the count.
    expect((await post(hub, exact, { action: "gpio.read", params: {} })).body.status).toBe("failed");
    agent.failWith = null;
    expect((await post(hub, exact, { action: "gpio.read", params: {} })).body.status).toBe("succeeded");
    agent.failWith = "hardware_error";
    expect((await post(hub, exact, { action: "gpio.read", params: {} })).body.status).toBe("failed");
    expect((await hostDevices(hub, "rig-a")).dut?.health).toBe("good");
    // A failure that is not about hardware does not count.
    agent.failWith = "validation_failed";
    await post(hub, exact, { action: "gpio.read", params: {} });
    // Nor does a full disk on the agent: the device itself is fine.
    agent.failWith = "storage_full";
    await post(hub, exact, { action: "gpio.read", params: {} });
    agent.failWith = "hardware_error";
    expect((await hostDevices(hub, "rig-a")).dut?.health).toBe("good");
    await post(hub, exact, { action: "gpio.read", params: {} });

    const device = (await hostDevices(hub, "rig-a")).dut;
    expect(device).toMatchObject({ health: "unknown", health_reason: expect.stringContaining("2 hardware failures in a row"), lease: null, load: 0 });
    const events = queryDb<{ kind: string; device_id: string; detail: string }>(hub.dataDir, "SELECT kind, device_id, detail FROM host_events WHERE kind = 'health'");
    expect(events).toEqual([{ kind: "health", device_id: "dut", detail: expect.stringContaining("good → unknown") }]);

    const sent = agent.requests.length;
    const refused = await post(hub, exact, { action: "gpio.read", params: {} });
    expect(refused.status).toBe(503);
    expect(refused.body.error_code).toBe("device_unavailable");
    expect(refused.body.message).toContain("is unknown");
    expect(refused.body.message).toContain("PUT /api/hosts/rig-a/devices/dut/health");
    expect((await post(hub, "/api/actions", gpioRead(selector({ board: "x" }), { queue_timeout_ms: 200 }))).body.error_code).toBe("no_device_available");
    expect(agent.requests.length).toBe(sent);

    // The admin override: a selector request waiting in the queue runs as soon as the device is good again.
    agent.failWith = null;
    const waiting = post(hub, "/api/actions", gpioRead(selector({ board: "x" }), { queue_timeout_ms: 5000 }));
    await waitQueued(hub, 1);
    const set = await api(hub, "PUT", "/api/hosts/rig-a/devices/dut/health", { health: "good", reason: "replaced the relay board" });
    expect(set.body).toMatchObject({ health: "good", health_reason: "replaced the relay board" });
    expect((await waiting).body.status).toBe("succeeded");
    expect(queryDb(hub.dataDir, "SELECT detail FROM host_events WHERE kind = 'health' ORDER BY id DESC LIMIT 1")).toEqual([
      { detail: expect.stringMatching(/unknown → good: replaced the relay board \(by env-admin\)/) },
    ]);
  });
});

describe("cancel", () => {
  it("cancels a queued action (never sent) and a running one (aborted on the agent); a finished one is 409", async () => {
    const hub = await startHub();
    const agent = await FakeAgent.start(hub, "rig-a", [{ id: "dut" }], (a) => (a.hold = true));
    const running = post(hub, "/api/hosts/rig-a/devices/dut/actions", { action: "wait", params: { ms: 60_000 } });
    await waitFor(() => agent.held.size === 1);
    const queued = post(hub, "/api/hosts/rig-a/devices/dut/actions", { action: "gpio.read", params: {} });
    await waitQueued(hub, 1);
    const queuedId = ((await api(hub, "GET", "/api/actions?status=queued")).body.actions as { id: string }[])[0]?.id as string;

    const c1 = await api(hub, "DELETE", `/api/actions/${queuedId}`);
    expect(c1.status).toBe(200);
    expect(c1.body).toMatchObject({ id: queuedId, status: "canceled", error: { error_code: "canceled" } });
    expect((await queued).body).toMatchObject({ status: "canceled" });

    const runningId = agent.requests[0]?.id as string;
    const c2 = await api(hub, "DELETE", `/api/actions/${runningId}`);
    expect(c2.status).toBe(200);
    expect(c2.body).toMatchObject({ id: runningId, status: "canceled" });
    expect(agent.cancels).toEqual([runningId]);
    expect((await running).body.status).toBe("canceled");
    // The queued one never reached the agent.
    expect(agent.requests.map((r) => r.id)).toEqual([runningId]);

    const again = await api(hub, "DELETE", `/api/actions/${runningId}`);
    expect(again.status).toBe(409);
    expect(again.body.error_code).toBe("conflict");
    expect((await api(hub, "DELETE", "/api/actions/no-such-action")).status).toBe(404);
  });
});

describe("GET /api/actions", () => {
  it("pages newest first with next_cursor and filters by host, device and status", async () => {
    const hub = await startHub();
    await FakeAgent.start(hub, "rig-a", [{ id: "dut" }]);
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await post(hub, "/api/hosts/rig-a/devices/dut/actions", { action: "gpio.read", params: {} })).body.id as string);
    const page1 = await api(hub, "GET", "/api/actions?limit=2");
    expect((page1.body.actions as { id: string }[]).map((a) => a.id)).toEqual([ids[4], ids[3]]);
    const page2 = await api(hub, "GET", `/api/actions?limit=2&cursor=${page1.body.next_cursor as string}`);
    expect((page2.body.actions as { id: string }[]).map((a) => a.id)).toEqual([ids[2], ids[1]]);
    const page3 = await api(hub, "GET", `/api/actions?limit=2&cursor=${page2.body.next_cursor as string}`);
    expect((page3.body.actions as { id: string }[]).map((a) => a.id)).toEqual([ids[0]]);
    expect(page3.body.next_cursor).toBeNull();
    expect(((await api(hub, "GET", "/api/actions?host=rig-a&device=dut&status=succeeded")).body.actions as unknown[]).length).toBe(5);
    expect(((await api(hub, "GET", "/api/actions?status=failed")).body.actions as unknown[]).length).toBe(0);
  });
});

describe("bad input at every new endpoint returns the envelope and writes nothing", () => {
  it("POST /api/actions, POST /api/leases, keepalive, DELETE lease, PUT health, GET /api/actions", async () => {
    const hub = await startHub();
    const agent = await FakeAgent.start(hub, "rig-a", [{ id: "dut", labels: { board: "x" } }]);
    const lease = await post(hub, "/api/leases", { target: { host: "rig-a", device: "dut" }, ttl_s: 60, owner: "holder" });
    const op = await operatorKey(hub);
    const tables = ["actions", "leases", "lease_devices", "host_events"];
    const snapshot = () => tables.map((t) => countRows(hub, t));
    const before = snapshot();
    const healthBefore = queryDb(hub.dataDir, "SELECT health, health_reason FROM devices");

    const cases: [string, string, unknown, number, string][] = [
      ["POST", "/api/actions", { action: "gpio.read", params: {} }, 400, "validation_failed"],
      ["POST", "/api/actions", { ...gpioRead(selector()), extra: 1 }, 400, "validation_failed"],
      ["POST", "/api/actions", { action: "self.destruct", params: {}, target: selector() }, 400, "unknown_action"],
      ["POST", "/api/actions", { action: "gpio.write", params: { value: 7 }, target: selector() }, 400, "validation_failed"],
      ["POST", "/api/actions", gpioRead({ host: "rig-a" }), 400, "validation_failed"],
      ["POST", "/api/actions", gpioRead({ host: "ghost", device: "dut" }), 404, "unknown_host"],
      ["POST", "/api/actions", gpioRead({ host: "rig-a", device: "nope" }), 404, "unknown_device"],
      ["POST", "/api/actions", gpioRead(selector({ board: "none" })), 404, "unknown_device"],
      ["POST", "/api/actions", gpioRead(selector(), { priority: 1.5 }), 400, "validation_failed"],
      ["POST", "/api/actions", gpioRead(selector(), { queue_timeout_ms: 600_001 }), 400, "validation_failed"],
      ["POST", "/api/actions", gpioRead(selector(), { lease_token: "lrl_not-a-lease" }), 423, "lease_required"],
      ["POST", "/api/actions", gpioRead({ host: "rig-a", device: "dut" }), 423, "lease_required"],
      ["POST", "/api/actions", { action: "serial.write", params: { data: "x" }, target: { host: "rig-a", device: "dut" } }, 400, "unsupported_action"],
      ["POST", "/api/hosts/rig-a/devices/dut/actions", { action: "gpio.read", params: {}, target: selector() }, 400, "validation_failed"],
      ["POST", "/api/leases", { target: selector(), ttl_s: 0, owner: "x" }, 400, "validation_failed"],
      ["POST", "/api/leases", { target: selector(), ttl_s: 10, owner: "" }, 400, "validation_failed"],
      ["POST", "/api/leases", { target: selector(), ttl_s: 10, owner: "x".repeat(129) }, 400, "validation_failed"],
      ["POST", "/api/leases", { target: selector(), ttl_s: 10, owner: "x", count: 65 }, 400, "validation_failed"],
      ["POST", "/api/leases", { target: { host: "rig-a", device: "dut" }, ttl_s: 10, owner: "x", count: 2 }, 400, "validation_failed"],
      ["POST", "/api/leases", { target: selector(), ttl_s: 10, owner: "x", cleanup: { action: "nope", params: {} } }, 400, "unknown_action"],
      ["POST", "/api/leases", { target: selector(), ttl_s: 10, owner: "x", cleanup: { action: "gpio.write", params: {} } }, 400, "validation_failed"],
      ["POST", "/api/leases", { target: selector({ board: "none" }), ttl_s: 10, owner: "x" }, 404, "unknown_device"],
      ["POST", "/api/leases", { target: selector(), ttl_s: 10, owner: "x", count: 2 }, 404, "unknown_device"],
      ["POST", `/api/leases/${lease.body.id as string}/keepalive`, { ttl_s: -1 }, 400, "validation_failed"],
      ["POST", `/api/leases/${lease.body.id as string}/keepalive`, { ttl_s: 10 }, 423, "lease_required"],
      ["POST", "/api/leases/nope/keepalive", { ttl_s: 10 }, 404, "not_found"],
      ["DELETE", `/api/leases/${lease.body.id as string}`, { lease_token: "lrl_wrong" }, 403, "forbidden"],
      ["DELETE", `/api/leases/${lease.body.id as string}`, { lease_token: "lrl_x", more: 1 }, 400, "validation_failed"],
      ["PUT", "/api/hosts/rig-a/devices/dut/health", { health: "sick", reason: "x" }, 400, "validation_failed"],
      ["PUT", "/api/hosts/rig-a/devices/dut/health", { health: "bad" }, 400, "validation_failed"],
      ["PUT", "/api/hosts/rig-a/devices/dut/health", { health: "bad", reason: "x".repeat(501) }, 400, "validation_failed"],
      ["PUT", "/api/hosts/rig-a/devices/nope/health", { health: "bad", reason: "x" }, 404, "unknown_device"],
      ["PUT", "/api/hosts/ghost/devices/dut/health", { health: "bad", reason: "x" }, 404, "unknown_host"],
      ["GET", "/api/actions?limit=0", undefined, 400, "validation_failed"],
      ["GET", "/api/actions?limit=501", undefined, 400, "validation_failed"],
      ["GET", "/api/actions?status=exploded", undefined, 400, "validation_failed"],
      ["GET", "/api/actions?cursor=abc", undefined, 400, "validation_failed"],
      ["GET", "/api/leases/nope", undefined, 404, "not_found"],
      ["DELETE", "/api/actions/nope", undefined, 404, "not_found"],
    ];
    for (const [method, path, body, status, code] of cases) {
      const res = await api(hub, method, path, body, path.startsWith("/api/leases/") ? op : {});
      const label = `${method} ${path} ${JSON.stringify(body)}`;
      expect(res.status, `${label} → ${JSON.stringify(res.body)}`).toBe(status);
      expect(res.body.error_code, label).toBe(code);
      expect(typeof res.body.message, label).toBe("string");
      expect(typeof res.body.recoverable, label).toBe("boolean");
      expect(res.body.request_id, label).toBe(res.headers.get("x-request-id"));
    }
    expect(snapshot()).toEqual(before);
    expect(queryDb(hub.dataDir, "SELECT health, health_reason FROM devices")).toEqual(healthBefore);
    expect(agent.requests).toHaveLength(0);
  });
});
