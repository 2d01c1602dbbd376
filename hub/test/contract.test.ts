import { Validator } from "@seriousme/openapi-schema-validator";
import { Ajv2020 } from "ajv/dist/2020.js";
import addFormats from "ajv-formats";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { requireSocat, simBoard } from "./campaign-helpers.js";
import { FakeGemini } from "./fake-gemini.js";
import { cleanupTempDirs, getJson, startHub, stopAll, waitFor, type JsonResponse, type RunningHub } from "./helpers.js";
import { startLocalAgent, stopLocalAgents } from "./local-agents.js";

/*
 * The REST contract, judged by outside validators: the published OpenAPI document is checked with an
 * OpenAPI 3.1 schema validator, then every route is called on a real hub (a real agent with a
 * simulated board, the planner on a local fake Gemini) and each answer is validated with ajv against
 * the schema the document publishes for that route and status. A route that no call reached with a
 * success fails the test, so a new route cannot go unchecked.
 */

type Json = Record<string, unknown>;
interface Seen {
  method: string;
  template: string;
  status: number;
  contentType: string;
  body: unknown;
}

let hub: RunningHub;
let fake: FakeGemini;
let doc: Json;
const seen: Seen[] = [];

/** Calls a route (given as its template plus concrete path) and records the answer for validation. */
async function call(method: string, template: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<JsonResponse> {
  const res = await getJson(`${hub.url}${path}`, {
    method,
    headers: { ...(body === undefined ? {} : { "content-type": "application/json" }), ...headers },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  seen.push({ method: method.toLowerCase(), template, status: res.status, contentType: res.headers.get("content-type") ?? "", body: res.text === "" ? undefined : (res.headers.get("content-type") ?? "").includes("json") ? JSON.parse(res.text) : res.text });
  return res;
}

function ok(res: JsonResponse, status: number, what: string): JsonResponse {
  expect(res.status, `${what}: ${res.text.slice(0, 400)}`).toBe(status);
  return res;
}

beforeAll(async () => {
  requireSocat();
  fake = new FakeGemini(() => ({ text: JSON.stringify({ observation: "a screen", reasoning: "", actions: [{ action: "wait", params: { ms: 1 } }], done: false }) }));
  await fake.start();
  hub = await startHub({ env: { GEMINI_API_KEY: "k-test", GEMINI_BASE_URL: fake.url, GEMINI_RETRY_BASE_MS: "5" } });
  await startLocalAgent(hub, "sim-1", [simBoard({ board: "sim" }, { video: true })], { agent: { sim: { bootMs: 100 } } });
  doc = (await getJson(`${hub.url}/docs/openapi.json`, { auth: null })).body;
}, 60_000);

afterAll(async () => {
  await stopLocalAgents();
  await stopAll();
  await fake?.stop();
  cleanupTempDirs();
});

describe("the OpenAPI document", () => {
  it("is valid OpenAPI 3.1 by the specification's own schema", async () => {
    const validator = new Validator();
    const result = await validator.validate(structuredClone(doc));
    expect(result.errors ?? [], JSON.stringify(result.errors, null, 2)).toEqual([]);
    expect(result.valid).toBe(true);
    expect(validator.version).toBe("3.1");
  });
});

describe("every route's answers match the document", () => {
  it("calls every route and validates every answer against its documented response", async () => {
    const H = "/api/hosts/sim-1/devices/dut1";
    await call("GET", "/api/health", "/api/health");
    const page = ok(await call("GET", "/", "/"), 200, "dashboard page");
    const asset = /\/assets\/([^"]+\.js)/.exec(page.text)?.[1];
    expect(asset, "the page names its script").toBeDefined();
    ok(await call("GET", "/assets/:file", `/assets/${asset as string}`), 200, "dashboard asset");
    await call("GET", "/api/session", "/api/session");
    await call("GET", "/docs", "/docs");
    await call("GET", "/docs/openapi.json", "/docs/openapi.json");
    await call("GET", "/docs/ws", "/docs/ws");
    await call("GET", "/api/system/info", "/api/system/info");
    await call("GET", "/api/system/status", "/api/system/status");
    // The test client is on loopback, which LABRIG_METRICS_ACCESS allows by default.
    await call("GET", "/metrics", "/metrics");

    // Keys and hosts.
    const key = ok(await call("POST", "/api/keys", "/api/keys", { name: "contract-viewer", role: "viewer" }), 201, "create key");
    await call("GET", "/api/keys", "/api/keys");
    ok(await call("DELETE", "/api/keys/:id", `/api/keys/${key.body.id as string}`), 204, "revoke key");
    ok(await call("POST", "/api/hosts", "/api/hosts", { name: "spare-1" }), 201, "enrol host");
    ok(await call("POST", "/api/hosts/:host/token", "/api/hosts/spare-1/token"), 200, "rotate");
    ok(await call("DELETE", "/api/hosts/:host/token", "/api/hosts/spare-1/token"), 204, "revoke token");
    ok(await call("DELETE", "/api/hosts/:host", "/api/hosts/spare-1"), 204, "remove host");
    ok(await call("GET", "/api/hosts", "/api/hosts"), 200, "hosts");
    ok(await call("GET", "/api/hosts/:host", "/api/hosts/sim-1"), 200, "host");
    ok(await call("PUT", "/api/hosts/:host/devices/:device/health", `${H}/health`, { health: "good", reason: "contract test" }), 200, "health");

    // Actions: one exact, one by selector, a snapshot whose artifact is read back, a cancel.
    ok(await call("POST", "/api/hosts/:host/devices/:device/actions", `${H}/actions`, { action: "power.on", params: {} }), 200, "power on");
    ok(await call("POST", "/api/actions", "/api/actions", { action: "serial.expect", params: { pattern: "login: ", timeout_ms: 10_000 }, target: { selector: { labels: { board: "sim" } } } }), 200, "expect");
    ok(await call("GET", "/api/hosts/:host/devices/:device/console", `${H}/console`), 200, "console");
    const snap = ok(await call("POST", "/api/actions", "/api/actions", { action: "capture.snapshot", params: {}, target: { host: "sim-1", device: "dut1" } }), 200, "snapshot");
    const artifact = (snap.body.result as { artifact: string }).artifact;
    ok(await call("GET", "/api/hosts/:host/artifacts/:id", `/api/hosts/sim-1/artifacts/${artifact}`), 200, "artifact");
    const actions = ok(await call("GET", "/api/actions", "/api/actions?limit=2"), 200, "actions");
    ok(await call("GET", "/api/actions/:id", `/api/actions/${((actions.body.actions as Json[])[0] as Json).id as string}`), 200, "action");
    const waiting = getJson(`${hub.url}${H}/actions`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ action: "wait", params: { ms: 20_000 } }) });
    const running = await waitFor(async () => ((await getJson(`${hub.url}/api/actions?status=running`)).body.actions as Json[])[0]?.id as string | undefined, 5000);
    ok(await call("DELETE", "/api/actions/:id", `/api/actions/${running}`), 200, "cancel");
    expect((await waiting).body.status).toBe("canceled");

    // Leases.
    const lease = ok(await call("POST", "/api/leases", "/api/leases", { target: { host: "sim-1", device: "dut1" }, ttl_s: 60, owner: "contract" }), 201, "lease");
    const leaseId = lease.body.id as string;
    await call("GET", "/api/leases", "/api/leases?all=1");
    await call("GET", "/api/leases/:id", `/api/leases/${leaseId}`);
    ok(await call("POST", "/api/leases/:id/keepalive", `/api/leases/${leaseId}/keepalive`, { ttl_s: 30, lease_token: lease.body.token }), 200, "keepalive");
    ok(await call("DELETE", "/api/leases/:id", `/api/leases/${leaseId}`, { lease_token: lease.body.token }), 200, "release");

    // Plans.
    const plan = ok(await call("POST", "/api/plans", "/api/plans", { instruction: "What is on the screen?", host: "sim-1", device: "dut1" }), 201, "plan");
    await call("GET", "/api/plans", "/api/plans?limit=5");
    await call("GET", "/api/plans/:id", `/api/plans/${plan.body.id as string}`);
    ok(await call("GET", "/api/plans/:id/frame", `/api/plans/${plan.body.id as string}/frame`), 200, "frame");

    // Test cases, campaigns, runs.
    const steps = [{ name: "picture", action: "capture.snapshot", params: {} }];
    const tc = ok(await call("POST", "/api/testcases", "/api/testcases", { name: "contract", target: { selector: { labels: { board: "sim" } } }, steps }), 201, "testcase");
    const tcId = tc.body.id as string;
    await call("GET", "/api/testcases", "/api/testcases");
    await call("GET", "/api/testcases/:id", `/api/testcases/${tcId}`);
    ok(await call("PUT", "/api/testcases/:id", `/api/testcases/${tcId}`, { name: "contract", target: { selector: { labels: { board: "sim" } } }, steps, teardown: steps.map((s) => ({ ...s, name: "after" })) }), 200, "replace testcase");
    const tcRun = ok(await call("POST", "/api/testcases/:id/runs", `/api/testcases/${tcId}/runs`, {}), 202, "testcase run");
    const camp = ok(await call("POST", "/api/campaigns", "/api/campaigns", { name: "contract-campaign", testcases: [tcId], target: { selector: { labels: { board: "sim" } } } }), 201, "campaign");
    const campId = camp.body.id as string;
    await call("GET", "/api/campaigns", "/api/campaigns");
    await call("GET", "/api/campaigns/:id", `/api/campaigns/${campId}`);
    ok(await call("PUT", "/api/campaigns/:id", `/api/campaigns/${campId}`, { name: "contract-campaign", testcases: [tcId], target: { selector: { labels: { board: "sim" } } }, retries: 1 }), 200, "replace campaign");
    const run = ok(await call("POST", "/api/campaigns/:id/runs", `/api/campaigns/${campId}/runs`), 202, "campaign run");
    const runId = run.body.id as string;
    const finished = await waitFor(async () => {
      const r = await getJson(`${hub.url}/api/runs/${runId}`);
      return ["passed", "failed", "error"].includes(r.body.status as string) ? r.body : null;
    }, 20_000);
    expect(finished.status).toBe("passed");
    await call("GET", "/api/runs", "/api/runs?limit=5");
    await call("GET", "/api/runs/:id", `/api/runs/${runId}`);
    ok(await call("GET", "/api/runs/:id/junit.xml", `/api/runs/${runId}/junit.xml`), 200, "junit");
    const stored = (finished.tests as Json[]).flatMap((t) => t.steps as Json[]).flatMap((s) => s.artifacts as Json[])[0];
    expect(stored, "the snapshot step stores its picture").toBeDefined();
    ok(await call("GET", "/api/runs/:id/artifacts/:name", `/api/runs/${runId}/artifacts/${(stored as Json).name as string}`), 200, "run artifact");
    // A long run to cancel.
    const slow = ok(await call("POST", "/api/testcases", "/api/testcases", { name: "slow", target: { selector: { labels: { board: "sim" } } }, steps: [{ name: "long", action: "wait", params: { ms: 30_000 } }] }), 201, "slow testcase");
    const slowRun = ok(await call("POST", "/api/testcases/:id/runs", `/api/testcases/${slow.body.id as string}/runs`, {}), 202, "slow run");
    await waitFor(async () => (await getJson(`${hub.url}/api/runs/${slowRun.body.id as string}`)).body.status === "running", 10_000);
    ok(await call("POST", "/api/runs/:id/cancel", `/api/runs/${slowRun.body.id as string}/cancel`), 200, "cancel run");
    await waitFor(async () => (await getJson(`${hub.url}/api/runs/${tcRun.body.id as string}`)).body.status !== "running", 10_000);
    ok(await call("DELETE", "/api/campaigns/:id", `/api/campaigns/${campId}`), 204, "delete campaign");
    await waitFor(async () => !["queued", "running"].includes((await getJson(`${hub.url}/api/runs/${slowRun.body.id as string}`)).body.status as string), 10_000);
    ok(await call("DELETE", "/api/testcases/:id", `/api/testcases/${slow.body.id as string}`), 204, "delete testcase");

    // A few refusals: they are documented as the envelope.
    await call("GET", "/api/hosts/:host", "/api/hosts/nope");
    await call("POST", "/api/actions", "/api/actions", { action: "wait" });
    await call("GET", "/api/actions", "/api/actions?limit=zero");

    // Every declared route was reached with a success.
    const declared = Object.entries(doc.paths as Record<string, Json>).flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m} ${path.replace(/\{([^}]+)\}/g, ":$1")}`));
    const succeeded = new Set(seen.filter((s) => s.status < 300).map((s) => `${s.method} ${s.template}`));
    expect(declared.filter((d) => !succeeded.has(d))).toEqual([]);

    // Every answer matches what the document says for its route and status.
    const ajv = new Ajv2020({ strict: false, allErrors: true });
    addFormats.default(ajv);
    ajv.addSchema(doc, "openapi.json");
    const pointer = (...parts: string[]): string => parts.map((p) => p.replace(/~/g, "~0").replace(/\//g, "~1")).join("/");
    const problems: string[] = [];
    for (const s of seen) {
      const docPath = s.template.replace(/:([A-Za-z0-9_]+)/g, "{$1}");
      const responses = ((doc.paths as Record<string, Record<string, Json>>)[docPath]?.[s.method]?.responses ?? {}) as Record<string, { content?: Record<string, { schema?: Json }> }>;
      const code = String(s.status) in responses ? String(s.status) : "default";
      const response = responses[code];
      const where = `${s.method.toUpperCase()} ${s.template} → ${s.status}`;
      if (!response) {
        problems.push(`${where}: status not documented`);
        continue;
      }
      if (s.status === 204) {
        if (s.body !== undefined) problems.push(`${where}: 204 with a body`);
        continue;
      }
      const types = Object.keys(response.content ?? {});
      const type = types.find((t) => s.contentType.startsWith(t) || (t === "application/octet-stream" && s.contentType !== ""));
      if (!type) {
        problems.push(`${where}: content type ${s.contentType} not among ${types.join(", ")}`);
        continue;
      }
      if (type !== "application/json") continue;
      const validate = ajv.getSchema(`openapi.json#/${pointer("paths", docPath, s.method, "responses", code, "content", "application/json", "schema")}`);
      if (!validate) {
        problems.push(`${where}: no schema`);
        continue;
      }
      if (!validate(s.body)) problems.push(`${where}: ${ajv.errorsText(validate.errors)}`);
    }
    expect(problems).toEqual([]);
    expect(seen.length).toBeGreaterThan(50);
  }, 120_000);
});
