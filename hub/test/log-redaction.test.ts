import { Writable } from "node:stream";
import { lineRedactor, redactUrl } from "@labrig/shared";
import { SignJWT } from "jose";
import { afterEach, describe, expect, it } from "vitest";
import { configSecrets, loadConfig } from "../src/config.js";
import { createLogger } from "../src/logger.js";
import { FakeAgent } from "./dispatch-helpers.js";
import { agentSocket, cleanupTempDirs, connect, connectedAgent, dashboardSocket, getJson, makeTempDir, postJson, startHub, stopAll, testEnv } from "./helpers.js";

// A whole session — REST, an agent, dashboards, keys, leases, JWTs, and the usual client mistakes
// (credentials in the query string, wrong and revoked credentials) — with the hub's own logger at
// trace level captured; afterwards no secret the session used may appear anywhere in the log.

afterEach(async () => {
  await stopAll();
  cleanupTempDirs();
});

// An admin key with no recognisable prefix: only the configured-secret scrubbing can catch it.
const ADMIN = "admin-key-with-no-prefix-0123456789abcdef";
const JWT_SECRET = "jwt-secret-for-the-log-redaction-test-0123456789";
const GEMINI_KEY = "AIzaFakeGeminiKeyForTheLogTest0123456789";
const jwtKey = new TextEncoder().encode(JWT_SECRET);

function capture(): { stream: Writable; text: () => string; lines: () => number } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      chunks.push(chunk.toString("utf8"));
      cb();
    },
  });
  return { stream, text: () => chunks.join(""), lines: () => chunks.join("").split("\n").filter((l) => l.trim() !== "").length };
}

describe("credentials never reach the hub's log", () => {
  it("a full session at trace level logs none of the secrets it used", async () => {
    const dataDir = makeTempDir();
    const env = { LABRIG_ADMIN_KEY: ADMIN, JWT_SECRET, GEMINI_API_KEY: GEMINI_KEY, GEMINI_BASE_URL: "http://127.0.0.1:9", LOG_LEVEL: "trace", LABRIG_AUTH_FAIL_LIMIT: "1000" };
    const log = capture();
    const logger = createLogger("trace", log.stream, configSecrets(loadConfig(testEnv(dataDir, env))));
    const hub = await startHub({ dataDir, env, logger });
    const secrets: Record<string, string> = { admin: ADMIN, jwt_secret: JWT_SECRET, gemini: GEMINI_KEY };
    const as = (token: string | null) => ({ auth: token });

    // REST, right and wrong: the admin key as Bearer, and in query strings (refused, but logged as a URL).
    expect((await getJson(`${hub.url}/api/hosts`, as(ADMIN))).status).toBe(200);
    // A credential in the query of a route that takes none is refused (and still must not reach the log).
    expect((await getJson(`${hub.url}/api/health?token=${ADMIN}`, as(null))).status).toBe(400);
    expect((await getJson(`${hub.url}/api/hosts?token=${encodeURIComponent(ADMIN)}`, as(null))).status).toBe(401);
    expect((await getJson(`${hub.url}/api/hosts?x=1&access_token=${ADMIN}`, as(null))).status).toBe(401);

    // Keys: create, use, revoke, use again; a key that never existed.
    const viewer = await postJson(`${hub.url}/api/keys`, { name: "viewer-1", role: "viewer" }, {}, ADMIN);
    secrets.viewer = viewer.body.key as string;
    const operator = await postJson(`${hub.url}/api/keys`, { name: "operator-1", role: "operator" }, {}, ADMIN);
    secrets.operator = operator.body.key as string;
    expect((await getJson(`${hub.url}/api/hosts`, as(secrets.viewer))).status).toBe(200);
    expect((await getJson(`${hub.url}/api/keys/${viewer.body.id as string}`, { method: "DELETE", auth: ADMIN })).status).toBe(204);
    expect((await getJson(`${hub.url}/api/hosts`, as(secrets.viewer))).status).toBe(401);
    secrets.bogus_key = "lrk_this-key-was-never-issued-by-the-hub-00000000";
    expect((await getJson(`${hub.url}/api/hosts`, as(secrets.bogus_key))).status).toBe(401);

    // JWTs: valid, expired, without exp, signed with another secret.
    const now = Math.floor(Date.now() / 1000);
    secrets.jwt = await new SignJWT({ role: "operator" }).setProtectedHeader({ alg: "HS256" }).setSubject("alice").setIssuedAt().setExpirationTime("10m").sign(jwtKey);
    secrets.jwt_expired = await new SignJWT({ role: "admin" }).setProtectedHeader({ alg: "HS256" }).setSubject("alice").setIssuedAt(now - 7200).setExpirationTime(now - 3600).sign(jwtKey);
    secrets.jwt_no_exp = await new SignJWT({ role: "admin" }).setProtectedHeader({ alg: "HS256" }).setSubject("alice").setIssuedAt().sign(jwtKey);
    expect((await getJson(`${hub.url}/api/hosts`, as(secrets.jwt))).status).toBe(200);
    expect((await getJson(`${hub.url}/api/hosts`, as(secrets.jwt_expired))).status).toBe(401);
    expect((await getJson(`${hub.url}/api/hosts`, as(secrets.jwt_no_exp))).status).toBe(401);

    // A host enrolled over REST, its agent, a wrong token, a rotation and the old token's reconnect.
    const enrolled = await postJson(`${hub.url}/api/hosts`, { name: "pi-1" }, {}, ADMIN);
    const agent = new FakeAgent(hub, "pi-1", [{ id: "dut" }]);
    agent.token = enrolled.body.token as string;
    secrets.host_token = agent.token;
    await agent.connect();
    secrets.host_token_wrong = "lrh_not-the-token-of-this-host-000000000000000";
    await expect(connect(agentSocket(hub.url, { host: "pi-1", token: secrets.host_token_wrong }))).rejects.toThrow();
    await expect(connect(agentSocket(hub.url, { host: "nobody", token: secrets.host_token }))).rejects.toThrow();

    // Dashboards: the credential as auth.token, ?token= and a Bearer header; refused ones too.
    await connect(dashboardSocket(hub.url, { auth: { token: ADMIN } }));
    await connect(dashboardSocket(hub.url, { query: { token: secrets.operator } }));
    await connect(dashboardSocket(hub.url, { headers: { authorization: `Bearer ${secrets.jwt}` } }));
    await expect(connect(dashboardSocket(hub.url, { query: { token: secrets.bogus_key } }))).rejects.toThrow();
    await expect(connect(dashboardSocket(hub.url, { auth: { token: secrets.jwt_expired } }))).rejects.toThrow();

    // Leases: take one, act with its token (header and body), keep it alive, mistakes, release.
    const lease = await postJson(`${hub.url}/api/leases`, { target: { host: "pi-1", device: "dut" }, ttl_s: 60, owner: "ci" }, {}, secrets.operator);
    expect(lease.status, lease.text).toBe(201);
    secrets.lease_token = lease.body.token as string;
    const path = `${hub.url}/api/hosts/pi-1/devices/dut/actions`;
    expect((await postJson(path, { action: "gpio.read", params: {} }, { "x-lease-token": secrets.lease_token }, secrets.operator)).body.status).toBe("succeeded");
    expect((await postJson(path, { action: "gpio.read", params: {}, lease_token: secrets.lease_token }, {}, secrets.operator)).body.status).toBe("succeeded");
    secrets.lease_token_wrong = "lrl_not-a-lease-token-of-this-hub-0000000000000";
    expect((await postJson(path, { action: "gpio.read", params: {}, lease_token: secrets.lease_token_wrong }, {}, secrets.operator)).status).toBe(423);
    expect((await postJson(`${hub.url}/api/leases/${lease.body.id as string}/keepalive`, { lease_token: secrets.lease_token }, {}, secrets.operator)).status).toBe(200);
    await getJson(`${hub.url}/api/leases?lease_token=${secrets.lease_token}`, as(secrets.operator));
    const released = await getJson(`${hub.url}/api/leases/${lease.body.id as string}`, { method: "DELETE", headers: { "x-lease-token": secrets.lease_token }, auth: secrets.operator });
    expect(released.status, released.text).toBe(200);

    // Rotation: the old token is refused at the agent's next heartbeat and at its reconnect.
    const rotated = await postJson(`${hub.url}/api/hosts/pi-1/token`, {}, {}, ADMIN);
    secrets.host_token_rotated = rotated.body.token as string;
    await expect(connect(agentSocket(hub.url, { host: "pi-1", token: secrets.host_token }))).rejects.toThrow();
    const renewed = await connectedAgent(hub.url, "pi-1", secrets.host_token_rotated);
    renewed.disconnect();

    await hub.hub.stop();
    const text = log.text();
    // No secret it used is in that log.
    for (const [name, secret] of Object.entries(secrets)) {
      expect(secret.length, name).toBeGreaterThan(20);
      expect(text.includes(secret), `${name} appears in the hub's log`).toBe(false);
      expect(text.includes(encodeURIComponent(secret)), `${name} (URL-encoded) appears in the hub's log`).toBe(false);
    }
    // The session was logged (request lines, handshakes, refusals), with the credentials cut out.
    expect(log.lines()).toBeGreaterThan(50);
    expect(text).toContain('"url":"/api/hosts?token=[redacted]"');
    expect(text).toContain("agent handshake with unknown host or wrong token refused");
    expect(text).toContain("dashboard authentication failed");
  });
});

describe("the log scrubber", () => {
  it("redacts credential query parameters from URLs and keeps the rest", () => {
    expect(redactUrl("/api/hosts?limit=5&token=abc&Lease_Token=def#x")).toBe("/api/hosts?limit=5&token=[redacted]&Lease_Token=[redacted]#x");
    expect(redactUrl("/api/hosts/pi-1")).toBe("/api/hosts/pi-1");
  });

  it("redacts issued tokens, JWTs, Bearer values and configured secrets from a line, keeping it valid JSON", () => {
    const scrub = lineRedactor(["my-configured-secret-with-\"quote"]);
    const line = JSON.stringify({
      msg: "failed with lrk_abcdefghijklmnop and lrh_abcdefghijklmnop and lrl_abcdefghijklmnop",
      header: "Bearer opaque-thing-123",
      jwt: "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.c2lnbmF0dXJl",
      configured: "x my-configured-secret-with-\"quote y",
    });
    const out = scrub(line);
    const parsed = JSON.parse(out) as Record<string, string>;
    expect(parsed.msg).toBe("failed with [redacted] and [redacted] and [redacted]");
    expect(parsed.header).toBe("Bearer [redacted]");
    expect(parsed.jwt).toBe("[redacted]");
    expect(parsed.configured).toBe("x [redacted] y");
  });

  it("censors credential fields of structured log calls", () => {
    const log = capture();
    const logger = createLogger("info", log.stream);
    logger.info({ handshake: { auth: { host: "pi-1", token: "opaque" } }, headers: { authorization: "opaque", "x-lease-token": "opaque" }, lease_token: "opaque", key: "opaque" }, "fields");
    expect(log.text()).not.toContain("opaque");
  });
});
