import { chmodSync, statSync } from "node:fs";
import { join } from "node:path";
import { pino } from "pino";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { HubDatabase } from "../src/db/database.js";
import { RunsRepository } from "../src/repositories/runs.js";
import { RunArtifactStore } from "../src/services/campaigns/artifact-store.js";
import { cleanupTempDirs, makeTempDir, startHub, stopAll } from "./helpers.js";

// The database (with its WAL and SHM) and run artifacts are private to the hub's user — 0600 files,
// 0700 directories — whatever the umask the hub was started with.

const mode = (path: string): number => statSync(path).mode & 0o777;
let savedUmask = 0;

beforeAll(() => {
  // The loosest umask there is: nothing the hub creates may rely on it.
  savedUmask = process.umask(0);
});

afterAll(() => {
  process.umask(savedUmask);
});

afterEach(async () => {
  await stopAll();
  cleanupTempDirs();
});

describe("file modes", () => {
  it("creates the data directory 0700 and the database, WAL and SHM 0600 under umask 0", async () => {
    const root = makeTempDir();
    const dataDir = join(root, "var", "labrig");
    await startHub({ dataDir });
    expect(mode(join(root, "var")).toString(8)).toBe("700");
    expect(mode(dataDir).toString(8)).toBe("700");
    for (const file of ["labrig.db", "labrig.db-wal", "labrig.db-shm"]) expect(mode(join(dataDir, file)).toString(8), file).toBe("600");
    expect(mode(join(dataDir, "runs")).toString(8)).toBe("700");
  });

  it("makes a database an older version left world-readable private at start", async () => {
    const first = await startHub();
    await first.hub.stop();
    for (const file of ["labrig.db", "labrig.db-wal", "labrig.db-shm"]) {
      try {
        chmodSync(join(first.dataDir, file), 0o644);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
      }
    }
    await startHub({ dataDir: first.dataDir });
    for (const file of ["labrig.db", "labrig.db-wal", "labrig.db-shm"]) expect(mode(join(first.dataDir, file)).toString(8), file).toBe("600");
  });

  it("writes run artifacts 0600 in a 0700 directory", () => {
    const dataDir = makeTempDir();
    const logger = pino({ level: "silent" });
    const database = new HubDatabase(join(dataDir, "labrig.db"), logger);
    database.start();
    try {
      const runs = new RunsRepository(database.db);
      const runId = "0f8fad5b-d9cb-469f-a165-70867728950e";
      runs.insertRun({ id: runId, campaignId: null, testcaseId: null, name: "r", status: "running", reason: null, trigger: "api", requestedBy: null, spec: { settings: { parallelism: 1, retries: 0, continue_on_failure: false, timeout_s: 60, target: { selector: { capabilities: [], labels: {} } } }, testcases: [] }, createdAt: new Date().toISOString() });
      const store = new RunArtifactStore(dataDir, runs, { maxAgeMs: 60_000, maxBytes: 1e9, sweepIntervalMs: 60_000 }, logger);
      store.start();
      store.write({ runId, runTestId: null, stepSeq: null, nameParts: ["console"], ext: "txt", kind: "console", mimeType: "text/plain", data: Buffer.from("boot log") });
      store.stop();
      expect(mode(join(dataDir, "runs")).toString(8)).toBe("700");
      expect(mode(join(dataDir, "runs", runId)).toString(8)).toBe("700");
      expect(mode(join(dataDir, "runs", runId, "console.txt")).toString(8)).toBe("600");
    } finally {
      database.stop();
    }
  });
});
