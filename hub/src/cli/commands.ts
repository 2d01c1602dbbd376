import { existsSync } from "node:fs";
import { parseArgs } from "node:util";
import { LabrigError, toLabrigError } from "@labrig/shared";
import { configSecrets, loadConfig, type HubConfig } from "../config.js";
import { HubDatabase } from "../db/database.js";
import { createHub, type Hub, type HubAddress } from "../hub.js";
import { createLogger, type Logger } from "../logger.js";
import { DevicesRepository } from "../repositories/devices.js";
import { HostEventsRepository } from "../repositories/host-events.js";
import { HostsRepository } from "../repositories/hosts.js";
import { ApiKeysRepository } from "../repositories/api-keys.js";
import { ApiKeys } from "../services/api-keys.js";
import { HostTokens } from "../services/tokens.js";
import { runBackup, runRestore } from "./backup-commands.js";

export const USAGE = `Usage: labrig-hub [command]

Commands:
  serve                                   run the hub (default)
  host add NAME [--label key=value]... [--json]
                                          create a host and print its token (shown once)
  host token NAME [--json]                issue a new token for a host; the old one stops working
  host list [--json]                      list hosts and their state
  key add NAME --role ROLE [--json]       create an operator API key (viewer, operator or admin; shown once)
  key list [--json]                       list API keys (never the keys themselves)
  key revoke ID [--json]                  revoke an API key (the last admin key cannot be revoked)
  migrate                                 apply pending database migrations and exit
  backup FILE|DIR [--keep N] [--json]     online backup of the database (safe while the hub runs); a DIR gets
                                          labrig-<UTC time>.db, and --keep N deletes all but the newest N there
  restore FILE [--json]                   check a backup and install it as the database (the hub must be stopped)

Configuration comes from the environment (and ./.env); the README's Configuration section lists
every variable: PORT, LABRIG_BIND, LABRIG_DATA_DIR, LOG_LEVEL, LABRIG_HEARTBEAT_MS, LABRIG_MISSED_HEARTBEATS,
LABRIG_BODY_LIMIT, LABRIG_ACTION_TIMEOUT_MS, LABRIG_HEALTH_FAILURE_THRESHOLD, LABRIG_QUEUE_TIMEOUT_MS,
LABRIG_QUEUE_MAX, LABRIG_ADMIN_KEY, JWT_SECRET, JWT_PUBLIC_KEY_FILE, JWT_JWKS_URL,
JWT_JWKS_TIMEOUT_MS, JWT_JWKS_CACHE_S, JWT_MAX_LIFETIME_S, JWT_ROLE_CLAIM, JWT_ISSUER, JWT_AUDIENCE,
LABRIG_CORS_ORIGINS, LABRIG_AUTH_FAIL_LIMIT, LABRIG_MAX_DEVICES_PER_HOST, LABRIG_MAX_RESOURCES_PER_DEVICE,
LABRIG_MAX_RESOURCES_PER_HOST, LABRIG_CONSOLE_BUFFER_BYTES, LABRIG_CONSOLE_HOST_BYTES, LABRIG_ARTIFACT_MAX_AGE_DAYS, LABRIG_ARTIFACT_MAX_BYTES,
LABRIG_RUN_LEASE_TTL_S, LABRIG_RUN_DEVICE_WAIT_MS, LABRIG_SCHEDULE_MIN_INTERVAL_S, LABRIG_RETAIN_ACTIONS_DAYS,
LABRIG_RETAIN_HOST_EVENTS_DAYS, LABRIG_RETAIN_PLANS_DAYS, LABRIG_RETAIN_RUNS_DAYS, LABRIG_RETAIN_LEASES_DAYS,
LABRIG_PRUNE_INTERVAL_S, GEMINI_API_KEY, GEMINI_MODEL, GEMINI_BASE_URL,
GEMINI_API_VERSION, GEMINI_TIMEOUT_MS, GEMINI_RETRIES, GEMINI_RETRY_BASE_MS, GEMINI_STREAM,
GEMINI_DAILY_REQUESTS, GEMINI_DAILY_TOKENS, PLANNER_MAX_EDGE, LABRIG_DRAIN_MS, LABRIG_METRICS_ACCESS,
LABRIG_METRICS_TOKEN, LABRIG_TLS_UPSTREAM, LABRIG_HTTP_KEEPALIVE_MS.
`;

export interface CliIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  env: NodeJS.ProcessEnv;
}

/** What `serve` leaves running, so the entry point can wire signals to it. */
export interface Served {
  hub: Hub;
  logger: Logger;
  address: HubAddress;
}

export type CliResult = { exitCode: number; served?: Served };

const defaultIo: CliIo = {
  stdout: (t) => process.stdout.write(t),
  stderr: (t) => process.stderr.write(t),
  env: process.env,
};

class UsageError extends Error {}

/** Opens the database for an admin command (migrating it), runs `fn`, closes it. Logs go to stderr: stdout is the command's output. */
function withAdmin<T>(config: HubConfig, fn: (tokens: HostTokens, hosts: HostsRepository, devices: DevicesRepository, database: HubDatabase) => T): T {
  const logger = createLogger(config.logLevel === "info" ? "warn" : config.logLevel, 2, configSecrets(config));
  const database = new HubDatabase(config.dbPath, logger);
  database.start();
  try {
    const hosts = new HostsRepository(database.db);
    const events = new HostEventsRepository(database.db);
    return fn(new HostTokens(hosts, events), hosts, new DevicesRepository(database.db), database);
  } finally {
    database.stop();
  }
}

function parseLabels(values: readonly string[]): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const v of values) {
    const eq = v.indexOf("=");
    if (eq <= 0) throw new UsageError(`--label takes key=value, got '${v}'.`);
    labels[v.slice(0, eq)] = v.slice(eq + 1);
  }
  return labels;
}

/**
 * Runs one `labrig-hub` command. Returns the exit code (and for `serve`, the running hub)
 * instead of exiting, so tests can drive it in-process.
 */
export async function runCli(argv: readonly string[], io: CliIo = defaultIo): Promise<CliResult> {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      allowPositionals: true,
      strict: true,
      options: { label: { type: "string", multiple: true }, role: { type: "string" }, keep: { type: "string" }, json: { type: "boolean", default: false }, help: { type: "boolean", short: "h", default: false } },
    });
  } catch (err) {
    io.stderr(`${(err as Error).message}\n\n${USAGE}`);
    return { exitCode: 2 };
  }
  const [command = "serve", sub, name, ...extra] = parsed.positionals;
  const json = parsed.values.json === true;
  if (parsed.values.help || command === "help") {
    io.stdout(USAGE);
    return { exitCode: 0 };
  }

  try {
    const config = loadConfig(io.env);
    switch (command) {
      case "serve": {
        if (sub !== undefined) throw new UsageError(`serve takes no arguments, got '${sub}'.`);
        const logger = createLogger(config.logLevel, 1, configSecrets(config));
        const hub = createHub(config, { logger, announce: io.stderr });
        const address = await hub.start();
        return { exitCode: 0, served: { hub, logger, address } };
      }
      case "migrate": {
        if (sub !== undefined) throw new UsageError(`migrate takes no arguments, got '${sub}'.`);
        const version = withAdmin(config, (_t, _h, _d, database) => database.schemaVersion());
        io.stdout(json ? `${JSON.stringify({ schema_version: version })}\n` : `Database ${config.dbPath} is at schema version ${version}.\n`);
        return { exitCode: 0 };
      }
      case "backup": {
        if (sub === undefined || name !== undefined) throw new UsageError("backup takes one FILE or DIR.");
        const keep = parsed.values.keep;
        if (keep !== undefined && !/^[1-9]\d*$/.test(keep)) throw new UsageError("--keep takes a whole number of backups, at least 1.");
        return { exitCode: await runBackup(config, sub, keep === undefined ? null : Number(keep), json, io) };
      }
      case "restore":
        if (sub === undefined || name !== undefined) throw new UsageError("restore takes one FILE.");
        if (parsed.values.keep !== undefined) throw new UsageError("--keep belongs to 'backup'.");
        return { exitCode: runRestore(config, sub, json, io) };
      case "host":
        if (parsed.values.role !== undefined) throw new UsageError("--role belongs to 'key add'.");
        return { exitCode: runHostCommand(config, sub, name, extra, parsed.values.label ?? [], json, io) };
      case "key":
        if (parsed.values.label !== undefined) throw new UsageError("--label belongs to 'host add'.");
        return { exitCode: runKeyCommand(config, sub, name, extra, parsed.values.role, json, io) };
      default:
        throw new UsageError(`Unknown command '${command}'.`);
    }
  } catch (err) {
    if (err instanceof UsageError) {
      io.stderr(`${err.message}\n\n${USAGE}`);
      return { exitCode: 2 };
    }
    const e = toLabrigError(err);
    io.stderr(json ? `${JSON.stringify(e.toEnvelope())}\n` : `labrig-hub: ${e.message}\n`);
    return { exitCode: 1 };
  }
}

function runHostCommand(config: HubConfig, sub: string | undefined, name: string | undefined, extra: string[], labelArgs: string[], json: boolean, io: CliIo): number {
  if (extra.length > 0) throw new UsageError(`Unexpected arguments: ${extra.join(" ")}.`);
  switch (sub) {
    case "add": {
      if (!name) throw new UsageError("host add needs a NAME.");
      const labels = parseLabels(labelArgs);
      const { id, token } = withAdmin(config, (tokens) => tokens.add(name, labels));
      if (json) io.stdout(`${JSON.stringify({ id, token })}\n`);
      else io.stdout(`Host '${id}' created. Its token (shown only once; put it in the agent's config):\n${token}\n`);
      return 0;
    }
    case "token": {
      if (!name) throw new UsageError("host token needs a NAME.");
      if (labelArgs.length > 0) throw new UsageError("host token takes no --label.");
      const token = withAdmin(config, (tokens) => tokens.rotate(name));
      if (json) io.stdout(`${JSON.stringify({ id: name, token })}\n`);
      else io.stdout(`New token for '${name}' (the old one no longer works; a connected agent using it is disconnected):\n${token}\n`);
      return 0;
    }
    case "list": {
      if (name) throw new UsageError(`host list takes no NAME, got '${name}'.`);
      const rows = withAdmin(config, (_t, hosts, devices) =>
        hosts.list().map((h) => ({ id: h.id, state: h.state, last_seen: h.lastSeen, agent_version: h.agentVersion, labels: h.labels, devices: devices.listForHost(h.id).map((d) => d.id) })),
      );
      if (json) {
        io.stdout(`${JSON.stringify({ hosts: rows })}\n`);
      } else if (rows.length === 0) {
        io.stdout("No hosts yet. Add one with: labrig-hub host add NAME\n");
      } else {
        const lines = rows.map((r) => [r.id, r.state, r.last_seen ?? "never", r.agent_version ?? "-", r.devices.join(",") || "-"].join("\t"));
        io.stdout(`${["ID", "STATE", "LAST_SEEN", "AGENT", "DEVICES"].join("\t")}\n${lines.join("\n")}\n`);
      }
      return 0;
    }
    default:
      throw new UsageError(sub ? `Unknown host command '${sub}'.` : "host needs a command: add, token or list.");
  }
}

/** Opens the database for a key command (migrating it), runs `fn` with the key service, closes it. */
function withKeys<T>(config: HubConfig, fn: (keys: ApiKeys) => T): T {
  return withAdmin(config, (_t, _h, _d, database) => fn(new ApiKeys(new ApiKeysRepository(database.db))));
}

function runKeyCommand(config: HubConfig, sub: string | undefined, arg: string | undefined, extra: string[], role: string | undefined, json: boolean, io: CliIo): number {
  if (extra.length > 0) throw new UsageError(`Unexpected arguments: ${extra.join(" ")}.`);
  if (sub !== "add" && role !== undefined) throw new UsageError("--role belongs to 'key add'.");
  switch (sub) {
    case "add": {
      if (!arg) throw new UsageError("key add needs a NAME.");
      if (role === undefined) throw new UsageError("key add needs --role viewer, operator or admin.");
      const created = withKeys(config, (keys) => keys.create({ name: arg, role }));
      if (json) io.stdout(`${JSON.stringify(created)}\n`);
      else io.stdout(`API key '${created.name}' (${created.role}, id ${created.id}) created. The key (shown only once; send it as 'Authorization: Bearer <key>'):\n${created.key}\n`);
      return 0;
    }
    case "list": {
      if (arg) throw new UsageError(`key list takes no argument, got '${arg}'.`);
      const keys = withKeys(config, (k) => k.list());
      if (json) io.stdout(`${JSON.stringify({ keys })}\n`);
      else if (keys.length === 0) io.stdout("No API keys yet. The hub creates an admin key on its first start; or run: labrig-hub key add NAME --role admin\n");
      else {
        const lines = keys.map((k) => [k.id, k.name, k.role, k.created_at, k.last_used_at ?? "never"].join("\t"));
        io.stdout(`${["ID", "NAME", "ROLE", "CREATED", "LAST_USED"].join("\t")}\n${lines.join("\n")}\n`);
      }
      return 0;
    }
    case "revoke": {
      if (!arg) throw new UsageError("key revoke needs an ID (see labrig-hub key list).");
      const revoked = withKeys(config, (keys) => keys.revoke(arg));
      if (json) io.stdout(`${JSON.stringify({ id: revoked.id, name: revoked.name, revoked: true })}\n`);
      else io.stdout(`API key '${revoked.name}' (${revoked.id}) revoked; it no longer works.\n`);
      return 0;
    }
    default:
      throw new UsageError(sub ? `Unknown key command '${sub}'.` : "key needs a command: add, list or revoke.");
  }
}

/** Loads ./.env into process.env when present (existing variables win), as the architecture promises. */
export function loadDotEnv(path = ".env"): void {
  if (!existsSync(path)) return;
  try {
    process.loadEnvFile(path);
  } catch (err) {
    throw new LabrigError("validation_failed", `Cannot read ${path}: ${(err as Error).message}. Fix or remove the file.`, { cause: err });
  }
}
