import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, readlinkSync, statSync } from "node:fs";
import { get as httpGet } from "node:http";
import { get as httpsGet } from "node:https";
import { userInfo } from "node:os";
import { join, resolve } from "node:path";
import { findExecutable } from "./capture/ffmpeg-source.js";
import { ConfigError, loadConfig, type AgentConfig } from "./config.js";
import type { GpioChip } from "./devices/gpio/chips.js";
import { chooseGpioDriver, type GpioDriverChoice } from "./devices/gpio/driver-choice.js";
import { gpioInventory, type ChardevChipReport } from "./devices/gpio/inventory.js";
import type { GpioUapi } from "./devices/gpio/uapi.js";
import { listSerialPorts, type SerialPortInfo } from "./devices/serial-ports.js";

export type CheckStatus = "ok" | "warn" | "fail";

/** One line of the doctor's report: what was checked, how it went, and the exact fix when it did not go well. */
export interface DoctorCheck {
  name: string;
  status: CheckStatus;
  summary: string;
  fix?: string;
}

export interface VideoDevice {
  path: string;
  byId: string[];
}

export interface DoctorReport {
  ok: boolean;
  user: string;
  config_path: string;
  checks: DoctorCheck[];
  serial_ports: SerialPortInfo[];
  /** Which GPIO driver the agent will use with this config, and why. */
  gpio_driver: GpioDriverChoice;
  /** Chips through the character device, each with its lines (names, consumers). */
  gpio_chardev: ChardevChipReport[];
  /** Chips in the sysfs tree (label, base). */
  gpio_chips: GpioChip[];
  video_devices: VideoDevice[];
}

export interface DoctorOptions {
  /** Agent config to check against; a missing file is a warning (doctor also runs before init). */
  configPath: string;
  /** The service user whose groups are checked; default: the current user. */
  user?: string;
  /** Overridable for tests; defaults are the real system paths. */
  devDir?: string;
  sysfsRoot?: string;
  /** The kernel's GPIO interface; default: the native addon. */
  gpioUapi?: GpioUapi;
  groupFile?: string;
  passwdFile?: string;
  env?: NodeJS.ProcessEnv;
  hubTimeoutMs?: number;
}

/** The groups the agent's user needs: serial adapters, GPIO (character devices and sysfs), V4L2 capture. */
export const SERVICE_GROUPS = ["dialout", "gpio", "video"] as const;

const MIN_NODE = [20, 19] as const;

interface GroupEntry {
  name: string;
  gid: number;
  members: string[];
}

function readGroups(file: string): GroupEntry[] {
  return readFileSync(file, "utf8")
    .split("\n")
    .filter((l) => l.trim() !== "" && !l.startsWith("#"))
    .map((l) => {
      const [name = "", , gid = "", members = ""] = l.split(":");
      return { name, gid: Number(gid), members: members.split(",").filter((m) => m !== "") };
    });
}

function readUser(file: string, user: string): { uid: number; gid: number } | null {
  for (const l of readFileSync(file, "utf8").split("\n")) {
    const [name, , uid, gid] = l.split(":");
    if (name === user) return { uid: Number(uid), gid: Number(gid) };
  }
  return null;
}

function listVideoDevices(devDir: string): VideoDevice[] {
  const nodes = safeReaddir(devDir)
    .filter((n) => /^video\d+$/.test(n))
    .map((n) => join(devDir, n));
  const byIdDir = join(devDir, "v4l", "by-id");
  const devices = new Map<string, VideoDevice>(nodes.map((p) => [p, { path: p, byId: [] }]));
  for (const name of safeReaddir(byIdDir).sort()) {
    const link = join(byIdDir, name);
    let target = link;
    try {
      // udev's links are relative (../../video0): resolve them against the link's folder.
      target = resolve(byIdDir, readlinkSync(link));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EINVAL") throw err;
    }
    const d = devices.get(target) ?? { path: target, byId: [] };
    d.byId.push(link);
    devices.set(target, d);
  }
  return [...devices.values()].sort((a, b) => a.path.localeCompare(b.path));
}

function safeReaddir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENOTDIR") return [];
    throw err;
  }
}

function groupCheck(group: string, user: string, groups: GroupEntry[], account: { uid: number; gid: number } | null): DoctorCheck {
  const name = `group ${group}`;
  const entry = groups.find((g) => g.name === group);
  if (!entry) {
    const why = group === "gpio" ? " (normal off a Raspberry Pi; Raspberry Pi OS creates it)" : "";
    return { name, status: "warn", summary: `group '${group}' does not exist on this system${why}`, fix: `sudo groupadd --system ${group} && sudo usermod -aG ${group} ${user}` };
  }
  if (account === null) {
    return { name, status: "fail", summary: `user '${user}' does not exist`, fix: `sudo deployment/install-agent.sh (creates the labrig user), or pass --user NAME` };
  }
  const member = entry.members.includes(user) || account.gid === entry.gid;
  if (member) return { name, status: "ok", summary: `${user} is in ${group}` };
  if (account.uid === 0) return { name, status: "ok", summary: `${user} is not in ${group}, but root opens devices without it (the service runs as labrig, which needs it)` };
  return { name, status: "fail", summary: `${user} is not in ${group}`, fix: `sudo usermod -aG ${group} ${user} (then restart the service, or log in again)` };
}

function toolVersion(cmd: string, args: string[], env: NodeJS.ProcessEnv): { present: boolean; line: string; error?: string } {
  const r = spawnSync(cmd, args, { encoding: "utf8", env, timeout: 10_000 });
  if (r.error) return { present: false, line: "", error: r.error.message };
  const out = `${r.stdout}${r.stderr}`.split("\n").find((l) => l.trim() !== "") ?? "";
  return { present: true, line: out.trim() };
}

/** GET `target` with the CA the agent pins (hub.ca_file), as the hub link connects; resolves with the status. */
function getStatus(target: string, ca: string | undefined, timeoutMs: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const url = new URL(target);
    const get = url.protocol === "https:" ? httpsGet : httpGet;
    const req = get(url, { ...(ca ? { ca } : {}), timeout: timeoutMs }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on("timeout", () => req.destroy(Object.assign(new Error(`no answer within ${timeoutMs} ms`), { name: "TimeoutError" })));
    req.on("error", reject);
  });
}

async function hubCheck(hub: AgentConfig["hub"], timeoutMs: number): Promise<DoctorCheck> {
  const target = `${hub.url}/api/health`;
  const pinned = hub.ca_file ? ` with the CA in ${hub.ca_file}` : "";
  try {
    const status = await getStatus(target, hub.ca, timeoutMs);
    if (status >= 200 && status < 300) return { name: "hub", status: "ok", summary: `${target} answered ${status}${pinned}` };
    return { name: "hub", status: "fail", summary: `${target} answered ${status}`, fix: `check hub.url in the config; is this the labrig hub? (curl ${target})` };
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const why = e.name === "TimeoutError" ? e.message : (e.code ?? e.message);
    if (TLS_TRUST_ERRORS.has(e.code ?? "")) {
      const fix = hub.ca_file
        ? `the hub's certificate does not chain to ${hub.ca_file}: copy the hub's current certificate (hub.crt from deployment/nginx/make-cert.sh) there`
        : "pin the hub's certificate: copy hub.crt (deployment/nginx/make-cert.sh) to this Pi and set hub.ca_file to it";
      return { name: "hub", status: "fail", summary: `${target}: the TLS certificate is not trusted (${why})${pinned}`, fix };
    }
    return { name: "hub", status: "fail", summary: `${target} unreachable: ${why}`, fix: `start the hub, or fix hub.url in the config; test with: curl ${target}` };
  }
}

/** Node's codes for a certificate that does not chain to a trusted CA (self-signed, unknown issuer). */
const TLS_TRUST_ERRORS = new Set(["DEPTH_ZERO_SELF_SIGNED_CERT", "SELF_SIGNED_CERT_IN_CHAIN", "UNABLE_TO_VERIFY_LEAF_SIGNATURE", "UNABLE_TO_GET_ISSUER_CERT_LOCALLY", "CERT_UNTRUSTED"]);

/** Whether `account` may open `path` for reading and writing, from its mode, owner and group (as the kernel decides for a non-root user). */
function canReadWrite(path: string, account: { uid: number; gid: number } | null, userGroups: readonly number[]): { ok: boolean; mode: string; gid: number } {
  const st = statSync(path);
  const mode = (st.mode & 0o777).toString(8).padStart(3, "0");
  if (account === null) return { ok: false, mode, gid: st.gid };
  if (account.uid === 0) return { ok: true, mode, gid: st.gid };
  const bits = account.uid === st.uid ? (st.mode >> 6) & 7 : userGroups.includes(st.gid) ? (st.mode >> 3) & 7 : st.mode & 7;
  return { ok: (bits & 6) === 6, mode, gid: st.gid };
}

/** The rule install-agent.sh installs where the chips are not the gpio group's (Debian without Raspberry Pi OS's own rule). */
export const GPIO_UDEV_RULE = 'SUBSYSTEM=="gpio", KERNEL=="gpiochip*", GROUP="gpio", MODE="0660"';

/** GPIO findings: the driver that will be used and why, the chips (character device or sysfs) with their lines, and access to the chips. */
function gpioChecks(
  gpio: AgentConfig["gpio"],
  config: AgentConfig | null,
  user: string,
  groups: GroupEntry[],
  account: { uid: number; gid: number } | null,
  uapi: GpioUapi | undefined,
): { checks: DoctorCheck[]; driver: GpioDriverChoice; chardev: ChardevChipReport[]; sysfs: GpioChip[] } {
  const checks: DoctorCheck[] = [];
  const driver = chooseGpioDriver(gpio);
  const inventory = gpioInventory({ devDir: gpio.dev_dir, sysfsRoot: gpio.sysfs_root, ...(uapi ? { uapi } : {}) });
  const realLines = config?.devices.some((d) => !d.simulated && d.resources.some((r) => r.kind === "gpio" || r.kind === "power")) ?? false;
  checks.push(
    driver.driver === "memory" && realLines
      ? { name: "gpio driver", status: "fail", summary: `memory (${driver.reason}), but the config has power or gpio lines of real devices`, fix: "on a Pi, check that /dev/gpiochip* exists (ls -l /dev/gpiochip*); or mark the devices simulated" }
      : { name: "gpio driver", status: "ok", summary: `${driver.driver} (${driver.reason})` },
  );
  const chardevNeeded = driver.driver === "chardev";
  for (const chip of inventory.chardev) {
    const named = chip.line_info.filter((l) => /^GPIO\d+$/.test(l.name)).map((l) => l.name);
    const used = chip.line_info.filter((l) => l.used).map((l) => `${l.name || l.offset} (${l.consumer || "in use"})`);
    checks.push({
      name: `gpio ${chip.name}`,
      status: "ok",
      summary: `${chip.label}, ${chip.lines} lines${named.length > 0 ? `, ${named[0]}…${named[named.length - 1]}` : ""}${used.length > 0 ? `; in use: ${used.join(", ")}` : ""}`,
    });
  }
  for (const e of inventory.chardev_errors) checks.push({ name: `gpio ${e.path}`, status: chardevNeeded ? "fail" : "warn", summary: `cannot be read: ${e.error}`, fix: "see the message; a missing addon is built by npm ci" });
  const userGroups = account === null ? [] : [account.gid, ...groups.filter((g) => g.members.includes(user)).map((g) => g.gid)];
  for (const path of [...inventory.chardev.map((c) => c.path), ...inventory.chardev_errors.map((e) => e.path)]) {
    const access = canReadWrite(path, account, userGroups);
    const owner = groups.find((g) => g.gid === access.gid)?.name ?? String(access.gid);
    if (access.ok) {
      checks.push({ name: `access ${path}`, status: "ok", summary: `${user} can open it (mode ${access.mode}, group ${owner})` });
      continue;
    }
    const fix =
      owner === "gpio"
        ? `sudo usermod -aG gpio ${user} (then restart the service)`
        : `make the chips the gpio group's: echo '${GPIO_UDEV_RULE}' | sudo tee /etc/udev/rules.d/60-labrig-gpio.rules && sudo udevadm trigger --subsystem-match=gpio (install-agent.sh does this)`;
    checks.push({ name: `access ${path}`, status: chardevNeeded ? "fail" : "warn", summary: `${user} cannot open it for writing (mode ${access.mode}, group ${owner})`, fix });
  }
  if (inventory.chardev.length === 0 && inventory.chardev_errors.length === 0) {
    checks.push(
      inventory.sysfs.length > 0
        ? { name: "gpio chips", status: "ok", summary: `sysfs only: ${inventory.sysfs.map((c) => `${c.label} (base ${c.base}, ${c.ngpio} lines)`).join(", ")}` }
        : {
            name: "gpio chips",
            status: gpio.driver === "sysfs" || gpio.driver === "chardev" ? "fail" : "warn",
            summary: `no GPIO chips: no gpiochip devices in ${gpio.dev_dir}, nothing under ${gpio.sysfs_root}${inventory.sysfs_error ? ` (${inventory.sysfs_error})` : ""}`,
            fix: "normal off a Raspberry Pi (gpio.driver auto then keeps lines in memory); on a Pi, check ls -l /dev/gpiochip*",
          },
    );
  }
  return { checks, driver, chardev: inventory.chardev, sysfs: inventory.sysfs };
}

/** Runs every check. Never throws for a finding: each problem becomes a check with its fix. */
export async function runDoctor(options: DoctorOptions): Promise<DoctorReport> {
  const env = options.env ?? process.env;
  const devDir = options.devDir ?? "/dev";
  const user = options.user ?? userInfo().username;
  const checks: DoctorCheck[] = [];

  const [major = 0, minor = 0] = process.versions.node.split(".").map(Number);
  const nodeOk = major > MIN_NODE[0] || (major === MIN_NODE[0] && minor >= MIN_NODE[1]);
  checks.push(
    nodeOk
      ? { name: "node", status: "ok", summary: `Node.js ${process.versions.node}` }
      : { name: "node", status: "fail", summary: `Node.js ${process.versions.node} is older than ${MIN_NODE.join(".")}`, fix: "install Node.js 20.19 or newer (https://nodejs.org or NodeSource's Debian packages)" },
  );

  let config: AgentConfig | null = null;
  if (!existsSync(options.configPath)) {
    checks.push({ name: "config", status: "warn", summary: `no config at ${options.configPath}`, fix: `sudo labrig-agent init --out ${options.configPath}` });
  } else {
    try {
      config = loadConfig(options.configPath, env);
      checks.push({ name: "config", status: "ok", summary: `${options.configPath}: host ${config.host}, ${config.devices.length} device(s)` });
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      checks.push({ name: "config", status: "fail", summary: `${options.configPath} is not usable: ${err.issues.join("; ")}`, fix: "fix the keys named above, then run labrig-agent doctor again" });
    }
  }

  const serial = await listSerialPorts({ devDir });
  const portNote = serial.source === "scan" ? " (udevadm unavailable: read /dev directly)" : "";
  checks.push(
    serial.ports.length > 0
      ? { name: "serial ports", status: "ok", summary: `${serial.ports.length} found${portNote}: ${serial.ports.map((p) => p.byId[0] ?? p.path).join(", ")}` }
      : { name: "serial ports", status: "warn", summary: `none found${portNote}`, fix: "plug in the USB serial adapter and check `dmesg | tail`; on a Pi's own UART enable it with raspi-config (Interface Options → Serial Port)" },
  );
  for (const d of config?.devices ?? []) {
    for (const r of d.resources) {
      if (r.kind !== "serial" || d.simulated || existsSync(r.path)) continue;
      checks.push({ name: `port ${d.id}/${r.name}`, status: "fail", summary: `${r.path} does not exist`, fix: "plug the adapter in, or set path to one of the ports listed (prefer /dev/serial/by-id/…)" });
    }
  }

  const groupFile = options.groupFile ?? "/etc/group";
  const groups = readGroups(groupFile);
  const account = readUser(options.passwdFile ?? "/etc/passwd", user);

  const gpioSettings = { driver: config?.gpio.driver ?? "auto", dev_dir: config?.gpio.dev_dir ?? devDir, sysfs_root: options.sysfsRoot ?? config?.gpio.sysfs_root ?? "/sys/class/gpio" } as const;
  const gpio = gpioChecks(gpioSettings, config, user, groups, account, options.gpioUapi);
  checks.push(...gpio.checks);

  const video = listVideoDevices(devDir);
  checks.push(
    video.length > 0
      ? { name: "video devices", status: "ok", summary: video.map((v) => v.byId[0] ?? v.path).join(", ") }
      : { name: "video devices", status: "warn", summary: `no /dev/video* or /dev/v4l/by-id/*`, fix: "plug in the capture dongle and check `dmesg | tail` (only needed for video resources)" },
  );

  for (const g of SERVICE_GROUPS) checks.push(groupCheck(g, user, groups, account));

  const wantsVideo = config?.devices.some((d) => d.resources.some((r) => r.kind === "video")) ?? false;
  // The ffmpeg the agent will run (ffmpeg_path, or LABRIG_FFMPEG), not whichever is first on PATH.
  const ffmpegCmd = config?.ffmpeg_path ?? (env.LABRIG_FFMPEG || "ffmpeg");
  const ffmpeg = toolVersion(ffmpegCmd, ["-hide_banner", "-version"], env);
  checks.push(
    ffmpeg.present
      ? { name: "ffmpeg", status: "ok", summary: ffmpeg.line }
      : {
          name: "ffmpeg",
          status: wantsVideo ? "fail" : "warn",
          summary: `${ffmpegCmd} not found (needed for video capture)`,
          fix: ffmpegCmd === "ffmpeg" ? "sudo apt-get install ffmpeg" : `sudo apt-get install ffmpeg, or point ffmpeg_path / LABRIG_FFMPEG at an ffmpeg that exists`,
        },
  );
  const wantsSim = config?.devices.some((d) => d.simulated) ?? false;
  const socat = findExecutable("socat", env);
  checks.push(
    socat !== null
      ? { name: "socat", status: "ok", summary: `${socat} (only simulated devices need it)` }
      : { name: "socat", status: wantsSim ? "fail" : "warn", summary: "socat not found (needed only for simulated devices)", fix: "sudo apt-get install socat" },
  );

  if (config) checks.push(await hubCheck(config.hub, options.hubTimeoutMs ?? 3000));

  return {
    ok: !checks.some((c) => c.status === "fail"),
    user,
    config_path: options.configPath,
    checks,
    serial_ports: serial.ports,
    gpio_driver: gpio.driver,
    gpio_chardev: gpio.chardev,
    gpio_chips: gpio.sysfs,
    video_devices: video,
  };
}

/** The report as a table for people: status, check, finding, and the fix under it. */
export function formatDoctorReport(report: DoctorReport): string {
  const width = Math.max(...report.checks.map((c) => c.name.length), 5);
  const mark: Record<CheckStatus, string> = { ok: "ok  ", warn: "WARN", fail: "FAIL" };
  const lines = [`labrig-agent doctor (user ${report.user}, config ${report.config_path})`, "", `STATUS  ${"CHECK".padEnd(width)}  FINDING`];
  for (const c of report.checks) {
    lines.push(`${mark[c.status]}    ${c.name.padEnd(width)}  ${c.summary}`);
    if (c.fix && c.status !== "ok") lines.push(`        ${"".padEnd(width)}  fix: ${c.fix}`);
  }
  const failed = report.checks.filter((c) => c.status === "fail").length;
  const warned = report.checks.filter((c) => c.status === "warn").length;
  lines.push("", failed === 0 ? `No failures (${warned} warning${warned === 1 ? "" : "s"}).` : `${failed} check${failed === 1 ? "" : "s"} failed, ${warned} warning${warned === 1 ? "" : "s"}.`);
  return `${lines.join("\n")}\n`;
}
