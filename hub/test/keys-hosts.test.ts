import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import {
  TEST_ADMIN_KEY,
  addHost,
  agentSocket,
  cleanupTempDirs,
  expectEnvelope,
  cli,
  connect,
  connectedAgent,
  dashboardSocket,
  getJson,
  memoryLogger,
  postJson,
  queryDb,
  sayHello,
  startHub,
  stopAll,
  testEnv,
  waitFor,
  type JsonResponse,
  type RunningHub,
} from "./helpers.js";

afterEach(async () => {
  await stopAll();
  cleanupTempDirs();
});


const del = (url: string, auth?: string): Promise<JsonResponse> => getJson(url, { method: "DELETE", ...(auth ? { auth } : {}) });
const keyRows = (hub: RunningHub) => queryDb<{ n: number }>(hub.dataDir, "SELECT COUNT(*) AS n FROM api_keys")[0]?.n;

describe("API keys", () => {
  it("a created key works at its role, is shown once, and GET never returns it or its hash", async () => {
    const hub = await startHub();
    const created = await postJson(`${hub.url}/api/keys`, { name: "ci-bot", role: "operator" });
    expect(created.status).toBe(201);
    expect(Object.keys(created.body).sort()).toEqual(["id", "key", "name", "role"]);
    const key = created.body.key as string;
    expect(key).toMatch(/^lrk_[A-Za-z0-9_-]{43}$/);

    expect((await getJson(`${hub.url}/api/hosts`, { auth: key })).status).toBe(200);
    expectEnvelope(await getJson(`${hub.url}/api/keys`, { auth: key }), 403, "forbidden");

    const list = await getJson(`${hub.url}/api/keys`);
    const [hash] = queryDb<{ key_hash: string }>(hub.dataDir, "SELECT key_hash FROM api_keys WHERE name = 'ci-bot'").map((r) => r.key_hash);
    expect(list.text).not.toContain(key);
    expect(list.text).not.toContain(hash);
    expect(list.text).not.toContain("hash");
    const listed = (list.body.keys as { name: string; role: string; last_used_at: string | null }[]).find((k) => k.name === "ci-bot");
    expect(listed).toMatchObject({ role: "operator", last_used_at: expect.any(String) });

    // Only the hash is stored anywhere on disk.
    const files = readdirSync(hub.dataDir, { withFileTypes: true }).filter((f) => f.isFile());
    expect(files.length).toBeGreaterThan(0);
    for (const file of files) expect(readFileSync(join(hub.dataDir, file.name)).includes(Buffer.from(key.slice(4))), file.name).toBe(false);
  });

  it("a revoked key stops working at once", async () => {
    const hub = await startHub();
    const { id, key } = (await postJson(`${hub.url}/api/keys`, { name: "temp", role: "viewer" })).body as { id: string; key: string };
    expect((await getJson(`${hub.url}/api/hosts`, { auth: key })).status).toBe(200);
    expect((await del(`${hub.url}/api/keys/${id}`)).status).toBe(204);
    expectEnvelope(await getJson(`${hub.url}/api/hosts`, { auth: key }), 401, "unauthorized");
    expectEnvelope(await del(`${hub.url}/api/keys/${id}`), 404, "not_found");
  });

  it("revoking a key disconnects the dashboards it opened, and only those", async () => {
    const hub = await startHub();
    const { id, key } = (await postJson(`${hub.url}/api/keys`, { name: "watcher", role: "viewer" })).body as { id: string; key: string };
    const revoked = dashboardSocket(hub.url, { auth: { token: key } });
    const other = dashboardSocket(hub.url, { auth: { token: TEST_ADMIN_KEY } });
    revoked.connect();
    other.connect();
    await waitFor(async () => revoked.connected && other.connected, 5000);
    expect((await del(`${hub.url}/api/keys/${id}`)).status).toBe(204);
    await waitFor(async () => !revoked.connected, 5000);
    expect(other.connected).toBe(true);
  });

  it("the last admin key cannot be revoked (409), another admin's can", async () => {
    const hub = await startHub();
    const [envAdmin] = (await getJson(`${hub.url}/api/keys`)).body.keys as { id: string; name: string }[];
    expect(envAdmin?.name).toBe("env-admin");
    const res = await del(`${hub.url}/api/keys/${envAdmin?.id}`);
    expectEnvelope(res, 409, "conflict");
    expect(res.body.message).toContain("last admin key");
    const second = (await postJson(`${hub.url}/api/keys`, { name: "second-admin", role: "admin" })).body as { id: string; key: string };
    expect((await del(`${hub.url}/api/keys/${envAdmin?.id}`, second.key)).status).toBe(204);
    expectEnvelope(await del(`${hub.url}/api/keys/${second.id}`, second.key), 409, "conflict");
  });

  it("bad input at POST /api/keys is an envelope and writes nothing", async () => {
    const hub = await startHub();
    const before = keyRows(hub);
    for (const body of [{}, { name: "x" }, { name: "x", role: "root" }, { name: "Bad Name", role: "viewer" }, { name: "x", role: "viewer", extra: 1 }]) {
      expectEnvelope(await postJson(`${hub.url}/api/keys`, body), 400, "validation_failed");
    }
    expectEnvelope(await getJson(`${hub.url}/api/keys`, { method: "POST", headers: { "content-type": "application/json" }, body: "{nope" }), 400, "malformed_json");
    expectEnvelope(await postJson(`${hub.url}/api/keys`, { name: "env-admin", role: "viewer" }), 409, "conflict");
    expect(keyRows(hub)).toBe(before);
  });

  it("LABRIG_ADMIN_KEY is the env-admin key, re-pointed when the value changes between starts", async () => {
    const first = await startHub({ env: { LABRIG_ADMIN_KEY: "first-admin-key-value-0123456789" } });
    expect((await getJson(`${first.url}/api/keys`, { auth: "first-admin-key-value-0123456789" })).status).toBe(200);
    await first.hub.stop();
    const second = await startHub({ dataDir: first.dataDir, env: { LABRIG_ADMIN_KEY: "second-admin-key-value-0123456789" } });
    expect((await getJson(`${second.url}/api/keys`, { auth: "first-admin-key-value-0123456789" })).status).toBe(401);
    const keys = (await getJson(`${second.url}/api/keys`, { auth: "second-admin-key-value-0123456789" })).body.keys as { name: string }[];
    expect(keys.map((k) => k.name)).toEqual(["env-admin"]);
  });

  it("a too-short LABRIG_ADMIN_KEY is refused, naming the variable", async () => {
    await expect(startHub({ env: { LABRIG_ADMIN_KEY: "short" } })).rejects.toThrow(/LABRIG_ADMIN_KEY.*24/);
  });

  it("without LABRIG_ADMIN_KEY the first start announces a new admin key once; the next start announces nothing", async () => {
    const { logger, lines } = memoryLogger();
    const announced: string[] = [];
    const first = await startHub({ env: { LABRIG_ADMIN_KEY: "" }, logger, announce: (t) => announced.push(t) });
    expect(announced).toHaveLength(1);
    const key = /LABRIG ADMIN KEY[^:]*: (\S+)/.exec(announced[0] ?? "")?.[1] ?? "";
    expect((await getJson(`${first.url}/api/keys`, { auth: key })).status).toBe(200);
    expect(JSON.stringify(lines)).not.toContain(key);
    expect(lines.some((l) => String(l.msg).includes("printed it once on stderr"))).toBe(true);
    await first.hub.stop();
    await startHub({ dataDir: first.dataDir, env: { LABRIG_ADMIN_KEY: "" }, announce: (t) => announced.push(t) });
    expect(announced).toHaveLength(1);
  });

  it("CLI: key add / list / revoke", async () => {
    const hub = await startHub();
    const env = testEnv(hub.dataDir);
    const added = await cli(["key", "add", "alice", "--role", "viewer", "--json"], env);
    expect(added.code, added.stderr).toBe(0);
    const { id, key, role } = JSON.parse(added.stdout) as { id: string; key: string; role: string };
    expect(role).toBe("viewer");
    expect((await getJson(`${hub.url}/api/hosts`, { auth: key })).status).toBe(200);
    const listed = await cli(["key", "list", "--json"], env);
    expect(listed.stdout).not.toContain(key);
    expect((JSON.parse(listed.stdout) as { keys: { name: string }[] }).keys.map((k) => k.name).sort()).toEqual(["alice", "env-admin"]);
    expect((await cli(["key", "revoke", id], env)).code).toBe(0);
    expect((await getJson(`${hub.url}/api/hosts`, { auth: key })).status).toBe(401);
    expect((await cli(["key", "add", "bob"], env)).code).toBe(2);
    expect((await cli(["key", "add", "bob", "--role", "god"], env)).stderr).toContain("role");
    const [admin] = JSON.parse((await cli(["key", "list", "--json"], env)).stdout).keys as { id: string }[];
    const last = await cli(["key", "revoke", admin?.id ?? ""], env);
    expect(last.code).toBe(1);
    expect(last.stderr).toContain("last admin key");
  });
});

describe("hosts over REST", () => {
  it("POST /api/hosts enrols a host and answers its token once; the token works for the agent", async () => {
    const hub = await startHub();
    const res = await postJson(`${hub.url}/api/hosts`, { name: "sim-9", labels: { site: "lab" } });
    expect(res.status).toBe(201);
    expect(Object.keys(res.body).sort()).toEqual(["id", "token"]);
    const agent = await connectedAgent(hub.url, "sim-9", res.body.token as string);
    expect((await sayHello(agent, "sim-9")).ok).toBe(true);
    expect((await getJson(`${hub.url}/api/hosts/sim-9`)).text).not.toContain(res.body.token as string);
    expectEnvelope(await postJson(`${hub.url}/api/hosts`, { name: "sim-9" }), 409, "conflict");
  });

  it("bad input at every host endpoint is an envelope and writes nothing", async () => {
    const hub = await startHub();
    await addHost(hub.dataDir, "sim-1");
    const rows = () => queryDb(hub.dataDir, "SELECT id, token_hash FROM hosts ORDER BY id");
    const before = rows();
    for (const body of [{}, { name: "Not A Slug" }, { name: "ok", labels: { "Bad Key": "x" } }, { name: "ok", extra: true }, { name: 42 }]) {
      expectEnvelope(await postJson(`${hub.url}/api/hosts`, body), 400, "validation_failed");
    }
    expectEnvelope(await getJson(`${hub.url}/api/hosts`, { method: "POST", headers: { "content-type": "text/plain" }, body: "name=x" }), 415, "unsupported_media_type");
    expectEnvelope(await postJson(`${hub.url}/api/hosts/ghost/token`, {}), 404, "unknown_host");
    expectEnvelope(await del(`${hub.url}/api/hosts/ghost/token`), 404, "unknown_host");
    expectEnvelope(await del(`${hub.url}/api/hosts/ghost`), 404, "unknown_host");
    expect(rows()).toEqual(before);
  });

  it("rotating the token over REST disconnects the agent at once and refuses the old token", async () => {
    const hub = await startHub();
    const token = await addHost(hub.dataDir, "sim-1");
    const agent = await connectedAgent(hub.url, "sim-1", token);
    expect((await sayHello(agent, "sim-1")).ok).toBe(true);
    const gone = new Promise<string>((r) => agent.once("disconnect", (reason) => r(reason)));
    // No heartbeat is sent: the hub drops the socket itself.
    const res = await postJson(`${hub.url}/api/hosts/sim-1/token`, {});
    expect(res.status).toBe(200);
    expect(res.body.id).toBe("sim-1");
    expect(await gone).toBe("io server disconnect");
    const err = (await connect(agentSocket(hub.url, { host: "sim-1", token })).then(
      () => null,
      (e: unknown) => e,
    )) as (Error & { data?: { error_code: string } }) | null;
    expect(err?.data?.error_code).toBe("unauthorized");
    await connectedAgent(hub.url, "sim-1", res.body.token as string);
    await waitFor(async () => ((await getJson(`${hub.url}/api/hosts/sim-1`)).body.events as { kind: string }[]).some((e) => e.kind === "token_rotated"));
  });

  it("revoking the token disconnects the agent, keeps the host's history, and no token works until a new one is issued", async () => {
    const hub = await startHub();
    const token = await addHost(hub.dataDir, "sim-1");
    const agent = await connectedAgent(hub.url, "sim-1", token);
    await sayHello(agent, "sim-1");
    const gone = new Promise<void>((r) => agent.once("disconnect", () => r()));
    expect((await del(`${hub.url}/api/hosts/sim-1/token`)).status).toBe(204);
    await gone;
    const refused = (await connect(agentSocket(hub.url, { host: "sim-1", token })).then(
      () => null,
      (e: unknown) => e,
    )) as (Error & { data?: { error_code: string } }) | null;
    expect(refused?.data?.error_code).toBe("unauthorized");
    const host = await getJson(`${hub.url}/api/hosts/sim-1`);
    expect(host.status).toBe(200);
    expect((host.body.events as { kind: string }[]).map((e) => e.kind)).toEqual(expect.arrayContaining(["online", "token_revoked"]));
    const issued = await postJson(`${hub.url}/api/hosts/sim-1/token`, {});
    await connectedAgent(hub.url, "sim-1", issued.body.token as string);
  });

  it("DELETE /api/hosts/:id disconnects the agent and removes the host", async () => {
    const hub = await startHub();
    const token = await addHost(hub.dataDir, "sim-1");
    const agent = await connectedAgent(hub.url, "sim-1", token);
    await sayHello(agent, "sim-1");
    const gone = new Promise<void>((r) => agent.once("disconnect", () => r()));
    expect((await del(`${hub.url}/api/hosts/sim-1`)).status).toBe(204);
    await gone;
    expectEnvelope(await getJson(`${hub.url}/api/hosts/sim-1`), 404, "unknown_host");
    expect(queryDb(hub.dataDir, "SELECT * FROM devices")).toEqual([]);
  });

  it("an agent cannot speak for another host: hello and action.result naming it are refused and logged", async () => {
    const { logger, lines } = memoryLogger();
    const hub = await startHub({ logger });
    const token = await addHost(hub.dataDir, "sim-1");
    await addHost(hub.dataDir, "sim-2");
    const agent = await connectedAgent(hub.url, "sim-1", token);
    const hello = await sayHello(agent, "sim-2");
    expect(hello).toMatchObject({ ok: false, error: { error_code: "forbidden" } });
    expect((await sayHello(agent, "sim-1")).ok).toBe(true);
    const now = new Date().toISOString();
    const result = { id: "a-1", host: "sim-2", device: "dut-1", status: "succeeded", result: {}, error: null, started_at: now, finished_at: now, duration_ms: 1 };
    const ack = await agent.timeout(3000).emitWithAck("action.result", result);
    expect(ack).toMatchObject({ ok: false, error: { error_code: "forbidden" } });
    const warnings = lines.filter((l) => l.authenticated_host === "sim-1" && l.claimed_host === "sim-2");
    expect(warnings.map((l) => l.event).sort()).toEqual(["action.result", "hello"]);
    expect(JSON.stringify(lines)).not.toContain(token);
    expect(JSON.stringify(lines)).not.toContain(TEST_ADMIN_KEY);
  });
});
