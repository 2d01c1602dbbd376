import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { DASHBOARD_NAMESPACE, SOCKET_EVENTS, type Role } from "@labrig/shared";
import { SignJWT, exportSPKI, generateKeyPair } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { pino } from "pino";
import { createApp } from "../src/api/app.js";
import { accessOf, allows, route, type Route } from "../src/api/route.js";
import { expectEnvelope, TEST_ADMIN_KEY, cleanupTempDirs, connect, dashboardSocket, getJson, makeTempDir, postJson, startHub, stopAll, type JsonResponse, type RunningHub } from "./helpers.js";

const HS_SECRET = "hs256-test-secret-that-is-long-enough-0123456789";
const ISSUER = "https://idp.test";

interface Credential {
  name: string;
  token: string | null;
  /** The role it grants, or null when it must be refused with 401. */
  role: Role | null;
}

let hub: RunningHub;
const credentials: Credential[] = [];

async function hsJwt(claims: Record<string, unknown>, exp: number | string = "10m"): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg: "HS256" }).setSubject("alice").setIssuedAt().setExpirationTime(exp).sign(new TextEncoder().encode(HS_SECRET));
}

beforeAll(async () => {
  const dir = makeTempDir();
  const { publicKey, privateKey } = await generateKeyPair("RS256");
  const pemPath = join(dir, "jwt-public.pem");
  writeFileSync(pemPath, await exportSPKI(publicKey));
  hub = await startHub({
    dataDir: join(dir, "data"),
    // This test sends hundreds of bad credentials on purpose; the limiter has its own test.
    env: { JWT_SECRET: HS_SECRET, JWT_PUBLIC_KEY_FILE: pemPath, LABRIG_AUTH_FAIL_LIMIT: "1000000" },
  });
  const key = async (role: Role): Promise<string> => {
    const res = await postJson(`${hub.url}/api/keys`, { name: `${role}-key`, role });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    return res.body.key as string;
  };
  const rs = await new SignJWT({ role: "viewer" }).setProtectedHeader({ alg: "RS256" }).setSubject("bob").setIssuer(ISSUER).setExpirationTime("10m").sign(privateKey);
  credentials.push(
    { name: "no credentials", token: null, role: null },
    { name: "a bad key", token: "lrk_this-key-was-never-issued-by-the-hub-000000", role: null },
    { name: "an expired JWT", token: await hsJwt({ role: "admin" }, Math.floor(Date.now() / 1000) - 3600), role: null },
    { name: "a JWT signed with another secret", token: await new SignJWT({ role: "admin" }).setProtectedHeader({ alg: "HS256" }).setSubject("eve").setExpirationTime("10m").sign(new TextEncoder().encode("x".repeat(40))), role: null },
    { name: "a viewer key", token: await key("viewer"), role: "viewer" },
    { name: "an operator key", token: await key("operator"), role: "operator" },
    { name: "an admin key", token: await key("admin"), role: "admin" },
    { name: "an HS256 JWT with role operator", token: await hsJwt({ role: "operator" }), role: "operator" },
    { name: "an RS256 JWT with role viewer", token: rs, role: "viewer" },
  );
});

afterAll(async () => {
  await stopAll();
  cleanupTempDirs();
});

/** A concrete URL for a route; parameters name things that do not exist, so allowed calls change nothing. */
function concretePath(r: Route): string {
  return r.path.replace(/:([A-Za-z0-9_]+)/g, (_m, name: string) => (name === "host" ? "ghost" : name === "device" ? "nope" : "does-not-exist"));
}

function call(r: Route, token: string | null): Promise<JsonResponse> {
  const url = `${hub.url}${concretePath(r)}`;
  const method = r.method.toUpperCase();
  return getJson(url, method === "GET" ? { auth: token } : { method, headers: { "content-type": "application/json" }, body: "{}", auth: token });
}

const key = (r: Pick<Route, "method" | "path">): string => `${r.method.toUpperCase()} ${r.path}`;

describe("the route declarations", () => {
  it("are what /docs/openapi.json documents, one operation per route", async () => {
    const served = hub.hub.routes();
    expect(served.length).toBeGreaterThan(40);
    const doc = (await getJson(`${hub.url}/docs/openapi.json`, { auth: null })).body as { paths: Record<string, Record<string, unknown>> };
    const documented = Object.entries(doc.paths).flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${path.replace(/\{([^}]+)\}/g, ":$1")}`));
    expect(documented.sort()).toEqual(served.map(key).sort());
  });

  it("an app with a route declared twice is refused at creation", () => {
    const twice = route({ method: "get", path: "/api/twice", tag: "t", summary: "twice", handler: () => ({}) });
    expect(() => createApp({ logger: pino({ level: "silent" }), auth: {} as never, limiter: {} as never, bodyLimit: "1kb", corsOrigins: [], routes: [twice, twice] })).toThrow(/get \/api\/twice is declared twice/);
  });

  it("follows the policy: GET viewer, writes operator, admin for keys, host enrolment and health overrides", () => {
    const routes = hub.hub.routes();
    const admin = routes.filter((r) => accessOf(r) === "admin").map(key);
    expect(admin.sort()).toEqual(
      [
        "GET /api/keys",
        "POST /api/keys",
        "DELETE /api/keys/:id",
        "POST /api/hosts",
        "DELETE /api/hosts/:host",
        "POST /api/hosts/:host/token",
        "DELETE /api/hosts/:host/token",
        "PUT /api/hosts/:host/devices/:device/health",
      ].sort(),
    );
    for (const r of routes.filter((x) => x.access === undefined)) expect(accessOf(r)).toBe(r.method === "get" ? "viewer" : "operator");
  });
});

describe("every route × every credential", () => {
  it("answers 401 without a valid credential, 403 below the route's role, and neither at or above it", async () => {
    for (const r of hub.hub.routes()) {
      const access = accessOf(r);
      for (const cred of credentials) {
        const res = await call(r, cred.token);
        const context = `${key(r)} with ${cred.name}`;
        if (access === "public") {
          expect([401, 403], context).not.toContain(res.status);
        } else if (cred.role === null) {
          expectEnvelope(res, 401, "unauthorized", context);
          expect(res.headers.get("www-authenticate"), context).toMatch(/^Bearer/);
        } else if (!allows(cred.role, access)) {
          expectEnvelope(res, 403, "forbidden", context);
          expect(res.body.message, context).toContain(`needs the ${access} role`);
        } else {
          expect([401, 403, 429], `${context}: ${res.text}`).not.toContain(res.status);
        }
      }
    }
  });

  it("an expired JWT is refused with a message that says so", async () => {
    const expired = credentials.find((c) => c.name === "an expired JWT");
    const res = await getJson(`${hub.url}/api/hosts`, { auth: expired?.token ?? null });
    expectEnvelope(res, 401, "unauthorized", "expired");
    expect(res.body.message).toContain("expired");
  });

  it("a valid JWT without a labrig role is forbidden, naming the claim", async () => {
    const res = await getJson(`${hub.url}/api/hosts`, { auth: await hsJwt({ groups: ["staff"] }) });
    expectEnvelope(res, 403, "forbidden", "no role");
    expect(res.body.message).toContain("'role'");
  });

  it("unknown routes: 401 for anonymous callers, 404 for any authenticated one", async () => {
    const viewer = credentials.find((c) => c.role === "viewer")?.token ?? null;
    for (const method of ["GET", "POST", "DELETE"]) {
      expectEnvelope(await getJson(`${hub.url}/api/nope`, { method, auth: null }), 401, "unauthorized", `${method} anonymous`);
      expectEnvelope(await getJson(`${hub.url}/api/nope`, { method, auth: viewer }), 404, "not_found", `${method} viewer`);
      expectEnvelope(await getJson(`${hub.url}/nope`, { method, auth: viewer }), 404, "not_found", `${method} viewer outside /api`);
    }
  });

  it("the policy cannot be dodged by case or a trailing slash", async () => {
    const viewer = credentials.find((c) => c.role === "viewer")?.token ?? null;
    for (const path of ["/API/KEYS", "/api/keys/", "/api/Keys"]) {
      const anon = await getJson(`${hub.url}${path}`, { auth: null });
      expect(anon.status, path).toBe(401);
      const res = await getJson(`${hub.url}${path}`, { auth: viewer });
      expect(res.status, path).toBe(403);
    }
  });

  it("HEAD follows GET's policy", async () => {
    expect((await getJson(`${hub.url}/api/hosts`, { method: "HEAD", auth: null })).status).toBe(401);
    expect((await getJson(`${hub.url}/api/hosts`, { method: "HEAD", auth: credentials.find((c) => c.role === "viewer")?.token ?? null })).status).toBe(200);
  });

  it("tokens in the query string are not accepted on REST", async () => {
    const res = await getJson(`${hub.url}/api/hosts?token=${TEST_ADMIN_KEY}`, { auth: null });
    expect(res.status).toBe(401);
  });
});

/**
 * A payload for every event a dashboard may send, and what each role must get back: ok, or the
 * error code. This hub has no agents, so streams of a host it does not know are refused alike for
 * everyone, while typing is refused to viewers before anything else is looked at. A new event must be added here.
 */
const DASHBOARD_SAMPLES: Record<string, { payload: unknown; expect: (role: Role) => true | string }> = {
  subscribe: { payload: { topics: ["host.state"] }, expect: () => true },
  "console.subscribe": { payload: { host: "no-such-host", device: "dut1" }, expect: () => "unknown_host" },
  "console.unsubscribe": { payload: { host: "no-such-host", device: "dut1" }, expect: () => "unknown_host" },
  "console.write": { payload: { host: "no-such-host", device: "dut1", data: "x" }, expect: (role) => (role === "viewer" ? "forbidden" : "unknown_host") },
  "video.subscribe": { payload: { host: "no-such-host", device: "dut1" }, expect: () => "unknown_host" },
  "video.unsubscribe": { payload: { host: "no-such-host", device: "dut1" }, expect: () => "unknown_host" },
};

describe("/dashboard × every credential", () => {
  const clientEvents = Object.entries(SOCKET_EVENTS).filter(([, ev]) => ev.namespace === DASHBOARD_NAMESPACE && ev.direction === "dashboard→hub");

  it("has a sample for every dashboard → hub event", () => {
    expect(clientEvents.map(([name]) => name).sort()).toEqual(Object.keys(DASHBOARD_SAMPLES).sort());
  });

  it("refuses bad credentials at the handshake and lets every role connect and send every event, answered as its role allows", async () => {
    for (const cred of credentials) {
      const socket = dashboardSocket(hub.url, { auth: cred.token === null ? {} : { token: cred.token } });
      const outcome = await connect(socket).then(
        () => null,
        (e: unknown) => e as Error & { data?: { error_code: string } },
      );
      if (cred.role === null) {
        expect(outcome?.data?.error_code, cred.name).toBe("unauthorized");
        continue;
      }
      expect(outcome, cred.name).toBeNull();
      for (const [event] of clientEvents) {
        const sample = DASHBOARD_SAMPLES[event];
        const ack = (await socket.timeout(3000).emitWithAck(event, sample?.payload)) as { ok: boolean; error?: { error_code: string } };
        const wanted = sample?.expect(cred.role);
        if (wanted === true) expect(ack.ok, `${event} with ${cred.name}`).toBe(true);
        else expect(ack, `${event} with ${cred.name}`).toMatchObject({ ok: false, error: { error_code: wanted } });
      }
      socket.disconnect();
    }
  });

  it("accepts the credential as ?token= and as an Authorization header too", async () => {
    await connect(dashboardSocket(hub.url, { query: { token: TEST_ADMIN_KEY } }));
    await connect(dashboardSocket(hub.url, { headers: { authorization: `Bearer ${TEST_ADMIN_KEY}` } }));
  });

  it("refuses an invalid subscribe with validation_failed", async () => {
    const socket = dashboardSocket(hub.url, { auth: { token: TEST_ADMIN_KEY } });
    await connect(socket);
    const ack = (await socket.timeout(3000).emitWithAck("subscribe", { topics: ["everything"] })) as { ok: boolean; error?: { error_code: string } };
    expect(ack).toMatchObject({ ok: false, error: { error_code: "validation_failed" } });
  });
});
