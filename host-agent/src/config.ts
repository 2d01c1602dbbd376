import { readFileSync } from "node:fs";
import { dirname, isAbsolute, resolve } from "node:path";
import { IdSchema, LabelsSchema, LabrigError } from "@labrig/shared";
import { parseDocument } from "yaml";
import { z } from "zod";
import { LOG_LEVELS } from "./logger.js";

/** Where the agent looks for its config when neither --config nor LABRIG_AGENT_CONFIG says otherwise. */
export const DEFAULT_CONFIG_PATH = "/etc/labrig/agent.yaml";

const Bit = z.union([z.literal(0), z.literal(1)]);

const SerialResourceConfigSchema = z.strictObject({
  name: IdSchema,
  kind: z.literal("serial"),
  path: z.string().min(1),
  baud_rate: z.number().int().positive().default(115_200),
  data_bits: z.union([z.literal(5), z.literal(6), z.literal(7), z.literal(8)]).default(8),
  parity: z.enum(["none", "even", "odd"]).default("none"),
  stop_bits: z.union([z.literal(1), z.literal(2)]).default(1),
  rts_cts: z.boolean().default(false),
  // Some bootloaders drop characters typed faster than they poll the UART; a per-character delay is the usual cure.
  tx_char_delay_ms: z.number().min(0).max(1000).default(0),
  // The on-disk console log (data_dir/console/<device>-<resource>.log) rotates .log → .log.1 → …; total ≤ log_max_bytes × log_files.
  log_max_bytes: z.number().int().min(4096).max(1024 ** 3).default(1024 * 1024),
  log_files: z.number().int().min(1).max(100).default(3),
});

const lineFields = {
  line: z.number().int().min(0).max(4095),
  chip: z.string().min(1).nullable().default(null),
  active_low: z.boolean().default(false),
};

const PowerResourceConfigSchema = z.strictObject({
  name: IdSchema,
  kind: z.literal("power"),
  ...lineFields,
  // Off by default: an agent restart must not power a board up on its own.
  initial: Bit.default(0),
  cycle_off_ms: z.number().int().min(0).max(600_000).nullable().default(null),
});

const GpioResourceConfigSchema = z.strictObject({
  name: IdSchema,
  kind: z.literal("gpio"),
  ...lineFields,
  // Input by default: a line nobody said to drive is never driven.
  direction: z.enum(["in", "out"]).default("in"),
  initial: Bit.optional(),
  // Inputs only: which changes are reported to the hub as device.state, after the level held for debounce_ms.
  edge: z.enum(["none", "rising", "falling", "both"]).default("none"),
  debounce_ms: z.number().int().min(0).max(10_000).default(20),
  // Inputs only: the pull resistor; the character-device driver sets it, sysfs cannot (set it in config.txt there).
  bias: z.enum(["as-is", "pull-up", "pull-down", "disabled"]).default("as-is"),
  // Used where the line has no edge interrupts (or is not a real pin): the level is sampled this often.
  poll_ms: z.number().int().min(5).max(60_000).default(50),
});

const VideoResourceConfigSchema = z.strictObject({
  name: IdSchema,
  kind: z.literal("video"),
  // v4l2 = a capture dongle or camera read through ffmpeg; test-pattern = generated frames (simulated rigs, tests).
  source: z.enum(["v4l2", "test-pattern"]).default("v4l2"),
  path: z.string().min(1).optional(),
  width: z.number().int().min(16).max(4096).multipleOf(2).default(640),
  height: z.number().int().min(16).max(4096).multipleOf(2).default(480),
  fps: z.number().int().min(1).max(60).default(15),
  // What the dongle delivers over V4L2; most cheap HDMI dongles offer MJPEG at full rate and YUYV only at low rates.
  input_format: z.enum(["mjpeg", "yuyv422"]).default("mjpeg"),
  codec: z.enum(["avc1", "vp8"]).default("vp8"),
  bitrate: z.number().int().min(50_000).max(20_000_000).default(1_000_000),
});

const ResourceConfigSchema = z.discriminatedUnion("kind", [SerialResourceConfigSchema, PowerResourceConfigSchema, GpioResourceConfigSchema, VideoResourceConfigSchema], {
  error: "kind must be one of serial, power, gpio, video",
});

const DeviceConfigSchema = z.strictObject({
  id: IdSchema,
  labels: LabelsSchema.default({}),
  capabilities: z.array(z.string().min(1).max(64)).default([]),
  simulated: z.boolean().default(false),
  // Simulated devices only: a file the board appends every line it receives to (the fault suite counts them).
  sim_journal: z.string().min(1).optional(),
  resources: z.array(ResourceConfigSchema).max(64).default([]),
});

const HubConfigSchema = z.strictObject({
  url: z.url({ protocol: /^https?$/, error: "must be an http:// or https:// URL, e.g. http://hub.local:8080" }),
  token: z.string().min(1).optional(),
  token_file: z.string().min(1).optional(),
  // ops: PEM file of the CA (or the self-signed certificate) the hub's TLS certificate must chain to; pins it instead of the system CAs.
  ca_file: z.string().min(1).optional(),
});

const GpioConfigSchema = z.strictObject({
  // auto: the character device where /dev/gpiochip* exists, sysfs where only sysfs_root does, memory elsewhere.
  driver: z.enum(["auto", "chardev", "sysfs", "memory"]).default("auto"),
  // Where /dev/gpiochipN are looked for (a test or a container may move it).
  dev_dir: z.string().min(1).default("/dev"),
  sysfs_root: z.string().min(1).default("/sys/class/gpio"),
});

const ArtifactsConfigSchema = z.strictObject({
  // Snapshots and clips wait on the agent until the hub fetches them; beyond these bounds the oldest go first.
  max_bytes: z.number().int().min(1_048_576).default(256 * 1024 * 1024),
  max_count: z.number().int().min(1).max(100_000).default(1000),
  max_age_s: z.number().int().min(60).default(86_400),
});

const RawConfigSchema = z.strictObject({
  host: IdSchema,
  hub: HubConfigSchema,
  data_dir: z.string().min(1).default("./agent-data"),
  log_level: z.enum(LOG_LEVELS).default("info"),
  gpio: GpioConfigSchema.prefault({}),
  artifacts: ArtifactsConfigSchema.prefault({}),
  // Reads V4L2 dongles and writes clip containers; a bare name is looked up on PATH.
  ffmpeg_path: z.string().min(1).default("ffmpeg"),
  devices: z.array(DeviceConfigSchema).max(256).default([]),
});

interface CrossIssue {
  path: PropertyKey[];
  message: string;
}

const asRecord = (v: unknown): Record<string, unknown> | null => (v !== null && typeof v === "object" && !Array.isArray(v) ? (v as Record<string, unknown>) : null);
const asArray = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);

/**
 * Checks that span several keys. They run on the raw input, beside the schema, because a
 * zod refinement is skipped as soon as any field below it is wrong, and people should see
 * every problem in one go.
 */
function crossFieldIssues(raw: Record<string, unknown>): CrossIssue[] {
  const issues: CrossIssue[] = [];
  const hub = asRecord(raw.hub);
  if (hub) {
    const hasToken = hub.token !== undefined;
    const hasFile = hub.token_file !== undefined;
    if (hasToken && hasFile) issues.push({ path: ["hub", "token_file"], message: "set only one of hub.token and hub.token_file" });
    if (!hasToken && !hasFile) {
      issues.push({ path: ["hub", "token"], message: "missing: set hub.token, hub.token_file, or the LABRIG_HUB_TOKEN environment variable to this host's enrollment token" });
    }
  }
  const ids = new Map<unknown, number>();
  const lines = new Map<string, string>();
  asArray(raw.devices).forEach((dv, i) => {
    const d = asRecord(dv);
    if (!d) return;
    if (typeof d.id === "string") {
      const first = ids.get(d.id);
      if (first !== undefined) issues.push({ path: ["devices", i, "id"], message: `duplicate device id '${d.id}' (also devices[${first}])` });
      else ids.set(d.id, i);
    }
    const resources = asArray(d.resources).map(asRecord);
    const names = new Map<unknown, number>();
    resources.forEach((r, j) => {
      if (!r) return;
      if (typeof r.name === "string") {
        const first = names.get(r.name);
        if (first !== undefined) {
          issues.push({ path: ["devices", i, "resources", j, "name"], message: `duplicate resource name '${r.name}' (also resources[${first}]); give each resource its own name` });
        } else {
          names.set(r.name, j);
        }
      }
      if (r.kind === "video") {
        const source = r.source ?? "v4l2";
        if (source === "v4l2" && typeof r.path !== "string") {
          issues.push({ path: ["devices", i, "resources", j, "path"], message: "a v4l2 video source needs path, e.g. path: /dev/v4l/by-id/usb-…-video-index0 (ls /dev/v4l/by-id)" });
        }
        if (source === "test-pattern" && r.path !== undefined) {
          issues.push({ path: ["devices", i, "resources", j, "path"], message: "a test-pattern source reads no device; remove path or set source: v4l2" });
        }
      }
      if (r.kind === "gpio" && (r.direction ?? "in") === "in" && r.initial !== undefined) {
        issues.push({ path: ["devices", i, "resources", j, "initial"], message: "only outputs have an initial value; remove it or set direction: out" });
      }
      if (r.kind === "gpio" && r.direction === "out" && r.edge !== undefined && r.edge !== "none") {
        issues.push({ path: ["devices", i, "resources", j, "edge"], message: "only inputs are watched for edges; remove edge or set direction: in" });
      }
      if (r.kind === "gpio" && r.direction === "out" && r.bias !== undefined && r.bias !== "as-is") {
        issues.push({ path: ["devices", i, "resources", j, "bias"], message: "only inputs have a pull resistor setting; remove bias or set direction: in" });
      }
      // Lines of simulated devices are private in-memory lines, so only real pins can clash.
      if (d.simulated === true || (r.kind !== "gpio" && r.kind !== "power") || typeof r.line !== "number") return;
      const key = `${typeof r.chip === "string" ? r.chip : ""}:${r.line}`;
      const owner = lines.get(key);
      if (owner !== undefined) {
        issues.push({ path: ["devices", i, "resources", j, "line"], message: `line ${r.line} is already used by ${owner}; one pin can belong to one resource only` });
      } else {
        lines.set(key, `devices[${i}].resources[${j}] (${String(d.id)}/${String(r.name)})`);
      }
    });
    if (d.sim_journal !== undefined && d.simulated !== true) {
      issues.push({ path: ["devices", i, "sim_journal"], message: "only a simulated board keeps a journal; remove sim_journal or set simulated: true" });
    }
    const kinds = new Set(resources.map((r) => r?.kind));
    if (d.simulated === true && (!kinds.has("serial") || !kinds.has("power"))) {
      issues.push({ path: ["devices", i, "simulated"], message: "a simulated device needs a serial resource (its console) and a power resource (what boots it)" });
    }
  });
  return issues;
}

type RawConfig = z.infer<typeof RawConfigSchema>;
export type DeviceConfig = z.infer<typeof DeviceConfigSchema>;
export type ResourceConfig = z.infer<typeof ResourceConfigSchema>;
export type SerialResourceConfig = z.infer<typeof SerialResourceConfigSchema>;
export type PowerResourceConfig = z.infer<typeof PowerResourceConfigSchema>;
export type GpioResourceConfig = z.infer<typeof GpioResourceConfigSchema>;
export type VideoResourceConfig = z.infer<typeof VideoResourceConfigSchema>;
export type ArtifactsConfig = z.infer<typeof ArtifactsConfigSchema>;

/** The validated config, with relative paths resolved and the hub token read. */
export interface AgentConfig extends Omit<RawConfig, "hub"> {
  /** ca_file and ca (its PEM text) only when hub.ca_file is set. */
  hub: { url: string; token: string; token_file: string | null; ca_file?: string; ca?: string };
  /** Absolute path of the file this config came from (null when built in code). */
  config_path: string | null;
}

/** A config that cannot be used; `issues` holds one line per problem, each naming its key. */
export class ConfigError extends LabrigError {
  readonly issues: string[];
  constructor(source: string, issues: string[]) {
    super("validation_failed", `Invalid agent config ${source}:\n  - ${issues.join("\n  - ")}`, { details: issues });
    this.name = "ConfigError";
    this.issues = issues;
  }
}

const ENV_OVERRIDES = {
  LABRIG_HUB_URL: "hub.url",
  LABRIG_HUB_TOKEN: "hub.token",
  LOG_LEVEL: "log_level",
  LABRIG_FFMPEG: "ffmpeg_path",
} as const;

/** `devices[0].resources[1].baud_rate` — the way people read paths into YAML. */
export function formatKeyPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const key of path) {
    if (typeof key === "number") out += `[${key}]`;
    else out += out === "" ? String(key) : `.${String(key)}`;
  }
  return out === "" ? "(top level)" : out;
}

function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let cur: unknown = root;
  for (const key of path) {
    if (cur === null || typeof cur !== "object") return undefined;
    cur = (cur as Record<PropertyKey, unknown>)[key];
  }
  return cur;
}

function describeValue(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "a list";
  if (typeof v === "object") return "a mapping";
  if (typeof v === "string") return `the string ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v)}`;
  return `${typeof v} ${String(v)}`;
}

const HINTS: Record<string, string> = {
  baud_rate: "e.g. baud_rate: 115200",
  line: "the BCM GPIO number, e.g. line: 17",
  path: "e.g. path: /dev/serial/by-id/usb-FTDI_…",
  id: "e.g. id: dut1",
  host: "e.g. host: pi-rack1",
};

/** One readable line per zod issue: the key path, what is wrong, and how to fix it where that helps. */
function describeIssue(issue: z.core.$ZodIssue, raw: unknown, envPaths: Map<string, string>): string {
  const path = issue.path;
  const key = formatKeyPath(path);
  const env = envPaths.get(key);
  const where = env === undefined ? key : `${key} (from ${env})`;
  const last = path[path.length - 1];
  const hint = typeof last === "string" ? HINTS[last] : undefined;
  const withHint = (msg: string): string => (hint === undefined ? msg : `${msg} (${hint})`);
  switch (issue.code) {
    case "invalid_type": {
      const actual = valueAt(raw, path);
      const expected = issue.expected === "object" ? "a mapping" : issue.expected === "array" ? "a list" : `a ${issue.expected}`;
      if (actual === undefined) return `${where}: required, expected ${expected}${hint ? ` (${hint})` : ""}`;
      return `${where}: ${withHint(`expected ${expected}, got ${describeValue(actual)}`)}`;
    }
    case "unrecognized_keys":
      return `${where}: unknown key${issue.keys.length > 1 ? "s" : ""} ${issue.keys.map((k) => `'${k}'`).join(", ")}; check the spelling (keys are snake_case)`;
    case "invalid_value":
      return `${where}: must be one of ${issue.values.map((v) => JSON.stringify(v)).join(", ")}, got ${describeValue(valueAt(raw, path))}`;
    case "invalid_union":
      return `${where}: ${issue.message}`;
    default:
      return `${where}: ${withHint(issue.message)}`;
  }
}

function resolvePath(baseDir: string, p: string): string {
  return isAbsolute(p) ? p : resolve(baseDir, p);
}

/**
 * Validates a parsed config object. Relative paths resolve against `baseDir`
 * (the config file's directory). Throws ConfigError listing every problem at once.
 */
export function parseConfig(
  input: unknown,
  options: { baseDir: string; env?: NodeJS.ProcessEnv; source?: string; configPath?: string | null },
): AgentConfig {
  const env = options.env ?? {};
  const source = options.source ?? "(inline)";
  if (input !== null && input !== undefined && (typeof input !== "object" || Array.isArray(input))) {
    throw new ConfigError(source, [`(top level): expected a mapping of keys (host:, hub:, devices:), got ${describeValue(input)}`]);
  }
  // Shallow copies: env overrides are applied to these, never to the caller's object.
  const raw: Record<string, unknown> = { ...((input ?? {}) as Record<string, unknown>) };

  const envPaths = new Map<string, string>();
  const hubRaw = raw.hub;
  const hub: Record<string, unknown> = hubRaw !== null && typeof hubRaw === "object" && !Array.isArray(hubRaw) ? { ...(hubRaw as Record<string, unknown>) } : {};
  let hubTouched = false;
  for (const [name, key] of Object.entries(ENV_OVERRIDES)) {
    const value = env[name];
    if (value === undefined || value === "") continue;
    envPaths.set(key, name);
    if (key === "hub.url") {
      hub.url = value;
      hubTouched = true;
    } else if (key === "hub.token") {
      hub.token = value;
      // The environment wins over the file: a token given there replaces any token_file.
      delete hub.token_file;
      hubTouched = true;
    } else if (key === "ffmpeg_path") {
      raw.ffmpeg_path = value;
    } else {
      raw.log_level = value;
    }
  }
  if (hubTouched || (hubRaw !== null && typeof hubRaw === "object" && !Array.isArray(hubRaw))) raw.hub = hub;

  const parsed = RawConfigSchema.safeParse(raw);
  const problems = [
    ...(parsed.success ? [] : parsed.error.issues.map((issue) => describeIssue(issue, raw, envPaths))),
    ...crossFieldIssues(raw).map((i) => `${formatKeyPath(i.path)}: ${i.message}`),
  ];
  if (!parsed.success || problems.length > 0) throw new ConfigError(source, problems);
  const c = parsed.data;
  const base = options.baseDir;

  let token = c.hub.token;
  let tokenFile: string | null = null;
  if (token === undefined) {
    tokenFile = resolvePath(base, c.hub.token_file as string);
    try {
      token = readFileSync(tokenFile, "utf8").trim();
    } catch (err) {
      throw new ConfigError(source, [`hub.token_file: cannot read ${tokenFile} (${(err as Error).message}); put this host's enrollment token there, readable by the agent's user`]);
    }
    if (token === "") throw new ConfigError(source, [`hub.token_file: ${tokenFile} is empty; put this host's enrollment token there`]);
  }

  let pinned: { ca_file: string; ca: string } | null = null;
  if (c.hub.ca_file !== undefined) {
    const caFile = resolvePath(base, c.hub.ca_file);
    let ca: string;
    try {
      ca = readFileSync(caFile, "utf8");
    } catch (err) {
      throw new ConfigError(source, [`hub.ca_file: cannot read ${caFile} (${(err as Error).message}); copy the hub's certificate (hub.crt from deployment/nginx/make-cert.sh) there`]);
    }
    if (!ca.includes("-----BEGIN CERTIFICATE-----")) throw new ConfigError(source, [`hub.ca_file: ${caFile} holds no PEM certificate (-----BEGIN CERTIFICATE-----)`]);
    pinned = { ca_file: caFile, ca };
  }

  return {
    ...c,
    hub: { url: c.hub.url.replace(/\/+$/, ""), token, token_file: tokenFile, ...(pinned ?? {}) },
    data_dir: resolvePath(base, c.data_dir),
    gpio: { ...c.gpio, dev_dir: resolvePath(base, c.gpio.dev_dir), sysfs_root: resolvePath(base, c.gpio.sysfs_root) },
    ffmpeg_path: c.ffmpeg_path.includes("/") ? resolvePath(base, c.ffmpeg_path) : c.ffmpeg_path,
    devices: c.devices.map((d) => ({
      ...d,
      ...(d.sim_journal === undefined ? {} : { sim_journal: resolvePath(base, d.sim_journal) }),
      resources: d.resources.map((r) => (r.kind === "serial" || (r.kind === "video" && r.path !== undefined) ? { ...r, path: resolvePath(base, r.path as string) } : r)),
    })),
    config_path: options.configPath ?? null,
  };
}

/** Reads, parses and validates a YAML config file; every problem is reported in one ConfigError. */
export function loadConfig(path: string, env: NodeJS.ProcessEnv = process.env): AgentConfig {
  const abs = resolve(path);
  let text: string;
  try {
    text = readFileSync(abs, "utf8");
  } catch (err) {
    throw new ConfigError(abs, [`cannot read the file (${(err as Error).message}); create it or pass --config PATH / set LABRIG_AGENT_CONFIG`]);
  }
  const doc = parseDocument(text, { prettyErrors: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(abs, doc.errors.map((e) => `YAML syntax: ${e.message.replace(/\n+/g, " ")}`));
  }
  return parseConfig(doc.toJS(), { baseDir: dirname(abs), env, source: abs, configPath: abs });
}

/** The config path from `--config`, then LABRIG_AGENT_CONFIG, then the default. */
export function configPathFrom(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  return flag ?? env.LABRIG_AGENT_CONFIG ?? DEFAULT_CONFIG_PATH;
}
