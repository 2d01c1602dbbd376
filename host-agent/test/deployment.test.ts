import { spawnSync } from "node:child_process";
import { copyFileSync, existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { makeTempDir } from "./helpers.js";

const ROOT = new URL("../../", import.meta.url).pathname;
const UNIT = join(ROOT, "systemd/labrig-agent.service");
const INSTALL = join(ROOT, "deployment/install-agent.sh");
const DEPS = join(ROOT, "deployment/install-deps.sh");

describe("systemd/labrig-agent.service", () => {
  it("passes systemd-analyze verify and carries the required settings", () => {
    if (spawnSync("systemd-analyze", ["--version"]).error) throw new Error("systemd-analyze is missing; install it: apt-get install systemd");
    const unit = readFileSync(UNIT, "utf8");
    for (const line of [
      "Restart=on-failure",
      "RestartSec=5",
      "User=labrig",
      "SupplementaryGroups=dialout gpio video",
      "NoNewPrivileges=yes",
      "ProtectSystem=strict",
      "PrivateTmp=yes",
      "ProtectHome=yes",
      "StateDirectory=labrig",
      "ReadWritePaths=/var/lib/labrig",
      "Environment=LABRIG_AGENT_CONFIG=/etc/labrig/agent.yaml",
      "ExecStart=/usr/bin/node /opt/labrig/host-agent/dist/cli.js run",
    ]) {
      expect(unit.split("\n")).toContain(line);
    }
    // These would install a device allow-list or make /sys read-only: no ttys, no video, no GPIO.
    for (const key of ["PrivateDevices", "DevicePolicy", "DeviceAllow", "ProtectClock", "ProtectKernelTunables", "MemoryDenyWriteExecute"]) {
      expect(unit).not.toMatch(new RegExp(`^${key}=`, "m"));
    }
    // verify checks that ExecStart's program exists; it does not check the script argument or the user.
    // Where this machine has no /usr/bin/node, a copy names this machine's node instead (nothing else changes).
    const temp = makeTempDir();
    try {
      const copy = join(temp.dir, "labrig-agent.service");
      if (existsSync("/usr/bin/node")) copyFileSync(UNIT, copy);
      else writeFileSync(copy, unit.replace("ExecStart=/usr/bin/node ", `ExecStart=${process.execPath} `));
      const r = spawnSync("systemd-analyze", ["verify", copy], { encoding: "utf8", cwd: temp.dir });
      expect(r.stderr).toBe("");
      expect(r.status).toBe(0);
      // And verify really looks: an unknown key is reported.
      writeFileSync(copy, readFileSync(copy, "utf8").replace("[Service]\n", "[Service]\nRestartt=always\n"));
      const bad = spawnSync("systemd-analyze", ["verify", copy], { encoding: "utf8", cwd: temp.dir });
      expect(bad.stderr).toContain("Unknown key 'Restartt'");
    } finally {
      temp.remove();
    }
  });
});

describe("deployment/install-agent.sh", () => {
  const watched = ["/opt/labrig", "/opt/labrig.new", "/etc/labrig", "/var/lib/labrig", "/usr/local/bin/labrig-agent", "/etc/systemd/system/labrig-agent.service"];
  const snapshot = (): string =>
    JSON.stringify({
      exists: watched.map((p) => [p, existsSync(p)]),
      passwd: readFileSync("/etc/passwd", "utf8"),
      group: readFileSync("/etc/group", "utf8"),
    });

  it("is valid bash", () => {
    const r = spawnSync("bash", ["-n", INSTALL], { encoding: "utf8" });
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
  });

  it("--dry-run twice prints the same plan and changes nothing", () => {
    if (!existsSync(join(ROOT, "host-agent/dist/cli.js"))) throw new Error("host-agent is not built; run: cd /work/main && npx tsc -b");
    const before = snapshot();
    const runs = [1, 2].map(() => spawnSync("bash", [INSTALL, "--dry-run"], { encoding: "utf8", timeout: 60_000 }));
    for (const r of runs) {
      expect(r.stderr).toBe("");
      expect(r.status).toBe(0);
    }
    expect(runs[1]!.stdout).toBe(runs[0]!.stdout);
    expect(snapshot()).toBe(before);
    const out = runs[0]!.stdout;
    expect(out).toMatch(/^install-agent: Node\.js \d+\.\d+\.\d+ at /m);
    // Nothing was executed: every change is a "would run" line.
    expect(out).not.toMatch(/^\+ /m);
    expect(out).toContain("would run: npm ci --prefix /opt/labrig.new --omit=dev --no-audit --no-fund -w host-agent -w shared");
    expect(out).toMatch(/would run: systemctl enable labrig-agent\.service/);
    if (!existsSync("/etc/labrig/agent.yaml")) expect(out).toContain("would run: /usr/local/bin/labrig-agent init --out /etc/labrig/agent.yaml");
    if (!existsSync("/etc/labrig/token")) expect(out).toContain("next: put this host's enrollment token");
    if (!readFileSync("/etc/group", "utf8").match(/^gpio:/m)) expect(out).toContain("would run: groupadd --system gpio");
    const unknown = spawnSync("bash", [INSTALL, "--frobnicate"], { encoding: "utf8" });
    expect(unknown.status).toBe(2);
  });
});

describe("deployment/install-deps.sh", () => {
  it("--dev installs every Debian package the agent's tests ask for in their failure messages", () => {
    const script = readFileSync(DEPS, "utf8");
    const base = /^packages=\(([^)]*)\)/m.exec(script)?.[1]?.split(/\s+/) ?? [];
    const dev = /--dev\) packages\+=\(([^)]*)\)/.exec(script)?.[1]?.split(/\s+/) ?? [];
    const offered = new Set([...base, ...dev].filter((p) => p !== ""));
    // The hints live in the tests and in the agent's own messages (SOCAT_INSTALL_HINT, FFMPEG_INSTALL_HINT).
    const dirs = ["host-agent/test", "host-agent/src", "host-agent/src/capture", "host-agent/src/sim"].map((d) => join(ROOT, d));
    const asked = new Set<string>();
    for (const dir of dirs) {
      for (const name of readdirSync(dir).filter((n) => n.endsWith(".ts"))) {
        for (const m of readFileSync(join(dir, name), "utf8").matchAll(/apt-get install ([a-z0-9][a-z0-9.+-]*)/g)) asked.add(m[1] as string);
      }
    }
    expect([...asked].sort()).toEqual(expect.arrayContaining(["ffmpeg", "socat", "systemd", "util-linux"]));
    expect([...asked].filter((p) => !offered.has(p))).toEqual([]);
    const r = spawnSync("bash", [DEPS, "--frobnicate"], { encoding: "utf8" });
    expect(r.status).toBe(2);
  });
});
