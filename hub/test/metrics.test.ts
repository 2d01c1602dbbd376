import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { afterEach, describe, expect, it } from "vitest";
import { post } from "./dispatch-helpers.js";
import { cleanupTempDirs, expectEnvelope, getJson, startHub, stopAll, testConfig, makeTempDir } from "./helpers.js";
import { startLocalAgent, stopLocalAgents } from "./local-agents.js";
import { requireTool } from "./system-tools.js";

afterEach(async () => {
  await stopLocalAgents();
  await stopAll();
  cleanupTempDirs();
});

const GPIO_DEVICE = { id: "dut1", resources: [{ name: "relay", kind: "gpio", line: 5, direction: "out" }] };
const METRICS_TOKEN = "metrics-token-for-the-tests-0123456789";

/** promtool's own lint of the exposition format (Debian package prometheus). */
function promtool(text: string): { ok: boolean; output: string } {
  const res = spawnSync("promtool", ["check", "metrics"], { input: text, encoding: "utf8" });
  return { ok: res.status === 0, output: `${res.stdout}${res.stderr}` };
}

/** The value of one series in the exposition text, or null. */
function sample(text: string, series: string): number | null {
  const line = text.split("\n").find((l) => l.startsWith(`${series} `));
  return line === undefined ? null : Number(line.slice(series.length + 1));
}

describe("GET /metrics", () => {
  it("serves what promtool accepts: actions by outcome, latency histograms, fleet, queue, planner, connections, video and process metrics", async () => {
    requireTool("promtool", "prometheus");
    const hub = await startHub();
    await startLocalAgent(hub, "m-1", [GPIO_DEVICE]);
    for (let i = 0; i < 3; i++) expect((await post(hub, "/api/hosts/m-1/devices/dut1/actions", { action: "wait", params: { ms: 1 } })).status).toBe(200);
    // One that never finds a free device: the device is busy with a longer wait.
    const busy = post(hub, "/api/hosts/m-1/devices/dut1/actions", { action: "wait", params: { ms: 300 } });
    const refused = await post(hub, "/api/actions", { action: "wait", params: { ms: 1 }, target: { host: "m-1", device: "dut1" }, queue_timeout_ms: 50 });
    expectEnvelope(refused, 503, "no_device_available");
    expect((await busy).status).toBe(200);

    const res = await fetch(`${hub.url}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("text/plain");
    const text = await res.text();
    const lint = promtool(text);
    expect(lint.ok, lint.output).toBe(true);

    expect(sample(text, 'labrig_actions_total{action="wait",outcome="succeeded",error_code="none"}')).toBe(4);
    expect(sample(text, 'labrig_actions_total{action="wait",outcome="failed",error_code="no_device_available"}')).toBe(1);
    expect(sample(text, 'labrig_dispatch_latency_seconds_count{action="wait"}')).toBe(5);
    expect(sample(text, 'labrig_queue_wait_seconds_count{action="wait"}')).toBe(4);
    expect(sample(text, 'labrig_hosts{state="online"}')).toBe(1);
    expect(sample(text, 'labrig_devices{health="good"}')).toBe(1);
    expect(sample(text, "labrig_agents_connected")).toBe(1);
    expect(sample(text, "labrig_dashboards_connected")).toBe(0);
    expect(sample(text, "labrig_queue_depth")).toBe(0);
    expect(sample(text, "labrig_leases_active")).toBe(0);
    expect(sample(text, "labrig_runs_active")).toBe(0);
    expect(sample(text, "labrig_planner_enabled")).toBe(0);
    expect(sample(text, "labrig_planner_budget_remaining_requests")).toBe(hub.config.planner.requestsPerDay);
    expect(sample(text, "labrig_video_streams")).toBe(0);
    for (const name of ["nodejs_eventloop_lag_seconds", "process_cpu_user_seconds_total", "process_resident_memory_bytes", "labrig_video_viewers", "labrig_runs_total", "labrig_planner_tokens_total"]) {
      expect(text, name).toContain(`# TYPE ${name} `);
    }
  }, 30_000);

  it("the example Grafana dashboard only queries metrics the hub exports", async () => {
    const hub = await startHub();
    const text = await (await fetch(`${hub.url}/metrics`)).text();
    const exported = new Set([...text.matchAll(/^# TYPE (\S+) (\S+)/gm)].flatMap((m) => (m[2] === "histogram" ? [`${m[1]}_bucket`, `${m[1]}_count`, `${m[1]}_sum`] : [m[1]!])));
    const dashboard = JSON.parse(readFileSync(new URL("../../deployment/grafana/labrig-hub.json", import.meta.url), "utf8")) as { panels: { targets: { expr: string }[] }[] };
    const queried = dashboard.panels.flatMap((p) => p.targets.flatMap((t) => [...t.expr.matchAll(/\b((?:labrig|nodejs|process)_[a-z0-9_]+)\b/g)].map((m) => m[1]!)));
    expect(queried.length).toBeGreaterThan(15);
    for (const name of queried) expect(exported.has(name), name).toBe(true);
  });

  it("by default answers loopback clients only, not a client relayed by a proxy on loopback", async () => {
    const hub = await startHub();
    const relayed = await getJson(`${hub.url}/metrics`, { headers: { "x-forwarded-for": "203.0.113.9" }, auth: null });
    expectEnvelope(relayed, 403, "forbidden");
    expect(String(relayed.body.message)).toContain("LABRIG_METRICS_TOKEN");
  });

  it("with LABRIG_METRICS_ACCESS=token wants the metrics token from anyone, and =off serves nothing", async () => {
    const hub = await startHub({ env: { LABRIG_METRICS_ACCESS: "token", LABRIG_METRICS_TOKEN: METRICS_TOKEN } });
    expectEnvelope(await getJson(`${hub.url}/metrics`, { auth: null }), 401, "unauthorized");
    expectEnvelope(await getJson(`${hub.url}/metrics`, { auth: `${METRICS_TOKEN}x` }), 401, "unauthorized");
    const ok = await getJson(`${hub.url}/metrics`, { auth: METRICS_TOKEN, headers: { "x-forwarded-for": "203.0.113.9" } });
    expect(ok.status).toBe(200);
    expect(ok.text).toContain("labrig_build_info");

    const off = await startHub({ env: { LABRIG_METRICS_ACCESS: "off" } });
    expectEnvelope(await getJson(`${off.url}/metrics`, { auth: null }), 404, "not_found");
  });

  it("refuses LABRIG_METRICS_ACCESS=token without a token, naming both variables", () => {
    expect(() => testConfig(makeTempDir(), { LABRIG_METRICS_ACCESS: "token" })).toThrow(/LABRIG_METRICS_TOKEN/);
    expect(() => testConfig(makeTempDir(), { LABRIG_METRICS_TOKEN: "short" })).toThrow(/LABRIG_METRICS_TOKEN/);
  });
});
