import { isAbsolute, join, resolve } from "node:path";
import { LabrigError, describeZodError } from "@labrig/shared";
import { z } from "zod";

/** Everything the hub reads from its environment, validated once at start. */
export interface HubConfig {
  /** TCP port for REST and socket.io; 0 picks any free port. */
  port: number;
  /** Address to listen on. */
  bind: string;
  /** Directory holding the database (and later artifacts); created if missing. */
  dataDir: string;
  /** `<dataDir>/labrig.db`. */
  dbPath: string;
  logLevel: LogLevel;
  /** Interval agents are told to send heartbeats at. */
  heartbeatIntervalMs: number;
  /** A host is offline after this many missed heartbeats. */
  missedHeartbeats: number;
  /** express.json body limit, in the `bytes` package's syntax (`256kb`, `1mb`). */
  bodyLimit: string;
  /** Base per-action timeout handed to actionTimeoutMs. */
  actionTimeoutMs: number;
}

export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

const intFromEnv = (min: number, max: number) =>
  z
    .string()
    .trim()
    .regex(/^\d+$/, "must be a whole number")
    .transform(Number)
    .pipe(z.number().int().min(min).max(max));

// Keys are the environment variable names, so every validation message names the variable to fix.
const EnvSchema = z.object({
  PORT: intFromEnv(0, 65_535).default(8080),
  LABRIG_BIND: z.string().trim().min(1, "must be an address such as 0.0.0.0 or 127.0.0.1").default("0.0.0.0"),
  LABRIG_DATA_DIR: z.string().trim().min(1, "must be a directory path").default("./data"),
  LOG_LEVEL: z.enum(LOG_LEVELS).default("info"),
  LABRIG_HEARTBEAT_MS: intFromEnv(50, 300_000).default(5000),
  LABRIG_MISSED_HEARTBEATS: intFromEnv(1, 100).default(3),
  LABRIG_BODY_LIMIT: z
    .string()
    .trim()
    .regex(/^\d+(b|kb|mb)?$/i, "must be a size such as 256kb or 1mb")
    .default("256kb"),
  LABRIG_ACTION_TIMEOUT_MS: intFromEnv(100, 3_600_000).default(10_000),
});

/**
 * Reads the hub's configuration from `env` (default: process.env).
 * Empty variables count as unset, so `PORT=` in a unit file falls back to the default.
 * Throws `validation_failed` naming every bad variable at once.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): HubConfig {
  const raw: Record<string, string> = {};
  for (const key of Object.keys(EnvSchema.shape)) {
    const value = env[key];
    if (value !== undefined && value.trim() !== "") raw[key] = value;
  }
  const parsed = EnvSchema.safeParse(raw);
  if (!parsed.success) {
    throw new LabrigError(
      "validation_failed",
      `Invalid hub configuration: ${describeZodError(parsed.error)}. Fix these environment variables (or .env) and start again.`,
    );
  }
  const e = parsed.data;
  const dataDir = isAbsolute(e.LABRIG_DATA_DIR) ? e.LABRIG_DATA_DIR : resolve(cwd, e.LABRIG_DATA_DIR);
  return {
    port: e.PORT,
    bind: e.LABRIG_BIND,
    dataDir,
    dbPath: join(dataDir, "labrig.db"),
    logLevel: e.LOG_LEVEL,
    heartbeatIntervalMs: e.LABRIG_HEARTBEAT_MS,
    missedHeartbeats: e.LABRIG_MISSED_HEARTBEATS,
    bodyLimit: e.LABRIG_BODY_LIMIT,
    actionTimeoutMs: e.LABRIG_ACTION_TIMEOUT_MS,
  };
}

/** The configuration as logged at start. The hub has no secrets in its config yet; new secret fields must be masked here. */
export function configSummary(config: HubConfig): Record<string, unknown> {
  return {
    port: config.port,
    bind: config.bind,
    data_dir: config.dataDir,
    db_path: config.dbPath,
    log_level: config.logLevel,
    heartbeat_interval_ms: config.heartbeatIntervalMs,
    missed_heartbeats: config.missedHeartbeats,
    body_limit: config.bodyLimit,
    action_timeout_ms: config.actionTimeoutMs,
  };
}
