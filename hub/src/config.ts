import { isAbsolute, join, resolve } from "node:path";
import { LabrigError, describeZodError } from "@labrig/shared";
import { z } from "zod";
import type { HostLimits } from "./services/host-limits.js";
import type { RetentionSettings } from "./services/retention/pruner.js";

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
  /** Hardware failures in a row after which a device's health becomes `unknown`. */
  healthFailureThreshold: number;
  /** How long an action waits on the hub for a free device when the request names no queue_timeout_ms. */
  queueTimeoutMs: number;
  /** Most requests (actions and leases) that may wait on the hub at once. */
  queueMax: number;
  /** Security settings: operator credentials, CORS and failed-auth limiting. */
  security: SecurityConfig;
  /** Campaign runs: leases and artifact retention. */
  runs: RunsConfig;
  /** What one host may cost the hub: devices and resources in its hello, console bytes kept. */
  hostLimits: HostLimitsConfig;
  /** How long history is kept (days per kind of record, 0 = forever) and how often it is pruned. */
  retention: RetentionSettings;
  /** Gemini planning; `apiKey` null means the planner is off and its endpoints answer planner_unavailable. */
  planner: PlannerConfig;
  /** Production operation: drain on stop, metrics access, TLS in front, HTTP keep-alive. */
  ops: OpsConfig;
}

/** How the hub runs in production: drain, metrics access, TLS in front, keep-alive (see each field). */
export interface OpsConfig {
  /** LABRIG_DRAIN_MS: on stop, how long running actions may finish before they are failed. */
  drainMs: number;
  /** LABRIG_METRICS_ACCESS: who may read /metrics. */
  metricsAccess: "loopback" | "token" | "off";
  /** LABRIG_METRICS_TOKEN: the Bearer token /metrics wants when metricsAccess is `token` (a secret). */
  metricsToken: string | null;
  /** LABRIG_TLS_UPSTREAM: TLS is terminated in front of the hub (nginx), so plain HTTP on a LAN address is intended. */
  tlsUpstream: boolean;
  /** LABRIG_HTTP_KEEPALIVE_MS: how long an idle keep-alive connection stays open; longer than any proxy's or client's pool idle time. */
  keepAliveMs: number;
}

/** Planner settings (GEMINI_*, PLANNER_*). The API key is a secret: configSummary shows only whether it is set. */
export interface PlannerConfig {
  apiKey: string | null;
  model: string;
  /** GEMINI_BASE_URL; null leaves the SDK's own choice (which honours GOOGLE_GEMINI_BASE_URL). */
  baseUrl: string | null;
  apiVersion: string;
  timeoutMs: number;
  retries: number;
  retryBaseMs: number;
  stream: boolean;
  requestsPerDay: number;
  tokensPerDay: number;
  /** Longest edge of a frame sent to the model. */
  maxEdge: number;
}

/** Per-host bounds (devices, resources, console bytes): a host cannot make the hub grow without limit. */
export interface HostLimitsConfig extends HostLimits {
  /** LABRIG_CONSOLE_BUFFER_BYTES: console tail kept per resource. */
  consoleResourceBytes: number;
  /** LABRIG_CONSOLE_HOST_BYTES: console tails kept per host, all resources together. */
  consoleHostBytes: number;
}

/** Campaign runner settings. */
export interface RunsConfig {
  /** LABRIG_ARTIFACT_MAX_AGE_DAYS: run artifacts older than this are deleted. */
  artifactMaxAgeDays: number;
  /** LABRIG_ARTIFACT_MAX_BYTES: above this total the oldest run artifacts are deleted. */
  artifactMaxBytes: number;
  /** LABRIG_RUN_LEASE_TTL_S: TTL of the lease a test holds on its device (renewed while it runs). */
  leaseTtlS: number;
  /** LABRIG_RUN_DEVICE_WAIT_MS: longest a test waits for a free matching device. */
  deviceWaitMs: number;
  /** LABRIG_SCHEDULE_MIN_INTERVAL_S: a campaign's cron may not fire more often than this. */
  scheduleMinIntervalS: number;
}

/** Operator authentication and browser-facing settings. Secrets here are never logged (see configSummary). */
export interface SecurityConfig {
  /** LABRIG_ADMIN_KEY: when set, the `env-admin` key is (re)pointed at this value at every start. */
  adminKey: string | null;
  /** JWT_SECRET: enables HS256 JWTs. */
  jwtSecret: string | null;
  /** JWT_PUBLIC_KEY_FILE: PEM (SPKI) public key; enables RS256 JWTs. */
  jwtPublicKeyFile: string | null;
  /** JWT_ROLE_CLAIM: the claim holding viewer/operator/admin. */
  jwtRoleClaim: string;
  /** JWT_JWKS_URL: an OIDC provider's published keys (RS256, PS256, ES256); excludes JWT_PUBLIC_KEY_FILE. */
  jwtJwksUrl: string | null;
  /** JWT_JWKS_TIMEOUT_MS: longest wait for the JWKS endpoint. */
  jwtJwksTimeoutMs: number;
  /** JWT_JWKS_CACHE_S: how long fetched keys are used before they are fetched again. */
  jwtJwksCacheS: number;
  /** JWT_MAX_LIFETIME_S: longest validity a JWT may have (exp − iat, or exp − now without iat). */
  jwtMaxLifetimeS: number;
  /** JWT_ISSUER / JWT_AUDIENCE: checked when set (a warning at start when a JWT method is on and one is unset). */
  jwtIssuer: string | null;
  jwtAudience: string | null;
  /** LABRIG_CORS_ORIGINS: browser origins allowed to call the API and open sockets; empty = same origin only. */
  corsOrigins: string[];
  /** LABRIG_AUTH_FAIL_LIMIT: failed authentications per client IP per minute before 429. */
  authFailLimit: number;
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

const LOOPBACK_HOSTS = new Set(["127.0.0.1", "[::1]", "localhost"]);

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
  LABRIG_HEALTH_FAILURE_THRESHOLD: intFromEnv(1, 1000).default(3),
  LABRIG_QUEUE_TIMEOUT_MS: intFromEnv(0, 600_000).default(30_000),
  LABRIG_QUEUE_MAX: intFromEnv(1, 1_000_000).default(10_000),
  LABRIG_ADMIN_KEY: z
    .string()
    .min(24, "must be at least 24 characters (generate one with: openssl rand -base64 32)")
    .max(512, "must be at most 512 characters")
    .regex(/^[\x21-\x7e]+$/, "must be printable ASCII without spaces (it travels in an Authorization header)")
    .optional(),
  JWT_SECRET: z.string().min(32, "must be at least 32 characters for HS256 (generate one with: openssl rand -base64 48)").optional(),
  JWT_PUBLIC_KEY_FILE: z.string().trim().min(1).optional(),
  JWT_ROLE_CLAIM: z.string().trim().min(1).max(128).default("role"),
  JWT_JWKS_URL: z
    .url("must be a URL such as https://idp.example.com/.well-known/jwks.json")
    .refine((u) => {
      const url = URL.parse(u);
      return url !== null && (url.protocol === "https:" || (url.protocol === "http:" && LOOPBACK_HOSTS.has(url.hostname)));
    }, "must be https:// (plain http only for a provider on this machine: 127.0.0.1, ::1 or localhost)")
    .refine((u) => URL.parse(u)?.username === "" && URL.parse(u)?.password === "", "must not carry credentials (user:password@)")
    .optional(),
  JWT_JWKS_TIMEOUT_MS: intFromEnv(100, 60_000).default(5000),
  JWT_JWKS_CACHE_S: intFromEnv(1, 86_400).default(600),
  JWT_MAX_LIFETIME_S: intFromEnv(60, 30 * 86_400).default(86_400),
  JWT_ISSUER: z.string().trim().min(1).optional(),
  JWT_AUDIENCE: z.string().trim().min(1).optional(),
  LABRIG_CORS_ORIGINS: z
    .string()
    .transform((v) => v.split(",").map((o) => o.trim()).filter((o) => o !== ""))
    .pipe(z.array(z.string().regex(/^https?:\/\/[^/\s]+$/, "each origin must look like https://dash.example.com or http://localhost:5173 (scheme, host, optional port; no path)")))
    .default([]),
  LABRIG_AUTH_FAIL_LIMIT: intFromEnv(1, 1_000_000).default(20),
  LABRIG_MAX_DEVICES_PER_HOST: intFromEnv(1, 256).default(64),
  LABRIG_MAX_RESOURCES_PER_DEVICE: intFromEnv(1, 64).default(32),
  LABRIG_MAX_RESOURCES_PER_HOST: intFromEnv(1, 16_384).default(256),
  LABRIG_CONSOLE_BUFFER_BYTES: intFromEnv(1024, 16 * 1024 ** 2).default(64 * 1024),
  LABRIG_CONSOLE_HOST_BYTES: intFromEnv(1024, 1024 ** 3).default(1024 ** 2),
  LABRIG_ARTIFACT_MAX_AGE_DAYS: intFromEnv(1, 36_500).default(30),
  LABRIG_ARTIFACT_MAX_BYTES: intFromEnv(0, Number.MAX_SAFE_INTEGER).default(5 * 1024 ** 3),
  LABRIG_RUN_LEASE_TTL_S: intFromEnv(5, 86_400).default(60),
  LABRIG_RUN_DEVICE_WAIT_MS: intFromEnv(0, 600_000).default(600_000),
  LABRIG_SCHEDULE_MIN_INTERVAL_S: intFromEnv(1, 86_400).default(60),
  LABRIG_RETAIN_ACTIONS_DAYS: intFromEnv(0, 36_500).default(90),
  LABRIG_RETAIN_HOST_EVENTS_DAYS: intFromEnv(0, 36_500).default(90),
  LABRIG_RETAIN_PLANS_DAYS: intFromEnv(0, 36_500).default(30),
  LABRIG_RETAIN_RUNS_DAYS: intFromEnv(0, 36_500).default(180),
  LABRIG_RETAIN_LEASES_DAYS: intFromEnv(0, 36_500).default(30),
  LABRIG_PRUNE_INTERVAL_S: intFromEnv(1, 86_400).default(3600),
  GEMINI_API_KEY: z.string().trim().min(1).optional(),
  // A current Flash model: fast and cheap enough to be asked once per step of a goal.
  GEMINI_MODEL: z.string().trim().regex(/^[A-Za-z0-9._-]{1,100}$/, "must be a model name such as gemini-2.5-flash").default("gemini-2.5-flash"),
  GEMINI_BASE_URL: z.url("must be a URL such as http://127.0.0.1:9000").optional(),
  // Pinned: the SDK's default API version changes between majors (v1beta in 2.x, v1 in 3.x).
  GEMINI_API_VERSION: z.string().trim().regex(/^v\d+(alpha|beta)?\d*$/, "must be an API version such as v1beta").default("v1beta"),
  GEMINI_TIMEOUT_MS: intFromEnv(100, 600_000).default(30_000),
  GEMINI_RETRIES: intFromEnv(0, 10).default(2),
  GEMINI_RETRY_BASE_MS: intFromEnv(1, 60_000).default(1000),
  GEMINI_STREAM: z.enum(["true", "false"]).transform((v) => v === "true").default(true),
  GEMINI_DAILY_REQUESTS: intFromEnv(1, 10_000_000).default(1000),
  GEMINI_DAILY_TOKENS: intFromEnv(1, 10_000_000_000).default(2_000_000),
  PLANNER_MAX_EDGE: intFromEnv(64, 4096).default(768),
  // Below pm2's kill_timeout and systemd's TimeoutStopSec (both 15 s in deployment/), which also cover closing sockets and the database.
  LABRIG_DRAIN_MS: intFromEnv(0, 600_000).default(10_000),
  LABRIG_METRICS_ACCESS: z.enum(["loopback", "token", "off"]).default("loopback"),
  LABRIG_METRICS_TOKEN: z
    .string()
    .min(24, "must be at least 24 characters (generate one with: openssl rand -base64 32)")
    .max(512, "must be at most 512 characters")
    .regex(/^[\x21-\x7e]+$/, "must be printable ASCII without spaces (it travels in an Authorization header)")
    .optional(),
  LABRIG_TLS_UPSTREAM: z.enum(["true", "false"]).transform((v) => v === "true").default(false),
  // nginx keeps idle upstream connections 60 s by default, Node's fetch 4 s: the hub must outlast both (AWS ALB's rule of thumb).
  LABRIG_HTTP_KEEPALIVE_MS: intFromEnv(1000, 3_600_000).default(65_000),
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
  if (e.JWT_JWKS_URL !== undefined && e.JWT_PUBLIC_KEY_FILE !== undefined) {
    throw new LabrigError("validation_failed", "Invalid hub configuration: JWT_PUBLIC_KEY_FILE and JWT_JWKS_URL are both set; set one (the JWKS carries the provider's keys, rotation included).");
  }
  if (e.LABRIG_METRICS_ACCESS === "token" && e.LABRIG_METRICS_TOKEN === undefined) {
    throw new LabrigError(
      "validation_failed",
      "Invalid hub configuration: LABRIG_METRICS_ACCESS is token but LABRIG_METRICS_TOKEN is unset. Set LABRIG_METRICS_TOKEN (openssl rand -base64 32) or use LABRIG_METRICS_ACCESS=loopback.",
    );
  }
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
    healthFailureThreshold: e.LABRIG_HEALTH_FAILURE_THRESHOLD,
    queueTimeoutMs: e.LABRIG_QUEUE_TIMEOUT_MS,
    queueMax: e.LABRIG_QUEUE_MAX,
    security: {
      adminKey: e.LABRIG_ADMIN_KEY ?? null,
      jwtSecret: e.JWT_SECRET ?? null,
      jwtPublicKeyFile: e.JWT_PUBLIC_KEY_FILE === undefined ? null : isAbsolute(e.JWT_PUBLIC_KEY_FILE) ? e.JWT_PUBLIC_KEY_FILE : resolve(cwd, e.JWT_PUBLIC_KEY_FILE),
      jwtRoleClaim: e.JWT_ROLE_CLAIM,
      jwtJwksUrl: e.JWT_JWKS_URL ?? null,
      jwtJwksTimeoutMs: e.JWT_JWKS_TIMEOUT_MS,
      jwtJwksCacheS: e.JWT_JWKS_CACHE_S,
      jwtMaxLifetimeS: e.JWT_MAX_LIFETIME_S,
      jwtIssuer: e.JWT_ISSUER ?? null,
      jwtAudience: e.JWT_AUDIENCE ?? null,
      corsOrigins: e.LABRIG_CORS_ORIGINS,
      authFailLimit: e.LABRIG_AUTH_FAIL_LIMIT,
    },
    hostLimits: {
      maxDevicesPerHost: e.LABRIG_MAX_DEVICES_PER_HOST,
      maxResourcesPerDevice: e.LABRIG_MAX_RESOURCES_PER_DEVICE,
      maxResourcesPerHost: e.LABRIG_MAX_RESOURCES_PER_HOST,
      consoleResourceBytes: e.LABRIG_CONSOLE_BUFFER_BYTES,
      consoleHostBytes: e.LABRIG_CONSOLE_HOST_BYTES,
    },
    runs: {
      artifactMaxAgeDays: e.LABRIG_ARTIFACT_MAX_AGE_DAYS,
      artifactMaxBytes: e.LABRIG_ARTIFACT_MAX_BYTES,
      leaseTtlS: e.LABRIG_RUN_LEASE_TTL_S,
      deviceWaitMs: e.LABRIG_RUN_DEVICE_WAIT_MS,
      scheduleMinIntervalS: e.LABRIG_SCHEDULE_MIN_INTERVAL_S,
    },
    retention: {
      actionsDays: e.LABRIG_RETAIN_ACTIONS_DAYS,
      hostEventsDays: e.LABRIG_RETAIN_HOST_EVENTS_DAYS,
      plansDays: e.LABRIG_RETAIN_PLANS_DAYS,
      runsDays: e.LABRIG_RETAIN_RUNS_DAYS,
      leasesDays: e.LABRIG_RETAIN_LEASES_DAYS,
      intervalMs: e.LABRIG_PRUNE_INTERVAL_S * 1000,
    },
    planner: {
      apiKey: e.GEMINI_API_KEY ?? null,
      model: e.GEMINI_MODEL,
      baseUrl: e.GEMINI_BASE_URL ?? null,
      apiVersion: e.GEMINI_API_VERSION,
      timeoutMs: e.GEMINI_TIMEOUT_MS,
      retries: e.GEMINI_RETRIES,
      retryBaseMs: e.GEMINI_RETRY_BASE_MS,
      stream: e.GEMINI_STREAM,
      requestsPerDay: e.GEMINI_DAILY_REQUESTS,
      tokensPerDay: e.GEMINI_DAILY_TOKENS,
      maxEdge: e.PLANNER_MAX_EDGE,
    },
    ops: {
      drainMs: e.LABRIG_DRAIN_MS,
      metricsAccess: e.LABRIG_METRICS_ACCESS,
      metricsToken: e.LABRIG_METRICS_TOKEN ?? null,
      tlsUpstream: e.LABRIG_TLS_UPSTREAM,
      keepAliveMs: e.LABRIG_HTTP_KEEPALIVE_MS,
    },
  };
}

/** The secret values of the configuration, which the logger scrubs from every line should one slip into a message. */
export function configSecrets(config: HubConfig): (string | null)[] {
  return [config.security.adminKey, config.security.jwtSecret, config.planner.apiKey, config.ops.metricsToken];
}

/** The configuration as logged at start. Secret fields are masked here: add every new one. */
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
    health_failure_threshold: config.healthFailureThreshold,
    queue_timeout_ms: config.queueTimeoutMs,
    queue_max: config.queueMax,
    // Secrets are reported as set or not, never their value.
    admin_key: config.security.adminKey === null ? "unset" : "set",
    jwt_secret: config.security.jwtSecret === null ? "unset" : "set",
    jwt_public_key_file: config.security.jwtPublicKeyFile,
    jwt_jwks_url: config.security.jwtJwksUrl === null ? "unset" : "set",
    jwt_jwks_timeout_ms: config.security.jwtJwksTimeoutMs,
    jwt_jwks_cache_s: config.security.jwtJwksCacheS,
    jwt_max_lifetime_s: config.security.jwtMaxLifetimeS,
    jwt_issuer: config.security.jwtIssuer ?? "unset",
    jwt_audience: config.security.jwtAudience ?? "unset",
    jwt_role_claim: config.security.jwtRoleClaim,
    cors_origins: config.security.corsOrigins,
    auth_fail_limit: config.security.authFailLimit,
    max_devices_per_host: config.hostLimits.maxDevicesPerHost,
    max_resources_per_device: config.hostLimits.maxResourcesPerDevice,
    max_resources_per_host: config.hostLimits.maxResourcesPerHost,
    console_buffer_bytes: config.hostLimits.consoleResourceBytes,
    console_host_bytes: config.hostLimits.consoleHostBytes,
    artifact_max_age_days: config.runs.artifactMaxAgeDays,
    artifact_max_bytes: config.runs.artifactMaxBytes,
    run_lease_ttl_s: config.runs.leaseTtlS,
    run_device_wait_ms: config.runs.deviceWaitMs,
    schedule_min_interval_s: config.runs.scheduleMinIntervalS,
    retention_days: {
      actions: config.retention.actionsDays,
      host_events: config.retention.hostEventsDays,
      plans: config.retention.plansDays,
      runs: config.retention.runsDays,
      leases: config.retention.leasesDays,
    },
    prune_interval_ms: config.retention.intervalMs,
    gemini_api_key: config.planner.apiKey === null ? "unset (planner off)" : "set",
    gemini_model: config.planner.model,
    gemini_base_url: config.planner.baseUrl ?? "SDK default",
    gemini_api_version: config.planner.apiVersion,
    gemini_timeout_ms: config.planner.timeoutMs,
    gemini_retries: config.planner.retries,
    gemini_stream: config.planner.stream,
    gemini_daily_requests: config.planner.requestsPerDay,
    gemini_daily_tokens: config.planner.tokensPerDay,
    planner_max_edge: config.planner.maxEdge,
    drain_ms: config.ops.drainMs,
    metrics_access: config.ops.metricsAccess,
    metrics_token: config.ops.metricsToken === null ? "unset" : "set",
    tls_upstream: config.ops.tlsUpstream,
    http_keepalive_ms: config.ops.keepAliveMs,
  };
}
