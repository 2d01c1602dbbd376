import { afterEach, describe, expect, it } from "vitest";
import { TestRig } from "./helpers.js";

/*
 * Issue 10, finding 1: a campaign's `matches` expectation runs on the hub's event loop. With a
 * backtracking engine, `(.|.)*QQQ` against a boot transcript kept the hub busy for minutes and
 * /api/health stopped answering. Hub and agent run as real processes here, so the hub being stuck
 * shows as health requests that time out, seen from this (free) process.
 */
const HEALTH_TIMEOUT_MS = 5000;

interface RunView {
  status: string;
  tests: Array<{ steps: Array<{ name: string; status: string; message: string | null; result: { transcript?: string } | null }> }>;
}

describe("a campaign expectation with a catastrophic pattern", () => {
  let rig: TestRig;
  afterEach(async () => {
    // A hub stuck in a regex cannot run its SIGTERM handler; kill it so the rig can close.
    if (rig.hub && rig.hub.exitCode === null) {
      const alive = await fetch(`${rig.url}/api/health`, { signal: AbortSignal.timeout(HEALTH_TIMEOUT_MS) }).then(
        () => true,
        () => false,
      );
      if (!alive) rig.hub.kill("SIGKILL");
    }
    await rig.close();
  });

  it("is matched in linear time: the run fails on the expectation while /api/health keeps answering", async () => {
    rig = new TestRig();
    await rig.startHub();
    await rig.startAgent("sim-1");
    const tc = await rig.api<{ id: string }>("POST", "/api/testcases", {
      name: "boot-transcript-regex",
      target: { selector: { capabilities: ["serial"], labels: {} } },
      steps: [
        { name: "boot", action: "power.cycle", params: { off_ms: 50 } },
        { name: "login", action: "serial.expect", params: { pattern: "login: ", timeout_ms: 15_000 }, expect: { field: "transcript", op: "matches", value: "(.|.)*QQQ" } },
      ],
      teardown: [{ name: "off", action: "power.off" }],
    });
    expect(tc.status).toBe(201);
    const started = await rig.api<{ id: string }>("POST", `/api/testcases/${tc.body.id}/runs`);
    expect(started.status).toBe(202);

    const failedHealth: string[] = [];
    let healthAnswers = 0;
    let run: RunView | null = null;
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline) {
      try {
        const res = await fetch(`${rig.url}/api/health`, { signal: AbortSignal.timeout(HEALTH_TIMEOUT_MS) });
        if (res.ok) healthAnswers++;
        else failedHealth.push(`status ${res.status}`);
      } catch (err) {
        failedHealth.push((err as Error).message);
        // One timed-out health check is the finding; waiting on a stuck hub proves nothing more.
        break;
      }
      const r = await rig.api<RunView>("GET", `/api/runs/${started.body.id}`);
      if (["passed", "failed", "error"].includes(r.body.status)) {
        run = r.body;
        break;
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(failedHealth, "every /api/health request during the run must answer").toEqual([]);
    expect(healthAnswers).toBeGreaterThan(0);
    expect(run?.status).toBe("failed");
    const login = run?.tests[0]?.steps.find((s) => s.name === "login");
    expect(login?.status).toBe("failed");
    expect(login?.message).toContain("to match /(.|.)*QQQ/");
    // The pattern really ran against a boot transcript of some length (a backtracking engine needs ~2^n steps on it).
    expect(login?.result?.transcript?.length ?? 0).toBeGreaterThan(200);
  }, 120_000);
});
