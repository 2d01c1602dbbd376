import { XMLParser } from "fast-xml-parser";
import { afterEach, describe, expect, it } from "vitest";
import { LOGIN, api, createCampaign, createTestCase, requireSocat, startAgent, stopAgents, waitRun, type RunBody } from "./campaign-helpers.js";
import { cleanupTempDirs, startHub, stopAll, waitFor, type RunningHub } from "./helpers.js";

/*
 * Campaigns end to end in one process: a real hub (createHub, temp SQLite file) and real agents
 * (createAgent) with simulated boards on socat PTYs, all on 127.0.0.1. Timings are only compared
 * with each other (never against wall-clock bounds), so a busy machine slows the tests down but
 * does not fail them.
 */

afterEach(async () => {
  await stopAgents();
  await stopAll();
  cleanupTempDirs();
});

const interval = (t: { started_at: string | null; finished_at: string | null }): [number, number] => [Date.parse(t.started_at ?? ""), Date.parse(t.finished_at ?? "")];
const overlaps = (a: [number, number], b: [number, number]): boolean => a[0] < b[1] && b[0] < a[1];

async function threeRigs(): Promise<RunningHub> {
  requireSocat();
  const hub = await startHub();
  await Promise.all(["rig-1", "rig-2", "rig-3"].map((h) => startAgent(hub, h, "sim")));
  return hub;
}

describe("a campaign over three simulated rigs", () => {
  it("runs tests in parallel across devices and one at a time per device, checks expectations, passes values forward, retries on another device and always tears down", async () => {
    const hub = await threeRigs();
    const passing = await createTestCase(hub, {
      name: "login-and-echo",
      tags: ["smoke"],
      target: { selector: { capabilities: ["serial"], labels: {} } },
      setup: LOGIN,
      steps: [
        { name: "uname_cmd", action: "serial.write", params: { data: "uname -a\n" } },
        {
          name: "uname",
          action: "serial.expect",
          params: { pattern: "Linux (\\S+) ", regex: true, timeout_ms: 3000 },
          expect: [
            { field: "groups.0", op: "equals", value: "labrig-sim" },
            { field: "match", op: "matches", value: "^Linux " },
          ],
        },
        { name: "echo", action: "serial.write", params: { data: "echo got-{{steps.uname.groups.0}}\n" } },
        { name: "echoed", action: "serial.expect", params: { pattern: "got-{{steps.uname.groups.0}}\r\n", timeout_ms: 3000 } },
      ],
      teardown: [{ name: "off", action: "power.off" }],
    });
    const failing = await createTestCase(hub, {
      name: "wrong-board",
      setup: LOGIN,
      steps: [
        { name: "uname_cmd", action: "serial.write", params: { data: "uname -a\n" } },
        { name: "uname", action: "serial.expect", params: { pattern: "Linux (\\S+) ", regex: true, timeout_ms: 3000 }, expect: { field: "groups.0", op: "equals", value: "some-other-board" } },
        { name: "never", action: "wait", params: { ms: 1 } },
      ],
      teardown: [{ name: "off", action: "power.off" }],
    });
    const quick = await createTestCase(hub, { name: "quick", steps: [{ name: "pause", action: "wait", params: { ms: 300 }, expect: { field: "waited_ms", op: "gte", value: 0 } }] });
    const campaign = await createCampaign(hub, {
      name: "nightly",
      testcases: [passing, failing, quick, passing === quick ? quick : await createTestCase(hub, { name: "quick-2", steps: [{ name: "pause", action: "wait", params: { ms: 300 } }] })],
      target: { selector: { labels: { board: "sim" } } },
      parallelism: 3,
      retries: 1,
    });

    const started = await api(hub, "POST", `/api/campaigns/${campaign}/runs`);
    expect(started.status).toBe(202);
    expect(started.body).toMatchObject({ status: "queued" });
    const run = await waitRun(hub, started.body.id as string, 60_000);

    expect(run.status, JSON.stringify(run, null, 1)).toBe("failed");
    const finals = run.tests.filter((t) => t.final);
    expect(finals.map((t) => [t.name, t.status]).sort()).toEqual(
      [
        ["login-and-echo", "passed"],
        ["quick", "passed"],
        ["quick-2", "passed"],
        ["wrong-board", "failed"],
      ].sort(),
    );
    expect(run.counts).toMatchObject({ tests: 4, passed: 3, failed: 1 });

    // Serial per device: no two attempts ever overlapped on one device.
    const attempts = run.tests.filter((t) => t.device !== null);
    for (const a of attempts) {
      for (const b of attempts) {
        if (a !== b && a.host === b.host) expect(overlaps(interval(a), interval(b)), `${a.name}#${a.attempt} and ${b.name}#${b.attempt} on ${a.host}`).toBe(false);
      }
    }
    // Parallel across devices: some attempts on different hosts overlapped.
    expect(attempts.some((a) => attempts.some((b) => a.host !== b.host && overlaps(interval(a), interval(b))))).toBe(true);

    // Expectation failure, retried on another device, teardown after the failure.
    const wrong = run.tests.filter((t) => t.name === "wrong-board").sort((a, b) => a.attempt - b.attempt);
    expect(wrong.map((t) => t.attempt)).toEqual([1, 2]);
    expect(wrong.map((t) => t.final)).toEqual([false, true]);
    expect(wrong[0]?.host).not.toBe(wrong[1]?.host);
    for (const attempt of wrong) {
      expect(attempt.status).toBe("failed");
      expect(attempt.message).toContain("step uname: expected groups.0 to equal \"some-other-board\", but it was \"labrig-sim\"");
      const byName = Object.fromEntries(attempt.steps.map((s) => [s.name, s]));
      expect(byName.uname?.status).toBe("failed");
      expect(byName.never?.status).toBe("skipped");
      expect(byName.off).toMatchObject({ phase: "teardown", status: "passed" });
    }

    // The value captured by the expect went into the later write, and the echo came back.
    const good = run.tests.find((t) => t.name === "login-and-echo" && t.final);
    const goodSteps = Object.fromEntries((good?.steps ?? []).map((s) => [s.name, s]));
    expect(goodSteps.uname?.result).toMatchObject({ groups: ["labrig-sim"] });
    expect(goodSteps.echoed?.status).toBe("passed");
    expect(goodSteps.echoed?.result?.match).toBe("got-labrig-sim\r\n");
    expect(goodSteps.uname?.action_ids).toHaveLength(1);
    const transcript = goodSteps.uname?.artifacts.find((a) => a.kind === "transcript");
    expect(transcript).toBeDefined();
    const file = await api(hub, "GET", `/api/runs/${run.id}/artifacts/${transcript?.name ?? ""}`);
    expect(file.status).toBe(200);
    expect(file.text).toContain("Linux labrig-sim");

    // The same run as JUnit XML, parsed back.
    const res = await api(hub, "GET", `/api/runs/${run.id}/junit.xml`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("application/xml");
    const xml = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: "" }).parse(res.text) as {
      testsuites: { testsuite: { name: string; tests: string; failures: string; errors: string; skipped: string; timestamp: string; testcase: Array<Record<string, unknown>> } };
    };
    const suite = xml.testsuites.testsuite;
    expect(suite).toMatchObject({ name: "nightly", tests: "4", failures: "1", errors: "0", skipped: "0" });
    expect(Number.isNaN(Date.parse(suite.timestamp))).toBe(false);
    const cases = Object.fromEntries(suite.testcase.map((c) => [c.name as string, c]));
    expect(Object.keys(cases).sort()).toEqual(["login-and-echo", "quick", "quick-2", "wrong-board"]);
    expect(cases["login-and-echo"]).toMatchObject({ classname: "nightly" });
    expect(cases["login-and-echo"]?.failure).toBeUndefined();
    const failure = cases["wrong-board"]?.failure as { message: string; type: string };
    expect(failure.type).toBe("uname");
    expect(failure.message).toContain('expected groups.0 to equal "some-other-board"');
    expect(String(cases["wrong-board"]?.["system-out"])).toContain("earlier attempt 1 on ");
    expect(String(cases["login-and-echo"]?.["system-out"])).toContain("Linux labrig-sim");
  }, 90_000);
});

describe("save-time validation", () => {
  it("refuses every kind of bad test case with the path of the problem, and stores nothing", async () => {
    const hub = await startHub();
    const ok = { name: "w", action: "wait", params: { ms: 1 } };
    const cases: Array<[string, Record<string, unknown>, string]> = [
      ["no steps", { name: "t", steps: [] }, "steps"],
      ["unknown action", { name: "t", steps: [ok, { name: "x", action: "serial.fly", params: {} }] }, "steps[1].action"],
      ["bad params", { name: "t", steps: [ok, ok, { name: "x", action: "serial.write", params: { data: "" } }] }, "steps[2].params.data"],
      ["unknown param", { name: "t", steps: [{ name: "x", action: "wait", params: { ms: 1, speed: 2 } }] }, "steps[0].params"],
      ["duplicate step names", { name: "t", setup: [ok], steps: [ok] }, "steps[0].name"],
      ["reference to an unknown step", { name: "t", steps: [{ name: "x", action: "serial.write", params: { data: "{{steps.nope.groups.0}}" } }] }, "steps[0].params.data"],
      ["reference to a later step", { name: "t", steps: [{ name: "x", action: "serial.write", params: { data: "{{steps.y.match}}" } }, { ...ok, name: "y" }] }, "steps[0].params.data"],
      ["malformed reference", { name: "t", steps: [{ name: "x", action: "serial.write", params: { data: "{{ step.y }}" } }] }, "steps[0].params.data"],
      ["template in a number param", { name: "t", steps: [{ ...ok, name: "a" }, { name: "x", action: "wait", params: { ms: "{{steps.a.waited_ms}}" } }] }, "steps[1].params.ms"],
      ["bad regex in matches", { name: "t", steps: [{ ...ok, expect: { field: "waited_ms", op: "matches", value: "(" } }] }, "steps[0].expect.value"],
      // Patterns are matched by RE2 (linear time); what it cannot express is refused at save time.
      ["backreference in matches", { name: "t", steps: [{ ...ok, expect: { field: "waited_ms", op: "matches", value: "(\\d)\\1" } }] }, "steps[0].expect.value"],
      ["lookahead in an expect pattern", { name: "t", steps: [{ name: "x", action: "serial.expect", params: { pattern: "login(?=:)", regex: true, timeout_ms: 10 } }] }, "steps[0].params.pattern"],
      ["bad regex pattern", { name: "t", steps: [{ name: "x", action: "serial.expect", params: { pattern: "(", regex: true, timeout_ms: 10 } }] }, "steps[0].params.pattern"],
      ["bad op", { name: "t", steps: [{ ...ok, expect: { field: "waited_ms", op: "near", value: 1 } }] }, "steps[0].expect"],
      ["gt without a number", { name: "t", steps: [{ ...ok, expect: [{ field: "waited_ms", op: "gt", value: "1" }] }] }, "steps[0].expect[0].value"],
      ["ai.goal without allow", { name: "t", steps: [{ name: "g", action: "ai.goal", params: { instruction: "open settings", success: "settings shown" } }] }, "steps[0].params.allow"],
      ["resource on a wait", { name: "t", steps: [{ ...ok, resource: "console" }] }, "steps[0].resource"],
      ["unknown field", { name: "t", steps: [ok], colour: "red" }, ""],
    ];
    for (const [what, body, path] of cases) {
      const res = await api(hub, "POST", "/api/testcases", body);
      expect(res.status, what).toBe(400);
      expect(res.body.error_code, what).toBe("validation_failed");
      const details = res.body.details as Array<{ path: string; message: string }>;
      if (path !== "") expect(details.map((d) => d.path), `${what}: ${res.text}`).toContain(path);
      expect(res.body.message as string, what).toMatch(/^Invalid test case: /);
    }
    expect((await api(hub, "GET", "/api/testcases")).body.testcases).toEqual([]);

    const tc = await createTestCase(hub, { name: "fine", steps: [ok] });
    const badCampaigns: Array<[string, Record<string, unknown>, string]> = [
      ["unknown test case", { name: "c", testcases: [tc, "nope"] }, "testcases[1]"],
      ["bad cron", { name: "c", testcases: [tc], schedule: { cron: "61 * * * *", timezone: "UTC" } }, "schedule.cron"],
      ["bad time zone", { name: "c", testcases: [tc], schedule: { cron: "0 3 * * *", timezone: "Mars/Olympus" } }, "schedule.timezone"],
      ["parallelism out of range", { name: "c", testcases: [tc], parallelism: 33 }, "parallelism"],
      ["retries out of range", { name: "c", testcases: [tc], retries: 6 }, "retries"],
    ];
    for (const [what, body, path] of badCampaigns) {
      const res = await api(hub, "POST", "/api/campaigns", body);
      expect(res.status, what).toBe(400);
      expect((res.body.details as Array<{ path: string }>).map((d) => d.path), `${what}: ${res.text}`).toContain(path);
    }
    expect((await api(hub, "GET", "/api/campaigns")).body.campaigns).toEqual([]);

    // A test case a campaign lists cannot be deleted.
    const c = await createCampaign(hub, { name: "uses-fine", testcases: [tc], schedule: { cron: "0 3 * * *", timezone: "Europe/Paris" } });
    const got = await api(hub, "GET", `/api/campaigns/${c}`);
    expect(got.body).toMatchObject({ name: "uses-fine", parallelism: 1, retries: 0, continue_on_failure: true, timeout_s: 3600, enabled: true });
    const next = new Date(got.body.next_run_at as string);
    expect(new Intl.DateTimeFormat("en-GB", { timeZone: "Europe/Paris", hour: "2-digit", minute: "2-digit" }).format(next)).toBe("03:00");
    const del = await api(hub, "DELETE", `/api/testcases/${tc}`);
    expect(del.status).toBe(409);
    expect(del.body.message).toContain("uses-fine");
    expect((await api(hub, "DELETE", `/api/campaigns/${c}`)).status).toBe(204);
    expect((await api(hub, "DELETE", `/api/testcases/${tc}`)).status).toBe(204);
  });
});

describe("scheduling", () => {
  it("fires a per-second schedule and records an overlapping due run as skipped with the reason", async () => {
    // Per-second schedules are refused by default (LABRIG_SCHEDULE_MIN_INTERVAL_S = 60); this hub allows them.
    const hub = await startHub({ env: { LABRIG_SCHEDULE_MIN_INTERVAL_S: "1" } });
    await startAgent(hub, "gp-1", "gpio");
    const tc = await createTestCase(hub, { name: "slow", steps: [{ name: "pause", action: "wait", params: { ms: 1500 } }] });
    const c = await createCampaign(hub, { name: "every-second", testcases: [tc], schedule: { cron: "* * * * * *", timezone: "UTC" } });
    expect((await api(hub, "GET", `/api/campaigns/${c}`)).body.next_run_at).toEqual(expect.any(String));
    const runs = await waitFor(async () => {
      const list = (await api(hub, "GET", `/api/runs?campaign=${c}&limit=50`)).body.runs as Array<{ id: string; status: string; reason: string | null; trigger: string }>;
      return list.some((r) => r.status === "skipped") && list.some((r) => r.status === "passed") ? list : null;
    }, 20_000, 200);
    // Stop the schedule before asserting, so nothing fires while the hub stops.
    expect((await api(hub, "PUT", `/api/campaigns/${c}`, { name: "every-second", testcases: [tc], schedule: { cron: "* * * * * *", timezone: "UTC" }, enabled: false })).status).toBe(200);
    expect((await api(hub, "GET", `/api/campaigns/${c}`)).body.next_run_at).toBeNull();
    const skipped = runs.find((r) => r.status === "skipped");
    expect(skipped?.trigger).toBe("schedule");
    expect(skipped?.reason).toMatch(/^skipped: previous run [0-9a-f-]{36} still running/);
    // Never two of its runs at once: the passed runs' intervals do not overlap.
    const details = await Promise.all(runs.filter((r) => r.status === "passed").map(async (r) => (await api(hub, "GET", `/api/runs/${r.id}`)).body as unknown as { started_at: string; finished_at: string }));
    for (const a of details) for (const b of details) if (a !== b) expect(overlaps(interval(a), interval(b))).toBe(false);
    // Wait for a run that may still be going, so the hub stops idle.
    await waitFor(async () => ((await api(hub, "GET", `/api/runs?campaign=${c}&status=running`)).body.runs as unknown[]).length === 0, 10_000, 100);
  }, 40_000);
});

describe("timeouts and the planner", () => {
  it("fails a step past its timeout_ms, ends a run past timeout_s as error, and fails ai.goal steps with planner_unavailable when no planner is wired", async () => {
    const hub = await startHub();
    await startAgent(hub, "gp-1", "gpio");
    const stepTimeout = await createTestCase(hub, {
      name: "slow-step",
      steps: [{ name: "too_long", action: "wait", params: { ms: 20_000 }, timeout_ms: 100 }],
      teardown: [{ name: "tidy", action: "wait", params: { ms: 1 } }],
    });
    const goal = await createTestCase(hub, {
      name: "goal",
      steps: [{ name: "open_settings", action: "ai.goal", params: { instruction: "Open the settings menu", success: "The settings menu is shown", allow: ["gpio.pulse"] } }],
    });
    const c = await createCampaign(hub, { name: "timeouts", testcases: [stepTimeout, goal] });
    const run = await waitRun(hub, (await api(hub, "POST", `/api/campaigns/${c}/runs`)).body.id as string, 30_000);
    const byName = Object.fromEntries(run.tests.map((t) => [t.name, t]));
    expect(byName["slow-step"]).toMatchObject({ status: "failed" });
    expect(byName["slow-step"]?.steps[0]).toMatchObject({ name: "too_long", status: "failed" });
    expect(byName["slow-step"]?.steps[0]?.message).toContain("exceeded its timeout of 100 ms");
    expect(byName["slow-step"]?.steps[1]).toMatchObject({ name: "tidy", status: "passed" });
    expect(byName.goal).toMatchObject({ status: "error" });
    expect(byName.goal?.steps[0]?.message).toContain("planner");
    expect(run.status).toBe("failed");

    const long = await createTestCase(hub, { name: "long", steps: [{ name: "long_wait", action: "wait", params: { ms: 20_000 } }] });
    const c2 = await createCampaign(hub, { name: "short-budget", testcases: [long], timeout_s: 1 });
    const timedOut = await waitRun(hub, (await api(hub, "POST", `/api/campaigns/${c2}/runs`)).body.id as string, 30_000);
    expect(timedOut.status).toBe("error");
    expect(timedOut.reason).toBe("run timed out after 1 s");
    expect(timedOut.tests[0]?.steps[0]?.status).toBe("canceled");
    expect((await api(hub, "GET", "/api/leases")).body.leases).toEqual([]);
  }, 60_000);
});

describe("cancel and restart", () => {
  it("cancels a running run: its action is aborted on the agent, teardown still runs, the lease is released", async () => {
    const hub = await startHub();
    await startAgent(hub, "gp-1", "gpio");
    const tc = await createTestCase(hub, {
      name: "long",
      steps: [{ name: "long_wait", action: "wait", params: { ms: 30_000 } }, { name: "after", action: "wait", params: { ms: 1 } }],
      teardown: [{ name: "tidy", action: "gpio.write", params: { value: 0 } }],
    });
    const started = await api(hub, "POST", `/api/testcases/${tc}/runs`, {});
    expect(started.status).toBe(202);
    const id = started.body.id as string;
    await waitFor(async () => {
      const run = (await api(hub, "GET", `/api/runs/${id}`)).body as unknown as RunBody;
      return run.tests[0]?.steps.some((s) => s.name === "long_wait" && s.status === "running");
    }, 10_000, 50);
    const leasesDuring = (await api(hub, "GET", "/api/leases")).body.leases as Array<{ owner: string }>;
    expect(leasesDuring.map((l) => l.owner)).toEqual([`run:${id}`]);

    const cancel = await api(hub, "POST", `/api/runs/${id}/cancel`);
    expect(cancel.status).toBe(200);
    const run = await waitRun(hub, id, 15_000);
    expect(run.status).toBe("canceled");
    expect(run.reason).toMatch(/^canceled by /);
    const steps = Object.fromEntries((run.tests[0]?.steps ?? []).map((s) => [s.name, s]));
    expect(steps.long_wait?.status).toBe("canceled");
    expect(steps.after?.status).toBe("skipped");
    expect(steps.tidy).toMatchObject({ phase: "teardown", status: "passed" });
    const action = await api(hub, "GET", `/api/actions/${steps.long_wait?.action_ids[0] ?? ""}`);
    expect(action.body.status).toBe("canceled");
    expect((await api(hub, "GET", "/api/leases")).body.leases).toEqual([]);
    expect((await api(hub, "POST", `/api/runs/${id}/cancel`)).status).toBe(409);
  }, 30_000);

  it("a run in progress when the hub stops ends interrupted, and its lease is released; the next hub on the same database starts clean", async () => {
    const first = await startHub();
    await startAgent(first, "gp-1", "gpio");
    const tc = await createTestCase(first, { name: "long", steps: [{ name: "long_wait", action: "wait", params: { ms: 30_000 } }] });
    const c = await createCampaign(first, { name: "long-one", testcases: [tc] });
    const id = (await api(first, "POST", `/api/campaigns/${c}/runs`)).body.id as string;
    await waitFor(async () => ((await api(first, "GET", `/api/runs/${id}`)).body as unknown as RunBody).tests[0]?.status === "running", 10_000, 50);
    await stopAgents();
    await stopAll();

    const second = await startHub({ dataDir: first.dataDir });
    const run = (await api(second, "GET", `/api/runs/${id}`)).body as unknown as RunBody;
    expect(run.status).toBe("interrupted");
    expect(run.reason).toMatch(/^hub (stopped|restarted) while the run was running$/);
    expect(run.tests[0]?.status).not.toBe("running");
    expect((await api(second, "GET", "/api/leases")).body.leases).toEqual([]);
    expect((await api(second, "GET", "/api/runs?status=running")).body.runs).toEqual([]);
  }, 30_000);
});
