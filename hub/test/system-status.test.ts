import { SystemStatusSchema } from "@labrig/shared";
import { afterEach, describe, expect, it } from "vitest";
import { api } from "./dispatch-helpers.js";
import { cleanupTempDirs, expectEnvelope, getJson, startHub, stopAll } from "./helpers.js";
import { startLocalAgent, stopLocalAgents } from "./local-agents.js";
import { systemStatus, type StatusFacts } from "../src/services/system-status.js";

afterEach(async () => {
  await stopLocalAgents();
  await stopAll();
  cleanupTempDirs();
});

const GPIO_DEVICE = { id: "dut1", resources: [{ name: "relay", kind: "gpio", line: 5, direction: "out" }] };

const healthy: StatusFacts = {
  version: "test",
  uptimeS: () => 1,
  draining: () => false,
  hosts: () => ({ total: 2, online: 2 }),
  devicesByHealth: () => ({ good: 3 }),
  agentsConnected: () => 2,
  queue: () => ({ waiting: 0, running: 1, max: 10 }),
  runsUnderWay: () => [],
  planner: () => ({ enabled: true, model: "m", requestsUsed: 1, requestsLimit: 10, tokensUsed: 1, tokensLimit: 10 }),
  database: () => ({ ok: true, path: "/d/labrig.db", sizeBytes: 4096, schemaVersion: 5 }),
  disk: () => ({ path: "/d", freeBytes: 50 * 1024 ** 3, totalBytes: 100 * 1024 ** 3 }),
};

describe("GET /api/system/status", () => {
  it("reports fleet, queue, runs, planner, database and disk of a running hub, schema-valid, status ok", async () => {
    const hub = await startHub();
    await startLocalAgent(hub, "s-1", [GPIO_DEVICE]);
    const res = await api(hub, "GET", "/api/system/status");
    expect(res.status).toBe(200);
    const body = SystemStatusSchema.parse(res.body);
    expect(body).toMatchObject({
      status: "ok",
      draining: false,
      fleet: { hosts: { total: 1, online: 1, offline: 0 }, devices: { total: 1, by_health: { good: 1 } }, agents_connected: 1 },
      queue: { waiting: 0, running: 0, max: hub.config.queueMax },
      runs: { active: 0, under_way: [] },
      planner: { enabled: false, model: null, requests_limit: hub.config.planner.requestsPerDay },
      database: { ok: true, path: hub.config.dbPath },
      degraded: [],
    });
    expect(body.database.size_bytes).toBeGreaterThan(0);
    expect(body.database.schema_version).toBeGreaterThan(0);
    expect(body.disk.free_bytes).toBeGreaterThan(0);
    expect(body.disk.total_bytes).toBeGreaterThanOrEqual(body.disk.free_bytes);
  });

  it("says degraded (still 200) when a device is not good, and needs a viewer credential", async () => {
    const hub = await startHub();
    await startLocalAgent(hub, "s-1", [GPIO_DEVICE]);
    const set = await api(hub, "PUT", "/api/hosts/s-1/devices/dut1/health", { health: "bad", reason: "cable" });
    expect(set.status).toBe(200);
    const res = await api(hub, "GET", "/api/system/status");
    expect(res.status).toBe(200);
    expect(res.body.status).toBe("degraded");
    expect(res.body.degraded).toEqual([expect.objectContaining({ component: "devices", severity: "degraded" })]);
    expectEnvelope(await getJson(`${hub.url}/api/system/status`, { auth: null }), 401, "unauthorized");
  });

  it("names each degraded part: no host online, low disk, full queue, planner budget spent; a dead database is unavailable", () => {
    const s = systemStatus({
      ...healthy,
      hosts: () => ({ total: 2, online: 0 }),
      disk: () => ({ path: "/d", freeBytes: 10 * 1024 ** 2, totalBytes: 16 * 1024 ** 3 }),
      queue: () => ({ waiting: 10, running: 1, max: 10 }),
      planner: () => ({ enabled: true, model: "m", requestsUsed: 10, requestsLimit: 10, tokensUsed: 1, tokensLimit: 10 }),
    });
    expect(s.status).toBe("degraded");
    expect(s.degraded.map((d) => d.component).sort()).toEqual(["disk", "fleet", "planner", "queue"]);
    expect(systemStatus(healthy).status).toBe("ok");
    const dead = systemStatus({ ...healthy, database: () => ({ ok: false, path: "/d/labrig.db", sizeBytes: 0, schemaVersion: 0 }) });
    expect(dead.status).toBe("unavailable");
    expect(dead.degraded[0]).toMatchObject({ component: "database", severity: "unavailable" });
  });
});
