import {
  ACTIONS,
  LabrigError,
  actionsForResources,
  parseActionParams,
  resolveResource,
  toJsonSchema,
  type ActionName,
  type PlannedAction,
  type ResourceDescription,
} from "@labrig/shared";

/** An action the planner may use on this device, with the resources it may name. */
export interface AllowedAction {
  action: ActionName;
  resources: string[];
}

/** Power can damage hardware or lose state, so a plan may switch it only when the caller allows it by name. */
const NEEDS_EXPLICIT_ALLOW = (name: ActionName): boolean => name.startsWith("power.");

/**
 * The actions a plan may contain: what the device's resources offer, narrowed to `allow`
 * when given (default: everything offered except power actions).
 */
export function allowedActions(resources: readonly ResourceDescription[], allow?: readonly ActionName[]): AllowedAction[] {
  const offered = actionsForResources(resources);
  const chosen = allow ? offered.filter((a) => allow.includes(a)) : offered.filter((a) => !NEEDS_EXPLICIT_ALLOW(a));
  return chosen.map((action) => {
    const kind = ACTIONS[action].resourceKind;
    return { action, resources: kind === null ? [] : resources.filter((r) => r.kind === kind).map((r) => r.name) };
  });
}

function withoutMeta(schema: Record<string, unknown>): Record<string, unknown> {
  const { $schema: _ignored, ...rest } = schema;
  return rest;
}

/**
 * The JSON Schema the model's answer is constrained to: an observation, reasoning, a list of
 * actions drawn only from `allowed` (each with that action's own params schema), and `done`.
 */
export function planResponseJsonSchema(allowed: readonly AllowedAction[]): Record<string, unknown> {
  const variants = allowed.map(({ action, resources }) => {
    const properties: Record<string, unknown> = {
      action: { type: "string", enum: [action], description: ACTIONS[action].description },
      params: withoutMeta(toJsonSchema(ACTIONS[action].params)),
    };
    if (resources.length > 0) properties.resource = { type: "string", enum: resources };
    return { type: "object", properties, required: ["action", "params"] };
  });
  return {
    type: "object",
    properties: {
      observation: { type: "string", description: "What the frame and console show now, in one or two sentences." },
      reasoning: { type: "string", description: "Why these actions move towards the goal." },
      actions: { type: "array", maxItems: 10, items: variants.length > 0 ? { anyOf: variants } : { type: "object" } },
      done: { type: "boolean", description: "True when the goal is already reached in what you observe." },
    },
    required: ["observation", "actions", "done"],
  };
}

/**
 * Checks every planned action against the allowed set and the catalogue, returning them with
 * defaults applied and the resource resolved. Throws `plan_invalid` listing every problem.
 */
export function validatePlannedActions(
  raw: readonly unknown[],
  allowed: readonly AllowedAction[],
  resources: readonly ResourceDescription[],
): PlannedAction[] {
  const problems: string[] = [];
  const valid: PlannedAction[] = [];
  raw.forEach((item, i) => {
    const where = `actions[${i}]`;
    if (typeof item !== "object" || item === null || Array.isArray(item)) {
      problems.push(`${where}: must be an object with action and params`);
      return;
    }
    const { action, resource, params, ...extra } = item as Record<string, unknown>;
    if (Object.keys(extra).length > 0) problems.push(`${where}: unexpected keys ${Object.keys(extra).join(", ")}`);
    if (typeof action !== "string") {
      problems.push(`${where}.action: must be a string`);
      return;
    }
    const entry = allowed.find((a) => a.action === action);
    if (!entry) {
      problems.push(`${where}.action: '${action}' is not allowed here; allowed: ${allowed.map((a) => a.action).join(", ") || "none"}`);
      return;
    }
    if (resource !== undefined && typeof resource !== "string") {
      problems.push(`${where}.resource: must be a string`);
      return;
    }
    try {
      const checkedParams = parseActionParams(action, params ?? {});
      const resolved = resolveResource(entry.action, resources, resource ?? null);
      valid.push({ action: entry.action, ...(resolved === null ? {} : { resource: resolved }), params: checkedParams });
    } catch (err) {
      problems.push(`${where}: ${err instanceof LabrigError ? err.message : String(err)}`);
    }
  });
  if (problems.length > 0) throw new LabrigError("plan_invalid", `The plan is invalid: ${problems.join("; ")}`, { details: problems });
  return valid;
}
