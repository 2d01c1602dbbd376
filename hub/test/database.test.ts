import { existsSync } from "node:fs";
import { join } from "node:path";
import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { HubDatabase } from "../src/db/database.js";
import { MIGRATIONS } from "../src/db/migrations.js";
import { cleanupTempDirs, makeTempDir, queryDb, startHub, stopAll } from "./helpers.js";

const silent = pino({ level: "silent" });

afterEach(async () => {
  await stopAll();
  cleanupTempDirs();
});

describe("database", () => {
  it("creates the data directory and applies every migration once, recording each", () => {
    const dir = join(makeTempDir(), "nested", "data");
    const db = new HubDatabase(join(dir, "labrig.db"), silent);
    const applied = db.start();
    expect(applied).toEqual(MIGRATIONS.map((m) => m.version));
    expect(existsSync(join(dir, "labrig.db"))).toBe(true);
    expect(db.schemaVersion()).toBe(Math.max(...MIGRATIONS.map((m) => m.version)));
    expect(db.db.pragma("journal_mode", { simple: true })).toBe("wal");
    expect(db.db.pragma("foreign_keys", { simple: true })).toBe(1);
    db.stop();

    const rows = queryDb<{ version: number; name: string; applied_at: string }>(dir, "SELECT version, name, applied_at FROM schema_migrations ORDER BY version");
    expect(rows.map((r) => r.version)).toEqual(MIGRATIONS.map((m) => m.version));
    expect(rows.every((r) => !Number.isNaN(Date.parse(r.applied_at)))).toBe(true);
    const tables = queryDb<{ name: string }>(dir, "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").map((r) => r.name);
    expect(tables).toEqual(expect.arrayContaining(["actions", "devices", "host_events", "hosts", "schema_migrations"]));
  });

  it("applies nothing on a restart against the same file", () => {
    const dir = makeTempDir();
    const path = join(dir, "labrig.db");
    const first = new HubDatabase(path, silent);
    first.start();
    first.stop();
    const second = new HubDatabase(path, silent);
    expect(second.start()).toEqual([]);
    second.stop();
    expect(queryDb<{ n: number }>(dir, "SELECT COUNT(*) AS n FROM schema_migrations")[0]?.n).toBe(MIGRATIONS.length);
  });

  it("applies only the migrations added since the last start", () => {
    const dir = makeTempDir();
    const path = join(dir, "labrig.db");
    const v1 = new HubDatabase(path, silent);
    v1.start();
    v1.stop();
    const extra = { version: 1000, name: "test table", sql: "CREATE TABLE test_extra (x INTEGER) STRICT;" };
    const v2 = new HubDatabase(path, silent, [...MIGRATIONS, extra]);
    expect(v2.start()).toEqual([1000]);
    expect(v2.schemaVersion()).toBe(1000);
    v2.stop();
  });

  it("rolls back a failing migration completely", () => {
    const dir = makeTempDir();
    const path = join(dir, "labrig.db");
    const broken = [...MIGRATIONS, { version: 1000, name: "broken", sql: "CREATE TABLE half (x INTEGER); THIS IS NOT SQL;" }];
    const db = new HubDatabase(path, silent, broken);
    expect(() => db.start()).toThrow();
    db.stop();
    expect(queryDb<{ n: number }>(dir, "SELECT COUNT(*) AS n FROM schema_migrations")).toEqual([{ n: 0 }]);
    expect(queryDb(dir, "SELECT name FROM sqlite_master WHERE name IN ('half', 'hosts')")).toEqual([]);
  });

  it("a hub restarted on the same data dir keeps its schema and applies nothing new", async () => {
    const first = await startHub();
    await first.hub.stop();
    const before = queryDb<{ version: number; applied_at: string }>(first.dataDir, "SELECT version, applied_at FROM schema_migrations");
    await startHub({ dataDir: first.dataDir });
    const after = queryDb<{ version: number; applied_at: string }>(first.dataDir, "SELECT version, applied_at FROM schema_migrations");
    expect(after).toEqual(before);
  });
});
