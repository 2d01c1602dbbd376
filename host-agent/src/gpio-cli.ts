import { existsSync } from "node:fs";
import { performance } from "node:perf_hooks";
import { LabrigError } from "@labrig/shared";
import { configPathFrom, loadConfig, type AgentConfig } from "./config.js";
import { pulseLine } from "./devices/drivers/gpio-driver.js";
import { chooseGpioDriver, createLineFactory } from "./devices/gpio/driver-choice.js";
import type { Bit, GpioLine, LineBias, LineSpec } from "./devices/gpio/gpio-line.js";
import { InputWatcher, type EdgeSetting } from "./devices/gpio/input-watcher.js";
import { gpioInventory, lineByName } from "./devices/gpio/inventory.js";
import type { GpioUapi } from "./devices/gpio/uapi.js";
import { createLogger, type Logger } from "./logger.js";

export const GPIO_USAGE = `Usage: labrig-agent gpio list                       chips and lines (names, who holds them)
       labrig-agent gpio driver                     which driver the agent will use, and why
       labrig-agent gpio read  LINE                 print the line's logical value
       labrig-agent gpio write LINE 0|1             drive it, hold until Ctrl-C (or --hold-ms)
       labrig-agent gpio pulse LINE WIDTH_MS        drive it to --value (1) for WIDTH_MS, timed here
       labrig-agent gpio watch LINE                 print each debounced change until Ctrl-C (or --count/--timeout-ms)

  LINE             an offset on the chip (17) or, through the character device, a line name (GPIO17)
  --chip LABEL     the chip's label (pinctrl-bcm2711, pinctrl-rp1, …); default: the Pi header controller
  --active-low     logical 1 drives the pin low
  --bias B         read/watch: pull-up, pull-down, disabled or as-is (character device only)
  --edge E         watch: rising, falling or both (default both)
  --debounce-ms N  watch: a level must hold this long (default 20)
  --value 0|1      pulse: the level of the pulse (default 1)
  --hold-ms N      write: hold for N ms, then release, instead of until Ctrl-C
  --count N        watch: stop after N changes
  --timeout-ms N   watch: stop after N ms
  --config PATH    take gpio.driver, dev_dir and sysfs_root from this agent config (default: $LABRIG_AGENT_CONFIG or /etc/labrig/agent.yaml, if it exists)`;

/** Where the command prints, and what it may be given instead of the real kernel (tests). */
export interface GpioCliIo {
  out: (text: string) => void;
  uapi?: GpioUapi;
  /** Ends write/watch early (Ctrl-C). */
  signal?: AbortSignal;
  logger?: Logger;
}

interface GpioArgs {
  sub: string;
  positional: string[];
  flags: Map<string, string>;
  bools: Set<string>;
}

const VALUE_FLAGS = new Set(["--chip", "--bias", "--edge", "--debounce-ms", "--value", "--hold-ms", "--count", "--timeout-ms", "--config"]);
const BOOL_FLAGS = new Set(["--active-low"]);

/** A mistake in how the command was called; the CLI exits 2 with the usage. */
export class GpioUsageError extends Error {}

function parse(argv: string[]): GpioArgs {
  const [sub = "", ...rest] = argv;
  const args: GpioArgs = { sub, positional: [], flags: new Map(), bools: new Set() };
  for (let i = 0; i < rest.length; i++) {
    const arg = rest[i] as string;
    const eq = arg.indexOf("=");
    const flag = arg.startsWith("--") && eq > 0 ? arg.slice(0, eq) : arg;
    if (VALUE_FLAGS.has(flag)) {
      const value = eq > 0 ? arg.slice(eq + 1) : rest[++i];
      if (value === undefined || value === "") throw new GpioUsageError(`${flag} needs a value`);
      args.flags.set(flag, value);
    } else if (BOOL_FLAGS.has(arg)) args.bools.add(arg);
    else if (arg.startsWith("--")) throw new GpioUsageError(`unknown option '${arg}'`);
    else args.positional.push(arg);
  }
  return args;
}

function intFlag(args: GpioArgs, flag: string, fallback: number, min = 0): number {
  const raw = args.flags.get(flag);
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min) throw new GpioUsageError(`${flag} must be a whole number ≥ ${min}, got '${raw}'`);
  return n;
}

function bit(raw: string | undefined, what: string): Bit {
  if (raw === "0" || raw === "1") return Number(raw) as Bit;
  throw new GpioUsageError(`${what} must be 0 or 1, got '${raw ?? ""}'`);
}

/** The gpio section: from the config when there is one, else the defaults (auto, /dev, /sys/class/gpio). */
function gpioSettings(args: GpioArgs): AgentConfig["gpio"] {
  const path = args.flags.get("--config") ?? configPathFrom(undefined);
  if (args.flags.has("--config") || existsSync(path)) return loadConfig(path).gpio;
  return { driver: "auto", dev_dir: "/dev", sysfs_root: "/sys/class/gpio" };
}

/** LINE as an offset, or a name looked up on the chosen (or header) chip through the character device. */
function resolveLine(raw: string | undefined, chipLabel: string | null, gpio: AgentConfig["gpio"], io: GpioCliIo): number {
  if (raw === undefined) throw new GpioUsageError("name the line: an offset (17) or a line name (GPIO17)");
  if (/^\d+$/.test(raw)) return Number(raw);
  const inventory = gpioInventory({ devDir: gpio.dev_dir, sysfsRoot: gpio.sysfs_root, ...(io.uapi ? { uapi: io.uapi } : {}) });
  const chips = chipLabel === null ? inventory.chardev : inventory.chardev.filter((c) => c.label === chipLabel);
  for (const chip of chips) {
    const line = lineByName(chip, raw);
    if (line) return line.offset;
  }
  throw new LabrigError("device_unavailable", `No line named '${raw}'${chipLabel ? ` on ${chipLabel}` : ""} among the character-device chips in ${gpio.dev_dir}; run labrig-agent gpio list, or give the offset.`);
}

async function openLine(args: GpioArgs, io: GpioCliIo, direction: "in" | "out", initial: Bit): Promise<{ line: GpioLine; spec: LineSpec }> {
  const gpio = gpioSettings(args);
  const chip = args.flags.get("--chip") ?? null;
  const bias = (args.flags.get("--bias") ?? "as-is") as LineBias;
  if (!["as-is", "pull-up", "pull-down", "disabled"].includes(bias)) throw new GpioUsageError(`--bias must be pull-up, pull-down, disabled or as-is, got '${bias}'`);
  const offset = resolveLine(args.positional[0], chip, gpio, io);
  const spec: LineSpec = { name: `cli/${offset}`, line: offset, chip, direction, activeLow: args.bools.has("--active-low"), initial, ...(direction === "in" ? { bias, debounceMs: intFlag(args, "--debounce-ms", 20) } : {}) };
  const factory = createLineFactory(gpio, io.logger ?? createLogger("warn"), io.uapi);
  if (factory.driver === "memory") throw new LabrigError("device_unavailable", `${chooseGpioDriver(gpio).reason}: there is no GPIO hardware to talk to here.`);
  return { line: await factory.open(spec), spec };
}

function list(args: GpioArgs, io: GpioCliIo): void {
  const gpio = gpioSettings(args);
  const choice = chooseGpioDriver(gpio);
  const inv = gpioInventory({ devDir: gpio.dev_dir, sysfsRoot: gpio.sysfs_root, ...(io.uapi ? { uapi: io.uapi } : {}) });
  io.out(`driver: ${choice.driver} (${choice.reason})\n`);
  for (const chip of inv.chardev) {
    io.out(`\n${chip.name} [${chip.label}] ${chip.lines} lines (${chip.path})\n`);
    for (const l of chip.line_info) {
      const state = l.used ? `used by "${l.consumer || "?"}" ${l.direction}${l.activeLow ? " active-low" : ""}` : "free";
      io.out(`  ${String(l.offset).padStart(3)}  ${(l.name || "-").padEnd(16)} ${state}${l.bias === "as-is" ? "" : ` ${l.bias}`}\n`);
    }
  }
  for (const e of inv.chardev_errors) io.out(`\n${e.path}: ${e.error}\n`);
  for (const c of inv.sysfs) io.out(`\nsysfs ${c.name} [${c.label}] base ${c.base}, ${c.ngpio} lines\n`);
  if (inv.chardev.length + inv.chardev_errors.length + inv.sysfs.length === 0) io.out(`\nno GPIO chips: no gpiochip devices in ${gpio.dev_dir} and nothing under ${gpio.sysfs_root}\n`);
}

/** Resolves after `ms`, or when the signal fires (Ctrl-C), whichever comes first. */
async function hold(ms: number | null, signal: AbortSignal | undefined): Promise<void> {
  if (signal?.aborted) return;
  await new Promise<void>((resolve) => {
    const timer = ms === null ? null : setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => {
      if (timer) clearTimeout(timer);
      resolve();
    }, { once: true });
  });
}

/** Runs `labrig-agent gpio …`; returns the exit code. Usage mistakes throw GpioUsageError. */
export async function runGpioCommand(argv: string[], io: GpioCliIo): Promise<number> {
  const args = parse(argv);
  switch (args.sub) {
    case "list":
      list(args, io);
      return 0;
    case "driver": {
      const c = chooseGpioDriver(gpioSettings(args));
      io.out(`${c.driver}\n${c.reason}\n`);
      return 0;
    }
    case "read": {
      const { line } = await openLine(args, io, "in", 0);
      try {
        io.out(`${line.read()}\n`);
      } finally {
        line.release();
      }
      return 0;
    }
    case "write": {
      const value = bit(args.positional[1], "VALUE");
      const { line, spec } = await openLine(args, io, "out", value);
      const holdMs = args.flags.has("--hold-ms") ? intFlag(args, "--hold-ms", 0) : null;
      io.out(`line ${spec.line} = ${value}; ${holdMs === null ? "holding until Ctrl-C" : `holding ${holdMs} ms`}, then releasing (the kernel keeps the last level)\n`);
      try {
        await hold(holdMs, io.signal);
      } finally {
        line.release();
      }
      return 0;
    }
    case "pulse": {
      const width = Number(args.positional[1]);
      if (!Number.isInteger(width) || width < 1 || width > 60_000) throw new GpioUsageError(`WIDTH_MS must be 1-60000, got '${args.positional[1] ?? ""}'`);
      const value = args.flags.has("--value") ? bit(args.flags.get("--value"), "--value") : 1;
      const { line, spec } = await openLine(args, io, "out", (1 - value) as Bit);
      try {
        const took = await pulseLine(line, value, width, io.signal ?? new AbortController().signal);
        io.out(`line ${spec.line} pulsed to ${value} for ${took.toFixed(3)} ms (asked ${width})\n`);
      } finally {
        line.release();
      }
      return 0;
    }
    case "watch": {
      const edge = (args.flags.get("--edge") ?? "both") as EdgeSetting;
      if (!["rising", "falling", "both"].includes(edge)) throw new GpioUsageError(`--edge must be rising, falling or both, got '${edge}'`);
      const count = args.flags.has("--count") ? intFlag(args, "--count", 1, 1) : null;
      const timeoutMs = args.flags.has("--timeout-ms") ? intFlag(args, "--timeout-ms", 0) : null;
      const { line, spec } = await openLine(args, io, "in", 0);
      const done = new AbortController();
      const stop = io.signal ? AbortSignal.any([io.signal, done.signal]) : done.signal;
      let seen = 0;
      const t0 = performance.now();
      const watcher = new InputWatcher(
        line,
        { edge, debounceMs: spec.debounceMs ?? 20, pollMs: 10 },
        (v) => {
          io.out(`${(performance.now() - t0).toFixed(1).padStart(9)} ms  line ${spec.line} ${v === 1 ? "rising → 1" : "falling → 0"}\n`);
          if (count !== null && ++seen >= count) done.abort();
        },
        io.logger ?? createLogger("warn"),
      );
      const mode = watcher.start();
      io.out(`watching line ${spec.line} (${edge} edges, ${mode.mode === "interrupt" ? "interrupts" : (mode.detail ?? "polling")}); level now ${line.read()}\n`);
      try {
        await hold(timeoutMs, stop);
      } finally {
        watcher.stop();
        line.release();
      }
      return 0;
    }
    case "":
    case "help":
      io.out(`${GPIO_USAGE}\n`);
      return args.sub === "" ? 2 : 0;
    default:
      throw new GpioUsageError(`unknown gpio command '${args.sub}'`);
  }
}

