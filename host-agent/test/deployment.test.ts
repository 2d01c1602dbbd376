import { spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { makeTempDir } from "./helpers.js";

const ROOT = new URL("../../", import.meta.url).pathname;
const UNIT = join(ROOT, "systemd/labrig-agent.service");
const INSTALL = join(ROOT, "deployment/install-agent.sh");
const DEPS = join(ROOT, "deployment/install-deps.sh");

const SYSFS_DROPIN = join(ROOT, "systemd/labrig-agent.service.d/gpio-sysfs.conf");

function requireSystemdAnalyze(): void {
  if (spawnSync("systemd-analyze", ["--version"]).error) throw new Error("systemd-analyze is missing; install it: apt-get install systemd");
}

/** A copy of the unit (and optionally a drop-in) in a temp dir; where this machine has no /usr/bin/node, the copy names this machine's node (nothing else changes). */
function unitCopy(dir: string, dropIn?: string): string {
  const unit = readFileSync(UNIT, "utf8");
  mkdirSync(dir, { recursive: true });
  const copy = join(dir, "labrig-agent.service");
  if (existsSync("/usr/bin/node")) copyFileSync(UNIT, copy);
  else writeFileSync(copy, unit.replace("ExecStart=/usr/bin/node ", `ExecStart=${process.execPath} `));
  if (dropIn) {
    mkdirSync(join(dir, "labrig-agent.service.d"), { recursive: true });
    copyFileSync(dropIn, join(dir, "labrig-agent.service.d", "gpio-sysfs.conf"));
  }
  return copy;
}

/** The overall exposure `systemd-analyze security --offline=yes` gives a unit file (0 = locked down, 10 = exposed). */
function securityScore(unitPath: string, cwd: string): { score: number; table: string } {
  const r = spawnSync("systemd-analyze", ["security", "--offline=yes", "--no-pager", unitPath], { encoding: "utf8", cwd });
  const m = /Overall exposure level for \S+: (\d+(?:\.\d+)?)/.exec(r.stdout);
  if (!m) throw new Error(`systemd-analyze security printed no score:\n${r.stdout}\n${r.stderr}`);
  return { score: Number(m[1]), table: r.stdout };
}

/** /proc/devices of a Raspberry Pi 4 on Bookworm (6.6) with a USB serial adapter, a CDC-ACM board and a capture dongle plugged in. */
const PI_PROC_DEVICES = `Character devices:
  1 mem
  4 /dev/vc/0
  4 tty
  4 ttyS
  5 /dev/tty
  5 /dev/console
  5 /dev/ptmx
  7 vcs
 10 misc
 13 input
 29 fb
 81 video4linux
 89 i2c
116 alsa
128 ptm
136 pts
153 spi
166 ttyACM
180 usb
188 ttyUSB
189 usb_device
204 ttyAMA
226 drm
238 media
239 rpmb
240 uio
241 hidraw
242 vchiq
243 cec
244 bcm2835-gpiomem
245 rpivid-hevcmem
246 nvme-generic
247 nvme
248 bsg
249 watchdog
250 ptp
251 pps
252 lirc
253 rtc
254 gpiochip

Block devices:
  1 ramdisk
  7 loop
  8 sd
179 mmcblk
`;

describe("systemd/labrig-agent.service", () => {
  it("passes systemd-analyze verify and carries the required settings", () => {
    requireSystemdAnalyze();
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
      "DevicePolicy=closed",
      "ProtectKernelTunables=yes",
      "SystemCallFilter=@system-service",
    ]) {
      expect(unit.split("\n")).toContain(line);
    }
    // V8's JIT needs writable+executable memory; a private /dev would hide the serial ports.
    for (const key of ["PrivateDevices", "MemoryDenyWriteExecute"]) expect(unit).not.toMatch(new RegExp(`^${key}=`, "m"));
    // verify checks that ExecStart's program exists; it does not check the script argument or the user.
    const temp = makeTempDir();
    try {
      for (const dropIn of [undefined, SYSFS_DROPIN]) {
        const copy = unitCopy(join(temp.dir, dropIn ? "sysfs" : "plain"), dropIn);
        const r = spawnSync("systemd-analyze", ["verify", copy], { encoding: "utf8", cwd: temp.dir });
        expect(r.stderr).toBe("");
        expect(r.status).toBe(0);
      }
      // And verify really looks: an unknown key is reported.
      const copy = join(temp.dir, "plain", "labrig-agent.service");
      writeFileSync(copy, readFileSync(copy, "utf8").replace("[Service]\n", "[Service]\nRestartt=always\n"));
      const bad = spawnSync("systemd-analyze", ["verify", copy], { encoding: "utf8", cwd: temp.dir });
      expect(bad.stderr).toContain("Unknown key 'Restartt'");
    } finally {
      temp.remove();
    }
  });

  it("rates at most 2.5 in systemd-analyze security, also with the sysfs GPIO drop-in", () => {
    requireSystemdAnalyze();
    const temp = makeTempDir();
    try {
      for (const [name, dropIn] of [["labrig-agent.service", undefined], ["labrig-agent.service + gpio-sysfs.conf", SYSFS_DROPIN]] as const) {
        const dir = join(temp.dir, dropIn ? "sysfs" : "plain");
        const { score, table } = securityScore(unitCopy(dir, dropIn), dir);
        // Printed so the run's log shows the figure (and what is still exposed).
        console.log(`systemd-analyze security: ${name} exposure ${score} (limit 2.5)\n${table.split("\n").filter((l) => l.startsWith("✗")).join("\n")}`);
        expect(score, table).toBeLessThanOrEqual(2.5);
      }
    } finally {
      temp.remove();
    }
  });

  it("allows exactly the device groups the agent opens: UARTs and USB serial, pseudo-terminals, GPIO chips, V4L2 — no virtual consoles", () => {
    const unit = readFileSync(UNIT, "utf8");
    const allowed = [...unit.matchAll(/^DeviceAllow=(\S+) (\S+)$/gm)].map((m) => `${m[1]} ${m[2]}`);
    expect(allowed.sort()).toEqual(["/dev/ptmx rw", "char-gpiochip rw", "char-pts rw", "char-ttyACM rw", "char-ttyAMA rw", "char-ttyS rw", "char-ttyUSB rw", "char-video4linux rw"]);
    // Each char- group must be one a Pi's kernel registers (a typo would silently allow nothing).
    const groups = new Set(
      PI_PROC_DEVICES.split("Block devices:")[0]!
        .split("\n")
        .map((l) => /^\s*\d+ (\S+)$/.exec(l)?.[1])
        .filter((g): g is string => g !== undefined),
    );
    for (const entry of allowed.filter((a) => a.startsWith("char-"))) expect(groups, entry).toContain(entry.slice(5, entry.indexOf(" ")));
    expect(allowed).not.toContain("char-tty rw");
    const dropIn = readFileSync(SYSFS_DROPIN, "utf8");
    expect(dropIn.split("\n").filter((l) => /^[A-Za-z]+=/.test(l))).toEqual(["ProtectKernelTunables=no"]);
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
    // The GPIO access follows the driver the agent will use; here (no /dev/gpiochip*, no /sys/class/gpio) none is granted.
    if (!existsSync("/etc/labrig/agent.yaml") && !readdirSync("/dev").some((n) => n.startsWith("gpiochip")) && !existsSync("/sys/class/gpio")) {
      expect(out).toContain("install-agent: GPIO driver: memory (auto: no gpiochip devices in /dev");
      expect(out).not.toContain("gpio-sysfs.conf");
      expect(out).not.toContain("60-labrig-gpio.rules");
    }
    expect(out).toContain("would run: cp -a " + join(ROOT, "host-agent/native") + " /opt/labrig.new/host-agent/native");
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
    expect([...asked].sort()).toEqual(expect.arrayContaining(["ffmpeg", "socat", "systemd", "util-linux", "gcc", "linux-libc-dev"]));
    expect([...asked].filter((p) => !offered.has(p))).toEqual([]);
    const r = spawnSync("bash", [DEPS, "--frobnicate"], { encoding: "utf8" });
    expect(r.status).toBe(2);
  });
});
