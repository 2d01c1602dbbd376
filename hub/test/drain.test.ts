import { afterEach, describe, expect, it } from "vitest";
import { api, post } from "./dispatch-helpers.js";
import { cleanupTempDirs, expectEnvelope, startHub, stopAll } from "./helpers.js";
import { startLocalAgent, stopLocalAgents } from "./local-agents.js";

afterEach(async () => {
  await stopLocalAgents();
  await stopAll();
  cleanupTempDirs();
});

const GPIO_DEVICE = { id: "dut1", resources: [{ name: "relay", kind: "gpio", line: 5, direction: "out" }] };
const ACTIONS = "/api/hosts/d-1/devices/dut1/actions";

describe("drain on stop", () => {
  it("refuses new work with a recoverable 503 shutting_down, fails what waits, lets the running action finish, reports unavailable", async () => {
    const hub = await startHub({ env: { LABRIG_DRAIN_MS: "5000" } });
    await startLocalAgent(hub, "d-1", [GPIO_DEVICE]);
    const running = post(hub, ACTIONS, { action: "wait", params: { ms: 700 } });
    await new Promise((r) => setTimeout(r, 100));
    const queued = post(hub, ACTIONS, { action: "wait", params: { ms: 1 } });
    await new Promise((r) => setTimeout(r, 100));

    const stopped = hub.hub.stop();
    const refusedQueued = await queued;
    expectEnvelope(refusedQueued, 503, "shutting_down");
    expect(refusedQueued.body).toMatchObject({ recoverable: true, retry_after: 5 });
    expect(String(refusedQueued.body.message)).toContain("never ran");

    const fresh = await post(hub, ACTIONS, { action: "wait", params: { ms: 1 } });
    expectEnvelope(fresh, 503, "shutting_down");
    expect(fresh.body.recoverable).toBe(true);
    expect(fresh.headers.get("retry-after")).toBe("5");

    const status = await api(hub, "GET", "/api/system/status");
    expect(status.status).toBe(503);
    expect(status.body).toMatchObject({ status: "unavailable", draining: true });
    expect((status.body.degraded as { component: string }[]).map((d) => d.component)).toContain("shutdown");

    const finished = await running;
    expect(finished.status).toBe(200);
    expect(finished.body).toMatchObject({ status: "succeeded", result: { waited_ms: expect.any(Number) } });
    await stopped;
  }, 30_000);

  it("fails an action still running when LABRIG_DRAIN_MS runs out, with a recoverable error, and stops in time", async () => {
    const hub = await startHub({ env: { LABRIG_DRAIN_MS: "200" } });
    await startLocalAgent(hub, "d-1", [GPIO_DEVICE]);
    const running = post(hub, ACTIONS, { action: "wait", params: { ms: 20_000 } });
    await new Promise((r) => setTimeout(r, 200));
    const t0 = Date.now();
    await hub.hub.stop();
    expect(Date.now() - t0).toBeLessThan(5000);
    const res = await running;
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ status: "failed", error: { error_code: "shutting_down", recoverable: true } });
  }, 30_000);
});
