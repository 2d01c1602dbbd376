import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { HUB_CLI, ROOT } from "../scripts/lib/launch.js";
import { requireTool } from "../hub/test/system-tools.js";
import { E2E_ADMIN_KEY, exited, freePort, waitFor } from "./helpers.js";

const UNITS = ["labrig-hub.service", "labrig-hub-backup.service", "labrig-hub-backup.timer"];
const dirs: string[] = [];
const children: ChildProcess[] = [];

afterEach(async () => {
  for (const c of children.splice(0)) {
    if (c.exitCode === null && c.signalCode === null) {
      c.kill("SIGKILL");
      await exited(c);
    }
  }
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), "labrig-systemd-"));
  dirs.push(d);
  return d;
}

const unitText = (name: string): string => readFileSync(join(ROOT, "systemd", name), "utf8");
const setting = (text: string, key: string): string | undefined => text.split("\n").find((l) => l.startsWith(`${key}=`))?.slice(key.length + 1);

// sd_notify's receiving end, as systemd runs it: one datagram per message; passed file descriptors
// (systemd-notify's barrier) are closed, which is what tells systemd-notify the message was read.
// A stand-in for PID 1, which this test cannot be; the sending side is the real systemd-notify.
const RECEIVER = `
import socket, sys, os, array
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
print("listening", flush=True)
while True:
    data, anc, flags, addr = s.recvmsg(4096, socket.CMSG_SPACE(16 * 4))
    for level, kind, payload in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds = array.array("i")
            fds.frombytes(payload[: len(payload) - (len(payload) % fds.itemsize)])
            for fd in fds:
                os.close(fd)
    for line in data.decode().split("\\n"):
        if line:
            print(line, flush=True)
`;

describe("systemd/labrig-hub.service (the alternative to pm2)", () => {
  it("the hub unit and the daily backup timer pass systemd-analyze verify, which really checks", () => {
    requireTool("systemd-analyze", "systemd");
    const dir = tempDir();
    for (const u of UNITS) copyFileSync(join(ROOT, "systemd", u), join(dir, u));
    const ok = spawnSync("systemd-analyze", ["verify", ...UNITS], { cwd: dir, encoding: "utf8" });
    expect(ok.stderr).toBe("");
    expect(ok.status).toBe(0);
    writeFileSync(join(dir, UNITS[0]!), unitText(UNITS[0]!).replace("[Service]\n", "[Service]\nKillSignall=SIGTERM\n"));
    const bad = spawnSync("systemd-analyze", ["verify", UNITS[0]!], { cwd: dir, encoding: "utf8" });
    expect(bad.stderr).toContain("Unknown key 'KillSignall'");
  });

  it("is Type=notify with a stop timeout longer than the drain, hardened like the agent's unit", () => {
    const unit = unitText("labrig-hub.service");
    expect(setting(unit, "Type")).toBe("notify");
    expect(setting(unit, "NotifyAccess")).toBe("all");
    expect(setting(unit, "KillSignal")).toBe("SIGTERM");
    const drainMs = Number(/^Environment=LABRIG_DRAIN_MS=(\d+)$/m.exec(unit)?.[1]);
    expect(Number(setting(unit, "TimeoutStopSec"))).toBeGreaterThan(drainMs / 1000 + 3);
    for (const line of ["NoNewPrivileges=yes", "ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes", "PrivateDevices=yes", "CapabilityBoundingSet=", "ReadWritePaths=/var/lib/labrig-hub", "Restart=on-failure"]) {
      expect(unit.split("\n")).toContain(line);
    }
    expect(setting(unitText("labrig-hub-backup.timer"), "OnCalendar")).toBeDefined();
    expect(setting(unitText("labrig-hub-backup.service"), "ExecStart")).toContain("cli.js backup /var/lib/labrig-hub-backups --keep 14");
  });

  it("the hub tells systemd READY=1 once it listens and STOPPING=1 when SIGTERM starts the drain, through the real systemd-notify", async () => {
    requireTool("systemd-notify", "systemd");
    requireTool("python3", "python3");
    const dir = tempDir();
    const socketPath = join(dir, "notify.sock");
    const receiver = spawn("python3", ["-c", RECEIVER, socketPath], { stdio: ["ignore", "pipe", "pipe"] });
    children.push(receiver);
    let messages = "";
    receiver.stdout.on("data", (d: Buffer) => (messages += d.toString()));
    await waitFor(async () => messages.includes("listening"), 5000, "the notify receiver");

    const port = await freePort();
    const env = { ...process.env, NOTIFY_SOCKET: socketPath, PORT: String(port), LABRIG_BIND: "127.0.0.1", LABRIG_DATA_DIR: join(dir, "hub"), LABRIG_ADMIN_KEY: E2E_ADMIN_KEY, LOG_LEVEL: "warn" };
    const hub = spawn(process.execPath, [HUB_CLI, "serve"], { env, stdio: "ignore" });
    children.push(hub);
    await waitFor(async () => messages.includes("READY=1"), 15_000, "READY=1");
    // Ready means serving: the health check answers at once.
    expect((await fetch(`http://127.0.0.1:${port}/api/health`)).status).toBe(200);
    expect(messages).toContain(`STATUS=serving on http://127.0.0.1:${port}`);
    hub.kill("SIGTERM");
    await exited(hub);
    expect(hub.exitCode).toBe(0);
    await waitFor(async () => messages.includes("STOPPING=1"), 5000, "STOPPING=1");
  }, 30_000);
});
