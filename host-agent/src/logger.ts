import { REDACT_PATHS, REDACTED, scrubbedSink } from "@labrig/shared";
import { pino, type Logger } from "pino";

export type { Logger };

export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/**
 * Structured JSON logs on stdout, which systemd/journald and pm2 collect as they are. As on the hub,
 * fields under credential keys are censored and every finished line is scrubbed of credential shapes
 * (host tokens, API keys, JWTs, Bearer values) and of the `secrets` given (the hub token), so a config,
 * handshake or error logged by mistake still cannot leak them.
 */
export function createLogger(level: LogLevel = "info", destination?: pino.DestinationStream, secrets: readonly (string | null | undefined)[] = []): Logger {
  const sink = destination ?? pino.destination({ fd: 1, sync: true });
  const options: pino.LoggerOptions = {
    level,
    base: { service: "labrig-agent" },
    redact: { paths: REDACT_PATHS, censor: REDACTED },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  return pino(options, scrubbedSink(sink, secrets));
}
