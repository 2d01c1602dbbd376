import { pino, type Logger } from "pino";
import type { LogLevel } from "./config.js";

export type { Logger };

// Defence in depth: no code path should log a token, but if an object carrying one slips into a log call it is censored.
const REDACT_PATHS = ["token", "*.token", "auth.token", "*.auth.token", "headers.authorization", "*.headers.authorization"];

/**
 * The hub's structured logger: JSON lines to stdout (the daemon) or stderr (admin
 * commands, whose stdout is reserved for their output).
 */
export function createLogger(level: LogLevel, destination: 1 | 2 = 1): Logger {
  return pino(
    {
      level,
      base: { service: "labrig-hub", pid: process.pid },
      redact: { paths: REDACT_PATHS, censor: "[redacted]" },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    pino.destination({ fd: destination, sync: true }),
  );
}
