import { spawn, spawnSync } from "node:child_process";
import { chmodSync, chownSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { parse } from "yaml";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../src/config.js";
import { listGpioChips } from "../src/devices/gpio/chips.js";
import { gpioInventory } from "../src/devices/gpio/inventory.js";
import { listSerialPorts } from "../src/devices/serial-ports.js";
import { runDoctor, type DoctorReport } from "../src/doctor.js";
import { renderInitConfig } from "../src/init.js";
import { findSocat } from "../src/sim/pty.js";
import { FakeGpioKernel } from "./fake-gpio-kernel.js";
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

describe("doctor and init with GPIO character devices (a stand-in kernel answers for the chips)", () => {
  function pi4Bench(memberOfGpio: boolean): { dir: string; dev: string; remove: () => void; kernel: FakeGpioKernel; groupFile: string; passwdFile: string } {
    const temp = makeTempDir();
    const dev = join(temp.dir, "dev");
    mkdirSync(dev);
    const kernel = new FakeGpioKernel();
    const names = Array.from({ length: 58 }, (_, i) => (i === 0 ? "ID_SDA" : i === 1 ? "ID_SCL" : i < 28 ? `GPIO${i}` : `SOC_${i}`));
    kernel.addChip({ path: join(dev, "gpiochip0"), label: "pinctrl-bcm2711", names, kernelUsed: { 17: "led0" } });
    kernel.addChip({ path: join(dev, "gpiochip1"), label: "raspberrypi-exp-gpio", names: ["BT_ON", "WL_ON", "PWR_LED_OFF", "GLOBAL_RESET", "VDD_SD_IO_SEL", "CAM_GPIO", "SD_PWR_ON", "SD_OC_N"] });
    // Raspberry Pi OS: root:gpio 0660 (its udev rule). The expander here as plain Debian leaves it: root:root 0600.
    writeFileSync(join(dev, "gpiochip0"), "");
    chownSync(join(dev, "gpiochip0"), 0, 997);
    chmodSync(join(dev, "gpiochip0"), 0o660);
    writeFileSync(join(dev, "gpiochip1"), "");
    chmodSync(join(dev, "gpiochip1"), 0o600);
    const groupFile = join(temp.dir, "group");
    writeFileSync(groupFile, `root:x:0:\ngpio:x:997:${memberOfGpio ? "labrig" : ""}\ndialout:x:20:labrig\nvideo:x:44:labrig\nlabrig:x:999:\n`);
    const passwdFile = join(temp.dir, "passwd");
    writeFileSync(passwdFile, "root:x:0:0::/root:/bin/sh\nlabrig:x:999:999::/var/lib/labrig:/usr/sbin/nologin\n");
    return { dir: temp.dir, dev, remove: temp.remove, kernel, groupFile, passwdFile };
  }

  it("lists chips with label, line count and line names, says which driver and why, and checks the user may open each chip", async () => {
    const b = pi4Bench(false);
    try {
      const opts = { configPath: join(b.dir, "absent.yaml"), user: "labrig", devDir: b.dev, sysfsRoot: join(b.dir, "no-sysfs"), groupFile: b.groupFile, passwdFile: b.passwdFile, gpioUapi: b.kernel };
      const report = await runDoctor(opts);
      const check = (name: string) => report.checks.find((c) => c.name === name);
      expect(report.gpio_driver).toEqual({ driver: "chardev", reason: `auto: found ${join(b.dev, "gpiochip0")}, ${join(b.dev, "gpiochip1")} (the GPIO character device)` });
      expect(check("gpio driver")).toMatchObject({ status: "ok", summary: expect.stringContaining("chardev (auto: found") });
      expect(check("gpio gpiochip0")).toMatchObject({ status: "ok", summary: "pinctrl-bcm2711, 58 lines, GPIO2…GPIO27; in use: GPIO17 (led0)" });
      expect(check("gpio gpiochip1")).toMatchObject({ status: "ok", summary: "raspberrypi-exp-gpio, 8 lines" });
      expect(report.gpio_chardev.map((c) => [c.label, c.lines, c.line_info[22]?.name])).toEqual([
        ["pinctrl-bcm2711", 58, "GPIO22"],
        ["raspberrypi-exp-gpio", 8, undefined],
      ]);
      expect(check(`access ${join(b.dev, "gpiochip0")}`)).toMatchObject({ status: "fail", summary: "labrig cannot open it for writing (mode 660, group gpio)", fix: "sudo usermod -aG gpio labrig (then restart the service)" });
      expect(check(`access ${join(b.dev, "gpiochip1")}`)).toMatchObject({ status: "fail", fix: expect.stringContaining('SUBSYSTEM=="gpio", KERNEL=="gpiochip*", GROUP="gpio", MODE="0660"') });
      expect(check("group gpio")).toMatchObject({ status: "fail" });
      expect(report.ok).toBe(false);

      const member = pi4Bench(true);
      try {
        const ok = await runDoctor({ ...opts, devDir: member.dev, groupFile: member.groupFile, passwdFile: member.passwdFile, gpioUapi: member.kernel });
        expect(ok.checks.find((c) => c.name === `access ${join(member.dev, "gpiochip0")}`)).toMatchObject({ status: "ok", summary: "labrig can open it (mode 660, group gpio)" });
      } finally {
        member.remove();
      }
    } finally {
      b.remove();
    }
  });

  it("fails the driver check when real devices have lines but nothing physical would be switched", async () => {
    const temp = makeTempDir();
    try {
      const path = join(temp.dir, "agent.yaml");
      writeFileSync(path, `host: pi1\nhub: { url: "http://127.0.0.1:9", token: t }\ngpio: { dev_dir: ${JSON.stringify(join(temp.dir, "dev"))}, sysfs_root: ${JSON.stringify(join(temp.dir, "gpio"))} }\ndevices: [{ id: d, resources: [{ name: power, kind: power, line: 17 }] }]\n`);
      const report = await runDoctor({ configPath: path, devDir: join(temp.dir, "dev"), hubTimeoutMs: 200 });
      expect(report.checks.find((c) => c.name === "gpio driver")).toMatchObject({ status: "fail", summary: expect.stringContaining("memory (auto: no gpiochip devices") });
    } finally {
      temp.remove();
    }
  });

  it("init offers lines by their names, flags lines in use, and lists the free ones; the result still loads when uncommented", () => {
    const b = pi4Bench(true);
    try {
      const chardevChips = gpioInventory({ devDir: b.dev, sysfsRoot: join(b.dir, "none"), uapi: b.kernel }).chardev;
      writeFileSync(join(b.dir, "token"), "t\n");
      const text = renderInitConfig({
        host: "pi4",
        tokenFile: join(b.dir, "token"),
        dataDir: join(b.dir, "data"),
        ports: [{ path: "/dev/ttyUSB0", byId: [] }],
        chips: [],
        chardevChips,
        gpioDriver: { driver: "chardev", reason: "auto: found /dev/gpiochip0" },
      });
      expect(text).toContain("  driver: auto   # chardev here: auto: found /dev/gpiochip0");
      expect(text).toContain('chip: "pinctrl-bcm2711"');
      expect(text).toContain("#   line: 17 # GPIO17, in use by led0: pick another");
      expect(text).toContain("#   line: 27 # GPIO27\n");
      expect(text).toMatch(/^# Free lines on pinctrl-bcm2711 \(name=line\): GPIO2=2 GPIO3=3 .* GPIO16=16 GPIO18=18 .* GPIO27=27$/m);
      const path = join(b.dir, "agent.yaml");
      writeFileSync(path, text.replace(/^ {6}# {1,3}(- name|kind|chip|line|active_low|cycle_off_ms|direction)/gm, (m) => m.replace("# ", "")));
      expect(loadConfig(path, {}).devices[0]!.resources.map((r) => (r.kind === "power" || r.kind === "gpio" ? `${r.name}@${r.chip}:${r.line}` : r.name))).toEqual(["console", "power@pinctrl-bcm2711:17", "reset@pinctrl-bcm2711:27"]);
    } finally {
      b.remove();
    }
  });
});
