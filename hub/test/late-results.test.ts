import { afterEach, describe, expect, it } from "vitest";
import { FakeAgent, api, post } from "./dispatch-helpers.js";
import { TEST_ADMIN_KEY, cleanupTempDirs, connect, dashboardSocket, startHub, stopAll, waitFor } from "./helpers.js";

// A hub that stops while an action runs records it failed (shutting_down: outcome unknown). The agent
// finishes the action anyway and delivers its result after the hub is back: that result is the real
// outcome, so the record takes it (marked reconciled) and the dashboards hear about it.

afterEach(async () => {
  await stopAll();
  cleanupTempDirs();
});

describe("a late result after a hub restart", () => {
  it("replaces the restart's shutting_down failure with the agent's outcome once, marks it reconciled and tells the dashboards", async () => {
    const first = await startHub();
    const agent = await FakeAgent.start(first, "rig-1", [{ id: "dut" }], (a) => (a.hold = true));
    const pending = post(first, "/api/hosts/rig-1/devices/dut/actions", { action: "gpio.read", params: {} }).catch((err: unknown) => err);
    await waitFor(() => agent.held.size === 1);
    const req = [...agent.held.values()][0]!;
    await first.hub.stop();
    await pending;

    const hub = await startHub({ dataDir: first.dataDir });
    const before = await api(hub, "GET", `/api/actions/${req.id}`);
    expect(before.body).toMatchObject({ status: "failed", error: { error_code: "shutting_down" } });
    const dashboard = dashboardSocket(hub.url, { auth: { token: TEST_ADMIN_KEY } });
    const heard: Array<Record<string, unknown>> = [];
    dashboard.on("action.finished", (record: Record<string, unknown>) => heard.push(record));
    await connect(dashboard);

    await agent.connect(hub);
    // A result under another attempt's wire id is not this action's last attempt: ignored.
    agent.finish({ ...req, id: `${req.id}~2` }, "succeeded");
    // The outbox delivers the real one.
    agent.finish(req, "succeeded");
    const after = await waitFor(async () => {
      const r = await api(hub, "GET", `/api/actions/${req.id}`);
      return r.body.status === "succeeded" ? r.body : null;
    });
    expect(after).toMatchObject({ status: "succeeded", result: { value: 1 }, error: null, reconciled_at: expect.any(String) });
    const told = await waitFor(() => heard.find((r) => r.id === req.id));
    expect(told).toMatchObject({ status: "succeeded", reconciled_at: after.reconciled_at });

    // Redelivered again (the outbox retries until acked): nothing changes.
    agent.finish(req, "failed");
    await new Promise((r) => setTimeout(r, 200));
    expect((await api(hub, "GET", `/api/actions/${req.id}`)).body).toMatchObject({ status: "succeeded", reconciled_at: after.reconciled_at });
    expect(heard.filter((r) => r.id === req.id)).toHaveLength(1);
  });
});
