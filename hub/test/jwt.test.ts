import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { SignJWT, exportJWK, generateKeyPair, type CryptoKey, type JWK } from "jose";
import { afterEach, describe, expect, it } from "vitest";
import { loadConfig } from "../src/config.js";
import { cleanupTempDirs, connect, dashboardSocket, expectEnvelope, getJson, makeTempDir, memoryLogger, startHub, stopAll, testEnv } from "./helpers.js";

// JWT rules: every token expires, no token lives longer than JWT_MAX_LIFETIME_S, and an OIDC
// provider's keys come from its JWKS URL (a real HTTP server on 127.0.0.1 here).

const HS_SECRET = "hs256-test-secret-that-is-long-enough-0123456789";
const hsKey = new TextEncoder().encode(HS_SECRET);

const servers: Server[] = [];

afterEach(async () => {
  await stopAll();
  for (const s of servers.splice(0)) await new Promise<void>((r) => s.close(() => r()));
  cleanupTempDirs();
});

interface JwksServer {
  url: string;
  hits: () => number;
  /** Stop answering (requests hang until the client gives up). */
  hang: (on: boolean) => void;
}

/** A JWKS endpoint on 127.0.0.1 serving `keys`, counting its requests. */
async function jwksServer(keys: JWK[]): Promise<JwksServer> {
  let hits = 0;
  let hanging = false;
  const server = createServer((req, res) => {
    hits += 1;
    if (hanging) return;
    res.setHeader("content-type", "application/json");
    res.end(JSON.stringify({ keys }));
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}/.well-known/jwks.json`, hits: () => hits, hang: (on) => (hanging = on) };
}

async function providerKey(alg: "RS256" | "ES256", kid: string): Promise<{ privateKey: CryptoKey; jwk: JWK }> {
  const { publicKey, privateKey } = await generateKeyPair(alg);
  return { privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg, use: "sig" } };
}

function signed(claims: Record<string, unknown>, alg: string, kid?: string): SignJWT {
  return new SignJWT(claims).setProtectedHeader({ alg, ...(kid ? { kid } : {}) }).setSubject("alice");
}

const hosts = (url: string, token: string) => getJson(`${url}/api/hosts`, { auth: token });

describe("JWT expiry and lifetime", () => {
  it("refuses a JWT without exp, saying that tokens must expire", async () => {
    const hub = await startHub({ env: { JWT_SECRET: HS_SECRET } });
    const token = await signed({ role: "admin" }, "HS256").setIssuedAt().sign(hsKey);
    const res = await hosts(hub.url, token);
    expectEnvelope(res, 401, "unauthorized", "no exp");
    expect(res.body.message).toContain("'exp'");
    // The same refusal on the dashboard socket.
    const err = (await connect(dashboardSocket(hub.url, { auth: { token } })).catch((e: unknown) => e)) as { data?: { error_code: string; message: string } };
    expect(err.data?.error_code).toBe("unauthorized");
  });

  it("refuses a JWT whose exp − iat exceeds JWT_MAX_LIFETIME_S, naming the setting, and accepts one within it", async () => {
    const hub = await startHub({ env: { JWT_SECRET: HS_SECRET, JWT_MAX_LIFETIME_S: "3600" } });
    const now = Math.floor(Date.now() / 1000);
    // Issued a while ago but still valid: the lifetime counts from iat, not from now.
    const long = await signed({ role: "viewer" }, "HS256").setIssuedAt(now - 7000).setExpirationTime(now + 600).sign(hsKey);
    const res = await hosts(hub.url, long);
    expectEnvelope(res, 401, "unauthorized", "too long");
    expect(res.body.message).toContain("JWT_MAX_LIFETIME_S");
    const ok = await signed({ role: "viewer" }, "HS256").setIssuedAt(now).setExpirationTime(now + 3000).sign(hsKey);
    expect((await hosts(hub.url, ok)).status).toBe(200);
  });

  it("without iat, caps exp − now", async () => {
    const hub = await startHub({ env: { JWT_SECRET: HS_SECRET, JWT_MAX_LIFETIME_S: "3600" } });
    const now = Math.floor(Date.now() / 1000);
    const far = await signed({ role: "viewer" }, "HS256").setExpirationTime(now + 30 * 86_400).sign(hsKey);
    const res = await hosts(hub.url, far);
    expectEnvelope(res, 401, "unauthorized", "far exp");
    expect(res.body.message).toContain("no 'iat'");
    const near = await signed({ role: "viewer" }, "HS256").setExpirationTime(now + 600).sign(hsKey);
    expect((await hosts(hub.url, near)).status).toBe(200);
  });

  it("warns at start when JWTs are on without JWT_ISSUER or JWT_AUDIENCE, and not when both are set", async () => {
    const unset = memoryLogger();
    await startHub({ env: { JWT_SECRET: HS_SECRET }, logger: unset.logger });
    const warning = unset.lines.find((l) => l.level === 40 && String(l.msg).includes("JWT_ISSUER and JWT_AUDIENCE"));
    expect(warning).toBeDefined();
    const set = memoryLogger();
    await startHub({ env: { JWT_SECRET: HS_SECRET, JWT_ISSUER: "https://idp.test", JWT_AUDIENCE: "labrig" }, logger: set.logger });
    expect(set.lines.some((l) => String(l.msg).includes("JWT_ISSUER and JWT_AUDIENCE"))).toBe(false);
  });
});

describe("JWKS (an OIDC provider's keys)", () => {
  it("accepts RS256 and ES256 tokens signed with keys from JWT_JWKS_URL, fetching the set once for many requests", async () => {
    const rs = await providerKey("RS256", "rs-1");
    const es = await providerKey("ES256", "es-1");
    const idp = await jwksServer([rs.jwk, es.jwk]);
    const hub = await startHub({ env: { JWT_JWKS_URL: idp.url, JWT_ISSUER: "https://idp.test", JWT_AUDIENCE: "labrig" } });
    const claims = { role: "operator" };
    const rsToken = await signed(claims, "RS256", "rs-1").setIssuer("https://idp.test").setAudience("labrig").setIssuedAt().setExpirationTime("5m").sign(rs.privateKey);
    const esToken = await signed(claims, "ES256", "es-1").setIssuer("https://idp.test").setAudience("labrig").setIssuedAt().setExpirationTime("5m").sign(es.privateKey);
    for (let i = 0; i < 5; i++) {
      expect((await hosts(hub.url, rsToken)).status).toBe(200);
      expect((await hosts(hub.url, esToken)).status).toBe(200);
    }
    // Once at start; the cache serves the rest.
    expect(idp.hits()).toBe(1);
    // The audience is checked: a token for another service is refused.
    const other = await signed(claims, "RS256", "rs-1").setIssuer("https://idp.test").setAudience("grafana").setIssuedAt().setExpirationTime("5m").sign(rs.privateKey);
    expectEnvelope(await hosts(hub.url, other), 401, "unauthorized", "audience");
    await connect(dashboardSocket(hub.url, { auth: { token: esToken } }));
  });

  it("refuses a token signed by a key the provider does not publish, without asking the provider again for each request", async () => {
    const published = await providerKey("RS256", "rs-1");
    const rogue = await providerKey("RS256", "rs-rogue");
    const idp = await jwksServer([published.jwk]);
    const hub = await startHub({ env: { JWT_JWKS_URL: idp.url, LABRIG_AUTH_FAIL_LIMIT: "1000" } });
    const token = await signed({ role: "admin" }, "RS256", "rs-rogue").setIssuedAt().setExpirationTime("5m").sign(rogue.privateKey);
    for (let i = 0; i < 5; i++) expectEnvelope(await hosts(hub.url, token), 401, "unauthorized", "unknown kid");
    // The start fetch, and no more: a new kid is looked up at most once per cooldown (30 s).
    expect(idp.hits()).toBe(1);
  });

  it("answers 503 auth_unavailable (not 401, and not counted as a failed login) within the timeout when the provider hangs", async () => {
    const key = await providerKey("RS256", "rs-1");
    const idp = await jwksServer([key.jwk]);
    idp.hang(true);
    const hub = await startHub({ env: { JWT_JWKS_URL: idp.url, JWT_JWKS_TIMEOUT_MS: "300", LABRIG_AUTH_FAIL_LIMIT: "2" } });
    await new Promise((r) => setTimeout(r, 1100));
    const token = await signed({ role: "viewer" }, "RS256", "rs-1").setIssuedAt().setExpirationTime("5m").sign(key.privateKey);
    for (let i = 0; i < 3; i++) {
      const t0 = Date.now();
      const res = await hosts(hub.url, token);
      expectEnvelope(res, 503, "auth_unavailable", "hanging provider");
      expect(res.headers.get("retry-after")).not.toBeNull();
      expect(Date.now() - t0).toBeLessThan(2000);
    }
    // The provider is back: after the short fail-fast window the same token works.
    idp.hang(false);
    await new Promise((r) => setTimeout(r, 1100));
    expect((await hosts(hub.url, token)).status).toBe(200);
  });

  it("configuration: plain http only on loopback, no credentials in the URL, not together with JWT_PUBLIC_KEY_FILE", () => {
    const dir = makeTempDir();
    expect(() => loadConfig(testEnv(dir, { JWT_JWKS_URL: "http://idp.example.com/jwks" }))).toThrow(/JWT_JWKS_URL: must be https/);
    expect(() => loadConfig(testEnv(dir, { JWT_JWKS_URL: "https://u:p@idp.example.com/jwks" }))).toThrow(/JWT_JWKS_URL: must not carry credentials/);
    expect(() => loadConfig(testEnv(dir, { JWT_JWKS_URL: "https://idp.example.com/jwks", JWT_PUBLIC_KEY_FILE: "/x.pem" }))).toThrow(/both set/);
    expect(loadConfig(testEnv(dir, { JWT_JWKS_URL: "https://idp.example.com/jwks" })).security.jwtJwksUrl).toBe("https://idp.example.com/jwks");
    expect(loadConfig(testEnv(dir)).security.jwtMaxLifetimeS).toBe(86_400);
  });
});
