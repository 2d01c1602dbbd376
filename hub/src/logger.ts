import { REDACT_PATHS, REDACTED, scrubbedSink } from "@labrig/shared";
import { pino, type DestinationStream, type Logger } from "pino";
import type { LogLevel } from "./config.js";

export type { Logger };

/**
 * The hub's structured logger: JSON lines to stdout (the daemon), stderr (admin commands, whose
 * stdout is reserved for their output) or a given stream. No code path should log a credential; in
 * case one slips in, fields under credential keys are censored and every finished line is scrubbed
 * of credential shapes and of the `secrets` given (the configured admin key, JWT secret, Gemini key).
 */
export function createLogger(level: LogLevel, destination: 1 | 2 | DestinationStream = 1, secrets: readonly (string | null)[] = []): Logger {
  const sink = typeof destination === "number" ? pino.destination({ fd: destination, sync: true }) : destination;
  return pino(
    {
      level,
      base: { service: "labrig-hub", pid: process.pid },
      redact: { paths: REDACT_PATHS, censor: REDACTED },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    scrubbedSink(sink, secrets),
  );
}
