import type { AddressInfo } from "node:net";
import { join } from "node:path";
import express from "express";
import helmet from "helmet";
import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { HubDatabase } from "../src/db/database.js";
import { MIGRATIONS } from "../src/db/migrations.js";
import {
  TEST_ADMIN_KEY,
  addHost,
  cleanupTempDirs,
  expectEnvelope,
  connect,
  connectedAgent,
  dashboardSocket,
  getJson,
  makeTempDir,
  postJson,
  sayHello,
  startHub,
  stopAll,
  type JsonResponse,
} from "./helpers.js";

afterEach(async () => {
  await stopAll();
  cleanupTempDirs();
});


describe("failed-authentication rate limiting", () => {
  it("after LABRIG_AUTH_FAIL_LIMIT failures an address gets 429 rate_limited with retry_after, valid keys included", async () => {
    const hub = await startHub({ env: { LABRIG_AUTH_FAIL_LIMIT: "3" } });
    for (let i = 0; i < 3; i++) expectEnvelope(await getJson(`${hub.url}/api/hosts`, { auth: `lrk_wrong-${i}` }), 401, "unauthorized");
    const limited = await getJson(`${hub.url}/api/hosts`, { auth: "lrk_wrong-again" });
    expectEnvelope(limited, 429, "rate_limited");
    expect(limited.body.recoverable).toBe(true);
    expect(limited.body.retry_after).toBeGreaterThan(0);
    expect(limited.body.retry_after).toBeLessThanOrEqual(60);
    expect(limited.headers.get("retry-after")).toBe(String(limited.body.retry_after));
    expectEnvelope(await getJson(`${hub.url}/api/hosts`), 429, "rate_limited");
    // Public routes stay open.
    expect((await getJson(`${hub.url}/api/health`, { auth: null })).status).toBe(200);
    // Sockets share the limit.
    const err = (await connect(dashboardSocket(hub.url, { auth: { token: TEST_ADMIN_KEY } })).then(
      () => null,
      (e: unknown) => e,
    )) as (Error & { data?: { error_code: string } }) | null;
    expect(err?.data?.error_code).toBe("rate_limited");
  });

  it("successful requests do not count", async () => {
    const hub = await startHub({ env: { LABRIG_AUTH_FAIL_LIMIT: "3" } });
    for (let i = 0; i < 30; i++) expect((await getJson(`${hub.url}/api/hosts`)).status).toBe(200);
    // Authenticated callers' 403 and 404 are not authentication failures either.
    const viewer = (await postJson(`${hub.url}/api/keys`, { name: "v", role: "viewer" })).body.key as string;
    for (let i = 0; i < 5; i++) {
      expect((await getJson(`${hub.url}/api/keys`, { auth: viewer })).status).toBe(403);
      expect((await getJson(`${hub.url}/api/nope`)).status).toBe(404);
    }
    for (let i = 0; i < 2; i++) expect((await getJson(`${hub.url}/api/hosts`, { auth: "lrk_wrong" })).status).toBe(401);
    expect((await getJson(`${hub.url}/api/hosts`)).status).toBe(200);
  });
});

describe("browser-facing headers", () => {
  it("helmet's headers are on every answer, errors included", async () => {
    const hub = await startHub();
    for (const res of [await getJson(`${hub.url}/api/health`), await getJson(`${hub.url}/api/hosts`, { auth: null })]) {
      expect(res.headers.get("x-content-type-options")).toBe("nosniff");
      expect(res.headers.get("x-frame-options")).toBe("SAMEORIGIN");
      expect(res.headers.get("content-security-policy")).toContain("default-src 'self'");
      expect(res.headers.get("x-powered-by")).toBeNull();
    }
  });

  it("the headers computed once at start are exactly the ones helmet sets on a response of its own", async () => {
    // Reference: helmet itself, run per request on a plain express app.
    const reference = express().use(helmet()).get("/", (_req, res) => void res.json({}));
    const server = reference.listen(0, "127.0.0.1");
    await new Promise((r) => server.once("listening", r));
    try {
      const expected = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
      const hub = await startHub();
      const actual = (await getJson(`${hub.url}/api/health`)).headers;
      const names: string[] = [];
      expected.headers.forEach((_value, name) => names.push(name));
      const helmetNames = names.filter((name) => !["content-type", "content-length", "date", "connection", "keep-alive", "etag", "x-powered-by"].includes(name));
      expect(helmetNames.length).toBeGreaterThan(8);
      for (const name of helmetNames) expect([name, actual.get(name)]).toEqual([name, expected.headers.get(name)]);
    } finally {
      server.close();
    }
  });

  it("CORS: an allowed origin gets the header, others do not; a preflight from another origin is refused with the envelope", async () => {
    const hub = await startHub({ env: { LABRIG_CORS_ORIGINS: "https://dash.example.com, http://localhost:5173" } });
    const allowed = await getJson(`${hub.url}/api/hosts`, { headers: { origin: "https://dash.example.com" } });
    expect(allowed.headers.get("access-control-allow-origin")).toBe("https://dash.example.com");
    expect(allowed.headers.get("access-control-expose-headers")).toContain("X-Request-Id");
    const other = await getJson(`${hub.url}/api/hosts`, { headers: { origin: "https://evil.example.com" } });
    expect(other.headers.get("access-control-allow-origin")).toBeNull();

    const preflight = await fetch(`${hub.url}/api/hosts`, {
      method: "OPTIONS",
      headers: { origin: "http://localhost:5173", "access-control-request-method": "POST", "access-control-request-headers": "authorization,content-type" },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get("access-control-allow-origin")).toBe("http://localhost:5173");
    expect(preflight.headers.get("access-control-allow-headers")).toMatch(/Authorization/i);
    const refused = await getJson(`${hub.url}/api/hosts`, { method: "OPTIONS", auth: null, headers: { origin: "https://evil.example.com", "access-control-request-method": "GET" } });
    expectEnvelope(refused, 403, "forbidden");
    expect(refused.headers.get("access-control-allow-origin")).toBeNull();
  });

  it("CORS defaults to none (same origin only)", async () => {
    const hub = await startHub();
    const res = await getJson(`${hub.url}/api/hosts`, { headers: { origin: "http://localhost:5173" } });
    expect(res.headers.get("access-control-allow-origin")).toBeNull();
  });

  it("dashboard sockets from a disallowed origin are refused; allowed and same-origin ones connect", async () => {
    const hub = await startHub({ env: { LABRIG_CORS_ORIGINS: "https://dash.example.com" } });
    const auth = { token: TEST_ADMIN_KEY };
    const err = (await connect(dashboardSocket(hub.url, { auth, headers: { origin: "https://evil.example.com" } })).then(
      () => null,
      (e: unknown) => e,
    )) as (Error & { data?: { error_code: string } }) | null;
    expect(err?.data?.error_code).toBe("forbidden");
    await connect(dashboardSocket(hub.url, { auth, headers: { origin: "https://dash.example.com" } }));
    await connect(dashboardSocket(hub.url, { auth, headers: { origin: hub.url } }));
  });

  it("a bad LABRIG_CORS_ORIGINS entry is refused, naming the variable", async () => {
    await expect(startHub({ env: { LABRIG_CORS_ORIGINS: "dash.example.com/path" } })).rejects.toThrow(/LABRIG_CORS_ORIGINS/);
  });
});

describe("docs", () => {
  it("GET /docs/openapi.json is OpenAPI 3.1 with every route of the table, public and without auth", async () => {
    const hub = await startHub();
    const res = await getJson(`${hub.url}/docs/openapi.json`, { auth: null });
    expect(res.status).toBe(200);
    const doc = res.body as { openapi: string; paths: Record<string, Record<string, { security: unknown[]; requestBody?: unknown; "x-labrig-access": string }>> };
    expect(doc.openapi).toBe("3.1.0");
    for (const route of hub.hub.routes()) {
      const path = route.path.replace(/:([A-Za-z0-9_]+)/g, "{$1}");
      expect(doc.paths[path]?.[route.method], `${route.method} ${route.path}`).toBeDefined();
    }
    const createKey = doc.paths["/api/keys"]?.post;
    expect(createKey?.["x-labrig-access"]).toBe("admin");
    expect(JSON.stringify(createKey?.requestBody)).toContain('"viewer"');
    expect(doc.paths["/api/health"]?.get?.security).toEqual([]);
    const action = doc.paths["/api/hosts/{host}/devices/{device}/actions"]?.post;
    expect(JSON.stringify(action)).toContain("params");
    // Documented success statuses are the ones the routes answer with.
    const responses = (path: string, method: string): Record<string, unknown> => (doc.paths[path]?.[method] as unknown as { responses: Record<string, unknown> }).responses;
    expect(Object.keys(responses("/api/leases", "post"))).toContain("201");
    expect(Object.keys(responses("/api/plans", "post"))).toContain("201");
    expect(Object.keys(responses("/api/plans", "post"))).not.toContain("200");
    // Dispatch and lease bodies are documented from the same schemas that validate them.
    expect(JSON.stringify(doc.paths["/api/actions"]?.post?.requestBody)).toContain("queue_timeout_ms");
    expect(JSON.stringify(doc.paths["/api/leases"]?.post?.requestBody)).toContain("ttl_s");
  });

  it("GET /docs is a self-contained HTML page listing the operations", async () => {
    const hub = await startHub();
    const res = await getJson(`${hub.url}/docs`, { auth: null });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("text/html");
    expect(res.text).toContain("/api/hosts/{host}/devices/{device}/actions");
    expect(res.text).toContain("/api/keys");
    expect(res.text).not.toMatch(/<script|https?:\/\/(?!json-schema)/i);
  });

  it("GET /docs/ws has the JSON Schema of every socket event, dashboard ones included", async () => {
    const hub = await startHub();
    const res = await getJson(`${hub.url}/docs/ws`, { auth: null });
    const events = res.body.events as Record<string, { namespace: string; payload: { type: string } }>;
    expect(events.hello?.namespace).toBe("/agent");
    expect(events.subscribe?.namespace).toBe("/dashboard");
    expect(events["host.state"]?.payload.type).toBe("object");
    expect(events["action.finished"]?.namespace).toBe("/dashboard");
  });
});

describe("/dashboard events", () => {
  it("broadcasts host.state to subscribed dashboards, and subscribe narrows the topics", async () => {
    const hub = await startHub();
    const token = await addHost(hub.dataDir, "sim-1");
    const all = dashboardSocket(hub.url, { auth: { token: TEST_ADMIN_KEY } });
    const none = dashboardSocket(hub.url, { auth: { token: TEST_ADMIN_KEY } });
    await connect(all);
    await connect(none);
    expect(await none.timeout(3000).emitWithAck("subscribe", { topics: ["action.finished"] })).toEqual({ ok: true, topics: ["action.finished"] });
    const seenByNone: unknown[] = [];
    none.on("host.state", (e: unknown) => seenByNone.push(e));
    const online = new Promise<Record<string, unknown>>((r) => all.once("host.state", r));
    const agent = await connectedAgent(hub.url, "sim-1", token);
    await sayHello(agent, "sim-1");
    expect(await online).toMatchObject({ host: "sim-1", state: "online", at: expect.any(String) });
    const offline = new Promise<Record<string, unknown>>((r) => all.once("host.state", r));
    agent.disconnect();
    expect(await offline).toMatchObject({ host: "sim-1", state: "offline" });
    expect(seenByNone).toEqual([]);
  });

  it("broadcasts action.finished with the action record", async () => {
    const hub = await startHub();
    const token = await addHost(hub.dataDir, "sim-1");
    const dash = dashboardSocket(hub.url, { auth: { token: TEST_ADMIN_KEY } });
    await connect(dash);
    const agent = await connectedAgent(hub.url, "sim-1", token);
    await sayHello(agent, "sim-1");
    agent.on("action.request", (req: { id: string; device: string }, ack?: (v: unknown) => void) => {
      ack?.({ ok: true });
      const now = new Date().toISOString();
      agent.emit("action.result", { id: req.id, host: "sim-1", device: req.device, status: "succeeded", result: { waited_ms: 1 }, error: null, started_at: now, finished_at: now, duration_ms: 1 });
    });
    agent.on("action.started", () => undefined);
    const finished = new Promise<Record<string, unknown>>((r) => dash.once("action.finished", r));
    const res = await postJson(`${hub.url}/api/hosts/sim-1/devices/dut-1/actions`, { action: "wait", params: { ms: 1 } });
    expect(res.body.status, res.text).toBe("succeeded");
    expect(await finished).toMatchObject({ id: res.body.id, status: "succeeded", action: "wait" });
  });
});

describe("migrations", () => {
  it("tolerate a gap: a lower-numbered migration added later is still applied", () => {
    const dir = makeTempDir();
    const path = join(dir, "labrig.db");
    const silent = pino({ level: "silent" });
    const gap = [...MIGRATIONS.filter((m) => m.version === 1), { version: 3000, name: "later", sql: "CREATE TABLE later (x INTEGER) STRICT;" }];
    const first = new HubDatabase(path, silent, gap);
    expect(first.start()).toEqual([1, 3000]);
    first.stop();
    const filled = new HubDatabase(path, silent, [...gap, { version: 2000, name: "between", sql: "CREATE TABLE between_ (x INTEGER) STRICT;" }]);
    expect(filled.start()).toEqual([2000]);
    expect(filled.schemaVersion()).toBe(3000);
    filled.stop();
  });
});
