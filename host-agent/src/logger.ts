import { pino, type Logger } from "pino";

export type { Logger };

export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/**
 * Structured JSON logs on stdout, which systemd/journald and pm2 collect as they are.
 * Anything called token is redacted wherever it appears, so a config or handshake object
 * logged by mistake still cannot leak the hub token.
 */
export function createLogger(level: LogLevel = "info", destination?: pino.DestinationStream): Logger {
  const options: pino.LoggerOptions = {
    level,
    base: { service: "labrig-agent" },
    redact: { paths: ["token", "*.token", "*.*.token", "auth", "*.auth"], censor: "[redacted]" },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  return destination === undefined ? pino(options) : pino(options, destination);
}
