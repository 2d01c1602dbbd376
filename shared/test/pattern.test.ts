import { performance } from "node:perf_hooks";
import { describe, expect, it } from "vitest";
import { LabrigError, compilePattern, parseActionParams, patternProblem } from "@labrig/shared";

/** Patterns that a backtracking engine (JavaScript's RegExp) takes exponential time on; each passed the old heuristic filter. */
const CATASTROPHIC = ["(a|a)*$", "(a|aa)+$", "(.|.)*X", "[\\s\\S]*[\\s\\S]*[\\s\\S]*X", "(a+)+$", "(\\w+\\s?)*$"];

describe("user patterns are matched by RE2", () => {
  it("matches every catastrophic pattern against 100 KiB of text in linear time (no freeze), with the same answer as a backtracking engine would give", () => {
    const text = "a".repeat(100 * 1024);
    for (const source of CATASTROPHIC) {
      const t0 = performance.now();
      const m = compilePattern(source).exec(text);
      // Not a speed target: a backtracking engine would not return at all in the lifetime of the test run.
      expect(performance.now() - t0, source).toBeLessThan(20_000);
      if (source.endsWith("X")) expect(m, source).toBeNull();
      else expect(m?.match.length, source).toBe(text.length);
    }
  });

  it("time grows linearly with the input: 8× the text costs about 8× the time, not 2^n", () => {
    const source = "(a|aa)+$";
    const re = compilePattern(source);
    const cost = (n: number): number => {
      const text = "a".repeat(n);
      let best = Number.POSITIVE_INFINITY;
      for (let i = 0; i < 3; i++) {
        const t0 = performance.now();
        re.exec(text);
        best = Math.min(best, performance.now() - t0);
      }
      return best;
    };
    cost(4096); // warm up the JIT
    const small = cost(32 * 1024);
    const large = cost(256 * 1024);
    // A generous ratio: a shared machine is noisy, but exponential growth would be astronomically above it.
    expect(large / Math.max(small, 0.05)).toBeLessThan(80);
  });

  it("returns the match, its UTF-16 span and the groups, null for a group that took no part", () => {
    const m = compilePattern("Linux (\\S+) ([0-9.]+)(-rc\\d)?").exec("$ uname\r\nLinux héllo 6.6.31 SMP");
    expect(m).toEqual({ index: 9, end: 27, match: "Linux héllo 6.6.31", groups: ["héllo", "6.6.31", null] });
    expect(compilePattern("^root@[a-z-]+:~# $").test("root@board-x:~# ")).toBe(true);
    expect(compilePattern("(?i)LOGIN:").test("labrig login:")).toBe(true);
    expect(compilePattern("(?P<maj>\\d+)\\.(?<min>\\d+)").exec("v6.12")?.groups).toEqual(["6", "12"]);
  });

  it("refuses backreferences and lookaround with validation_failed saying why, and other syntax errors with RE2's reason", () => {
    const cases: Array<[string, RegExp]> = [
      ["(a)\\1", /backreferences .* not supported/],
      ["(?<x>a)\\k<x>", /backreferences .* not supported/],
      ["foo(?=bar)", /lookaround .* not supported/],
      ["foo(?!bar)", /lookaround .* not supported/],
      ["(?<=foo)bar", /lookaround .* not supported/],
      ["(?<!foo)bar", /lookaround .* not supported/],
      ["(", /not a valid RE2 regular expression: missing closing \)/],
      ["\\u0041", /not a valid RE2 regular expression: invalid escape sequence/],
    ];
    for (const [source, message] of cases) {
      expect(patternProblem(source), source).toMatch(message);
      let caught: unknown;
      try {
        compilePattern(source);
      } catch (err) {
        caught = err;
      }
      expect(caught, source).toBeInstanceOf(LabrigError);
      expect((caught as LabrigError).code).toBe("validation_failed");
    }
    // Escaped or in a class, the same characters are plain text.
    for (const ok of ["\\(?=x", "[(?=]", "\\\\1"]) expect(patternProblem(ok), ok).toBeNull();
  });

  it("serial.expect validates regex patterns with the same engine; literal patterns are never compiled", () => {
    expect(() => parseActionParams("serial.expect", { pattern: "(a|a)*$", regex: true, timeout_ms: 10 })).not.toThrow();
    expect(() => parseActionParams("serial.expect", { pattern: "(a)\\1", regex: true, timeout_ms: 10 })).toThrow(/params.pattern: backreferences/);
    expect(() => parseActionParams("serial.expect", { pattern: "(a)\\1", timeout_ms: 10 })).not.toThrow();
  });
});
