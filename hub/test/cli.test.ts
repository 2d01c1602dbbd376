import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { createHash } from "node:crypto";
import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { loadConfig } from "../src/config.js";
import { HubDatabase } from "../src/db/database.js";
import { MIGRATIONS } from "../src/db/migrations.js";
import { HostEventsRepository } from "../src/repositories/host-events.js";
import { HostsRepository } from "../src/repositories/hosts.js";
import { HostTokens } from "../src/services/tokens.js";
import { cleanupTempDirs, cli, makeTempDir, queryDb, testEnv } from "./helpers.js";

afterEach(() => cleanupTempDirs());

function withTokens<T>(dataDir: string, fn: (tokens: HostTokens) => T): T {
  const db = new HubDatabase(join(dataDir, "labrig.db"), pino({ level: "silent" }));
  db.start();
  try {
    return fn(new HostTokens(new HostsRepository(db.db), new HostEventsRepository(db.db)));
  } finally {
    db.stop();
  }
}

describe("labrig-hub CLI", () => {
  it("host add --json prints exactly one JSON line with the id and a lrh_ token", async () => {
    const dir = makeTempDir();
    const out = await cli(["host", "add", "sim-1", "--label", "site=lab", "--label", "rack=a", "--json"], testEnv(dir));
    expect(out.code).toBe(0);
    expect(out.stdout.endsWith("\n")).toBe(true);
    expect(out.stdout.trim().split("\n")).toHaveLength(1);
    const printed = JSON.parse(out.stdout) as { id: string; token: string };
    expect(Object.keys(printed).sort()).toEqual(["id", "token"]);
    expect(printed.id).toBe("sim-1");
    expect(printed.token).toMatch(/^lrh_[A-Za-z0-9_-]{43}$/);
    const rows = queryDb<{ labels_json: string; state: string }>(dir, "SELECT labels_json, state FROM hosts WHERE id = 'sim-1'");
    expect(rows).toEqual([{ labels_json: JSON.stringify({ site: "lab", rack: "a" }), state: "offline" }]);
  });

  it("stores only the sha256 of the token: the plaintext is nowhere in the database files", async () => {
    const dir = makeTempDir();
    const { token } = JSON.parse((await cli(["host", "add", "sim-1", "--json"], testEnv(dir))).stdout) as { token: string };
    const [row] = queryDb<{ token_hash: string }>(dir, "SELECT token_hash FROM hosts WHERE id = 'sim-1'");
    expect(row?.token_hash).toBe(createHash("sha256").update(token).digest("hex"));
    const secret = token.slice(4);
    for (const file of readdirSync(dir)) {
      const bytes = readFileSync(join(dir, file));
      expect(bytes.includes(Buffer.from(secret)), `${file} contains the token`).toBe(false);
    }
    expect(withTokens(dir, (t) => t.verify("sim-1", token))).toBe(row?.token_hash);
    expect(withTokens(dir, (t) => t.verify("sim-1", `${token}x`))).toBeNull();
  });

  it("refuses to add an existing host and points to `host token`", async () => {
    const dir = makeTempDir();
    expect((await cli(["host", "add", "sim-1"], testEnv(dir))).code).toBe(0);
    const again = await cli(["host", "add", "sim-1"], testEnv(dir));
    expect(again.code).toBe(1);
    expect(again.stdout).toBe("");
    expect(again.stderr).toContain("labrig-hub host token sim-1");
  });

  it("refuses a host name that is not a slug, naming the rule", async () => {
    const out = await cli(["host", "add", "Sim 1"], testEnv(makeTempDir()));
    expect(out.code).toBe(1);
    expect(out.stderr).toContain("lowercase");
  });

  it("host token rotates: the new token works and the old one stops working", async () => {
    const dir = makeTempDir();
    const { token: old } = JSON.parse((await cli(["host", "add", "sim-1", "--json"], testEnv(dir))).stdout) as { token: string };
    const out = await cli(["host", "token", "sim-1", "--json"], testEnv(dir));
    expect(out.code).toBe(0);
    const { id, token } = JSON.parse(out.stdout) as { id: string; token: string };
    expect(id).toBe("sim-1");
    expect(token).not.toBe(old);
    expect(withTokens(dir, (t) => t.verify("sim-1", old))).toBeNull();
    expect(withTokens(dir, (t) => t.verify("sim-1", token))).not.toBeNull();
    expect(queryDb(dir, "SELECT kind FROM host_events WHERE host_id = 'sim-1'")).toEqual([{ kind: "token_rotated" }]);
  });

  it("host token for an unknown host fails with a hint to add it", async () => {
    const out = await cli(["host", "token", "ghost"], testEnv(makeTempDir()));
    expect(out.code).toBe(1);
    expect(out.stderr).toContain("host add ghost");
  });

  it("host list shows the hosts, as text and as JSON", async () => {
    const dir = makeTempDir();
    await cli(["host", "add", "sim-1"], testEnv(dir));
    await cli(["host", "add", "sim-2"], testEnv(dir));
    const text = await cli(["host", "list"], testEnv(dir));
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/sim-1\toffline/);
    const json = await cli(["host", "list", "--json"], testEnv(dir));
    expect((JSON.parse(json.stdout) as { hosts: { id: string }[] }).hosts.map((h) => h.id)).toEqual(["sim-1", "sim-2"]);
  });

  it("migrate creates the database and reports the schema version", async () => {
    const dir = makeTempDir();
    const out = await cli(["migrate", "--json"], testEnv(dir));
    expect(out.code).toBe(0);
    expect(JSON.parse(out.stdout)).toEqual({ schema_version: Math.max(...MIGRATIONS.map((m) => m.version)) });
  });

  it("an unknown command prints usage on stderr and exits 2", async () => {
    const out = await cli(["frobnicate"], testEnv(makeTempDir()));
    expect(out.code).toBe(2);
    expect(out.stdout).toBe("");
    expect(out.stderr).toContain("Unknown command 'frobnicate'");
    expect(out.stderr).toContain("Usage: labrig-hub");
  });

  it("serve starts a hub that answers /api/health", async () => {
    // cli() stops the served hub; start it by hand here to talk to it first.
    const { runCli } = await import("../src/cli/commands.js");
    const result = await runCli(["serve"], { stdout: () => undefined, stderr: () => undefined, env: testEnv(makeTempDir()) });
    expect(result.exitCode).toBe(0);
    const served = result.served;
    if (!served) throw new Error("serve returned no running hub");
    try {
      const res = await fetch(`${served.address.url}/api/health`);
      expect(res.status).toBe(200);
      expect(((await res.json()) as { status: string }).status).toBe("ok");
    } finally {
      await served.hub.stop();
    }
  });
});

describe("config", () => {
  it("has the documented defaults", () => {
    const c = loadConfig({}, "/srv/labrig");
    expect(c).toMatchObject({
      port: 8080,
      bind: "0.0.0.0",
      dataDir: "/srv/labrig/data",
      dbPath: "/srv/labrig/data/labrig.db",
      logLevel: "info",
      heartbeatIntervalMs: 5000,
      missedHeartbeats: 3,
      bodyLimit: "256kb",
      actionTimeoutMs: 10000,
    });
  });

  it("names every bad variable at once", () => {
    let message = "";
    try {
      loadConfig({ PORT: "eighty", LABRIG_MISSED_HEARTBEATS: "0", LOG_LEVEL: "loud" });
    } catch (err) {
      message = (err as Error).message;
    }
    for (const name of ["PORT", "LABRIG_MISSED_HEARTBEATS", "LOG_LEVEL"]) expect(message).toContain(name);
  });

  it("allows PORT=0 for any free port", () => {
    expect(loadConfig({ PORT: "0" }).port).toBe(0);
  });

  it("the CLI reports a bad variable and exits 1", async () => {
    const out = await cli(["host", "list"], { ...testEnv(makeTempDir()), LABRIG_HEARTBEAT_MS: "soon" });
    expect(out.code).toBe(1);
    expect(out.stderr).toContain("LABRIG_HEARTBEAT_MS");
  });
});

describe("usage text", () => {
  it("names every environment variable the hub reads", async () => {
    const { USAGE } = await import("../src/cli/commands.js");
    const { readFileSync } = await import("node:fs");
    const source = readFileSync(new URL("../src/config.ts", import.meta.url), "utf8");
    const schemaBlock = source.slice(source.indexOf("const EnvSchema"), source.indexOf("});", source.indexOf("const EnvSchema")));
    const names = [...schemaBlock.matchAll(/^\s{2}([A-Z][A-Z0-9_]+):/gm)].map((m) => m[1]!);
    expect(names.length).toBeGreaterThan(30);
    for (const name of names) expect(USAGE, name).toContain(name);
  });
});
