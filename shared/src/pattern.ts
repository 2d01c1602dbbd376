import { RE2JS } from "re2js";
import { LabrigError } from "./errors.js";

/**
 * User patterns (serial.expect with regex, a campaign's `matches` expectation) run on an event
 * loop — the agent's or the hub's — against console text, and a backtracking engine can take
 * exponential time on patterns as plain as `(a|a)*$`. No filter can tell which patterns are safe,
 * so every user pattern is matched by RE2 (re2js, a pure-JS port: no native build, Node 20),
 * whose time is linear in the input for every pattern. What RE2 cannot express in linear time —
 * backreferences and lookaround — is refused with a message saying so.
 */

/** One match: where it starts and ends (UTF-16 indexes into the text), the matched text and the groups (null when a group took no part). */
export interface PatternMatch {
  index: number;
  end: number;
  match: string;
  groups: (string | null)[];
}

/** A compiled user pattern. */
export interface CompiledPattern {
  readonly source: string;
  /** The leftmost match in `text`, or null. */
  exec(text: string): PatternMatch | null;
  /** True when the pattern matches anywhere in `text`. */
  test(text: string): boolean;
}

/** Constructs JavaScript regexes have and RE2 refuses, found so the refusal can say what to change. */
function unsupportedConstruct(source: string): string | null {
  let inClass = false;
  for (let i = 0; i < source.length; i++) {
    const c = source[i];
    if (c === "\\") {
      const next = source[i + 1] ?? "";
      if (!inClass && (/[1-9]/.test(next) || (next === "k" && source[i + 2] === "<"))) {
        return "backreferences (\\1, \\k<name>) are not supported: patterns are matched by RE2, in time linear in the text; match the text itself or check the groups afterwards";
      }
      i++;
      continue;
    }
    if (inClass) {
      if (c === "]") inClass = false;
      continue;
    }
    if (c === "[") inClass = true;
    else if (c === "(" && source[i + 1] === "?") {
      const ahead = source.slice(i + 2, i + 4);
      if (ahead.startsWith("=") || ahead.startsWith("!") || ahead === "<=" || ahead === "<!") {
        return "lookaround ((?=…), (?!…), (?<=…), (?<!…)) is not supported: patterns are matched by RE2, in time linear in the text; match the surrounding text instead";
      }
    }
  }
  return null;
}

function compileOrThrow(source: string): RE2JS {
  try {
    return RE2JS.compile(source);
  } catch (err) {
    const why = unsupportedConstruct(source) ?? `not a valid RE2 regular expression: ${(err as Error).message.replace(/^error parsing regexp: /, "")}`;
    throw new LabrigError("validation_failed", why);
  }
}

/** Why `source` cannot be used as a pattern, or null when it compiles (for schema refinements that collect every problem). */
export function patternProblem(source: string): string | null {
  try {
    compileOrThrow(source);
    return null;
  } catch (err) {
    if (err instanceof LabrigError) return err.message;
    throw err;
  }
}

/** Compiles a user pattern for linear-time matching, or throws `validation_failed` saying what RE2 refused. */
export function compilePattern(source: string): CompiledPattern {
  const re = compileOrThrow(source);
  return {
    source,
    exec(text) {
      // re2js returns the shape of RegExp.prototype.exec (typed loosely as any[]): groups, then index.
      const m = re.exec(text) as ((string | undefined)[] & { index: number }) | null;
      if (m === null) return null;
      const match = m[0] ?? "";
      return { index: m.index, end: m.index + match.length, match, groups: m.slice(1).map((g) => g ?? null) };
    },
    test: (text) => re.test(text),
  };
}
