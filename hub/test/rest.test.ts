import { HealthSchema } from "@labrig/shared";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { MIGRATIONS } from "../src/db/migrations.js";
import { expectEnvelope, addHost, cleanupTempDirs, getJson, postJson, queryDb, startHub, stopAll, type RunningHub } from "./helpers.js";

let hub: RunningHub;

beforeEach(async () => {
  hub = await startHub();
  await addHost(hub.dataDir, "sim-1");
});

afterEach(async () => {
  await stopAll();
  cleanupTempDirs();
});

const actionsUrl = (host = "sim-1", device = "dut-1") => `${hub.url}/api/hosts/${host}/devices/${device}/actions`;
const actionRows = () => queryDb<{ n: number }>(hub.dataDir, "SELECT COUNT(*) AS n FROM actions")[0]?.n;


describe("REST basics", () => {
  it("GET /api/health reports ok, the database and online hosts", async () => {
    const res = await getJson(`${hub.url}/api/health`);
    expect(res.status).toBe(200);
    const health = HealthSchema.parse(res.body);
    expect(health).toMatchObject({ status: "ok", database: { ok: true }, hosts_online: 0 });
  });

  it("GET /api/system/info reports settings, counts and schema version", async () => {
    const res = await getJson(`${hub.url}/api/system/info`);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      node_version: process.version,
      pid: process.pid,
      data_dir: hub.dataDir,
      heartbeat_interval_ms: 5000,
      missed_heartbeats: 3,
      counts: { hosts: 1, devices: 0, actions: 0 },
      schema_version: Math.max(...MIGRATIONS.map((m) => m.version)),
    });
  });

  it("echoes a well-formed X-Request-Id and replaces a malformed one", async () => {
    const kept = await fetch(`${hub.url}/api/health`, { headers: { "x-request-id": "trace-42.a_b" } });
    expect(kept.headers.get("x-request-id")).toBe("trace-42.a_b");
    const replaced = await fetch(`${hub.url}/api/health`, { headers: { "x-request-id": "bad id with spaces" } });
    expect(replaced.headers.get("x-request-id")).toMatch(/^[A-Za-z0-9._-]{1,64}$/);
    expect(replaced.headers.get("x-request-id")).not.toBe("bad id with spaces");
  });

  it("an unknown /api route is 404 not_found with the envelope", async () => {
    expectEnvelope(await getJson(`${hub.url}/api/nope`), 404, "not_found");
  });

  it("GET /api/hosts lists an enrolled host as offline with no devices", async () => {
    const res = await getJson(`${hub.url}/api/hosts`);
    expect(res.body).toEqual({ hosts: [{ id: "sim-1", name: "sim-1", state: "offline", last_seen: null, agent_version: null, devices: [] }] });
  });

  it("GET /api/hosts/:id of an unknown host is 404 unknown_host", async () => {
    expectEnvelope(await getJson(`${hub.url}/api/hosts/ghost`), 404, "unknown_host");
  });

  it("GET /api/actions/:id of an unknown action is 404 not_found", async () => {
    expectEnvelope(await getJson(`${hub.url}/api/actions/nope`), 404, "not_found");
  });
});

describe("POST /api/hosts/:host/devices/:device/actions refuses bad input and writes nothing", () => {
  it("unknown action → 400 unknown_action", async () => {
    const res = await postJson(actionsUrl(), { action: "self.destruct", params: {} });
    expectEnvelope(res, 400, "unknown_action");
    expect(res.body.message).toContain("serial.write");
    expect(actionRows()).toBe(0);
  });

  it("wrong params → 400 validation_failed naming params.field", async () => {
    const res = await postJson(actionsUrl(), { action: "gpio.pulse", params: { width_ms: -5 } });
    expectEnvelope(res, 400, "validation_failed");
    expect(res.body.message).toContain("params.width_ms");
    expect(actionRows()).toBe(0);
  });

  it("a body that is not the request shape → 400 validation_failed", async () => {
    const res = await postJson(actionsUrl(), { action: "wait", params: { ms: 1 }, extra: true });
    expectEnvelope(res, 400, "validation_failed");
    expect(actionRows()).toBe(0);
  });

  it("unknown host → 404 unknown_host", async () => {
    const res = await postJson(actionsUrl("ghost"), { action: "wait", params: { ms: 1 } });
    expectEnvelope(res, 404, "unknown_host");
    expect(actionRows()).toBe(0);
  });

  it("unknown device → 404 unknown_device", async () => {
    const res = await postJson(actionsUrl("sim-1", "nope"), { action: "wait", params: { ms: 1 } });
    expectEnvelope(res, 404, "unknown_device");
    expect(actionRows()).toBe(0);
  });

  it("malformed JSON → 400 malformed_json", async () => {
    const res = await getJson(actionsUrl(), { method: "POST", headers: { "content-type": "application/json" }, body: '{"action": "wait",' });
    expectEnvelope(res, 400, "malformed_json");
    expect(actionRows()).toBe(0);
  });

  it("oversized body → 413 payload_too_large", async () => {
    const res = await postJson(actionsUrl(), { action: "serial.write", params: { data: "x".repeat(300 * 1024) } });
    expectEnvelope(res, 413, "payload_too_large");
    expect(res.body.message).toContain("LABRIG_BODY_LIMIT");
    expect(actionRows()).toBe(0);
  });

  it("wrong content type → 415 unsupported_media_type", async () => {
    const res = await getJson(actionsUrl(), { method: "POST", headers: { "content-type": "text/plain" }, body: JSON.stringify({ action: "wait", params: { ms: 1 } }) });
    expectEnvelope(res, 415, "unsupported_media_type");
    expect(actionRows()).toBe(0);
  });

  it("a known device on an offline host → 503 host_offline with Retry-After", async () => {
    // Give the host a device without a live agent by inserting what a past hello would have stored.
    const { default: Database } = await import("better-sqlite3");
    const db = new Database(`${hub.dataDir}/labrig.db`);
    db.prepare("INSERT INTO devices (host_id, id, resources_json, updated_at) VALUES ('sim-1', 'dut-1', ?, ?)").run(
      JSON.stringify([{ name: "console", kind: "serial" }]),
      new Date().toISOString(),
    );
    db.close();
    const res = await postJson(actionsUrl(), { action: "serial.write", params: { data: "ls\n" } });
    expectEnvelope(res, 503, "host_offline");
    expect(res.body.recoverable).toBe(true);
    expect(res.body.retry_after).toBe(5);
    expect(res.headers.get("retry-after")).toBe("5");
    expect(actionRows()).toBe(0);

    // Resource checks come before the online check.
    expectEnvelope(await postJson(actionsUrl(), { action: "power.on", params: {} }), 400, "unsupported_action");
    expectEnvelope(await postJson(actionsUrl(), { action: "serial.write", resource: "tty9", params: { data: "x" } }), 400, "unknown_resource");
    expect(actionRows()).toBe(0);
  });
});
