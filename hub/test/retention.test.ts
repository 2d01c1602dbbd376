import { randomUUID } from "node:crypto";
import { existsSync, mkdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterEach, describe, expect, it } from "vitest";
import { api, createTestCase } from "./campaign-helpers.js";
import { cleanupTempDirs, memoryLogger, queryDb, startHub, stopAll, waitFor } from "./helpers.js";

// Retention on a real SQLite file: history older than the settings is deleted in batches by the
// hub's periodic prune (files included), the space goes back to the file system, and nothing recent
// or unfinished is touched. And a campaign schedule may not fire more often than the minimum interval.

afterEach(async () => {
  await stopAll();
  cleanupTempDirs();
});

const DAY_MS = 86_400_000;
const daysAgo = (days: number): string => new Date(Date.now() - days * DAY_MS).toISOString();
const count = (dataDir: string, sql: string): number => queryDb<{ n: number }>(dataDir, `SELECT COUNT(*) AS n FROM ${sql}`)[0]?.n ?? -1;

interface Seeded {
  oldPlanIds: string[];
  newPlanIds: string[];
  oldRunIds: string[];
  newRunIds: string[];
}

/** Fills a migrated database with old and recent history, as a hub would have written it over months. */
function seed(dataDir: string): Seeded {
  const db = new Database(join(dataDir, "labrig.db"));
  const out: Seeded = { oldPlanIds: [], newPlanIds: [], oldRunIds: [], newRunIds: [] };
  const bulky = JSON.stringify({ data: "x".repeat(2000) });
  db.transaction(() => {
    db.prepare("INSERT INTO hosts (id, name, token_hash, created_at) VALUES ('pi-1', 'pi-1', 'h', ?)").run(daysAgo(400));
    const action = db.prepare(
      "INSERT INTO actions (id, host_id, device_id, action, params_json, status, queued_at, finished_at, target_json) VALUES (?, 'pi-1', 'dut', 'serial.write', ?, ?, ?, ?, '{}')",
    );
    for (let i = 0; i < 3000; i++) action.run(randomUUID(), bulky, "succeeded", daysAgo(200 - i / 100), daysAgo(200 - i / 100));
    for (let i = 0; i < 10; i++) action.run(randomUUID(), bulky, "failed", daysAgo(1), daysAgo(1));
    const event = db.prepare("INSERT INTO host_events (host_id, kind, detail, at) VALUES ('pi-1', 'online', ?, ?)");
    for (let i = 0; i < 2000; i++) event.run("x".repeat(200), daysAgo(150 - i / 100));
    for (let i = 0; i < 5; i++) event.run("recent", daysAgo(1));
    const plan = db.prepare("INSERT INTO plans (id, status, host_id, device_id, instruction, model, created_at) VALUES (?, 'executed', 'pi-1', 'dut', 'log in', 'm', ?)");
    mkdirSync(join(dataDir, "plans"), { recursive: true });
    for (let i = 0; i < 25; i++) {
      const id = randomUUID();
      const recent = i >= 20;
      plan.run(id, daysAgo(recent ? 2 : 60));
      writeFileSync(join(dataDir, "plans", `${id}.jpg`), Buffer.alloc(4096, 0xff));
      (recent ? out.newPlanIds : out.oldPlanIds).push(id);
    }
    const run = db.prepare("INSERT INTO runs (id, name, status, trigger, spec_json, created_at, finished_at) VALUES (?, 'nightly', ?, 'schedule', '{}', ?, ?)");
    const test = db.prepare("INSERT INTO run_tests (id, run_id, testcase_id, name, position, attempt, status) VALUES (?, ?, 'tc', 't', 0, 1, 'passed')");
    const step = db.prepare("INSERT INTO run_steps (run_test_id, idx, phase, name, action, status) VALUES (?, 0, 'main', 's', 'wait', 'passed')");
    const artifact = db.prepare("INSERT INTO run_artifacts (run_id, name, kind, mime_type, bytes, created_at) VALUES (?, 'console.txt', 'console', 'text/plain', 10, ?)");
    // In the order a hub writes them: old runs, then what a per-second schedule left behind (skipped
    // runs, one a second), then recent runs.
    for (let i = 0; i < 1222; i++) {
      if (i >= 20 && i < 1220) {
        run.run(randomUUID(), "skipped", daysAgo(250 - (i - 20) / 86_400), null);
        continue;
      }
      const id = randomUUID();
      const recent = i >= 1220;
      const at = daysAgo(recent ? 3 : 300);
      run.run(id, "passed", at, at);
      const testId = randomUUID();
      test.run(testId, id);
      step.run(testId);
      artifact.run(id, at);
      mkdirSync(join(dataDir, "runs", id), { recursive: true });
      writeFileSync(join(dataDir, "runs", id, "console.txt"), "boot log");
      (recent ? out.newRunIds : out.oldRunIds).push(id);
    }
    const lease = db.prepare("INSERT INTO leases (id, token_hash, owner, ttl_s, created_at, expires_at, ended_at, end_reason) VALUES (?, ?, 'ci', 60, ?, ?, ?, 'released')");
    const leaseDevice = db.prepare("INSERT INTO lease_devices (lease_id, host_id, device_id) VALUES (?, 'pi-1', 'dut')");
    for (let i = 0; i < 31; i++) {
      const id = randomUUID();
      const at = daysAgo(i === 30 ? 1 : 90);
      lease.run(id, randomUUID(), at, at, at);
      leaseDevice.run(id);
    }
  })();
  db.pragma("wal_checkpoint(TRUNCATE)");
  db.close();
  return out;
}

describe("retention", () => {
  it("prunes actions, host events, plans with frames, runs with artifacts and ended leases past their settings, logs the counts and reclaims the space", async () => {
    const first = await startHub();
    await first.hub.stop();
    const dataDir = first.dataDir;
    const seeded = seed(dataDir);
    const dbFile = join(dataDir, "labrig.db");
    const sizeBefore = statSync(dbFile).size;
    const { logger, lines } = memoryLogger();
    await startHub({ dataDir, logger, env: { LABRIG_PRUNE_INTERVAL_S: "1" } });
    const report = await waitFor(() => lines.find((l) => l.msg === "retention prune"), 10_000);

    expect(report).toMatchObject({ actions: 3000, host_events: 2000, plans: 20, plan_frames: 20, runs: 1220, run_dirs: 20, leases: 30 });
    expect(report.freed_pages as number).toBeGreaterThan(1000);
    // What is recent or unfinished stays.
    expect(count(dataDir, "actions")).toBe(10);
    expect(count(dataDir, "host_events WHERE detail = 'recent'")).toBe(5);
    expect(count(dataDir, "plans")).toBe(5);
    expect(count(dataDir, "runs")).toBe(2);
    expect(count(dataDir, "run_tests")).toBe(2);
    expect(count(dataDir, "run_steps")).toBe(2);
    expect(count(dataDir, "run_artifacts")).toBe(2);
    expect(count(dataDir, "leases")).toBe(1);
    expect(count(dataDir, "lease_devices")).toBe(1);
    for (const id of seeded.oldPlanIds) expect(existsSync(join(dataDir, "plans", `${id}.jpg`))).toBe(false);
    for (const id of seeded.newPlanIds) expect(existsSync(join(dataDir, "plans", `${id}.jpg`))).toBe(true);
    for (const id of seeded.oldRunIds) expect(existsSync(join(dataDir, "runs", id))).toBe(false);
    for (const id of seeded.newRunIds) expect(existsSync(join(dataDir, "runs", id, "console.txt"))).toBe(true);
    // The freed pages went back to the file system (incremental vacuum), and the WAL was truncated.
    expect(queryDb<{ freelist_count: number }>(dataDir, "PRAGMA freelist_count")[0]?.freelist_count).toBe(0);
    const sizeAfter = statSync(dbFile).size;
    console.log(`retention: database ${(sizeBefore / 1e6).toFixed(1)} MB → ${(sizeAfter / 1e6).toFixed(1)} MB; prune took ${String(report.duration_ms)} ms`);
    expect(sizeAfter).toBeLessThan(sizeBefore / 2);
    expect(statSync(`${dbFile}-wal`).size).toBe(0);
  });

  it("keeps everything of a kind whose setting is 0 (forever)", async () => {
    const first = await startHub();
    await first.hub.stop();
    seed(first.dataDir);
    const { logger, lines } = memoryLogger();
    const env = { LABRIG_PRUNE_INTERVAL_S: "1", LABRIG_RETAIN_ACTIONS_DAYS: "0", LABRIG_RETAIN_HOST_EVENTS_DAYS: "0", LABRIG_RETAIN_PLANS_DAYS: "0", LABRIG_RETAIN_RUNS_DAYS: "0", LABRIG_RETAIN_LEASES_DAYS: "0" };
    await startHub({ dataDir: first.dataDir, logger, env });
    const report = await waitFor(() => lines.find((l) => l.msg === "retention prune"), 10_000);
    expect(report).toMatchObject({ actions: 0, host_events: 0, plans: 0, runs: 0, leases: 0 });
    expect(count(first.dataDir, "actions")).toBe(3010);
    expect(count(first.dataDir, "runs")).toBe(1222);
  });

  it("converts a database made before retention existed to incremental vacuum once, at start", async () => {
    const first = await startHub();
    await first.hub.stop();
    const db = new Database(join(first.dataDir, "labrig.db"));
    db.pragma("auto_vacuum = NONE");
    db.exec("VACUUM");
    expect(db.pragma("auto_vacuum", { simple: true })).toBe(0);
    db.close();
    const { logger, lines } = memoryLogger();
    await startHub({ dataDir: first.dataDir, logger });
    expect(queryDb<{ auto_vacuum: number }>(first.dataDir, "PRAGMA auto_vacuum")[0]?.auto_vacuum).toBe(2);
    expect(lines.some((l) => l.msg === "database converted to incremental vacuum (once)")).toBe(true);
  });
});

describe("campaign schedule minimum interval", () => {
  it("refuses at save a schedule that fires more often than LABRIG_SCHEDULE_MIN_INTERVAL_S (60 s by default), naming the setting", async () => {
    const hub = await startHub();
    const tc = await createTestCase(hub, { name: "quick", steps: [{ name: "pause", action: "wait", params: { ms: 1 } }] });
    for (const cron of ["* * * * * *", "*/30 * * * * *", "0,10 * * * * *"]) {
      const res = await api(hub, "POST", "/api/campaigns", { name: `c-${cron.length}`, testcases: [tc], schedule: { cron, timezone: "UTC" } });
      expect(res.status, cron).toBe(400);
      expect(res.body.error_code).toBe("validation_failed");
      expect(res.body.message).toContain("schedule.cron");
      expect(res.body.message).toContain("LABRIG_SCHEDULE_MIN_INTERVAL_S");
    }
    const ok = await api(hub, "POST", "/api/campaigns", { name: "every-minute", testcases: [tc], schedule: { cron: "* * * * *", timezone: "UTC" } });
    expect(ok.status, ok.text).toBe(201);
    const id = ok.body.id as string;
    // An update is checked the same way.
    const put = await api(hub, "PUT", `/api/campaigns/${id}`, { name: "every-minute", testcases: [tc], schedule: { cron: "*/5 * * * * *", timezone: "UTC" } });
    expect(put.status).toBe(400);
    expect(put.body.message).toContain("LABRIG_SCHEDULE_MIN_INTERVAL_S");
    expect(count(hub.dataDir, "runs")).toBe(0);
  });

  it("does not start a stored schedule that fires more often than the setting (saved under a lower one)", async () => {
    const loose = await startHub({ env: { LABRIG_SCHEDULE_MIN_INTERVAL_S: "1" } });
    const tc = await createTestCase(loose, { name: "quick", steps: [{ name: "pause", action: "wait", params: { ms: 1 } }] });
    const made = await api(loose, "POST", "/api/campaigns", { name: "per-second", testcases: [tc], schedule: { cron: "* * * * * *", timezone: "UTC" }, enabled: false });
    expect(made.status, made.text).toBe(201);
    await loose.hub.stop();
    const db = new Database(join(loose.dataDir, "labrig.db"));
    db.prepare("UPDATE campaigns SET spec_json = json_set(spec_json, '$.enabled', json('true')), enabled = 1").run();
    db.close();
    const { logger, lines } = memoryLogger();
    const strict = await startHub({ dataDir: loose.dataDir, logger });
    const view = await api(strict, "GET", `/api/campaigns/${made.body.id as string}`);
    expect(view.body.next_run_at).toBeNull();
    expect(lines.some((l) => l.msg === "stored campaign schedule not started; update the campaign's schedule")).toBe(true);
    await new Promise((r) => setTimeout(r, 1500));
    expect(count(strict.dataDir, "runs")).toBe(0);
  });
});
