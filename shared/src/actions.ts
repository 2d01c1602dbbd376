import { z } from "zod";
import { LabrigError } from "./errors.js";
import type { ResourceDescription, ResourceKind } from "./model.js";
import { patternProblem } from "./pattern.js";
import { describeZodError } from "./validation.js";

const Bit = z.union([z.literal(0), z.literal(1)]);
const PowerState = z.enum(["on", "off"]);
const Millis = (max: number, min = 0) => z.number().int().min(min).max(max);
const NoParams = z.object({}).strict();

/**
 * A position in one console's output as serial.read hands it out: `<epoch>:<offset>`. The epoch
 * changes whenever the agent (or the console) starts again, so a cursor from before a restart is
 * recognised as such instead of being read as an offset into different output.
 */
export const SerialCursor = z.string().regex(/^[0-9a-z]{1,32}:\d{1,15}$/, "a cursor returned by serial.read (epoch:offset)");

/** The cursor for `offset` characters into the output of the console run `epoch`. */
export function formatSerialCursor(epoch: string, offset: number): string {
  return `${epoch}:${offset}`;
}

/** The epoch and offset of a cursor that passed SerialCursor. */
export function parseSerialCursor(cursor: string): { epoch: string; offset: number } {
  const at = cursor.lastIndexOf(":");
  return { epoch: cursor.slice(0, at), offset: Number(cursor.slice(at + 1)) };
}

/** Longest a single action may be asked to wait or expect, so no request can pin a device for hours. */
export const MAX_ACTION_MS = 600_000;

interface ActionDefinition {
  /** What the action does, for docs and the planner's prompt. */
  description: string;
  /** The kind of resource the action needs; null for actions that touch no hardware. */
  resourceKind: ResourceKind | null;
  params: z.ZodObject;
  result: z.ZodObject;
  /** True when running the action twice has the same effect as running it once. */
  retrySafe: boolean;
  /**
   * True for actions that only look (a read): they change nothing on the device, so the agent starts
   * them without asking the hub first, and a copy that may have run on a lost host is simply run again.
   */
  readOnly?: true;
}

/**
 * The action catalogue: every operation labrig can run on a device, defined once.
 * REST validation, agent validation, OpenAPI docs and the planner's schema all derive from it.
 */
export const ACTIONS = {
  "serial.write": {
    description: "Write text to a serial console (use \\n for Enter).",
    resourceKind: "serial",
    params: z.object({ data: z.string().min(1).max(65_536) }).strict(),
    result: z.object({ bytes: z.number().int().nonnegative() }),
    retrySafe: false,
  },
  "serial.expect": {
    description:
      "Wait until the console shows a pattern (literal text, or a regular expression when regex is true). Reads output not yet consumed by an earlier expect; flush discards it first.",
    resourceKind: "serial",
    params: z
      .object({
        pattern: z.string().min(1).max(1024),
        timeout_ms: Millis(MAX_ACTION_MS, 1),
        regex: z.boolean().default(false),
        flush: z.boolean().default(false),
      })
      .strict()
      .superRefine((p, ctx) => {
        if (!p.regex) return;
        const problem = patternProblem(p.pattern);
        if (problem) ctx.addIssue({ code: "custom", path: ["pattern"], message: problem });
      }),
    result: z.object({
      match: z.string(),
      groups: z.array(z.string().nullable()),
      transcript: z.string(),
    }),
    retrySafe: false,
  },
  "serial.read": {
    description:
      "Return the console output that arrived after the cursor `since` (from an earlier serial.read), and the cursor to pass next. Without since, nothing is returned and the cursor marks now. dropped counts characters the bounded history lost before they could be read; restarted means the cursor came from an earlier run of the agent, so the text starts at the oldest output held.",
    resourceKind: "serial",
    params: z
      .object({
        since: SerialCursor.optional(),
        max_bytes: z.number().int().min(1).max(1_048_576).default(65_536),
      })
      .strict(),
    result: z.object({
      text: z.string(),
      cursor: SerialCursor,
      /** True when max_bytes stopped the read before the newest output: read again from cursor. */
      more: z.boolean(),
      dropped: z.number().int().nonnegative(),
      restarted: z.boolean(),
    }),
    retrySafe: true,
    readOnly: true,
  },
  "serial.tail": {
    description: "Return the newest max_bytes of the console log (what a person would look at first).",
    resourceKind: "serial",
    params: z.object({ max_bytes: z.number().int().min(1).max(1_048_576).default(4096) }).strict(),
    result: z.object({ text: z.string() }),
    retrySafe: true,
    readOnly: true,
  },
  "gpio.write": {
    description: "Set an output line to a logical value (1 = active).",
    resourceKind: "gpio",
    params: z.object({ value: Bit }).strict(),
    result: z.object({ value: Bit }),
    retrySafe: true,
  },
  "gpio.read": {
    description: "Read a line's logical value.",
    resourceKind: "gpio",
    params: NoParams,
    result: z.object({ value: Bit }),
    retrySafe: true,
    readOnly: true,
  },
  "gpio.pulse": {
    description: "Drive a line to value for width_ms, then back; the width is measured on the agent.",
    resourceKind: "gpio",
    params: z.object({ width_ms: Millis(60_000, 1), value: Bit.default(1) }).strict(),
    result: z.object({ width_ms: z.number().nonnegative() }),
    retrySafe: false,
  },
  "power.on": {
    description: "Switch the device's power on.",
    resourceKind: "power",
    params: NoParams,
    result: z.object({ state: PowerState }),
    retrySafe: true,
  },
  "power.off": {
    description: "Switch the device's power off.",
    resourceKind: "power",
    params: NoParams,
    result: z.object({ state: PowerState }),
    retrySafe: true,
  },
  "power.cycle": {
    description: "Power off, wait off_ms (default from the agent's config), power on; one action on the agent.",
    resourceKind: "power",
    params: z.object({ off_ms: Millis(MAX_ACTION_MS).optional() }).strict(),
    result: z.object({ state: PowerState }),
    retrySafe: false,
  },
  "capture.snapshot": {
    description: "Capture the current video frame as a JPEG artifact, shrunk so its longer edge is at most max_edge when given.",
    resourceKind: "video",
    params: z.object({ max_edge: z.number().int().min(16).max(8192).optional() }).strict(),
    result: z.object({
      artifact: z.string(),
      mime_type: z.string(),
      width: z.number().int().positive(),
      height: z.number().int().positive(),
    }),
    retrySafe: true,
  },
  "capture.record": {
    description: "Record a clip of duration_s seconds as an artifact.",
    resourceKind: "video",
    params: z.object({ duration_s: z.number().min(0.1).max(600), format: z.enum(["webm", "mp4"]).default("webm") }).strict(),
    result: z.object({
      artifact: z.string(),
      mime_type: z.string(),
      duration_ms: z.number().nonnegative(),
      frames: z.number().int().nonnegative(),
    }),
    retrySafe: true,
  },
  wait: {
    description: "Wait ms milliseconds on the agent.",
    resourceKind: null,
    params: z.object({ ms: Millis(MAX_ACTION_MS) }).strict(),
    result: z.object({ waited_ms: z.number().nonnegative() }),
    retrySafe: true,
  },
} as const satisfies Record<string, ActionDefinition>;

export type ActionName = keyof typeof ACTIONS;
export type ActionParamsOf<A extends ActionName> = z.infer<(typeof ACTIONS)[A]["params"]>;
export type ActionResultOf<A extends ActionName> = z.infer<(typeof ACTIONS)[A]["result"]>;

export const ACTION_NAMES = Object.keys(ACTIONS) as [ActionName, ...ActionName[]];

/** Schema of an action name from the catalogue. */
export const ActionNameSchema = z.enum(ACTION_NAMES);

/** True when `name` is in the catalogue. */
export function isActionName(name: string): name is ActionName {
  return Object.hasOwn(ACTIONS, name);
}

/** The catalogue entry for `name`, or `unknown_action` naming the ones that exist. */
export function getAction(name: string): (typeof ACTIONS)[ActionName] {
  if (!isActionName(name)) {
    throw new LabrigError("unknown_action", `Unknown action '${name}'. Known actions: ${ACTION_NAMES.join(", ")}.`);
  }
  return ACTIONS[name];
}

/** Validates an action's params (defaults applied) or throws `validation_failed` naming each bad field. */
export function parseActionParams(name: string, params: unknown): Record<string, unknown> {
  const spec = getAction(name);
  const parsed = spec.params.safeParse(params ?? {});
  if (!parsed.success) {
    throw new LabrigError("validation_failed", `Invalid params for ${name}: ${describeZodError(parsed.error, "params")}`);
  }
  return parsed.data as Record<string, unknown>;
}

/** Validates an action's result against the catalogue (agents check what drivers return). */
export function parseActionResult(name: ActionName, result: unknown): Record<string, unknown> {
  const parsed = ACTIONS[name].result.safeParse(result);
  if (!parsed.success) {
    throw new LabrigError("internal_error", `Driver returned an invalid result for ${name}: ${describeZodError(parsed.error, "result")}`);
  }
  return parsed.data as Record<string, unknown>;
}

/** Default power-cycle off time when neither the request nor the config names one (labgrid's convention). */
export const DEFAULT_POWER_CYCLE_OFF_MS = 2000;

/**
 * How long the agent lets an action run before failing it with `action_timeout`.
 * Actions that wait by design get their own wait plus a margin.
 */
export function actionTimeoutMs(name: ActionName, params: Record<string, unknown>, baseMs = 10_000): number {
  const num = (key: string): number => (typeof params[key] === "number" ? (params[key] as number) : 0);
  switch (name) {
    case "serial.expect":
      return num("timeout_ms") + baseMs;
    case "wait":
      return num("ms") + baseMs;
    case "gpio.pulse":
      return num("width_ms") + baseMs;
    case "power.cycle":
      return (params.off_ms === undefined ? DEFAULT_POWER_CYCLE_OFF_MS : num("off_ms")) + baseMs;
    case "capture.record":
      return num("duration_s") * 1000 + baseMs * 3;
    default:
      return baseMs;
  }
}

/** True for actions that only read (see ActionDefinition.readOnly). */
export function isReadOnly(name: ActionName): boolean {
  const spec: ActionDefinition = ACTIONS[name];
  return spec.readOnly === true;
}

/** The actions a device with these resources can run (actions needing no resource are always offered). */
export function actionsForResources(resources: readonly ResourceDescription[]): ActionName[] {
  const kinds = new Set(resources.map((r) => r.kind));
  return ACTION_NAMES.filter((name) => {
    const kind = ACTIONS[name].resourceKind;
    return kind === null || kinds.has(kind);
  });
}

type ResourceChoice =
  | { ok: true; resource: string | null }
  | { ok: false; problem: "needs_none" | "not_found" | "wrong_kind" | "none_of_kind" | "ambiguous"; kind: ResourceKind | null; candidates: readonly ResourceDescription[] };

/**
 * The one rule for which resource an action uses: the named one (which must be of the action's
 * kind), or the device's only resource of that kind; none for actions that touch no hardware.
 * It builds no error, so the scheduler can ask it for every candidate device cheaply.
 */
function chooseResource(name: ActionName, resources: readonly ResourceDescription[], requested: string | null | undefined): ResourceChoice {
  const kind = ACTIONS[name].resourceKind;
  if (kind === null) return requested ? { ok: false, problem: "needs_none", kind, candidates: [] } : { ok: true, resource: null };
  if (requested) {
    const found = resources.find((r) => r.name === requested);
    if (!found) return { ok: false, problem: "not_found", kind, candidates: resources.filter((r) => r.kind === kind) };
    if (found.kind !== kind) return { ok: false, problem: "wrong_kind", kind, candidates: [found] };
    return { ok: true, resource: found.name };
  }
  let only: ResourceDescription | null = null;
  for (const r of resources) {
    if (r.kind !== kind) continue;
    if (only !== null) return { ok: false, problem: "ambiguous", kind, candidates: resources.filter((x) => x.kind === kind) };
    only = r;
  }
  return only === null ? { ok: false, problem: "none_of_kind", kind, candidates: [] } : { ok: true, resource: only.name };
}

/** True when a device with these resources can run the action on the requested resource (or its only one of the kind). */
export function canRunOn(name: ActionName, resources: readonly ResourceDescription[], requested?: string | null): boolean {
  return chooseResource(name, resources, requested).ok;
}

/**
 * Picks the resource an action runs on (see chooseResource for the rule), or throws the error that
 * says what to change. Returns null for actions needing none.
 */
export function resolveResource(name: ActionName, resources: readonly ResourceDescription[], requested?: string | null): string | null {
  const choice = chooseResource(name, resources, requested);
  if (choice.ok) return choice.resource;
  const names = choice.candidates.map((r) => r.name).join(", ");
  switch (choice.problem) {
    case "needs_none":
      throw new LabrigError("unknown_resource", `Action ${name} uses no resource; leave 'resource' out.`);
    case "not_found":
      throw new LabrigError("unknown_resource", `The device has no resource '${requested}'. Its ${choice.kind} resources: ${names || "none"}.`);
    case "wrong_kind":
      throw new LabrigError("unknown_resource", `Resource '${requested}' is ${choice.candidates[0]?.kind}, but ${name} needs a ${choice.kind} resource.`);
    case "none_of_kind":
      throw new LabrigError("unsupported_action", `The device has no ${choice.kind} resource, so it cannot run ${name}.`);
    case "ambiguous":
      throw new LabrigError("ambiguous_resource", `The device has several ${choice.kind} resources (${names}); name one in 'resource'.`);
  }
}
