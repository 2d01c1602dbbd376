/**
 * Why a pattern may backtrack catastrophically, or null when it looks safe. Expect patterns run on
 * the agent's event loop against up to 64 KiB of console text, and JavaScript regexes cannot be
 * interrupted: `(a+)+$` on a long line would freeze the agent (heartbeats stop, the host drops).
 * This refuses the classic shapes — a quantified group that itself contains a quantifier (star
 * height above one) and backreferences — as safe-regex does; it cannot prove a pattern safe.
 */
export function regexHazard(pattern: string): string | null {
  // Each open group: did anything inside it repeat?
  const groups: boolean[] = [];
  let lastGroupRepeats = false;
  let inClass = false;
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === "\\") {
      const next = pattern[i + 1] ?? "";
      if (!inClass && /[1-9]/.test(next)) return "backreferences are not allowed in expect patterns";
      if (!inClass && next === "k" && pattern[i + 2] === "<") return "backreferences are not allowed in expect patterns";
      i++;
      lastGroupRepeats = false;
      continue;
    }
    if (inClass) {
      if (c === "]") inClass = false;
      continue;
    }
    if (c === "[") {
      inClass = true;
      lastGroupRepeats = false;
      continue;
    }
    if (c === "(") {
      groups.push(false);
      lastGroupRepeats = false;
      continue;
    }
    if (c === ")") {
      lastGroupRepeats = groups.pop() ?? false;
      continue;
    }
    const quantifier = c === "*" || c === "+" || (c === "{" && /^\{\d*,?\d*\}/.test(pattern.slice(i)) && !/^\{(0|1)\}/.test(pattern.slice(i)));
    if (quantifier) {
      if (lastGroupRepeats) return "a repeated group contains a repetition (like (a+)+), which can take exponential time; rewrite it without nesting";
      for (let g = 0; g < groups.length; g++) groups[g] = true;
      lastGroupRepeats = false;
      if (c === "{") i = pattern.indexOf("}", i);
      continue;
    }
    // `?` after a quantifier (lazy) or as an optional marker does not add repetition.
    if (c !== "?") lastGroupRepeats = false;
  }
  return null;
}
