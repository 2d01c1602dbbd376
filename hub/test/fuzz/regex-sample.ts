import type { Random } from "./random.js";

/*
 * Strings that match a JSON Schema `pattern`, for the subset of regular expressions the published
 * schemas use: anchors, literals, escapes (\d \w \s \uXXXX \xXX), classes (ranges, negation),
 * groups with alternation, and the quantifiers ? * + {n} {n,} {n,m}. Anything else (lookaround,
 * backreferences) throws, and the caller falls back to other candidates.
 */

type Gen = (rnd: Random) => string;

/** What a negated class or `.` picks from: printable ASCII, a few controls and some non-ASCII letters. */
const UNIVERSE: readonly number[] = [...Array.from({ length: 95 }, (_, i) => 0x20 + i), 0x09, 0x0a, 0x00, 0x1b, 0x7f, 0x85, 0xe9, 0x3bb, 0x2028, 0x4e2d, 0x1f600];

const DIGITS = range(0x30, 0x39);
const WORD = [...range(0x30, 0x39), ...range(0x41, 0x5a), ...range(0x61, 0x7a), 0x5f];
const SPACE = [0x20, 0x09, 0x0a, 0x0d];

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}

class Parser {
  private at = 0;
  constructor(private readonly src: string) {}

  parse(): Gen {
    const gen = this.alternation();
    if (this.at < this.src.length) throw new Error(`unsupported regex construct at ${this.at} in ${this.src}`);
    return gen;
  }

  private peek(): string | undefined {
    return this.src[this.at];
  }

  private alternation(): Gen {
    const branches = [this.sequence()];
    while (this.peek() === "|") {
      this.at++;
      branches.push(this.sequence());
    }
    return branches.length === 1 ? (branches[0] as Gen) : (rnd) => rnd.pick(branches)(rnd);
  }

  private sequence(): Gen {
    const parts: Gen[] = [];
    while (this.at < this.src.length && this.peek() !== "|" && this.peek() !== ")") {
      const atom = this.atom();
      parts.push(this.quantified(atom));
    }
    return (rnd) => parts.map((p) => p(rnd)).join("");
  }

  private quantified(atom: Gen): Gen {
    const c = this.peek();
    let min = 1;
    let max = 1;
    if (c === "?") [min, max] = [0, 1];
    else if (c === "*") [min, max] = [0, Infinity];
    else if (c === "+") [min, max] = [1, Infinity];
    else if (c === "{") {
      const m = /^\{(\d+)(,(\d*))?\}/.exec(this.src.slice(this.at));
      if (!m) return atom;
      min = Number(m[1]);
      max = m[2] === undefined ? min : m[3] === "" ? Infinity : Number(m[3]);
      this.at += m[0].length - 1;
    } else return atom;
    this.at++;
    if (this.peek() === "?") this.at++;
    return (rnd) => {
      const n = rnd.smallLength(min, max === Infinity ? min + 8 : max);
      let out = "";
      for (let i = 0; i < n; i++) out += atom(rnd);
      return out;
    };
  }

  private atom(): Gen {
    const c = this.src[this.at++] as string;
    if (c === "^" || c === "$") return () => "";
    if (c === "(") {
      if (this.src.startsWith("?:", this.at)) this.at += 2;
      else if (this.peek() === "?") throw new Error(`unsupported group in ${this.src}`);
      const inner = this.alternation();
      if (this.src[this.at++] !== ")") throw new Error(`unclosed group in ${this.src}`);
      return inner;
    }
    if (c === "[") return this.charClass();
    if (c === ".") return (rnd) => String.fromCodePoint(rnd.pick(UNIVERSE.filter((x) => x !== 0x0a)));
    if (c === "\\") {
      const set = this.escape();
      return (rnd) => String.fromCodePoint(rnd.pick(set));
    }
    return () => c;
  }

  /** The code points an escape stands for (after the backslash). */
  private escape(): number[] {
    const c = this.src[this.at++] as string;
    if (c === "d") return DIGITS;
    if (c === "w") return WORD;
    if (c === "s") return SPACE;
    if (c === "u" || c === "x") {
      const len = c === "u" ? 4 : 2;
      const hex = this.src.slice(this.at, this.at + len);
      this.at += len;
      return [parseInt(hex, 16)];
    }
    if (c === "n") return [0x0a];
    if (c === "t") return [0x09];
    if (c === "r") return [0x0d];
    if (/[1-9bBDWSk]/.test(c)) throw new Error(`unsupported escape \\${c} in ${this.src}`);
    return [c.codePointAt(0) as number];
  }

  private charClass(): Gen {
    const negated = this.peek() === "^";
    if (negated) this.at++;
    const members = new Set<number>();
    let first = true;
    while (this.at < this.src.length && (this.peek() !== "]" || first)) {
      first = false;
      const lo = this.classChar();
      if (this.peek() === "-" && this.src[this.at + 1] !== "]" && lo.length === 1) {
        this.at++;
        const hi = this.classChar();
        for (let x = lo[0] as number; x <= (hi[0] as number); x++) members.add(x);
      } else for (const x of lo) members.add(x);
    }
    if (this.src[this.at++] !== "]") throw new Error(`unclosed class in ${this.src}`);
    const choices = negated ? UNIVERSE.filter((x) => !members.has(x)) : [...members];
    if (choices.length === 0) throw new Error(`empty class in ${this.src}`);
    return (rnd) => String.fromCodePoint(rnd.pick(choices));
  }

  private classChar(): number[] {
    const c = this.src[this.at++] as string;
    if (c === "\\") return this.escape();
    return [c.codePointAt(0) as number];
  }
}

const compiled = new Map<string, Gen | null>();

/** A string matching `pattern`, or null when the pattern is outside the supported subset. */
export function sampleRegex(pattern: string, rnd: Random): string | null {
  let gen = compiled.get(pattern);
  if (gen === undefined) {
    try {
      gen = new Parser(pattern).parse();
    } catch {
      // Outside the subset: the caller draws from its other candidates instead.
      gen = null;
    }
    compiled.set(pattern, gen);
  }
  return gen === null ? null : gen(rnd);
}
