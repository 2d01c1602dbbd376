import { spawn, spawnSync } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { makeTempDir, requireSocat, until } from "./helpers.js";

const CLI = new URL("../dist/cli.js", import.meta.url).pathname;
const VERSION = (JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string }).version;

function requireBuilt(): void {
  if (!existsSync(CLI)) throw new Error("host-agent is not built; run: cd /work/main && npx tsc -b");
}

describe("labrig-agent CLI", () => {
  it("prints its version", () => {
    requireBuilt();
    const r = spawnSync(process.execPath, [CLI, "--version"], { encoding: "utf8" });
    expect(r.status).toBe(0);
    expect(r.stdout.trim()).toBe(VERSION);
  });

  it("exits 2 and lists every config problem on stderr", () => {
    requireBuilt();
    const temp = makeTempDir();
    try {
      const path = join(temp.dir, "agent.yaml");
      writeFileSync(path, "host: BAD\nhub: { url: http://x:1 }\ndevices: [{ id: d, resources: [{ name: c, kind: serial }] }]\n");
      const r = spawnSync(process.execPath, [CLI, "run", "--config", path], { encoding: "utf8", env: { ...process.env, LABRIG_HUB_TOKEN: "" } });
      expect(r.status).toBe(2);
      expect(r.stderr).toContain(path);
      expect(r.stderr).toMatch(/- host: must be/);
      expect(r.stderr).toMatch(/- hub\.token: missing/);
      expect(r.stderr).toMatch(/- devices\[0\]\.resources\[0\]\.path: required/);
      const usage = spawnSync(process.execPath, [CLI, "--frobnicate"], { encoding: "utf8" });
      expect(usage.status).toBe(2);
      expect(usage.stderr).toContain("Usage: labrig-agent");
    } finally {
      temp.remove();
    }
  });

  it("runs a simulated rig from LABRIG_AGENT_CONFIG and stops cleanly on SIGTERM with exit 0", async () => {
    requireBuilt();
    requireSocat();
    const temp = makeTempDir();
    try {
      const path = join(temp.dir, "agent.yaml");
      writeFileSync(
        path,
        [
          "host: sim-1",
          "hub: { url: 'http://127.0.0.1:9', token: lrh_cli_secret }",
          "devices:",
          "  - id: dut1",
          "    simulated: true",
          "    resources:",
          "      - { name: console, kind: serial, path: ./dut1-console }",
          "      - { name: power, kind: power, line: 17, initial: 1 }",
        ].join("\n"),
      );
      const child = spawn(process.execPath, [CLI], { env: { ...process.env, LABRIG_AGENT_CONFIG: path, LOG_LEVEL: "info" }, stdio: ["ignore", "pipe", "pipe"] });
      let out = "";
      child.stdout.on("data", (d: Buffer) => (out += d.toString()));
      child.stderr.on("data", (d: Buffer) => (out += d.toString()));
      const exit = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
      try {
        await until(() => out.includes('"msg":"agent started"'), "the agent to start", 10_000);
        expect(existsSync(join(temp.dir, "dut1-console"))).toBe(true);
      } finally {
        child.kill("SIGTERM");
      }
      expect(await exit).toBe(0);
      expect(out).toContain('"msg":"agent stopped"');
      expect(out).not.toContain("lrh_cli_secret");
      // socat was stopped with the agent and took its link with it.
      expect(existsSync(join(temp.dir, "dut1-console"))).toBe(false);
    } finally {
      temp.remove();
    }
  });
});
