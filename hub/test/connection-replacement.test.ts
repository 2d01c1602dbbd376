import { afterEach, describe, expect, it } from "vitest";
import { FakeAgent, api, post } from "./dispatch-helpers.js";
import { cleanupTempDirs, startHub, stopAll, waitFor } from "./helpers.js";

// A host's new socket replacing its live one (a half-open link the agent gave up on, a second agent
// process with the same token): what the old socket had been sent is lost with it. Real hub, two real
// socket.io connections for one host.

afterEach(async () => {
  await stopAll();
  cleanupTempDirs();
});

// The hub's own deadline for a 10 s action would be 15 s; these tests must see the outcome far sooner.
const ENV = { LABRIG_ACTION_TIMEOUT_MS: "10000" };

describe("a newer connection replacing a host's live one", () => {
  it("re-dispatches an action sent on the old socket that had not started, on the new socket, at once", async () => {
    const hub = await startHub({ env: ENV });
    const agent = await FakeAgent.start(hub, "rig-1", [{ id: "dut" }], (a) => (a.confirm = false));
    const pending = post(hub, "/api/hosts/rig-1/devices/dut/actions", { action: "gpio.read", params: {} });
    await waitFor(() => agent.requests.length === 1);
    const firstWireId = agent.requests[0]?.id;

    // The same host connects again; the hub replaces (and closes) the old socket.
    agent.confirm = true;
    const replacedAtMs = Date.now();
    await agent.connect();
    const req = await waitFor(() => agent.requests[1], 5000, 5);
    expect(Date.now() - replacedAtMs).toBeLessThan(2000);
    expect(req.id).not.toBe(firstWireId);
    expect(req.id.split("~")[0]).toBe(firstWireId);

    const done = await pending;
    expect(done.body).toMatchObject({ status: "succeeded", host: "rig-1", device: "dut", attempts: 2 });
    // Run once, on the new socket.
    expect(agent.executedIds()).toEqual([firstWireId]);
  });

  it("fails a write the old socket had started with host_lost at once when the new connection is another agent process", async () => {
    const hub = await startHub({ env: ENV });
    const agent = await FakeAgent.start(hub, "rig-1", [{ id: "dut" }], (a) => (a.hold = true));
    const pending = post(hub, "/api/hosts/rig-1/devices/dut/actions", { action: "gpio.write", params: { value: 1 } });
    await waitFor(() => agent.held.size === 1);
    const replacedAtMs = Date.now();
    await agent.connect();
    const done = await pending;
    expect(done.body).toMatchObject({ status: "failed", error: { error_code: "host_lost" } });
    expect(Date.now() - replacedAtMs).toBeLessThan(2000);
    // The device is free again: the next action runs on the new socket.
    agent.hold = false;
    const next = await post(hub, "/api/hosts/rig-1/devices/dut/actions", { action: "gpio.read", params: {} });
    expect(next.body).toMatchObject({ status: "succeeded" });
    expect((await api(hub, "GET", "/api/hosts/rig-1")).body.state).toBe("online");
  });

  it("lets a write the old socket had started finish when the same agent process delivers its result over the new connection", async () => {
    const hub = await startHub({ env: ENV });
    const agent = await FakeAgent.start(hub, "rig-1", [{ id: "dut" }], (a) => {
      a.hold = true;
      a.processStartedAt = new Date().toISOString();
    });
    const pending = post(hub, "/api/hosts/rig-1/devices/dut/actions", { action: "gpio.write", params: { value: 1 } });
    await waitFor(() => agent.held.size === 1);
    await agent.connect();
    // The agent kept running it; its result goes out over the connection it has now.
    agent.release();
    const done = await pending;
    expect(done.body).toMatchObject({ status: "succeeded", attempts: 1 });
    expect(agent.executedIds()).toEqual([done.body.id]);
  });

  it("sends a read again on the new connection, whether or not it had started (a read changes nothing)", async () => {
    const hub = await startHub({ env: ENV });
    const agent = await FakeAgent.start(hub, "rig-1", [{ id: "dut" }], (a) => (a.hold = true));
    const pending = post(hub, "/api/hosts/rig-1/devices/dut/actions", { action: "gpio.read", params: {} });
    await waitFor(() => agent.held.size === 1);
    agent.hold = false;
    await agent.connect();
    const done = await pending;
    expect(done.body).toMatchObject({ status: "succeeded", attempts: 2 });
  });
});
