import { existsSync, mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { HubDatabase } from "../src/db/database.js";
import { RunsRepository } from "../src/repositories/runs.js";
import { RunArtifactStore } from "../src/services/campaigns/artifact-store.js";
import { api, createTestCase, startAgent, stopAgents, waitRun } from "./campaign-helpers.js";
import { TEST_ADMIN_KEY, cleanupTempDirs, makeTempDir, startHub, stopAll } from "./helpers.js";

afterEach(async () => {
  await stopAgents();
  await stopAll();
  cleanupTempDirs();
});

const silent = pino({ level: "silent" });
const DAY = 86_400_000;

describe("GET /api/runs/:id/artifacts/:name", () => {
  it("serves a run's artifact and refuses traversal, encoded separators, NUL, absolute paths and planted symlinks", async () => {
    const hub = await startHub();
    await startAgent(hub, "gp-1", "gpio");
    const tc = await createTestCase(hub, { name: "tiny", steps: [{ name: "w", action: "wait", params: { ms: 1 } }] });
    const runId = (await api(hub, "POST", `/api/testcases/${tc}/runs`)).body.id as string;
    await waitRun(hub, runId);

    // Plant files the way the store lays them out, plus a secret beside the run directories.
    const runDir = join(hub.dataDir, "runs", runId);
    mkdirSync(runDir, { recursive: true });
    writeFileSync(join(hub.dataDir, "secret.txt"), "TOP SECRET");
    writeFileSync(join(runDir, "t01-a1-s01-w-console.txt"), "console text");
    symlinkSync(join(hub.dataDir, "secret.txt"), join(runDir, "t01-a1-s01-w-link.txt"));
    const db = new Database(join(hub.dataDir, "labrig.db"));
    const insert = db.prepare("INSERT INTO run_artifacts (run_id, name, kind, mime_type, bytes, created_at) VALUES (?, ?, 'console', 'text/plain', 10, ?)");
    insert.run(runId, "t01-a1-s01-w-console.txt", new Date().toISOString());
    insert.run(runId, "t01-a1-s01-w-link.txt", new Date().toISOString());
    db.close();

    const get = (path: string) => fetch(`${hub.url}/api/runs/${path}`, { headers: { authorization: `Bearer ${TEST_ADMIN_KEY}` } });
    const ok = await get(`${runId}/artifacts/t01-a1-s01-w-console.txt`);
    expect(ok.status).toBe(200);
    expect(await ok.text()).toBe("console text");
    expect(ok.headers.get("x-content-type-options")).toBe("nosniff");

    const attempts = [
      `${runId}/artifacts/..%2F..%2Fsecret.txt`,
      `${runId}/artifacts/%2e%2e%2f%2e%2e%2fsecret.txt`,
      `${runId}/artifacts/%2E%2E%5C%2E%2E%5Csecret.txt`,
      `${runId}/artifacts/..%2F..%2Flabrig.db`,
      `${runId}/artifacts/%2Fetc%2Fpasswd`,
      `${runId}/artifacts/t01-a1-s01-w-console.txt%00.jpg`,
      `${runId}/artifacts/%252e%252e%252fsecret.txt`,
      `${runId}/artifacts/t01-a1-s01-w-link.txt`,
      `..%2F..%2F/artifacts/secret.txt`,
      `..%2F${runId}/artifacts/t01-a1-s01-w-console.txt`,
    ];
    for (const path of attempts) {
      const res = await get(path);
      const body = await res.text();
      expect([400, 404], path).toContain(res.status);
      expect(body, path).not.toContain("TOP SECRET");
      expect(body, path).not.toContain("SQLite");
    }
    // Authentication applies.
    expect((await fetch(`${hub.url}/api/runs/${runId}/artifacts/t01-a1-s01-w-console.txt`)).status).toBe(401);
  }, 30_000);
});

describe("artifact retention", () => {
  it("deletes artifacts past the age limit, then the oldest until the total fits, and keeps their records", () => {
    const dir = makeTempDir();
    const database = new HubDatabase(join(dir, "labrig.db"), silent);
    database.start();
    try {
      const runs = new RunsRepository(database.db);
      const runId = "0b3f3a6e-6d4c-4c53-9a0e-3d1c8f0c2a11";
      runs.insertRun({
        id: runId,
        campaignId: null,
        testcaseId: null,
        name: "r",
        status: "passed",
        reason: null,
        trigger: "api",
        requestedBy: null,
        spec: { settings: { parallelism: 1, retries: 0, continue_on_failure: true, timeout_s: 60, target: { selector: { capabilities: [], labels: {} } } }, testcases: [] },
        createdAt: new Date().toISOString(),
      });
      const store = new RunArtifactStore(dir, runs, { maxAgeMs: 30 * DAY, maxBytes: 250, sweepIntervalMs: 3_600_000 }, silent);
      const now = Date.now();
      const ages = { ancient: 40, old: 20, middle: 10, recent: 1 } as const;
      const names: Record<string, string> = {};
      for (const [label, days] of Object.entries(ages)) {
        const a = store.write({ runId, runTestId: null, stepSeq: null, nameParts: [label], ext: "txt", kind: "console", mimeType: "text/plain", data: Buffer.alloc(100, 65) });
        names[label] = a.name;
        database.db.prepare("UPDATE run_artifacts SET created_at = ? WHERE name = ?").run(new Date(now - days * DAY).toISOString(), a.name);
      }
      // 400 bytes live, limit 250: "ancient" goes for its age, "old" for the size (oldest first); 200 bytes remain.
      expect(store.sweep(now)).toBe(2);
      const exists = (label: string): boolean => existsSync(join(dir, "runs", runId, names[label] as string));
      expect([exists("ancient"), exists("old"), exists("middle"), exists("recent")]).toEqual([false, false, true, true]);
      const rows = runs.artifactsOfRun(runId);
      expect(rows).toHaveLength(4);
      expect(rows.filter((r) => r.deleted_at !== null).map((r) => r.name).sort()).toEqual([names.ancient, names.old].sort());
      expect(() => store.open(runId, names.ancient as string)).toThrow(/deleted by retention/);
      expect(store.open(runId, names.recent as string).bytes).toBe(100);
      expect(store.sweep(now)).toBe(0);
    } finally {
      database.stop();
    }
  });
});
