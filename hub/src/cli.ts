#!/usr/bin/env node
// Entry point of `labrig-hub`: runs a command and, for `serve`, owns the process (signals, pm2 readiness, exit code).
import { loadDotEnv, runCli } from "./cli/commands.js";
import { signalReady, signalStopping } from "./ops/readiness.js";

async function main(): Promise<void> {
  try {
    loadDotEnv();
  } catch (err) {
    process.stderr.write(`labrig-hub: ${(err as Error).message}\n`);
    process.exit(1);
  }
  const { exitCode, served } = await runCli(process.argv.slice(2));
  if (!served) {
    process.exitCode = exitCode;
    return;
  }
  const { hub, logger, address } = served;
  let stopping = false;
  const shutdown = (signal: NodeJS.Signals): void => {
    if (stopping) {
      logger.warn({ signal }, "second signal during shutdown; exiting now");
      process.exit(1);
    }
    stopping = true;
    logger.info({ signal }, "shutting down");
    void signalStopping(logger);
    hub.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error({ err }, "shutdown failed");
        process.exit(1);
      },
    );
  };
  process.on("SIGINT", shutdown);
  process.on("SIGTERM", shutdown);
  // pm2 wait_ready and systemd Type=notify: only now are the database open and the port listening.
  // Not awaited: signals must stop the hub even while systemd-notify waits for systemd.
  void signalReady(address.url, logger);
}

main().catch((err: unknown) => {
  // A hub that cannot start exits non-zero so pm2/systemd restart it (or show why it cannot).
  process.stderr.write(`labrig-hub: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
