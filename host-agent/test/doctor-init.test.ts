import { spawn, spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { parse } from "yaml";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../src/config.js";
import { listGpioChips } from "../src/devices/gpio/chips.js";
import { listSerialPorts } from "../src/devices/serial-ports.js";
import { runDoctor, type DoctorReport } from "../src/doctor.js";
import { renderInitConfig } from "../src/init.js";
import { findSocat } from "../src/sim/pty.js";
import { makeTempDir } from "./helpers.js";

const CLI = new URL("../dist/cli.js", import.meta.url).pathname;

function requireBuilt(): void {
  if (!existsSync(CLI)) throw new Error("host-agent is not built; run: cd /work/main && npx tsc -b");
}

function doctorJson(args: string[]): { status: number | null; report: DoctorReport } {
  const r = spawnSync(process.execPath, [CLI, "doctor", "--json", ...args], { encoding: "utf8", timeout: 30_000 });
  return { status: r.status, report: JSON.parse(r.stdout) as DoctorReport };
}

/** Runs the CLI without blocking this process's event loop (the hub stub below must answer meanwhile). */
function runCli(args: string[]): Promise<{ status: number | null; stdout: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ["ignore", "pipe", "inherit"] });
    let stdout = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.once("exit", (status) => resolve({ status, stdout }));
  });
}

/** Group facts read straight from /etc/group, independently of the doctor's code. */
function groupFacts(group: string): { exists: boolean; members: string[]; gid: number } {
  const line = readFileSync("/etc/group", "utf8")
    .split("\n")
    .find((l) => l.split(":")[0] === group);
  if (!line) return { exists: false, members: [], gid: -1 };
  const parts = line.split(":");
  return { exists: true, gid: Number(parts[2]), members: (parts[3] ?? "").split(",").filter(Boolean) };
}

describe("labrig-agent doctor on this machine", () => {
  it("reports what is here and what is missing, each with its fix, and exits 1 only when something failed", async () => {
    requireBuilt();
    const temp = makeTempDir();
    try {
      const { status, report } = doctorJson(["--config", join(temp.dir, "absent.yaml"), "--user", "nobody"]);
      const check = (name: string) => report.checks.find((c) => c.name === name);
      expect(report.user).toBe("nobody");
      expect(check("config")).toMatchObject({ status: "warn", fix: expect.stringContaining("labrig-agent init") });
      // No config, so no hub check.
      expect(check("hub")).toBeUndefined();

      const ffmpegHere = spawnSync("ffmpeg", ["-version"]).error === undefined;
      expect(check("ffmpeg")?.status).toBe(ffmpegHere ? "ok" : "warn");
      if (!ffmpegHere) expect(check("ffmpeg")?.fix).toBe("sudo apt-get install ffmpeg");
      expect(check("socat")?.status).toBe(findSocat() === null ? "warn" : "ok");

      const chips = listGpioChips("/sys/class/gpio");
      expect(report.gpio_chips).toEqual(chips);
      expect(check("gpio chips")?.status).toBe(chips.length > 0 ? "ok" : "warn");

      const ports = (await listSerialPorts()).ports;
      expect(report.serial_ports.map((p) => p.path)).toEqual(ports.map((p) => p.path));
      expect(check("serial ports")?.status).toBe(ports.length > 0 ? "ok" : "warn");

      const videoHere = existsSync("/dev") && readdirSync("/dev").some((n) => /^video\d+$/.test(n));
      expect(check("video devices")?.status).toBe(videoHere || existsSync("/dev/v4l/by-id") ? "ok" : "warn");

      const nobodyGid = Number(readFileSync("/etc/passwd", "utf8").split("\n").find((l) => l.startsWith("nobody:"))?.split(":")[3]);
      for (const g of ["dialout", "gpio", "video"]) {
        const facts = groupFacts(g);
        const c = check(`group ${g}`);
        if (!facts.exists) {
          expect(c).toMatchObject({ status: "warn", summary: expect.stringContaining("does not exist") });
        } else if (facts.members.includes("nobody") || facts.gid === nobodyGid) {
          expect(c?.status).toBe("ok");
        } else {
          expect(c).toMatchObject({ status: "fail", fix: `sudo usermod -aG ${g} nobody (then restart the service, or log in again)` });
        }
      }
      expect(status).toBe(report.checks.some((c) => c.status === "fail") ? 1 : 0);
      expect(report.ok).toBe(status === 0);

      // The table for people names the same checks.
      const human = spawnSync(process.execPath, [CLI, "doctor", "--config", join(temp.dir, "absent.yaml"), "--user", "nobody"], { encoding: "utf8" });
      expect(human.status).toBe(status);
      expect(human.stdout).toMatch(/^STATUS\s+CHECK\s+FINDING$/m);
      for (const c of report.checks) expect(human.stdout).toContain(c.name);
    } finally {
      temp.remove();
    }
  });

  it("asks the hub's /api/health when a config is there, and fails with the fix when it does not answer", async () => {
    requireBuilt();
    const temp = makeTempDir();
    const server = createServer((req, res) => {
      res.writeHead(req.url === "/api/health" ? 200 : 404, { "content-type": "application/json" });
      res.end('{"status":"ok"}');
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    try {
      const port = (server.address() as AddressInfo).port;
      writeFileSync(join(temp.dir, "token"), "lrh_doctor_secret\n");
      const config = (url: string) => `host: pi1\nhub: { url: "${url}", token_file: ./token }\ngpio: { driver: memory }\n`;
      writeFileSync(join(temp.dir, "up.yaml"), config(`http://127.0.0.1:${port}`));
      const up = await runCli(["doctor", "--json", "--config", join(temp.dir, "up.yaml")]);
      const upReport = JSON.parse(up.stdout) as DoctorReport;
      expect(upReport.checks.find((c) => c.name === "config")?.status).toBe("ok");
      expect(upReport.checks.find((c) => c.name === "hub")).toMatchObject({ status: "ok", summary: expect.stringContaining("/api/health answered 200") });
      expect(up.stdout).not.toContain("lrh_doctor_secret");

      server.close();
      const down = await runCli(["doctor", "--json", "--config", join(temp.dir, "up.yaml")]);
      expect(down.status).toBe(1);
      expect((JSON.parse(down.stdout) as DoctorReport).checks.find((c) => c.name === "hub")).toMatchObject({ status: "fail", fix: expect.stringContaining("curl") });
    } finally {
      server.close();
      temp.remove();
    }
  });
});

describe("doctor and the configured ffmpeg", () => {
  it("checks the ffmpeg the config names (ffmpeg_path), not the one on PATH, and fails when video needs it", async () => {
    const temp = makeTempDir();
    try {
      const missing = join(temp.dir, "opt", "ffmpeg");
      const path = join(temp.dir, "agent.yaml");
      writeFileSync(
        path,
        [
          "host: pi1",
          "hub: { url: 'http://127.0.0.1:9', token: t }",
          `ffmpeg_path: ${JSON.stringify(missing)}`,
          "gpio: { driver: memory }",
          "devices: [{ id: d, resources: [{ name: cam, kind: video, source: test-pattern }] }]",
        ].join("\n"),
      );
      const report = await runDoctor({ configPath: path, devDir: join(temp.dir, "dev"), sysfsRoot: join(temp.dir, "gpio"), hubTimeoutMs: 500 });
      expect(report.checks.find((c) => c.name === "ffmpeg")).toMatchObject({ status: "fail", summary: `${missing} not found (needed for video capture)` });
    } finally {
      temp.remove();
    }
  });
});

describe("labrig-agent init", () => {
  it("writes a starter config that loads once its token file exists, and refuses to overwrite without --force", () => {
    requireBuilt();
    const temp = makeTempDir();
    try {
      const out = join(temp.dir, "etc", "agent.yaml");
      const first = spawnSync(process.execPath, [CLI, "init", "--out", out, "--host", "pi-test", "--hub-url", "http://127.0.0.1:8080"], { encoding: "utf8" });
      expect(first.status).toBe(0);
      expect(first.stdout).toContain(`Wrote ${out}`);
      const text = readFileSync(out, "utf8");
      expect((parse(text) as { hub: { token_file: string } }).hub.token_file).toBe("/etc/labrig/token");

      const again = spawnSync(process.execPath, [CLI, "init", "--out", out, "--host", "other"], { encoding: "utf8" });
      expect(again.status).toBe(1);
      expect(again.stderr).toMatch(/already exists.*--force/);
      expect(readFileSync(out, "utf8")).toBe(text);
      expect(spawnSync(process.execPath, [CLI, "init", "--out", out, "--host", "other", "--force"]).status).toBe(0);
      expect(readFileSync(out, "utf8")).toContain('host: "other"');

      // The token lives in /etc/labrig/token on a Pi; here the same file points at a token in the temp dir.
      writeFileSync(join(temp.dir, "token"), "lrh_init\n");
      writeFileSync(out, readFileSync(out, "utf8").replace('"/etc/labrig/token"', JSON.stringify(join(temp.dir, "token"))));
      const loaded = loadConfig(out, {});
      expect(loaded.host).toBe("other");
      expect(loaded.hub.token).toBe("lrh_init");
    } finally {
      temp.remove();
    }
  });

  it("makes one device per serial port (by-id path), and its commented power/reset examples load when uncommented", () => {
    const temp = makeTempDir();
    try {
      writeFileSync(join(temp.dir, "token"), "t\n");
      const text = renderInitConfig({
        host: "pi-rack1",
        hubUrl: "http://hub.local:8080",
        tokenFile: join(temp.dir, "token"),
        dataDir: join(temp.dir, "data"),
        ports: [
          { path: "/dev/ttyUSB0", byId: ["/dev/serial/by-id/usb-FTDI_FT232R_USB_UART_A50285BI-if00-port0"], manufacturer: "FTDI" },
          { path: "/dev/ttyACM0", byId: [] },
        ],
        chips: [
          { name: "gpiochip512", label: "gpio-brcmstb@107d508500", base: 512, ngpio: 32 },
          { name: "gpiochip571", label: "pinctrl-rp1", base: 571, ngpio: 54 },
        ],
      });
      const path = join(temp.dir, "agent.yaml");
      writeFileSync(path, text);
      const plain = loadConfig(path, {});
      expect(plain.devices.map((d) => [d.id, d.resources.map((r) => (r.kind === "serial" ? r.path : r.name))])).toEqual([
        ["dut1", ["/dev/serial/by-id/usb-FTDI_FT232R_USB_UART_A50285BI-if00-port0"]],
        ["dut2", ["/dev/ttyACM0"]],
      ]);
      expect(text).toContain('chip: "pinctrl-rp1"');
      const uncommented = text.replace(/^ {6}# {1,3}(- name|kind|chip|line|active_low|cycle_off_ms|direction)/gm, (m) => m.replace("# ", ""));
      writeFileSync(path, uncommented);
      const full = loadConfig(path, {});
      expect(full.devices[0]!.resources.map((r) => `${r.name}:${r.kind}`)).toEqual(["console:serial", "power:power", "reset:gpio"]);
      expect(full.devices[1]!.resources.map((r) => (r.kind === "serial" ? r.name : `${r.name}@${r.kind === "video" ? "" : r.line}`))).toEqual(["console", "power@22", "reset@23"]);
    } finally {
      temp.remove();
    }
  });
});
