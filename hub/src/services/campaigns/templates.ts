/**
 * Passing values forward: a string param may contain `{{steps.<step>.<path>}}`, replaced at run
 * time by a value from an earlier step's result (`{{steps.read_ip.groups.0}}`).
 */
const TEMPLATE = /\{\{\s*steps\.([A-Za-z_][A-Za-z0-9_-]{0,62})\.([A-Za-z0-9_]+(?:\.[A-Za-z0-9_]+)*)\s*\}\}/g;
/** Anything that looks like a template but does not parse as one, so a typo is an error rather than literal text. */
const TEMPLATE_LIKE = /\{\{[^}]*\}\}/g;

export interface TemplateRef {
  step: string;
  path: string;
}

/** The references in `text`, and any `{{...}}` that is not a valid reference. */
export function parseTemplates(text: string): { refs: TemplateRef[]; malformed: string[] } {
  const refs = [...text.matchAll(TEMPLATE)].map((m) => ({ step: m[1] as string, path: m[2] as string }));
  const malformed = [...text.replace(TEMPLATE, "").matchAll(TEMPLATE_LIKE)].map((m) => m[0]);
  return { refs, malformed };
}

export function hasTemplate(text: string): boolean {
  return text.includes("{{");
}

/** Replaces every reference with `placeholder` (save-time validation of the param's shape). */
export function withPlaceholders(text: string, placeholder: string): string {
  return text.replace(TEMPLATE, placeholder);
}

/** Walks a dotted path (`groups.0`) into a value. Undefined when any part is missing. */
export function resolvePath(value: unknown, path: string): unknown {
  let cur: unknown = value;
  for (const part of path.split(".")) {
    if (cur === null || cur === undefined) return undefined;
    if (Array.isArray(cur)) {
      if (!/^\d+$/.test(part)) return undefined;
      cur = cur[Number(part)];
    } else if (typeof cur === "object") {
      cur = Object.hasOwn(cur, part) ? (cur as Record<string, unknown>)[part] : undefined;
    } else {
      return undefined;
    }
  }
  return cur;
}

const escapeRegExp = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/**
 * Fills the references of `text` from earlier steps' results. `regex` escapes the inserted values
 * (a value captured from the console is matched literally inside a regular expression). Throws a
 * message naming the reference when the step did not run or has no value at that path.
 */
export function render(text: string, results: ReadonlyMap<string, unknown>, options: { regex?: boolean } = {}): string {
  return text.replace(TEMPLATE, (whole, step: string, path: string) => {
    if (!results.has(step)) throw new Error(`${whole}: step '${step}' has not produced a result (it did not run or did not succeed)`);
    const value = resolvePath(results.get(step), path);
    if (value === undefined || value === null) throw new Error(`${whole}: the result of step '${step}' has no value at '${path}'`);
    const text = typeof value === "string" ? value : typeof value === "number" || typeof value === "boolean" ? String(value) : JSON.stringify(value);
    return options.regex ? escapeRegExp(text) : text;
  });
}

/** Renders every string param (one level deep: catalogue params are flat). */
export function renderParams(params: Record<string, unknown>, results: ReadonlyMap<string, unknown>, regexKeys: ReadonlySet<string> = new Set()): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(params)) {
    out[key] = typeof value === "string" && hasTemplate(value) ? render(value, results, { regex: regexKeys.has(key) }) : value;
  }
  return out;
}
