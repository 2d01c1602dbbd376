import { join } from "node:path";
import { pino } from "pino";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { LabrigError, nowIso, type ActionRecord, type TestCaseRecord } from "@labrig/shared";
import { HubDatabase } from "../src/db/database.js";
import { MIGRATIONS } from "../src/db/migrations.js";
import { RunsRepository } from "../src/repositories/runs.js";
import { RunArtifactStore } from "../src/services/campaigns/artifact-store.js";
import type { CampaignFleet, DeviceLease, GoalOutcome, GoalRunner } from "../src/services/campaigns/ports.js";
import { CampaignRunner } from "../src/services/campaigns/runner.js";
import { cleanupTempDirs, makeTempDir } from "./helpers.js";

// The runner over a real SQLite file, with the fleet and the goal loop as stand-ins: the goal
// behaves like the real planner waiting on a dispatcher action, which ends only when it is canceled.

const logger = pino({ level: "silent" });
const LEASE: DeviceLease = { id: "lease-1", token: "lrl_test", host: "sim-1", device: "dut1", resources: [] };

/** A fleet that grants LEASE at once and records which leases had their actions canceled. */
class StubFleet implements CampaignFleet {
  readonly canceledLeases: string[] = [];
  private onCancel: (() => void) | null = null;
  /** Resolves when cancelLeaseActions is first called. */
  readonly leaseCanceled = new Promise<void>((resolve) => (this.onCancel = resolve));

  async acquire(): Promise<DeviceLease> {
    return LEASE;
  }
  async keepalive(): Promise<void> {}
  async release(): Promise<void> {}
  async runAction(): Promise<ActionRecord> {
    throw new LabrigError("internal_error", "this test runs only ai.goal steps");
  }
  cancel(): void {}
  cancelLeaseActions(lease: DeviceLease): void {
    this.canceledLeases.push(lease.id);
    this.onCancel?.();
  }
}

/** A goal that is busy with an action on the device until the fleet cancels the lease's actions. */
function stuckGoal(fleet: StubFleet, started: () => void): GoalRunner {
  return {
    async run(): Promise<GoalOutcome> {
      started();
      await fleet.leaseCanceled;
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

/** Resolves true when `p` settles within `ms`, false otherwise (so a hang fails the test instead of timing it out). */
async function settlesWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  try {
    return await Promise.race([p.then(() => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
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

  function setUp(tc: TestCaseRecord): { runner: CampaignRunner; fleet: StubFleet; runId: string; goalStarted: Promise<void> } {
    const fleet = new StubFleet();
    let markStarted: () => void = () => undefined;
    const goalStarted = new Promise<void>((resolve) => (markStarted = resolve));
    const artifacts = new RunArtifactStore(dir, runs, { maxAgeMs: 86_400_000, maxBytes: 1e9, sweepIntervalMs: 3_600_000 }, logger);
    const runner = new CampaignRunner({
      runs,
      fleet,
      artifacts,
      goals: stuckGoal(fleet, markStarted),
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
    return { runner, fleet, runId, goalStarted };
  }

  it("cancels the lease's in-flight action when the run is canceled during a goal, so the run ends at once", async () => {
    const { runner, fleet, runId, goalStarted } = setUp(goalTestCase());
    await goalStarted;
    expect(runner.cancel(runId, "tester")).toBe(true);
    // Without the cancel reaching the lease's actions, the run would wait out that action's own timeout.
    expect(await settlesWithin(runner.settled(runId), 10_000)).toBe(true);
    expect(fleet.canceledLeases).toEqual([LEASE.id]);
    expect(runs.getRun(runId)?.status).toBe("canceled");
    const [step] = runs.steps(runId);
    expect(step?.status).toBe("canceled");
  });

  it("cancels the lease's in-flight action when a goal step passes its timeout_ms, and fails the step", async () => {
    const { runner, fleet, runId, goalStarted } = setUp(goalTestCase(200));
    await goalStarted;
    expect(await settlesWithin(runner.settled(runId), 10_000)).toBe(true);
    expect(fleet.canceledLeases).toEqual([LEASE.id]);
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
