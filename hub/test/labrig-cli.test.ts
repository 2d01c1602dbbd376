import type { ChildProcess } from "node:child_process";
import { createServer, request as httpRequest, type Server } from "node:http";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { XMLParser } from "fast-xml-parser";
import { afterEach, describe, expect, it } from "vitest";
import { api, createCampaign, createTestCase, startAgent, stopAgents, type RunBody } from "./campaign-helpers.js";
import { LABRIG_CLI, killProcesses, runProcess, serveHub } from "./hub-processes.js";
import { TEST_ADMIN_KEY, cleanupTempDirs, freePort, makeTempDir, startHub, stopAll, testEnv, waitFor, type RunningHub } from "./helpers.js";

afterEach(async () => {
  await stopAgents();
  await killProcesses();
  await stopAll();
  cleanupTempDirs();
});

function labrig(args: string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return runProcess(LABRIG_CLI, args, { PATH: process.env.PATH ?? "", ...env });
}


describe("labrig run (CLI for CI)", () => {
  it("waits for the run, writes the JUnit file, and exits 0 when it passed, 1 when it failed, 2 on usage and connection errors", async () => {
    const hub = await startHub();
    await startAgent(hub, "gp-1", "gpio");
    const pass = await createTestCase(hub, { name: "passes", steps: [{ name: "w", action: "wait", params: { ms: 10 } }] });
    const fail = await createTestCase(hub, { name: "fails", steps: [{ name: "w", action: "wait", params: { ms: 10 }, expect: { field: "waited_ms", op: "lt", value: 0 } }] });
    await createCampaign(hub, { name: "ci-pass", testcases: [pass] });
    const failId = await createCampaign(hub, { name: "ci-fail", testcases: [pass, fail] });
    const env = { LABRIG_TOKEN: TEST_ADMIN_KEY };
    const junit = join(makeTempDir(), "report.xml");

    const ok = await labrig(["run", "ci-pass", "--wait", "--junit", junit, "--url", hub.url], env);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/run [0-9a-f-]{36} started/);
    expect(ok.stdout).toContain("passes (attempt 1) on gp-1/dut1: passed");
    expect(ok.stdout).toMatch(/run [0-9a-f-]{36} passed/);
    const parsed = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: "" }).parse(readFileSync(junit, "utf8")) as { testsuites: { testsuite: Record<string, string> } };
    expect(parsed.testsuites.testsuite).toMatchObject({ name: "ci-pass", tests: "1", failures: "0" });

    // By id, with the URL from the environment.
    const bad = await labrig(["run", failId, "--junit", junit], { ...env, LABRIG_URL: hub.url });
    expect(bad.code, bad.stderr).toBe(1);
    expect(bad.stdout).toMatch(/fails \(attempt 1\) on gp-1\/dut1: failed - step w: expected waited_ms to be < 0/);
    expect(readFileSync(junit, "utf8")).toContain('failures="1"');

    const usage = await labrig(["run"], env);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain("Usage: labrig run");
    expect((await labrig(["run", "ci-pass", "--timeout", "soon"], env)).code).toBe(2);
    const unknown = await labrig(["run", "no-such-campaign", "--url", hub.url], env);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain("No campaign 'no-such-campaign'");
    const noAuth = await labrig(["run", "ci-pass", "--url", hub.url], {});
    expect(noAuth.code).toBe(2);
    expect(noAuth.stderr).toContain("HTTP 401");
    const refused = await labrig(["run", "ci-pass", "--retry-for", "0", "--url", `http://127.0.0.1:${await freePort()}`], env);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain("cannot reach the hub");
  }, 60_000);
});

describe("hub crash mid-run", () => {
  it("a run left running by a hub process that was killed is interrupted at the next start, and its lease released", async () => {
    const dataDir = makeTempDir();
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const env = { ...process.env, ...testEnv(dataDir, { PORT: String(port) }) };
    const startProcess = (): Promise<ChildProcess> => serveHub(env, url);
    const first = await startProcess();
    // Only url and dataDir are used by the helpers below; the hub itself is the child process.
    const hub = { url, dataDir } as RunningHub;
    await startAgent(hub, "gp-2", "gpio");
    const tc = await createTestCase(hub, { name: "long", steps: [{ name: "long_wait", action: "wait", params: { ms: 60_000 } }] });
    const c = await createCampaign(hub, { name: "crashy", testcases: [tc] });
    const id = (await api(hub, "POST", `/api/campaigns/${c}/runs`)).body.id as string;
    await waitFor(async () => ((await api(hub, "GET", `/api/runs/${id}`)).body as unknown as RunBody).tests[0]?.status === "running", 10_000, 50);
    expect(((await api(hub, "GET", "/api/leases")).body.leases as unknown[]).length).toBe(1);

    first.kill("SIGKILL");
    await new Promise((r) => first.once("exit", r));
    await stopAgents();
    await startProcess();

    const run = (await api(hub, "GET", `/api/runs/${id}`)).body as unknown as RunBody;
    expect(run.status).toBe("interrupted");
    expect(run.reason).toBe("hub restarted while the run was running");
    expect(run.tests[0]).toMatchObject({ status: "error", message: "hub restarted while the run was running" });
    expect((await api(hub, "GET", "/api/leases")).body.leases).toEqual([]);
    const all = (await api(hub, "GET", "/api/leases?all=1")).body.leases as Array<{ owner: string; state: string }>;
    expect(all.find((l) => l.owner === `run:${id}`)?.state).toBe("ended");
  }, 60_000);
});

/** A reverse proxy that serves the hub under /labrig/ (as a shared lab server's nginx might). */
async function prefixProxy(target: string): Promise<{ url: string; server: Server }> {
  const upstream = new URL(target);
  const server = createServer((req, res) => {
    if (!req.url?.startsWith("/labrig/")) {
      res.writeHead(404).end("outside the prefix");
      return;
    }
    const forward = httpRequest({ host: upstream.hostname, port: upstream.port, path: req.url.slice("/labrig".length), method: req.method, headers: req.headers }, (up) => {
      res.writeHead(up.statusCode ?? 502, up.headers);
      up.pipe(res);
    });
    forward.on("error", () => res.writeHead(502).end("hub unreachable"));
    req.pipe(forward);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : 0;
  return { url: `http://127.0.0.1:${port}/labrig`, server };
}

describe("labrig run behind a proxy and across hub restarts", () => {
  it("keeps the path prefix of LABRIG_URL", async () => {
    const hub = await startHub();
    await startAgent(hub, "px-1", "gpio");
    const tc = await createTestCase(hub, { name: "quick", steps: [{ name: "w", action: "wait", params: { ms: 5 } }] });
    await createCampaign(hub, { name: "prefixed", testcases: [tc] });
    const proxy = await prefixProxy(hub.url);
    try {
      const junit = join(makeTempDir(), "report.xml");
      const out = await labrig(["run", "prefixed", "--junit", junit], { LABRIG_TOKEN: TEST_ADMIN_KEY, LABRIG_URL: `${proxy.url}/` });
      expect(out.code, out.stderr).toBe(0);
      expect(readFileSync(junit, "utf8")).toContain('name="prefixed"');
    } finally {
      proxy.server.close();
    }
  }, 30_000);

  it("--wait survives a hub restart: it retries while the hub is away and starts the interrupted run again", async () => {
    const dataDir = makeTempDir();
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const env = { ...process.env, ...testEnv(dataDir, { PORT: String(port), LABRIG_DRAIN_MS: "0" }) };
    const startProcess = (): Promise<ChildProcess> => serveHub(env, url);
    const first = await startProcess();
    const hub = { url, dataDir } as RunningHub;
    await startAgent(hub, "rs-1", "gpio");
    const tc = await createTestCase(hub, { name: "slow", steps: [{ name: "w1", action: "wait", params: { ms: 1500 } }, { name: "w2", action: "wait", params: { ms: 1500 } }] });
    const c = await createCampaign(hub, { name: "restarted", testcases: [tc] });

    const cli = labrig(["run", "restarted", "--wait", "--retry-for", "60"], { LABRIG_TOKEN: TEST_ADMIN_KEY, LABRIG_URL: url });
    await waitFor(async () => {
      const runs = (await api(hub, "GET", `/api/runs?campaign=${c}`)).body.runs as Array<{ status: string }>;
      return runs.some((r) => r.status === "running");
    }, 10_000, 50);
    const exited = new Promise((r) => first.once("exit", r));
    first.kill("SIGTERM");
    await exited;
    await new Promise((r) => setTimeout(r, 1500));
    await startProcess();

    const out = await cli;
    expect(out.code, `${out.stdout}\n${out.stderr}`).toBe(0);
    expect(out.stderr).toContain("retrying for up to 60 s");
    expect(out.stdout).toMatch(/run [0-9a-f-]{36} interrupted/);
    expect(out.stdout).toContain("starting the campaign again (rerun 1 of at most 1)");
    expect(out.stdout).toMatch(/run [0-9a-f-]{36} passed/);
  }, 90_000);
});
