import { compilePattern, type Expectation } from "@labrig/shared";
import { resolvePath } from "./templates.js";

/** The expectations of a step as a list (`expect` may be one check or several). */
export function expectationList(expect: Expectation | Expectation[] | undefined): Expectation[] {
  if (expect === undefined) return [];
  return Array.isArray(expect) ? expect : [expect];
}

const show = (v: unknown): string => (typeof v === "string" ? JSON.stringify(v.length > 200 ? `${v.slice(0, 200)}…` : v) : JSON.stringify(v) ?? String(v));

function equal(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  // Results are JSON; comparing their JSON is deep equality without a library.
  return typeof a === "object" && typeof b === "object" && a !== null && b !== null && JSON.stringify(a) === JSON.stringify(b);
}

/** Checks one expectation; returns null when it holds, else a message saying what was found. */
export function checkExpectation(e: Expectation, result: unknown): string | null {
  const actual = resolvePath(result, e.field);
  const fail = (what: string): string => `expected ${e.field} ${what}, but it was ${actual === undefined ? "absent" : show(actual)}`;
  switch (e.op) {
    case "equals":
      return equal(actual, e.value) ? null : fail(`to equal ${show(e.value)}`);
    case "not_equals":
      return !equal(actual, e.value) ? null : fail(`not to equal ${show(e.value)}`);
    case "contains":
      if (typeof actual === "string" && typeof e.value === "string") return actual.includes(e.value) ? null : fail(`to contain ${show(e.value)}`);
      if (Array.isArray(actual)) return actual.some((x) => equal(x, e.value)) ? null : fail(`to contain ${show(e.value)}`);
      return fail(`to contain ${show(e.value)}`);
    case "matches": {
      // Checked at save time, so it compiles; RE2 matches in time linear in the result, whatever the pattern.
      const re = compilePattern(String(e.value));
      return typeof actual === "string" && re.test(actual) ? null : fail(`to match /${String(e.value)}/`);
    }
    case "gt":
    case "gte":
    case "lt":
    case "lte": {
      const a = typeof actual === "number" ? actual : typeof actual === "string" && actual.trim() !== "" ? Number(actual) : Number.NaN;
      const b = Number(e.value);
      const words = { gt: "to be >", gte: "to be >=", lt: "to be <", lte: "to be <=" } as const;
      if (Number.isNaN(a)) return fail(`${words[e.op]} ${show(e.value)} (a number)`);
      const ok = e.op === "gt" ? a > b : e.op === "gte" ? a >= b : e.op === "lt" ? a < b : a <= b;
      return ok ? null : fail(`${words[e.op]} ${show(e.value)}`);
    }
  }
}

/** Checks every expectation; the messages of those that do not hold, prefixed with their index. */
export function checkExpectations(list: readonly Expectation[], result: unknown): string[] {
  const out: string[] = [];
  list.forEach((e, i) => {
    const problem = checkExpectation(e, result);
    if (problem !== null) out.push(list.length > 1 ? `expect[${i}]: ${problem}` : problem);
  });
  return out;
}
