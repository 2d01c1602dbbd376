import type { Random } from "./random.js";
import { sampleRegex } from "./regex-sample.js";

/*
 * Values that a JSON Schema (2020-12, as the hub publishes it) accepts, drawn from a seeded source.
 * The fixture steers them with hints (the names of real hosts and devices, catalogue actions) so a
 * share of the generated requests reaches past validation into the hub's handlers.
 */

export type JsonSchema = Record<string, unknown>;

/** The description zod's JSON Schema export gives binary socket.io attachments (see shared/src/events.ts). */
export const BINARY_DESCRIPTION = "binary (socket.io attachment)";

export interface ValueContext {
  rnd: Random;
  /** The document `$ref`s point into (the OpenAPI document, or the event's own schema). */
  root: JsonSchema;
  /** Candidates for a property by its name and path; a hinted property takes one of them most of the time. */
  hints?: (name: string, path: readonly string[]) => readonly unknown[] | undefined;
  /** Called on every generated object, so the fixture can make related fields agree (an action and its params). */
  adjust?: (value: Record<string, unknown>, path: readonly string[], ctx: ValueContext) => void;
}

const MAX_DEPTH = 12;
const TEXT = "abcdefghijklmnopqrstuvwxyz0123456789-_. ABCXYZ";

function resolve(schema: JsonSchema, root: JsonSchema): JsonSchema {
  const ref = schema.$ref;
  if (typeof ref !== "string" || !ref.startsWith("#/")) return schema;
  let at: unknown = root;
  for (const part of ref.slice(2).split("/")) at = (at as Record<string, unknown> | undefined)?.[part.replace(/~1/g, "/").replace(/~0/g, "~")];
  if (typeof at !== "object" || at === null) throw new Error(`unresolvable $ref ${ref}`);
  return resolve(at as JsonSchema, root);
}

function uuid(rnd: Random): string {
  const hex = (n: number): string => Array.from({ length: n }, () => rnd.int(0, 15).toString(16)).join("");
  return `${hex(8)}-${hex(4)}-4${hex(3)}-${rnd.pick(["8", "9", "a", "b"])}${hex(3)}-${hex(12)}`;
}

function textOf(rnd: Random, min: number, max: number): string {
  const n = rnd.smallLength(min, max);
  let out = "";
  for (let i = 0; i < n; i++) out += TEXT[rnd.int(0, TEXT.length - 1)];
  return out;
}

function stringValue(schema: JsonSchema, rnd: Random): string {
  const min = typeof schema.minLength === "number" ? schema.minLength : 0;
  const max = typeof schema.maxLength === "number" ? schema.maxLength : Math.max(min, 24);
  if (schema.format === "date-time") return new Date(rnd.int(0, 4_102_444_800_000)).toISOString();
  if (schema.format === "uuid") return uuid(rnd);
  if (typeof schema.pattern === "string") {
    const re = new RegExp(schema.pattern, "u");
    for (let attempt = 0; attempt < 8; attempt++) {
      const s = sampleRegex(schema.pattern, rnd);
      if (s !== null && s.length >= min && s.length <= max && re.test(s)) return s;
    }
  }
  return textOf(rnd, min, max);
}

function numberValue(schema: JsonSchema, rnd: Random, integer: boolean): number {
  let min = typeof schema.minimum === "number" ? schema.minimum : -1000;
  let max = typeof schema.maximum === "number" ? schema.maximum : 1000;
  if (typeof schema.exclusiveMinimum === "number") min = schema.exclusiveMinimum + (integer ? 1 : 1e-6);
  if (typeof schema.exclusiveMaximum === "number") max = schema.exclusiveMaximum - (integer ? 1 : 1e-6);
  if (integer) {
    min = Math.ceil(min);
    max = Math.floor(max);
  }
  // The edges of a range are where validation goes wrong; the middle is where handlers run.
  const edge = rnd.weighted<"min" | "max" | "any">([
    ["min", 1],
    ["max", 1],
    ["any", 4],
  ]);
  if (edge === "min") return min;
  if (edge === "max") return max;
  const span = Math.min(max - min, 10_000);
  return integer ? rnd.int(min, min + span) : min + rnd.next() * span;
}

function anyValue(rnd: Random): unknown {
  return rnd.pick<() => unknown>([() => textOf(rnd, 0, 12), () => rnd.int(-100, 100), () => rnd.chance(0.5), () => null, () => [], () => ({ k: textOf(rnd, 1, 6) })])();
}

/** A value `schema` accepts (best effort: a pattern outside the sampler's subset yields plain text). */
export function validValue(schemaIn: JsonSchema, ctx: ValueContext, path: readonly string[] = []): unknown {
  const schema = resolve(schemaIn, ctx.root);
  const { rnd } = ctx;
  const name = path[path.length - 1] ?? "";
  const hinted = ctx.hints?.(name, path);
  if (hinted && hinted.length > 0 && rnd.chance(0.75)) return rnd.pick(hinted);
  if ("const" in schema) return schema.const;
  if (Array.isArray(schema.enum)) return rnd.pick(schema.enum as unknown[]);
  const branches = (schema.anyOf ?? schema.oneOf) as JsonSchema[] | undefined;
  if (Array.isArray(branches) && branches.length > 0) return validValue({ ...schema, anyOf: undefined, oneOf: undefined, ...rnd.pick(branches) }, ctx, path);
  if (Array.isArray(schema.allOf) && schema.allOf.length > 0) return validValue(Object.assign({}, ...(schema.allOf as JsonSchema[])) as JsonSchema, ctx, path);
  if (schema.description === BINARY_DESCRIPTION) return randomBytesFrom(rnd, rnd.smallLength(0, 64));
  const type = Array.isArray(schema.type) ? rnd.pick(schema.type as string[]) : (schema.type as string | undefined) ?? (schema.properties ? "object" : schema.items ? "array" : undefined);
  switch (type) {
    case "string":
      return stringValue(schema, rnd);
    case "integer":
      return numberValue(schema, rnd, true);
    case "number":
      return numberValue(schema, rnd, false);
    case "boolean":
      return rnd.chance(0.5);
    case "null":
      return null;
    case "array": {
      const min = typeof schema.minItems === "number" ? schema.minItems : 0;
      const max = typeof schema.maxItems === "number" ? schema.maxItems : min + 4;
      const n = path.length >= MAX_DEPTH ? min : rnd.smallLength(min, max);
      const prefix = (schema.prefixItems as JsonSchema[] | undefined) ?? [];
      const items = (schema.items as JsonSchema | undefined) ?? {};
      return Array.from({ length: Math.max(n, prefix.length) }, (_, i) => validValue(prefix[i] ?? items, ctx, [...path, String(i)]));
    }
    case "object":
      return objectValue(schema, ctx, path);
    default:
      return anyValue(rnd);
  }
}

function objectValue(schema: JsonSchema, ctx: ValueContext, path: readonly string[]): Record<string, unknown> {
  const { rnd } = ctx;
  const out: Record<string, unknown> = {};
  const props = (schema.properties as Record<string, JsonSchema> | undefined) ?? {};
  const required = new Set((schema.required as string[] | undefined) ?? []);
  for (const [key, sub] of Object.entries(props)) {
    if (required.has(key) || (path.length < MAX_DEPTH && rnd.chance(0.5))) out[key] = validValue(sub, ctx, [...path, key]);
  }
  const extra = schema.additionalProperties;
  if (typeof extra === "object" && extra !== null && path.length < MAX_DEPTH) {
    const names = (schema.propertyNames as JsonSchema | undefined) ?? { type: "string", minLength: 1, maxLength: 12 };
    for (let i = rnd.smallLength(0, 3); i > 0; i--) {
      const key = String(validValue(names, { ...ctx, hints: undefined }, [...path, "(name)"]));
      out[key] = validValue(extra as JsonSchema, ctx, [...path, key]);
    }
  }
  ctx.adjust?.(out, path, ctx);
  return out;
}

/** Random bytes from the seeded source (crypto's randomBytes would not replay). */
export function randomBytesFrom(rnd: Random, n: number): Buffer {
  const buf = Buffer.alloc(n);
  for (let i = 0; i < n; i++) buf[i] = rnd.int(0, 255);
  return buf;
}

