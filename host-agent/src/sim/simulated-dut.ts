import type { ScreenOverlay } from "../capture/test-pattern.js";
import type { Bit } from "../devices/gpio/gpio-line.js";
import type { MemoryLine } from "../devices/gpio/memory-line.js";
import type { Logger } from "../logger.js";

/** The board's end of its serial console. */
export interface DutConsole {
  write(text: string): void;
  onData(listener: (text: string) => void): () => void;
}

export interface SimulatedDutOptions {
  /** How long the boot log takes before the login prompt. */
  bootMs?: number;
  hostname?: string;
  password?: string;
  /**
   * Called with every complete line that arrives on the console, whatever the board is doing (off
   * included): what reached its UART, which the fault suite counts to prove nothing ran twice.
   */
  onLineReceived?: (line: string, state: DutState) => void;
}

export type DutState = "off" | "reset" | "booting" | "login" | "password" | "shell";

const KERNEL = "6.6.31-labrig-sim";
const MAX_LINE = 4096;

/**
 * A virtual board under test: powered by its power line, rebooted by a pulse on its reset
 * line, and talking over a real pseudo-terminal like a Linux board's serial console (boot
 * log, getty login, a tiny shell). Characters are echoed as a tty would, and input that
 * arrives before a prompt is kept and processed in order once the prompt is up.
 */
export class SimulatedDut {
  private state: DutState = "off";
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly unsubscribe: (() => void)[] = [];
  private input = "";
  private line = "";
  private lastWasCr = false;
  /** The line arriving on the wire, for onLineReceived (apart from `line`, which the shell edits). */
  private wireLine = "";
  private wireLastWasCr = false;
  private bootedAt = 0;
  private readonly bootMs: number;
  private readonly hostname: string;
  private readonly password: string;

  constructor(
    private readonly console: DutConsole,
    private readonly lines: { power: MemoryLine; reset?: MemoryLine | undefined },
    private readonly logger: Logger,
    private readonly options: SimulatedDutOptions = {},
  ) {
    this.bootMs = options.bootMs ?? 1000;
    this.hostname = options.hostname ?? "labrig-sim";
    this.password = options.password ?? "labrig";
  }

  /** What the board is doing (for tests and logs). */
  get status(): DutState {
    return this.state;
  }

  /**
   * What the board's screen shows, for its test-pattern video source: dark while off or held in
   * reset, then one big word per stage, so a planner looking at a snapshot can tell them apart.
   */
  screen(): ScreenOverlay {
    switch (this.state) {
      case "off":
      case "reset":
        return { blank: true };
      case "booting":
        return { text: "BOOTING" };
      case "login":
      case "password":
        return { text: "LOGIN" };
      case "shell":
        return { text: "SHELL" };
    }
  }

  start(): void {
    this.unsubscribe.push(this.console.onData((text) => this.onInput(text)));
    this.unsubscribe.push(this.lines.power.onChange((v) => this.onPower(v)));
    if (this.lines.reset) this.unsubscribe.push(this.lines.reset.onChange((v) => this.onReset(v)));
    // The power line may already be on (initial: 1, or an agent restart): boot as the board would.
    if (this.lines.power.read() === 1) this.onPower(1);
  }

  stop(): void {
    for (const u of this.unsubscribe.splice(0)) u();
    this.powerOff();
  }

  private get loginPrompt(): string {
    return `\r\n${this.hostname} login: `;
  }

  private get shellPrompt(): string {
    return `root@${this.hostname}:~# `;
  }

  private onPower(value: Bit): void {
    if (value === 0) {
      this.logger.debug({ sim: this.hostname }, "simulated board powered off");
      this.powerOff();
      return;
    }
    if (this.state !== "off") return;
    if (this.lines.reset?.read() === 1) {
      this.state = "reset";
      return;
    }
    this.boot();
  }

  private onReset(value: Bit): void {
    if (this.state === "off") return;
    if (value === 1) {
      // Held in reset: the CPU stops mid-sentence, like a real one.
      this.clearTimers();
      this.state = "reset";
      this.input = "";
      this.line = "";
    } else if (this.state === "reset") {
      this.boot();
    }
  }

  private powerOff(): void {
    this.clearTimers();
    this.state = "off";
    this.input = "";
    this.line = "";
    this.lastWasCr = false;
  }

  private clearTimers(): void {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }

  private later(ms: number, fn: () => void): void {
    const t = setTimeout(() => {
      this.timers.delete(t);
      fn();
    }, ms);
    this.timers.add(t);
  }

  private boot(): void {
    this.clearTimers();
    this.state = "booting";
    this.line = "";
    this.lastWasCr = false;
    const log = [
      "\r\nU-Boot 2024.01-labrig-sim\r\n",
      "DRAM:  1 GiB\r\nHit any key to stop autoboot:  0\r\nStarting kernel ...\r\n\r\n",
      `[    0.000000] Booting Linux on physical CPU 0x0000000000 [0x410fd083]\r\n[    0.000000] Linux version ${KERNEL} (builder@labrig) (gcc 12.2.0) #1 SMP PREEMPT\r\n`,
      "[    0.000000] Machine model: labrig simulated board\r\n[    0.412345] mmc0: new high speed SDHC card at address aaaa\r\n",
      "[    0.801234] EXT4-fs (mmcblk0p2): mounted filesystem with ordered data mode\r\n[    0.912345] Run /sbin/init as init process\r\n",
      `\r\nWelcome to labrig-sim 1.0 (${this.hostname})\r\n`,
    ];
    const step = this.bootMs / (log.length + 1);
    log.forEach((text, i) => this.later(step * i, () => this.console.write(text)));
    this.later(this.bootMs, () => {
      this.bootedAt = Date.now();
      this.state = "login";
      this.console.write(this.loginPrompt);
      this.processInput();
    });
  }

  private onInput(text: string): void {
    if (this.options.onLineReceived) this.recordWire(text, this.options.onLineReceived);
    if (this.state === "off" || this.state === "reset") return;
    // Bounded: a peer that floods the console while the board boots cannot grow this forever.
    this.input = (this.input + text).slice(-MAX_LINE * 4);
    this.processInput();
  }

  private recordWire(text: string, record: (line: string, state: DutState) => void): void {
    for (const ch of text) {
      if (ch === "\n" && this.wireLastWasCr) {
        this.wireLastWasCr = false;
        continue;
      }
      if (ch === "\r" || ch === "\n") {
        this.wireLastWasCr = ch === "\r";
        const line = this.wireLine;
        this.wireLine = "";
        record(line, this.state);
        continue;
      }
      this.wireLastWasCr = false;
      if (this.wireLine.length < MAX_LINE) this.wireLine += ch;
    }
  }

  private processInput(): void {
    while (this.input.length > 0 && (this.state === "login" || this.state === "password" || this.state === "shell")) {
      const ch = this.input[0] as string;
      this.input = this.input.slice(1);
      this.handleChar(ch);
    }
  }

  private handleChar(ch: string): void {
    if (ch === "\n" && this.lastWasCr) {
      // CR LF is one Enter, as a tty with icrnl would see it.
      this.lastWasCr = false;
      return;
    }
    if (ch === "\r" || ch === "\n") {
      this.lastWasCr = ch === "\r";
      this.console.write("\r\n");
      const line = this.line;
      this.line = "";
      this.enter(line);
      return;
    }
    this.lastWasCr = false;
    const secret = this.state === "password";
    if (ch === "\x7f" || ch === "\b") {
      if (this.line.length > 0) {
        this.line = this.line.slice(0, -1);
        if (!secret) this.console.write("\b \b");
      }
      return;
    }
    if (ch === "\x03") {
      this.console.write("^C\r\n");
      this.line = "";
      if (this.state === "shell") this.console.write(this.shellPrompt);
      else this.goToLogin();
      return;
    }
    if (ch < " ") return;
    if (this.line.length >= MAX_LINE) return;
    this.line += ch;
    if (!secret) this.console.write(ch);
  }

  private goToLogin(): void {
    this.state = "login";
    this.console.write(this.loginPrompt);
  }

  private enter(line: string): void {
    switch (this.state) {
      case "login":
        if (line.trim() === "") {
          this.console.write(`${this.hostname} login: `);
          return;
        }
        this.state = "password";
        this.console.write("Password: ");
        return;
      case "password":
        if (line === this.password) {
          this.state = "shell";
          this.console.write(`\r\nlabrig-sim 1.0 - simulated board. Type 'help' for commands.\r\n\r\n${this.shellPrompt}`);
        } else {
          this.console.write("\r\nLogin incorrect\r\n");
          this.goToLogin();
        }
        return;
      case "shell":
        this.runCommand(line.trim());
        return;
      default:
        return;
    }
  }

  private runCommand(commandLine: string): void {
    const [cmd = "", ...args] = commandLine.split(/\s+/).filter((w) => w !== "");
    const out = (text: string): void => this.console.write(text.split("\n").join("\r\n") + "\r\n");
    switch (cmd) {
      case "":
        break;
      case "help":
        out("Commands: help, uname [-a], uptime, echo TEXT, cat /etc/os-release, whoami, exit, reboot");
        break;
      case "uname":
        out(args.includes("-a") ? `Linux ${this.hostname} ${KERNEL} #1 SMP PREEMPT Tue Jan 14 10:00:00 UTC 2025 aarch64 GNU/Linux` : "Linux");
        break;
      case "uptime": {
        const secs = Math.floor((Date.now() - this.bootedAt) / 1000);
        const clock = new Date().toISOString().slice(11, 19);
        out(` ${clock} up ${Math.floor(secs / 60)} min,  1 user,  load average: 0.00, 0.00, 0.00`);
        break;
      }
      case "echo":
        out(commandLine.slice(commandLine.indexOf("echo") + 4).trim().replace(/^(["'])(.*)\1$/, "$2"));
        break;
      case "cat":
        if (args[0] === "/etc/os-release") {
          out('PRETTY_NAME="labrig-sim 1.0"\nNAME="labrig-sim"\nVERSION_ID="1.0"\nID=labrig-sim\nHOME_URL="https://example.invalid/labrig"');
        } else {
          out(`cat: ${args[0] ?? ""}: No such file or directory`);
        }
        break;
      case "whoami":
        out("root");
        break;
      case "exit":
      case "logout":
        this.goToLogin();
        return;
      case "reboot":
        out("reboot: Restarting system");
        this.state = "booting";
        this.later(100, () => this.boot());
        return;
      default:
        out(`-sh: ${cmd}: not found`);
    }
    this.console.write(this.shellPrompt);
  }
}
