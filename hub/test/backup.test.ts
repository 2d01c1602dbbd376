import type { ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterEach, describe, expect, it } from "vitest";
import { addHost, cleanupTempDirs, freePort, getJson, makeTempDir, postJson, testEnv, waitFor, type RunningHub } from "./helpers.js";
import { HUB_CLI, killProcesses, runProcess, serveHub } from "./hub-processes.js";
import { startLocalAgent, stopLocalAgents } from "./local-agents.js";

afterEach(async () => {
  await stopLocalAgents();
  await killProcesses();
  cleanupTempDirs();
});

const PREFILL_EVENTS = 40_000;

const hubCli = (args: string[], env: NodeJS.ProcessEnv) => runProcess(HUB_CLI, args, { ...process.env, ...env });
const serve = (env: NodeJS.ProcessEnv, url: string): Promise<ChildProcess> => serveHub({ ...process.env, ...env }, url);

async function stopProcess(child: ChildProcess): Promise<void> {
  const exited = new Promise((r) => child.once("exit", r));
  child.kill("SIGTERM");
  await exited;
}

function count(file: string, table: string): number {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    return (db.prepare(`SELECT COUNT(*) AS n FROM ${table}`).get() as { n: number }).n;
  } finally {
    db.close();
  }
}

describe("labrig-hub backup and restore", () => {
  it("backs up a hub under write load to a consistent, checked copy; restore refuses while the hub runs, then installs it and the hub starts from it", async () => {
    const dataDir = makeTempDir();
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const env = testEnv(dataDir, { PORT: String(port) });
    await addHost(dataDir, "filler");
    // A database big enough that the copy takes many backup steps while the hub writes.
    const fill = new Database(join(dataDir, "labrig.db"));
    const insert = fill.prepare("INSERT INTO host_events (host_id, device_id, kind, detail, at) VALUES ('filler', NULL, 'note', ?, ?)");
    fill.transaction(() => {
      for (let i = 0; i < PREFILL_EVENTS; i++) insert.run(`${i} ${"x".repeat(200)}`, new Date().toISOString());
    })();
    fill.close();

    const hubProcess = await serve(env, url);
    const hub = { url, dataDir } as RunningHub;
    await startLocalAgent(hub, "b-1", [{ id: "dut1", resources: [{ name: "relay", kind: "gpio", line: 5, direction: "out" }] }]);

    let writing = true;
    let done = 0;
    const writer = async (): Promise<void> => {
      // Bounded: stops when the backups are done, or after 2000 actions per writer at most.
      for (let i = 0; writing && i < 2000; i++) {
        const res = await postJson(`${url}/api/actions`, { action: "wait", params: { ms: 0 }, target: { selector: { capabilities: ["gpio"], labels: {} } } });
        if (res.status !== 200) throw new Error(`write load failed: ${res.text}`);
        done++;
      }
    };
    const writers = [writer(), writer(), writer()];
    await waitFor(() => done > 20, 10_000);
    const before = count(join(dataDir, "labrig.db"), "actions");

    const out = join(makeTempDir(), "copy.db");
    const backup = await hubCli(["backup", out, "--json"], env);
    expect(backup.code, backup.stderr).toBe(0);
    const report = JSON.parse(backup.stdout) as { path: string; bytes: number; schema_version: number; tables: Record<string, number>; duration_ms: number };
    const dir = join(makeTempDir(), "daily");
    mkdirSync(dir);
    writeFileSync(join(dir, "labrig-20000101T000000Z.db"), "an old backup");
    const daily = await hubCli(["backup", dir, "--keep", "1", "--json"], env);
    expect(daily.code, daily.stderr).toBe(0);
    writing = false;
    await Promise.all(writers);
    const after = count(join(dataDir, "labrig.db"), "actions");

    // The copy: one self-contained file, SQLite's integrity check passes, its counts are a moment of the live database.
    expect(report.path).toBe(out);
    expect(existsSync(`${out}-wal`)).toBe(false);
    const copy = new Database(out, { readonly: true, fileMustExist: true });
    expect(copy.pragma("integrity_check", { simple: true })).toBe("ok");
    expect(copy.pragma("journal_mode", { simple: true })).toBe("delete");
    const actionsInCopy = (copy.prepare("SELECT COUNT(*) AS n FROM actions").get() as { n: number }).n;
    const unfinished = (copy.prepare("SELECT COUNT(*) AS n FROM actions WHERE status = 'succeeded' AND finished_at IS NULL").get() as { n: number }).n;
    copy.close();
    expect(report.tables.actions).toBe(actionsInCopy);
    expect(report.tables.host_events).toBeGreaterThanOrEqual(PREFILL_EVENTS);
    expect(actionsInCopy).toBeGreaterThanOrEqual(before);
    expect(actionsInCopy).toBeLessThanOrEqual(after);
    expect(unfinished).toBe(0);
    expect(after).toBeGreaterThan(before);
    const kept = readdirSync(dir);
    expect(kept).toHaveLength(1);
    expect(kept[0]).toMatch(/^labrig-\d{8}T\d{6}Z\.db$/);
    expect(kept[0]).not.toBe("labrig-20000101T000000Z.db");

    const refused = await hubCli(["restore", out], env);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain("Another labrig hub process uses");

    await stopLocalAgents();
    await stopProcess(hubProcess);
    const restored = await hubCli(["restore", out, "--json"], env);
    expect(restored.code, restored.stderr).toBe(0);
    const r = JSON.parse(restored.stdout) as { installed_as: string; previous: string };
    expect(r.installed_as).toBe(join(dataDir, "labrig.db"));
    expect(existsSync(r.previous)).toBe(true);
    expect(count(r.previous, "actions")).toBe(after);

    await serve(env, url);
    const info = await getJson(`${url}/api/system/info`);
    expect((info.body.counts as { actions: number }).actions).toBe(actionsInCopy);
  }, 120_000);

  it("restore refuses a file that is not a labrig backup, and a damaged one, and changes nothing", async () => {
    const dataDir = makeTempDir();
    const env = testEnv(dataDir);
    await addHost(dataDir, "keep-me");
    const junk = join(makeTempDir(), "junk.db");
    writeFileSync(junk, "not a database at all, just text that is long enough to look like a file".repeat(100));
    const res = await hubCli(["restore", junk], env);
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/not (a readable )?an? SQLite database|not a readable SQLite database|file is not a database/);
    const other = join(makeTempDir(), "other.db");
    const db = new Database(other);
    db.exec("CREATE TABLE t (x)");
    db.close();
    const foreign = await hubCli(["restore", other], env);
    expect(foreign.code).toBe(1);
    expect(foreign.stderr).toContain("not a labrig hub's");
    expect(count(join(dataDir, "labrig.db"), "hosts")).toBe(1);
    expect((await hubCli(["backup"], env)).code).toBe(2);
  });
});
