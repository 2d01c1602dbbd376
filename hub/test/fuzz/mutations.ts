import type { Random } from "./random.js";

/*
 * How the fuzzer spoils a valid value: each kind is one of the classes of bad input the issue names
 * (wrong types, missing and extra fields, huge and deep values, odd strings). The REST and the socket
 * fuzzers share them; encodings that only exist on the wire (bad %-escapes, gzip, duplicate keys) are
 * in rest-requests.ts.
 */

export const VALUE_MUTATIONS = ["valid", "wrong_type", "missing_field", "extra_field", "huge_value", "deep_value", "odd_string", "odd_number", "not_an_object"] as const;
export type ValueMutation = (typeof VALUE_MUTATIONS)[number];

type Slot = { parent: Record<string, unknown> | unknown[]; key: string | number };

/** Every place in a value a mutation can replace or remove (object properties and array items). */
function slots(value: unknown, out: Slot[] = [], depth = 0): Slot[] {
  if (depth > 16 || typeof value !== "object" || value === null || ArrayBuffer.isView(value)) return out;
  if (Array.isArray(value)) {
    value.forEach((item, i) => {
      out.push({ parent: value, key: i });
      slots(item, out, depth + 1);
    });
  } else {
    for (const [key, item] of Object.entries(value)) {
      out.push({ parent: value as Record<string, unknown>, key });
      slots(item, out, depth + 1);
    }
  }
  return out;
}

function objects(value: unknown, out: Record<string, unknown>[] = [], depth = 0): Record<string, unknown>[] {
  if (depth > 16 || typeof value !== "object" || value === null || ArrayBuffer.isView(value)) return out;
  if (!Array.isArray(value)) out.push(value as Record<string, unknown>);
  for (const item of Object.values(value)) objects(item, out, depth + 1);
  return out;
}

function clone<T>(value: T): T {
  return structuredClone(value);
}

/** A value of another JSON type than `v`. */
function otherType(v: unknown, rnd: Random): unknown {
  const options: unknown[] = ["1", 1, 1.5, true, null, [], {}, [v], { value: v }, "", "true", "null"];
  const kind = (x: unknown): string => (Array.isArray(x) ? "array" : x === null ? "null" : typeof x);
  const different = options.filter((o) => kind(o) !== kind(v));
  return rnd.pick(different);
}

/** Strings that break naive handlers: NUL, controls, lone surrogates, bidi overrides, paths, markup. */
export const ODD_STRINGS: readonly string[] = [
  "\u0000",
  "a\u0000b",
  "\u0001\u0002\u001b[31m",
  "\r\n\r\nX-Injected: 1",
  "\ud800",
  "\udfff\ud800",
  "\u202egnp.exe",
  "\u2028\u2029",
  "\ufeff",
  "😀".repeat(40),
  "../../../../etc/passwd",
  "%00%2e%2e%2f",
  "<script>alert(1)</script>",
  "' OR 1=1 --",
  "${jndi:ldap://127.0.0.1/x}",
  "__proto__",
  "constructor",
  " ",
  "",
  "\t",
  "ǅ".repeat(200),
];

/** Numbers at the edges of what JSON, JavaScript and SQLite hold. */
export const ODD_NUMBERS: readonly number[] = [-1, 0, -0, 0.5, -0.5, 1e308, -1e308, 5e-324, 2 ** 31, 2 ** 31 - 1, -(2 ** 31), 2 ** 53 + 2, -(2 ** 63), 2 ** 64, 1e21];

/** Nested arrays or objects `depth` levels deep around `inner`. */
export function nested(depth: number, inner: unknown, objectsToo: boolean): unknown {
  let v = inner;
  for (let i = 0; i < depth; i++) v = objectsToo && i % 2 === 1 ? { d: v } : [v];
  return v;
}

function hugeValue(rnd: Random): unknown {
  return rnd.pick<() => unknown>([
    () => "x".repeat(rnd.pick([5_000, 70_000, 300_000])),
    () => "é".repeat(rnd.pick([40_000, 200_000])),
    () => Array.from({ length: rnd.pick([1_000, 20_000]) }, (_, i) => i),
    () => Object.fromEntries(Array.from({ length: rnd.pick([500, 5_000]) }, (_, i) => [`k${i}`, i])),
    () => rnd.pick(ODD_NUMBERS),
  ])();
}

/** Applies one mutation to a copy of `value`. */
export function mutate(value: unknown, kind: ValueMutation, rnd: Random): unknown {
  if (kind === "valid") return value;
  if (kind === "not_an_object") return rnd.pick<unknown>([[], [value], "body", 0, null, true, ""]);
  const copy = clone(value);
  const places = slots(copy);
  if (kind === "extra_field") {
    const objs = objects(copy);
    if (objs.length === 0) return { value: copy, extra: 1 };
    rnd.pick(objs)[rnd.pick(["extra", "__proto__", "constructor", "x".repeat(300), "", "ID", "host "])] = rnd.pick<unknown>(["x", 1, null, {}, []]);
    return copy;
  }
  if (kind === "missing_field") {
    const props = places.filter((p) => !Array.isArray(p.parent));
    if (props.length === 0) return {};
    const p = rnd.pick(props);
    delete (p.parent as Record<string, unknown>)[p.key as string];
    return copy;
  }
  if (places.length === 0) {
    // A value with no fields: the mutation replaces it whole.
    return kind === "wrong_type" ? otherType(copy, rnd) : kind === "deep_value" ? nested(rnd.pick([33, 200]), copy, true) : hugeValue(rnd);
  }
  const p = rnd.pick(places);
  const set = (v: unknown): void => {
    (p.parent as Record<string | number, unknown>)[p.key] = v;
  };
  const current = (p.parent as Record<string | number, unknown>)[p.key];
  if (kind === "wrong_type") set(otherType(current, rnd));
  else if (kind === "huge_value") set(hugeValue(rnd));
  else if (kind === "deep_value") set(nested(rnd.pick([16, 31, 33, 64, 1_000]), current ?? 1, rnd.chance(0.5)));
  else if (kind === "odd_string") set(typeof current === "string" && rnd.chance(0.5) ? current + rnd.pick(ODD_STRINGS) : rnd.pick(ODD_STRINGS));
  else if (kind === "odd_number") set(rnd.pick(ODD_NUMBERS));
  return copy;
}
