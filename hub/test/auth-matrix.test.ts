import { AGENT_NAMESPACE, DASHBOARD_NAMESPACE, SOCKET_EVENTS, roleAtLeast, type Role } from "@labrig/shared";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createApp } from "../src/api/app.js";
import { openApiPath } from "../src/api/openapi.js";
import { accessOf, route } from "../src/api/route.js";
import { BAD_KEY, hsJwt, jwtEnv, revokedKey, roleKey, rsJwt } from "./credentials.js";
import { TEST_ADMIN_KEY, cleanupTempDirs, connect, dashboardSocket, expectEnvelope, getJson, makeTempDir, stopAll, type JsonResponse } from "./helpers.js";
import { stopLocalAgents } from "./local-agents.js";
import { RIG_DEVICE, RIG_HOST, SOCKET_HOST, VICTIM_HOST, startRig, type Rig } from "./fuzz/rig.js";
import { baseHello, handshake } from "./fuzz/socket-sessions.js";
import { formatGrid } from "./fuzz/tally.js";

/*
 * The auth matrix (issue 10), generated from the published route table (each operation's
 * x-labrig-access in /docs/openapi.json, checked against hub.routes()) and the socket event list
 * (SOCKET_EVENTS): every route, dashboard event and agent event × every kind of credential, printed
 * as a matrix, failing on any cell that differs from the policy — public routes for anyone; viewer
 * for reads; operator for writes; admin where declared; a host token is never an operator
 * credential; on /agent only a host token works, and only for its own host.
 */

type Access = "public" | Role;

interface Credential {
  /** Column heading. */
  short: string;
  token: string | null;
  /** The role it grants, or null when every authenticated door must refuse it. */
  role: Role | null;
}

let rig: Rig;
let credentials: Credential[] = [];
let doc: { paths: Record<string, Record<string, { "x-labrig-access": Access }>> };

beforeAll(async () => {
  const jwt = await jwtEnv(makeTempDir());
  rig = await startRig(jwt.env);
  doc = (await getJson(`${rig.hub.url}/docs/openapi.json`, { auth: null })).body as typeof doc;
  credentials = [
    { short: "none", token: null, role: null },
    { short: "bad key", token: BAD_KEY, role: null },
    { short: "forged JWT", token: await hsJwt({ role: "admin" }, "10m", "x".repeat(40)), role: null },
    { short: "expired JWT", token: await hsJwt({ role: "admin" }, Math.floor(Date.now() / 1000) - 3600), role: null },
    { short: "revoked key", token: await revokedKey(rig.hub), role: null },
    { short: "host token", token: rig.hostTokens[SOCKET_HOST] as string, role: null },
    { short: "viewer", token: rig.tokens.viewer, role: "viewer" },
    { short: "viewer RS256", token: await rsJwt(jwt, "viewer"), role: "viewer" },
    { short: "operator", token: rig.tokens.operator, role: "operator" },
    { short: "operator HS256", token: await hsJwt({ role: "operator" }), role: "operator" },
    { short: "admin", token: (await roleKey(rig.hub, "admin", "matrix-admin")).key, role: "admin" },
  ];
}, 120_000);

afterAll(async () => {
  await stopLocalAgents();
  await stopAll();
  await rig?.fake.stop();
  cleanupTempDirs();
});

/** What the policy says a credential gets at a door that needs `access`. */
function expected(access: Access, role: Role | null): "allowed" | "401" | "403" {
  if (access === "public") return "allowed";
  if (role === null) return "401";
  return roleAtLeast(role, access) ? "allowed" : "403";
}

/** A concrete URL for an operation; parameters name things that do not exist, so an allowed call changes nothing. */
function concretePath(template: string): string {
  return template.replace(/\{([^}]+)\}/g, (_m, name: string) => (name === "host" ? "ghost" : name === "device" ? "nope" : "does-not-exist"));
}

function callRoute(method: string, template: string, token: string | null): Promise<JsonResponse> {
  const url = `${rig.hub.url}${concretePath(template)}`;
  return getJson(url, method === "get" ? { auth: token } : { method: method.toUpperCase(), headers: { "content-type": "application/json" }, body: "{}", auth: token });
}

/** Renders and checks a matrix: each cell is what happened, with `!` where it differs from the policy. */
function report(title: string, rows: { label: string; cells: string[]; bad: string[] }[]): void {
  console.log(formatGrid(title, credentials.map((c) => c.short), rows));
  const wrong = rows.flatMap((r) => r.bad.map((b) => `${r.label} × ${b}`));
  console.log(`${title}: ${rows.length} rows × ${credentials.length} credentials, ${wrong.length} cells off the policy`);
  expect(wrong).toEqual([]);
}

describe("the route table", () => {
  it("is what /docs/openapi.json publishes: one operation per declared route, with its access", () => {
    const served = rig.hub.hub.routes().map((r) => `${r.method} ${openApiPath(r.path)} ${accessOf(r)}`);
    const published = Object.entries(doc.paths).flatMap(([path, ops]) => Object.entries(ops).map(([m, op]) => `${m} ${path} ${op["x-labrig-access"]}`));
    expect(published.sort()).toEqual(served.sort());
    expect(served.length).toBeGreaterThan(40);
  });

  it("declares admin exactly for keys, host enrolment and tokens, and device health overrides; GET viewer and writes operator otherwise", () => {
    const routes = rig.hub.hub.routes();
    const admin = routes.filter((r) => accessOf(r) === "admin").map((r) => `${r.method.toUpperCase()} ${r.path}`);
    expect(admin.sort()).toEqual(
      ["GET /api/keys", "POST /api/keys", "DELETE /api/keys/:id", "POST /api/hosts", "DELETE /api/hosts/:host", "POST /api/hosts/:host/token", "DELETE /api/hosts/:host/token", "PUT /api/hosts/:host/devices/:device/health"].sort(),
    );
    for (const r of routes.filter((x) => x.access === undefined)) expect(accessOf(r)).toBe(r.method === "get" ? "viewer" : "operator");
  });

  it("refuses an app with a route declared twice at creation", () => {
    const twice = route({ method: "get", path: "/api/twice", tag: "t", summary: "twice", handler: () => ({}) });
    expect(() => createApp({ logger: pino({ level: "silent" }), auth: {} as never, limiter: {} as never, bodyLimit: "1kb", corsOrigins: [], routes: [twice, twice] })).toThrow(/get \/api\/twice is declared twice/);
  });
});

describe("REST: every route × every credential", () => {
  it("answers 401 without a valid operator credential (a host token included), 403 below the route's role, and neither at or above it", async () => {
    const rows: { label: string; cells: string[]; bad: string[] }[] = [];
    for (const [template, ops] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(ops)) {
        const access = op["x-labrig-access"];
        const row = { label: `${method.toUpperCase()} ${template} (${access})`, cells: [] as string[], bad: [] as string[] };
        for (const cred of credentials) {
          const res = await callRoute(method, template, cred.token);
          const want = expected(access, cred.role);
          const envelopeOk = res.body.request_id === res.headers.get("x-request-id");
          const fits =
            want === "allowed"
              ? ![401, 403, 429].includes(res.status) && res.status < 500
              : res.status === Number(want) && res.body.error_code === (want === "401" ? "unauthorized" : "forbidden") && envelopeOk && (want === "403" || /^Bearer/.test(res.headers.get("www-authenticate") ?? ""));
          row.cells.push(`${res.status}${fits ? "" : "!"}`);
          if (!fits) row.bad.push(`${cred.short}: ${res.status} (policy: ${want}) ${res.text.slice(0, 160)}`);
        }
        rows.push(row);
      }
    }
    report("REST route (access)", rows);
  });

  it("an expired JWT is refused with a message that says so", async () => {
    const res = await getJson(`${rig.hub.url}/api/hosts`, { auth: credentials.find((c) => c.short === "expired JWT")?.token ?? null });
    expectEnvelope(res, 401, "unauthorized", "expired");
    expect(res.body.message).toContain("expired");
  });

  it("a valid JWT without a labrig role is forbidden, naming the claim", async () => {
    const res = await getJson(`${rig.hub.url}/api/hosts`, { auth: await hsJwt({ groups: ["staff"] }) });
    expectEnvelope(res, 403, "forbidden", "no role");
    expect(res.body.message).toContain("'role'");
  });

  it("unknown routes: 401 for anonymous callers, 404 for any authenticated one", async () => {
    for (const method of ["GET", "POST", "DELETE"]) {
      expectEnvelope(await getJson(`${rig.hub.url}/api/nope`, { method, auth: null }), 401, "unauthorized", `${method} anonymous`);
      expectEnvelope(await getJson(`${rig.hub.url}/api/nope`, { method, auth: rig.tokens.viewer }), 404, "not_found", `${method} viewer`);
      expectEnvelope(await getJson(`${rig.hub.url}/nope`, { method, auth: rig.tokens.viewer }), 404, "not_found", `${method} viewer outside /api`);
    }
  });

  it("the policy cannot be dodged by case or a trailing slash, and HEAD follows GET", async () => {
    for (const path of ["/API/KEYS", "/api/keys/", "/api/Keys"]) {
      expect((await getJson(`${rig.hub.url}${path}`, { auth: null })).status, path).toBe(401);
      expect((await getJson(`${rig.hub.url}${path}`, { auth: rig.tokens.viewer })).status, path).toBe(403);
    }
    expect((await getJson(`${rig.hub.url}/api/hosts`, { method: "HEAD", auth: null })).status).toBe(401);
    expect((await getJson(`${rig.hub.url}/api/hosts`, { method: "HEAD", auth: rig.tokens.viewer })).status).toBe(200);
  });

  it("tokens in the query string are not accepted on REST", async () => {
    expect((await getJson(`${rig.hub.url}/api/hosts?token=${TEST_ADMIN_KEY}`, { auth: null })).status).toBe(401);
  });
});

/**
 * A payload for every event a dashboard may send, on the rig's real device, and the role it needs.
 * In the order sent, so each unsubscribe follows its subscribe. A new event must be added here.
 */
const DUT = { host: RIG_HOST, device: RIG_DEVICE };
const DASHBOARD_SAMPLES: Record<string, { payload: unknown; needs: Role }> = {
  subscribe: { payload: { topics: ["host.state"] }, needs: "viewer" },
  "console.subscribe": { payload: { ...DUT, resource: "console" }, needs: "viewer" },
  "console.unsubscribe": { payload: { ...DUT, resource: "console" }, needs: "viewer" },
  "console.write": { payload: { ...DUT, resource: "console", data: "\r" }, needs: "operator" },
  "video.subscribe": { payload: { ...DUT, resource: "screen" }, needs: "viewer" },
  "video.unsubscribe": { payload: { ...DUT, resource: "screen" }, needs: "viewer" },
};

type Ack = { ok: boolean; error?: { error_code: string } };

describe("/dashboard: the handshake and every dashboard → hub event × every credential", () => {
  const events = Object.entries(SOCKET_EVENTS).filter(([, e]) => e.namespace === DASHBOARD_NAMESPACE && e.direction === "dashboard→hub").map(([name]) => name);

  it("has a sample for every dashboard → hub event", () => {
    expect([...events].sort()).toEqual(Object.keys(DASHBOARD_SAMPLES).sort());
  });

  it("refuses every credential without a role at the handshake, and answers each event as the role allows", async () => {
    const handshakeRow = { label: "handshake", cells: [] as string[], bad: [] as string[] };
    const eventRows = Object.keys(DASHBOARD_SAMPLES).map((name) => ({ label: `${name} (${DASHBOARD_SAMPLES[name]?.needs})`, cells: [] as string[], bad: [] as string[] }));
    for (const cred of credentials) {
      const outcome = await handshake(`${rig.hub.url}${DASHBOARD_NAMESPACE}`, cred.token === null ? {} : { token: cred.token });
      const connected = outcome.ok;
      const fits = connected === (cred.role !== null) && (connected || !outcome.ok && outcome.code === "unauthorized");
      handshakeRow.cells.push(`${connected ? "connected" : `refused:${outcome.ok ? "" : outcome.code}`}${fits ? "" : "!"}`);
      if (!fits) handshakeRow.bad.push(cred.short);
      for (const [i, name] of Object.keys(DASHBOARD_SAMPLES).entries()) {
        const row = eventRows[i] as (typeof eventRows)[number];
        const sample = DASHBOARD_SAMPLES[name] as { payload: unknown; needs: Role };
        if (!outcome.ok) {
          row.cells.push("-");
          continue;
        }
        const ack = (await outcome.socket.timeout(10_000).emitWithAck(name, sample.payload)) as Ack;
        const want = expected(sample.needs, cred.role);
        const ok = want === "allowed" ? ack.ok : !ack.ok && ack.error?.error_code === "forbidden";
        row.cells.push(`${ack.ok ? "ok" : (ack.error?.error_code ?? "refused")}${ok ? "" : "!"}`);
        if (!ok) row.bad.push(`${cred.short}: ${JSON.stringify(ack).slice(0, 200)} (policy: ${want})`);
      }
      if (outcome.ok) outcome.socket.close();
    }
    report("/dashboard (role needed)", [handshakeRow, ...eventRows]);
  });

  it("accepts the credential as ?token= and as an Authorization header too", async () => {
    await connect(dashboardSocket(rig.hub.url, { query: { token: TEST_ADMIN_KEY } }));
    await connect(dashboardSocket(rig.hub.url, { headers: { authorization: `Bearer ${TEST_ADMIN_KEY}` } }));
  });

  it("refuses an invalid subscribe with validation_failed", async () => {
    const socket = dashboardSocket(rig.hub.url, { auth: { token: TEST_ADMIN_KEY } });
    await connect(socket);
    expect(await socket.timeout(3000).emitWithAck("subscribe", { topics: ["everything"] })).toMatchObject({ ok: false, error: { error_code: "validation_failed" } });
  });
});

/** A valid payload of every event an agent sends, speaking for `host` (the fuzz agent's device fz-dev from baseHello). */
function agentSample(event: string, host: string): unknown {
  const at = new Date().toISOString();
  const dev = { host, device: "fz-dev" };
  const samples: Record<string, unknown> = {
    hello: baseHello(host),
    heartbeat: { host, seq: 1, sent_at: at },
    "action.started": { ...dev, id: "matrix-no-such-action", started_at: at },
    "action.result": { ...dev, id: "matrix-no-such-action", status: "succeeded", result: {}, error: null, started_at: at, finished_at: at, duration_ms: 1 },
    "console.output": { ...dev, resource: "console", seq: 0, at, data: "matrix\r\n" },
    "device.state": { ...dev, resource: "console", status: "ready", at },
    "stream.chunk": { ...dev, resource: "cam", seq: 0, codec: "vp8", type: "key", timestamp_us: 0, data: Buffer.alloc(16), width: 16, height: 16 },
    frame: { ...dev, instruction: "What is on the screen?", jpeg: Buffer.alloc(16) },
  };
  return samples[event];
}

describe("/agent: the handshake × every credential, and every agent → hub event for its own host and for another", () => {
  const events = Object.entries(SOCKET_EVENTS).filter(([, e]) => e.namespace === AGENT_NAMESPACE && e.direction === "agent→hub").map(([name]) => name);

  it("has a sample for every agent → hub event", () => {
    for (const name of events) expect(agentSample(name, SOCKET_HOST), name).toBeDefined();
  });

  it("connects only with the host's own token for its own name", async () => {
    const row = (label: string, authOf: (c: Credential) => Record<string, unknown>, wants: (c: Credential) => boolean) => ({ label, authOf, wants, cells: [] as string[], bad: [] as string[] });
    const rows = [
      row(`host ${SOCKET_HOST}`, (c) => (c.token === null ? { host: SOCKET_HOST } : { host: SOCKET_HOST, token: c.token }), (c) => c.short === "host token"),
      row(`host ${VICTIM_HOST} (another host)`, (c) => (c.token === null ? { host: VICTIM_HOST } : { host: VICTIM_HOST, token: c.token }), () => false),
    ];
    for (const r of rows) {
      for (const cred of credentials) {
        const outcome = await handshake(`${rig.hub.url}${AGENT_NAMESPACE}`, r.authOf(cred));
        const fits = outcome.ok === r.wants(cred) && (outcome.ok || outcome.code === "unauthorized");
        r.cells.push(`${outcome.ok ? "connected" : `refused:${outcome.code}`}${fits ? "" : "!"}`);
        if (!fits) r.bad.push(cred.short);
        if (outcome.ok) outcome.socket.close();
      }
    }
    report("/agent handshake as", rows);
  });

  it("accepts each event for the connection's own host and refuses it, forbidden, for another; the other host stays untouched", async () => {
    const outcome = await handshake(`${rig.hub.url}${AGENT_NAMESPACE}`, { host: SOCKET_HOST, token: rig.hostTokens[SOCKET_HOST] });
    if (!outcome.ok) throw new Error(`the matrix agent could not connect: ${outcome.code}`);
    const socket = outcome.socket;
    const lines: string[] = [];
    const wrong: string[] = [];
    for (const event of ["hello", ...events.filter((e) => e !== "hello")]) {
      const own = (await socket.timeout(10_000).emitWithAck(event, agentSample(event, SOCKET_HOST))) as Ack;
      const other = (await socket.timeout(10_000).emitWithAck(event, agentSample(event, VICTIM_HOST))) as Ack;
      // action.started for an action the hub never sent is answered {ok: false} ("do not run it"): not a refusal of the identity.
      const ownFits = own.ok || (event === "action.started" && own.error === undefined);
      const otherFits = !other.ok && other.error?.error_code === "forbidden";
      lines.push(`${event.padEnd(16)}  own host: ${own.ok ? "ok" : (own.error?.error_code ?? "ok: false")}${ownFits ? "" : "!"}   another host: ${other.error?.error_code ?? (other.ok ? "ok" : "ok: false")}${otherFits ? "" : "!"}`);
      if (!ownFits) wrong.push(`${event} for its own host: ${JSON.stringify(own)}`);
      if (!otherFits) wrong.push(`${event} for ${VICTIM_HOST}: ${JSON.stringify(other)}`);
    }
    socket.close();
    console.log(`/agent events as ${SOCKET_HOST}\n${lines.join("\n")}\n/agent events: ${events.length} events × 2 hosts, ${wrong.length} cells off the policy`);
    expect(wrong).toEqual([]);
    const victim = await getJson(`${rig.hub.url}/api/hosts/${VICTIM_HOST}`);
    expect(victim.body).toMatchObject({ state: "offline", agent_version: null, devices: [] });
  });
});
