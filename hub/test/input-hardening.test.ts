import { gzipSync } from "node:zlib";
import { lineText, multilineText } from "@labrig/shared";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MAX_JSON_DEPTH, jsonDepth } from "../src/api/body-parsing.js";
import { FakeAgent } from "./dispatch-helpers.js";
import { cleanupTempDirs, expectEnvelope, getJson, postJson, startHub, stopAll, type RunningHub } from "./helpers.js";

// Bad input is the client's error (4xx with the envelope), never a 500; free text carries no control
// characters; viewers learn nothing about the hub's process.

let hub: RunningHub;
let viewer: string;

beforeAll(async () => {
  hub = await startHub();
  await FakeAgent.start(hub, "pi-1", [{ id: "dut" }]);
  viewer = (await postJson(`${hub.url}/api/keys`, { name: "viewer-1", role: "viewer" })).body.key as string;
});

afterAll(async () => {
  await stopAll();
  cleanupTempDirs();
});

const deep = (n: number): string => "[".repeat(n) + "]".repeat(n);

describe("malformed requests are 400s", () => {
  it("a malformed %-escape in the path is 400 validation_failed", async () => {
    for (const path of ["/api/hosts/%E0%A4%A", "/api/hosts/%zz", "/api/hosts/pi-1/devices/%C0/console", "/api/runs/%/junit.xml"]) {
      const res = await getJson(`${hub.url}${path}`);
      expectEnvelope(res, 400, "validation_failed", path);
      expect(res.body.message).toContain("%-escape");
    }
  });

  it("a malformed %-escape in the query is a 400 (the value is taken as written, and refused as such)", async () => {
    const cases = { "/api/actions?host=%E0%A4%A": "validation_failed", "/api/hosts/pi-1/devices/dut/console?resource=%zz": "validation_failed" };
    for (const [path, code] of Object.entries(cases)) expectEnvelope(await getJson(`${hub.url}${path}`), 400, code, path);
  });

  it("a compressed body, valid or not, is refused with 415 unsupported_media_type", async () => {
    const body = JSON.stringify({ name: "gz-key", role: "viewer" });
    for (const [what, data] of [["invalid gzip", "not gzip at all"], ["valid gzip", gzipSync(body)], ["deflate", "x"]] as const) {
      const res = await getJson(`${hub.url}/api/keys`, { method: "POST", headers: { "content-type": "application/json", "content-encoding": what === "deflate" ? "deflate" : "gzip" }, body: data });
      expectEnvelope(res, 415, "unsupported_media_type", what);
    }
  });

  it(`a JSON body nested deeper than ${MAX_JSON_DEPTH} levels is 400 validation_failed, wherever the nesting is`, async () => {
    const cases = {
      "an expectation value": `{"name":"a","steps":[{"name":"s","action":"wait","params":{"ms":1},"expect":{"field":"waited_ms","op":"equals","value":${deep(50_000)}}}]}`,
      "action params": `{"action":"wait","params":{"ms":1,"x":${deep(100)}},"target":{"host":"pi-1","device":"dut"}}`,
    };
    for (const [what, body] of Object.entries(cases)) {
      const path = what === "action params" ? "/api/actions" : "/api/testcases";
      const res = await getJson(`${hub.url}${path}`, { method: "POST", headers: { "content-type": "application/json" }, body });
      expectEnvelope(res, 400, "validation_failed", what);
      expect(res.body.message).toContain(`at most ${MAX_JSON_DEPTH}`);
    }
    // Brackets inside strings are text, not nesting.
    expect(jsonDepth(Buffer.from(JSON.stringify({ data: "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\\\"[[" })))).toBe(1);
    const ok = await postJson(`${hub.url}/api/hosts/pi-1/devices/dut/actions`, { action: "gpio.read", params: {} });
    expect(ok.status).toBe(200);
  });
});

describe("free text refuses NUL and control characters", () => {
  const bad = ["with\u0000nul", "esc\u001b[31mred", "two\nlines", "c1\u0085next", "sep\u2028line"];

  it("the shared helpers: one line refuses all of them, multi-line allows tab and line breaks only", () => {
    for (const text of bad) expect(lineText(128).safeParse(text).success, JSON.stringify(text)).toBe(false);
    expect(lineText(128).parse("  bench owner  ")).toBe("bench owner");
    expect(multilineText(4000).safeParse("log in\n\tthen open settings").success).toBe(true);
    for (const text of ["with\u0000nul", "esc\u001b[2J", "bell\u0007"]) expect(multilineText(4000).safeParse(text).success, JSON.stringify(text)).toBe(false);
  });

  it("lease owners, test case and campaign names, health reasons and plan instructions are refused with validation_failed naming the field", async () => {
    const cases: Array<[string, string, Record<string, unknown>, string]> = [
      ["POST", "/api/leases", { target: { host: "pi-1", device: "dut" }, ttl_s: 10, owner: "ci\u0000root" }, "owner"],
      ["POST", "/api/testcases", { name: "boot\u001b[2J", steps: [{ name: "s", action: "wait", params: { ms: 1 } }] }, "name"],
      ["POST", "/api/testcases", { name: "ok", description: "a\u0000b", steps: [{ name: "s", action: "wait", params: { ms: 1 } }] }, "description"],
      ["POST", "/api/campaigns", { name: "nightly\nFAKE LOG LINE", testcases: ["x"] }, "name"],
      ["PUT", "/api/hosts/pi-1/devices/dut/health", { health: "good", reason: "fixed\u0000" }, "reason"],
      ["POST", "/api/plans", { instruction: "log in\u0000", host: "pi-1", device: "dut" }, "instruction"],
      ["POST", "/api/hosts", { name: "pi-2", labels: { room: "lab\u00002" } }, "labels.room"],
    ];
    for (const [method, path, body, field] of cases) {
      const res = await getJson(`${hub.url}${path}`, { method, headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
      expectEnvelope(res, 400, "validation_failed", `${method} ${path}`);
      expect(res.body.message, `${method} ${path}`).toContain(field);
      expect(res.body.message, `${method} ${path}`).toContain("control characters");
    }
    // Plain text still works.
    const lease = await postJson(`${hub.url}/api/leases`, { target: { host: "pi-1", device: "dut" }, ttl_s: 10, owner: "nightly CI (bench 2)" });
    expect(lease.status, lease.text).toBe(201);
  });
});

describe("GET /api/system/info", () => {
  it("gives viewers no pid, paths or Node version; admins get them", async () => {
    const asViewer = await getJson(`${hub.url}/api/system/info`, { auth: viewer });
    expect(asViewer.status).toBe(200);
    expect(asViewer.body).toMatchObject({ version: expect.any(String), counts: expect.any(Object) });
    for (const key of ["pid", "data_dir", "db_path", "node_version"]) expect(asViewer.body, key).not.toHaveProperty(key);
    expect(asViewer.text).not.toContain(hub.dataDir);
    const asAdmin = await getJson(`${hub.url}/api/system/info`);
    expect(asAdmin.body).toMatchObject({ pid: process.pid, data_dir: hub.dataDir, node_version: process.version });
  });
});
