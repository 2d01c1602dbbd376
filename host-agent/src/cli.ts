#!/usr/bin/env node
import { createAgent } from "./agent.js";
import { ConfigError, configPathFrom, loadConfig, type AgentConfig } from "./config.js";
import { createLogger } from "./logger.js";
import { AGENT_VERSION } from "./version.js";

const USAGE = `Usage: labrig-agent [run] [--config PATH]
       labrig-agent --version

  run              connect to the hub and serve this host's devices (the default)
  --config PATH    agent config (YAML); default: $LABRIG_AGENT_CONFIG or /etc/labrig/agent.yaml

Environment: LABRIG_AGENT_CONFIG, LABRIG_HUB_URL, LABRIG_HUB_TOKEN, LOG_LEVEL override the file.`;

/** Exit codes: 0 clean stop, 1 runtime failure, 2 bad usage or config (fix it, then start again). */
function usageError(message: string): never {
  process.stderr.write(`labrig-agent: ${message}\n\n${USAGE}\n`);
  process.exit(2);
}

function parseArgs(argv: string[]): { command: "run" | "version" | "help"; config: string | undefined } {
  let command: "run" | "version" | "help" = "run";
  let config: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === "--version" || arg === "-v") command = "version";
    else if (arg === "--help" || arg === "-h") command = "help";
    else if (arg === "--config" || arg === "-c") {
      config = argv[++i];
      if (config === undefined) usageError("--config needs a path");
    } else if (arg.startsWith("--config=")) config = arg.slice("--config=".length);
    else if (arg === "run" && i === 0) command = "run";
    else usageError(`unknown argument '${arg}'`);
  }
  return { command, config };
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
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
  const logger = createLogger(config.log_level);
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
  process.once("SIGINT", shutdown);
  process.once("SIGTERM", shutdown);

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
