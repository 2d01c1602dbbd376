import { spawn } from "node:child_process";
import type { Logger } from "../logger.js";

/**
 * Tells systemd (Type=notify) how the hub is doing. Node cannot send the unix datagram sd_notify
 * uses (node:dgram has no AF_UNIX), so this runs systemd's own `systemd-notify`; the unit sets
 * NotifyAccess=all because the message then comes from that child, not the main process.
 * systemd-notify waits until systemd has read the message (a barrier), so the child exiting
 * at once does not lose it. Without NOTIFY_SOCKET (not under systemd) this does nothing.
 */
export function notifySystemd(args: string[], logger: Logger, env: NodeJS.ProcessEnv = process.env): Promise<void> {
  if (!env.NOTIFY_SOCKET) return Promise.resolve();
  return new Promise((resolve) => {
    const child = spawn("systemd-notify", args, { stdio: ["ignore", "ignore", "pipe"], env });
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.once("error", (err) => {
      logger.error({ err, args }, "cannot run systemd-notify (package systemd); systemd will not see the hub's state");
      resolve();
    });
    child.once("exit", (code) => {
      if (code !== 0) logger.error({ args, code, stderr: stderr.trim() }, "systemd-notify failed");
      resolve();
    });
  });
}

/** The hub is serving: pm2's wait_ready (process.send) and systemd's READY=1. */
export async function signalReady(url: string, logger: Logger): Promise<void> {
  process.send?.("ready");
  await notifySystemd(["--ready", `--status=serving on ${url}`], logger);
}

/** The hub is draining: systemd shows it (STOPPING=1) instead of waiting silently. */
export function signalStopping(logger: Logger): Promise<void> {
  // STOPPING=1 as a plain assignment: systemd-notify has a --stopping flag only from systemd 253.
  return notifySystemd(["STOPPING=1", "--status=draining: finishing running actions"], logger);
}
