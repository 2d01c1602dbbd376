import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { MemoryLine } from "../src/devices/gpio/memory-line.js";
import { SerialConsole } from "../src/devices/serial-console.js";
import { BoardJournal, type BoardJournalEntry } from "../src/sim/board-journal.js";
import { SimPty } from "../src/sim/pty.js";
import { SimulatedDut } from "../src/sim/simulated-dut.js";
import { makeTempDir, requireSocat, testLogger, until } from "./helpers.js";

describe("simulated board through a real PTY and SerialConsole", () => {
  let temp: ReturnType<typeof makeTempDir>;
  let pty: SimPty;
  let console_: SerialConsole;
  let dut: SimulatedDut;
  let power: MemoryLine;
  let reset: MemoryLine;
  let received: string;
  const states: string[] = [];

  const expectText = (pattern: string, timeoutMs = 3000) => console_.expect({ pattern, regex: false, timeoutMs, flush: false });

  beforeEach(async () => {
    requireSocat();
    temp = makeTempDir();
    received = "";
    states.length = 0;
    pty = new SimPty({ path: join(temp.dir, "dut1-console") }, testLogger());
    await pty.start();
    console_ = new SerialConsole(
      { name: "dut1/console", path: pty.path, baudRate: 115200, dataBits: 8, parity: "none", stopBits: 1, rtsCts: false, txCharDelayMs: 0, reopenBaseMs: 50, reopenMaxMs: 200 },
      testLogger(),
      { onData: (t) => (received += t), onState: (s) => states.push(s) },
    );
    await console_.start();
    await console_.waitUntilOpen(2000);
    power = new MemoryLine({ name: "dut1/power", direction: "out", activeLow: false, initial: 0 });
    reset = new MemoryLine({ name: "dut1/reset", direction: "out", activeLow: true, initial: 0 });
    dut = new SimulatedDut(pty, { power, reset }, testLogger(), { bootMs: 300 });
    dut.start();
  });

  afterEach(async () => {
    dut.stop();
    await console_.stop();
    await pty.stop();
    temp.remove();
  });

  it("boots on power, logs in, answers uname -a, and falls silent on power off", async () => {
    const boot = expectText("labrig-sim login: ");
    power.write(1);
    const booted = await boot;
    expect(booted.transcript).toContain("Booting Linux");
    expect(booted.transcript).toContain("\r\n");
    await console_.write("root\r");
    await expectText("Password: ");
    await console_.write("labrig\r");
    await expectText("root@labrig-sim:~# ");
    await console_.write("uname -a\n");
    const uname = await console_.expect({ pattern: "(Linux labrig-sim \\S+ .*aarch64 GNU/Linux)\\r\\n", regex: true, timeoutMs: 3000, flush: false });
    expect(uname.transcript.startsWith("uname -a\r\n")).toBe(true);
    await expectText("root@labrig-sim:~# ");
    power.write(0);
    const before = received.length;
    await console_.write("whoami\r");
    await new Promise((r) => setTimeout(r, 500));
    expect(received.slice(before)).toBe("");
  });

  it("rejects a wrong password and answers the shell commands", async () => {
    power.write(1);
    await expectText("login: ");
    await console_.write("admin\r");
    await expectText("Password: ");
    await console_.write("nope\r");
    await expectText("Login incorrect");
    await expectText("labrig-sim login: ");
    await console_.write("root\rlabrig\r");
    await expectText("~# ");
    await console_.write("echo hello world\r");
    expect((await expectText("~# ")).transcript).toContain("hello world\r\n");
    await console_.write("whoami\r");
    expect((await expectText("~# ")).transcript).toContain("root\r\n");
    await console_.write("cat /etc/os-release\r");
    expect((await expectText("~# ")).transcript).toContain('NAME="labrig-sim"');
    await console_.write("uptime\r");
    expect((await expectText("~# ")).transcript).toMatch(/up \d+ min/);
    await console_.write("frobnicate\r");
    expect((await expectText("~# ")).transcript).toContain("-sh: frobnicate: not found");
    await console_.write("help\r");
    expect((await expectText("~# ")).transcript).toContain("Commands:");
    await console_.write("exit\r");
    await expectText("labrig-sim login: ");
  });

  it("processes input typed before the prompt, in order", async () => {
    power.write(1);
    // All typed while the board is still booting.
    await console_.write("root\nlabrig\nuname -a\necho done\n");
    await expectText("login: ");
    await console_.expect({ pattern: "Linux labrig-sim", regex: false, timeoutMs: 3000, flush: false });
    const tail = await expectText("done\r\nroot@labrig-sim:~# ");
    expect(tail.transcript).toContain("echo done");
  });

  it("reboots on a pulse of the reset line and on the reboot command", async () => {
    power.write(1);
    await expectText("login: ");
    reset.write(1);
    reset.write(0);
    await expectText("Booting Linux");
    await expectText("login: ");
    await console_.write("root\rlabrig\rreboot\r");
    await expectText("reboot: Restarting system");
    await expectText("Booting Linux");
    await expectText("login: ");
  });

  it("restarts socat when it dies and the console reconnects to the new PTY", async () => {
    power.write(1);
    await expectText("login: ");
    const pid = pty.pid;
    expect(pid).toBeDefined();
    process.kill(pid as number, "SIGKILL");
    await until(() => states.includes("unavailable"), "the console to notice the lost port");
    await until(() => console_.isOpen && pty.pid !== undefined && pty.pid !== pid, "socat to restart and the console to reopen", 5000);
    expect(states.slice(-2)).toEqual(["unavailable", "ready"]);
    // The board is still at its login prompt; Enter re-prints it over the new PTY.
    const again = expectText("login: ");
    await console_.write("\r");
    await again;
  });
});

describe("simulated board journal", () => {
  it("appends every complete line that reaches the board, powered or not, and nothing of a line still arriving", async () => {
    requireSocat();
    const temp = makeTempDir();
    const pty = new SimPty({ path: join(temp.dir, "dut1-console") }, testLogger());
    const serial = new SerialConsole(
      { name: "dut1/console", path: pty.path, baudRate: 115200, dataBits: 8, parity: "none", stopBits: 1, rtsCts: false, txCharDelayMs: 0 },
      testLogger(),
    );
    const path = join(temp.dir, "journal", "dut1.jsonl");
    const journal = new BoardJournal(path, testLogger());
    const power = new MemoryLine({ name: "dut1/power", direction: "out", activeLow: false, initial: 0 });
    const dut = new SimulatedDut(pty, { power }, testLogger(), { bootMs: 200, onLineReceived: (line, state) => journal.record(line, state) });
    const entries = (): BoardJournalEntry[] =>
      existsSync(path)
        ? readFileSync(path, "utf8")
            .trim()
            .split("\n")
            .map((l) => JSON.parse(l) as BoardJournalEntry)
        : [];
    try {
      await pty.start();
      await serial.start();
      await serial.waitUntilOpen(2000);
      dut.start();
      // Off: the board ignores it, but it did reach the wire.
      await serial.write("echo while-off\r\n");
      await until(() => entries().length === 1, "the line sent while off to be journaled");
      power.write(1);
      await serial.expect({ pattern: "login: ", regex: false, timeoutMs: 3000, flush: false });
      await serial.write("root\rlabrig\r");
      await serial.expect({ pattern: "# ", regex: false, timeoutMs: 3000, flush: false });
      await serial.write("echo at-shell\npartial-without-newline");
      await until(() => entries().length === 4, "the three complete lines to be journaled");
      await new Promise((r) => setTimeout(r, 200));
      const got = entries();
      expect(got.map((e) => e.line)).toEqual(["echo while-off", "root", "labrig", "echo at-shell"]);
      expect(got[0]?.state).toBe("off");
      expect(got[3]?.state).toBe("shell");
      expect(Number.isNaN(Date.parse(got[0]?.at ?? ""))).toBe(false);
    } finally {
      dut.stop();
      await serial.stop();
      await pty.stop();
      temp.remove();
    }
  });
});

describe("SimPty whose socat cannot start", () => {
  it("rejects start and leaves no socat behind, instead of restarting it forever", async () => {
    requireSocat();
    const temp = makeTempDir();
    // socat cannot create a link in a folder that does not exist, so it exits at once, every time.
    const pty = new SimPty({ path: join(temp.dir, "no-such-dir", "dut1-console"), readyTimeoutMs: 400, restartDelayMs: 20 }, testLogger());
    try {
      await expect(pty.start()).rejects.toMatchObject({ code: "device_unavailable" });
      const seen: (number | undefined)[] = [];
      for (let i = 0; i < 30; i++) {
        seen.push(pty.pid);
        await new Promise((r) => setTimeout(r, 10));
      }
      expect(seen.filter((p) => p !== undefined)).toEqual([]);
    } finally {
      await pty.stop();
      temp.remove();
    }
  });
});
