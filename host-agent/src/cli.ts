#!/usr/bin/env node
import { resolve } from "node:path";
import { IdSchema, LabrigError } from "@labrig/shared";
import { createAgent } from "./agent.js";
import { ConfigError, configPathFrom, loadConfig, type AgentConfig } from "./config.js";
import { chooseGpioDriver } from "./devices/gpio/driver-choice.js";
import { gpioInventory } from "./devices/gpio/inventory.js";
import { listSerialPorts } from "./devices/serial-ports.js";
import { formatDoctorReport, runDoctor } from "./doctor.js";
import { GPIO_USAGE, GpioUsageError, runGpioCommand } from "./gpio-cli.js";
import { renderInitConfig, writeInitConfig } from "./init.js";
import { createLogger } from "./logger.js";
import { AGENT_VERSION } from "./version.js";

const USAGE = `Usage: labrig-agent [run] [--config PATH]
       labrig-agent doctor [--config PATH] [--user NAME] [--json]
       labrig-agent init [--out PATH] [--host NAME] [--hub-url URL] [--force]
       labrig-agent gpio list|driver|read|write|pulse|watch …   (labrig-agent gpio help)
       labrig-agent --version

  run              connect to the hub and serve this host's devices (the default)
  doctor           check this machine: serial ports, GPIO chips, video devices, the service
                   user's groups, ffmpeg, socat, the hub; exit 1 when a check fails
  init             write a starter config from what doctor finds; never overwrites without --force
  gpio             check a bench by hand: list chips and lines, read, write, pulse, watch a line
  --config PATH    agent config (YAML); default: $LABRIG_AGENT_CONFIG or /etc/labrig/agent.yaml
  --user NAME      doctor: whose group membership to check (default: the current user)
  --json           doctor: print one JSON object instead of the table
  --out PATH       init: where to write (default: as --config)
  --host NAME      init: this host's id (default: the hostname)
  --hub-url URL    init: the hub's URL (default: https://hub.local)
  --force          init: overwrite an existing file

Environment: LABRIG_AGENT_CONFIG, LABRIG_HUB_URL, LABRIG_HUB_TOKEN, LABRIG_FFMPEG, LOG_LEVEL override the file.`;

/** Exit codes: 0 clean stop, 1 runtime failure (or a failed doctor check), 2 bad usage or config (fix it, then start again). */
function usageError(message: string): never {
  process.stderr.write(`labrig-agent: ${message}\n\n${USAGE}\n`);
  process.exit(2);
}

type Command = "run" | "version" | "help" | "doctor" | "init";

interface Args {
  command: Command;
  config: string | undefined;
  json: boolean;
  user: string | undefined;
  out: string | undefined;
  host: string | undefined;
  hubUrl: string | undefined;
  force: boolean;
}

/** Flags that take a value, and the commands that accept them. */
const VALUE_FLAGS: Record<string, { key: "config" | "user" | "out" | "host" | "hubUrl"; commands: Command[] }> = {
  "--config": { key: "config", commands: ["run", "doctor"] },
  "-c": { key: "config", commands: ["run", "doctor"] },
  "--user": { key: "user", commands: ["doctor"] },
  "--out": { key: "out", commands: ["init"] },
  "--host": { key: "host", commands: ["init"] },
  "--hub-url": { key: "hubUrl", commands: ["init"] },
};

function parseArgs(argv: string[]): Args {
  const args: Args = { command: "run", config: undefined, json: false, user: undefined, out: undefined, host: undefined, hubUrl: undefined, force: false };
  const first = argv[0];
  let i = 0;
  if (first === "run" || first === "doctor" || first === "init") {
    args.command = first;
    i = 1;
  }
  const sub = args.command;
  for (; i < argv.length; i++) {
    const arg = argv[i] as string;
    const eq = arg.indexOf("=");
    const flag = arg.startsWith("--") && eq > 0 ? arg.slice(0, eq) : arg;
    const spec = VALUE_FLAGS[flag];
    if (arg === "--version" || arg === "-v") args.command = "version";
    else if (arg === "--help" || arg === "-h") args.command = "help";
    else if (spec) {
      if (!spec.commands.includes(sub)) usageError(`${flag} is an option of ${spec.commands.join(" / ")}, not ${sub}`);
      const value = eq > 0 && flag !== arg ? arg.slice(eq + 1) : argv[++i];
      if (value === undefined || value === "") usageError(`${flag} needs a value`);
      args[spec.key] = value;
    } else if (arg === "--json" && sub === "doctor") args.json = true;
    else if (arg === "--force" && sub === "init") args.force = true;
    else usageError(`unknown argument '${arg}'`);
  }
  return args;
}

async function doctor(args: Args): Promise<void> {
  const report = await runDoctor({ configPath: configPathFrom(args.config), ...(args.user === undefined ? {} : { user: args.user }) });
  process.stdout.write(args.json ? `${JSON.stringify(report, null, 2)}\n` : formatDoctorReport(report));
  process.exitCode = report.ok ? 0 : 1;
}

async function init(args: Args): Promise<void> {
  const out = resolve(args.out ?? configPathFrom(undefined));
  if (args.host !== undefined && !IdSchema.safeParse(args.host).success) usageError(`--host '${args.host}' is not a valid id: lowercase letters, digits, '.', '_' or '-' (e.g. pi-rack1)`);
  if (args.hubUrl !== undefined && !/^https?:\/\/[^\s]+$/.test(args.hubUrl)) usageError(`--hub-url '${args.hubUrl}' must be an http:// or https:// URL, e.g. http://hub.local:8080`);
  const serial = await listSerialPorts();
  const gpio = { driver: "auto", dev_dir: "/dev", sysfs_root: "/sys/class/gpio" } as const;
  const inventory = gpioInventory({ devDir: gpio.dev_dir, sysfsRoot: gpio.sysfs_root });
  for (const e of inventory.chardev_errors) process.stderr.write(`labrig-agent: ${e.path} not read (${e.error}); its lines are not offered\n`);
  const text = renderInitConfig({
    ports: serial.ports,
    chips: inventory.sysfs,
    chardevChips: inventory.chardev,
    gpioDriver: chooseGpioDriver(gpio),
    ...(args.host === undefined ? {} : { host: args.host }),
    ...(args.hubUrl === undefined ? {} : { hubUrl: args.hubUrl }),
  });
  const chips = inventory.chardev.length > 0 ? inventory.chardev : inventory.sysfs;
  try {
    writeInitConfig(out, text, args.force);
  } catch (err) {
    if (err instanceof LabrigError && err.code === "conflict") {
      process.stderr.write(`labrig-agent: ${err.message}\n`);
      process.exit(1);
    }
    throw err;
  }
  process.stdout.write(
    `Wrote ${out}: ${serial.ports.length} serial port(s) as device(s), ${chips.length} GPIO chip(s) seen.\n` +
      "Next: put this host's enrollment token in the token_file it names, edit the devices, then run: labrig-agent doctor\n",
  );
}

/** `labrig-agent gpio …`: Ctrl-C ends a write or watch (the line is released), exit 2 on a usage mistake. */
async function gpio(argv: string[]): Promise<void> {
  const controller = new AbortController();
  process.once("SIGINT", () => controller.abort());
  process.once("SIGTERM", () => controller.abort());
  try {
    process.exitCode = await runGpioCommand(argv, { out: (t) => process.stdout.write(t), signal: controller.signal });
  } catch (err) {
    if (err instanceof GpioUsageError) {
      process.stderr.write(`labrig-agent gpio: ${err.message}\n\n${GPIO_USAGE}\n`);
      process.exit(2);
    }
    if (err instanceof LabrigError) {
      process.stderr.write(`labrig-agent gpio: ${err.message}\n`);
      process.exit(1);
    }
    throw err;
  }
}

async function main(): Promise<void> {
  if (process.argv[2] === "gpio") return gpio(process.argv.slice(3));
  const args = parseArgs(process.argv.slice(2));
  if (args.command === "doctor") return doctor(args);
  if (args.command === "init") return init(args);
  if (args.command === "version") {
    process.stdout.write(`${AGENT_VERSION}\n`);
    return;
  }
  if (args.command === "help") {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  let config: AgentConfig;
  try {
    config = loadConfig(configPathFrom(args.config));
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`labrig-agent: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  const logger = createLogger(config.log_level, undefined, [config.hub.token]);
  const agent = createAgent(config, logger);

  let stopping = false;
  const shutdown = (signal: NodeJS.Signals): void => {
    if (stopping) {
      logger.warn({ signal }, "second signal while stopping; exiting now");
      process.exit(1);
    }
    stopping = true;
    logger.info({ signal }, "stopping");
    // A hung driver must not keep a service manager waiting forever.
    const guard = setTimeout(() => {
      logger.error("stop took longer than 15 s; exiting anyway");
      process.exit(1);
    }, 15_000);
    guard.unref();
    agent.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error({ err: (err as Error).message }, "stop failed");
        process.exit(1);
      },
    );
  };
  // on, not once: with once, a second signal would get the default action and the branch above could never run.
  process.on("SIGINT", shutdown);
  process.on("SIGTERM", shutdown);

  try {
    await agent.start();
  } catch (err) {
    logger.fatal({ err: (err as Error).message }, "agent could not start");
    process.exit(1);
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`labrig-agent: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
