import { join } from "node:path";
import { pino } from "pino";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { LabrigError, nowIso, settlesWithin, type ActionRecord, type TestCaseRecord } from "@labrig/shared";
import { HubDatabase } from "../src/db/database.js";
import { MIGRATIONS } from "../src/db/migrations.js";
import { RunsRepository } from "../src/repositories/runs.js";
import { RunArtifactStore } from "../src/services/campaigns/artifact-store.js";
import type { CampaignFleet, DeviceLease, GoalOutcome, GoalRunner } from "../src/services/campaigns/ports.js";
import { CampaignRunner } from "../src/services/campaigns/runner.js";
import { cleanupTempDirs, makeTempDir } from "./helpers.js";

// The runner over a real SQLite file, with the fleet and the goal loop as stand-ins: the goal
// behaves like the real planner waiting on an action it started with the step's signal, which ends
// only when that signal aborts it.

const logger = pino({ level: "silent" });
const LEASE: DeviceLease = { id: "lease-1", token: "lrl_test", host: "sim-1", device: "dut1", resources: [] };

/** A fleet that grants LEASE at once. */
class StubFleet implements CampaignFleet {
  async acquire(): Promise<DeviceLease> {
    return LEASE;
  }
  async keepalive(): Promise<void> {}
  async release(): Promise<void> {}
  async runAction(): Promise<ActionRecord> {
    throw new LabrigError("internal_error", "this test runs only ai.goal steps");
  }
}

/** A goal busy with an action on the device until the step's signal aborts it; `aborts` records why. */
function stuckGoal(started: () => void, aborts: string[]): GoalRunner {
  return {
    async run(input): Promise<GoalOutcome> {
      started();
      await new Promise<void>((resolve) => input.signal.addEventListener("abort", () => resolve(), { once: true }));
      aborts.push((input.signal.reason as Error).message);
      return { status: "error", iterations: [], error: { error_code: "canceled", message: "the action the goal waited on was canceled" } };
    },
  };
}

function goalTestCase(timeoutMs?: number): TestCaseRecord {
  const at = nowIso();
  return {
    id: "tc-goal",
    name: "reach the menu",
    description: "",
    tags: [],
    target: { selector: { capabilities: [], labels: {} } },
    setup: [],
    steps: [
      {
        name: "menu",
        action: "ai.goal",
        params: { instruction: "Open the menu", success: "The menu is shown", allow: ["wait"] },
        continue_on_failure: false,
        ...(timeoutMs === undefined ? {} : { timeout_ms: timeoutMs }),
      },
    ],
    teardown: [],
    created_at: at,
    updated_at: at,
  };
}

describe("campaign runner: ai.goal steps", () => {
  let database: HubDatabase;
  let runs: RunsRepository;
  let dir: string;

  beforeEach(() => {
    dir = makeTempDir();
    database = new HubDatabase(join(dir, "labrig.db"), logger, MIGRATIONS);
    database.start();
    runs = new RunsRepository(database.db);
  });

  afterEach(() => {
    database.stop();
    cleanupTempDirs();
  });

  function setUp(tc: TestCaseRecord): { runner: CampaignRunner; aborts: string[]; runId: string; goalStarted: Promise<void> } {
    const fleet = new StubFleet();
    const aborts: string[] = [];
    let markStarted: () => void = () => undefined;
    const goalStarted = new Promise<void>((resolve) => (markStarted = resolve));
    const artifacts = new RunArtifactStore(dir, runs, { maxAgeMs: 86_400_000, maxBytes: 1e9, sweepIntervalMs: 3_600_000 }, logger);
    const runner = new CampaignRunner({
      runs,
      fleet,
      artifacts,
      goals: stuckGoal(markStarted, aborts),
      events: null,
      consoles: null,
      agentArtifacts: null,
      logger,
      options: { leaseTtlS: 60, deviceWaitMs: 1000, retryOtherDeviceWaitMs: 100, actionTimeoutMs: 10_000, consoleCaptureBytes: 1024, stopGraceMs: 1000 },
    });
    const runId = "00000000-0000-4000-8000-000000000001";
    runs.insertRun({
      id: runId,
      campaignId: null,
      testcaseId: tc.id,
      name: tc.name,
      status: "queued",
      reason: null,
      trigger: "api",
      requestedBy: "tester",
      spec: { settings: { parallelism: 1, retries: 0, continue_on_failure: true, timeout_s: 600, target: { selector: { capabilities: [], labels: {} } } }, testcases: [tc] },
      createdAt: nowIso(),
    });
    const row = runs.getRun(runId);
    if (!row) throw new Error("run not stored");
    runner.launch(row);
    return { runner, aborts, runId, goalStarted };
  }

  it("aborts the goal's in-flight action when the run is canceled during a goal, so the run ends at once", async () => {
    const { runner, aborts, runId, goalStarted } = setUp(goalTestCase());
    await goalStarted;
    expect(runner.cancel(runId, "tester")).toBe(true);
    // Without the cancel reaching the goal's action through its signal, the run would wait out that action's own timeout.
    expect(await settlesWithin(runner.settled(runId), 10_000)).toBe(true);
    expect(aborts).toHaveLength(1);
    expect(runs.getRun(runId)?.status).toBe("canceled");
    const [step] = runs.steps(runId);
    expect(step?.status).toBe("canceled");
  });

  it("aborts the goal's in-flight action when a goal step passes its timeout_ms, and fails the step", async () => {
    const { runner, aborts, runId, goalStarted } = setUp(goalTestCase(200));
    await goalStarted;
    expect(await settlesWithin(runner.settled(runId), 10_000)).toBe(true);
    expect(aborts).toEqual(["step menu exceeded its timeout of 200 ms"]);
    const [step] = runs.steps(runId);
    expect(step?.status).toBe("failed");
    expect(runs.getRun(runId)?.status).toBe("failed");
  });
});

describe("run artifact store", () => {
  it("names artifacts whose name parts sanitise to nothing 'artifact', then 'artifact-2', never a name it would refuse", () => {
    const dir = makeTempDir();
    const database = new HubDatabase(join(dir, "labrig.db"), logger, MIGRATIONS);
    database.start();
    try {
      const runs = new RunsRepository(database.db);
      const runId = "00000000-0000-4000-8000-000000000002";
      runs.insertRun({ id: runId, campaignId: null, testcaseId: null, name: "r", status: "queued", reason: null, trigger: "api", requestedBy: null, spec: { settings: { parallelism: 1, retries: 0, continue_on_failure: true, timeout_s: 60, target: { selector: { capabilities: [], labels: {} } } }, testcases: [] }, createdAt: nowIso() });
      const store = new RunArtifactStore(dir, runs, { maxAgeMs: 86_400_000, maxBytes: 1e9, sweepIntervalMs: 3_600_000 }, logger);
      const write = () => store.write({ runId, runTestId: null, stepSeq: null, nameParts: ["!!!"], ext: "txt", kind: "other", mimeType: "text/plain", data: Buffer.from("x") });
      expect(write().name).toBe("artifact.txt");
      expect(write().name).toBe("artifact-2.txt");
      expect(store.open(runId, "artifact-2.txt").bytes).toBe(1);
    } finally {
      database.stop();
      cleanupTempDirs();
    }
  });
});
