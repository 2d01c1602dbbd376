import { z } from "zod";

// C0 controls (NUL, escape, backspace, ...), DEL and C1 controls, plus the Unicode line separators.
// None belongs in a name or an instruction; in logs, terminals and the JUnit report they forge lines,
// move the cursor or truncate the text (NUL in C strings).
const LINE_TEXT = /^[^\u0000-\u001f\u007f-\u009f\u2028\u2029]*$/;
// The same, with tab and line breaks allowed.
const MULTILINE_TEXT = /^[^\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]*$/;

/** A one-line free-text field (a name, an owner, a reason, a label value): at most `max` characters, no control characters or line breaks; trimmed unless `trim` is false. */
export function lineText(max: number, options: { min?: number; trim?: boolean } = {}) {
  const base = options.trim === false ? z.string() : z.string().trim();
  return base
    .min(options.min ?? 1)
    .max(max)
    .regex(LINE_TEXT, "must be one line of text without control characters (NUL, escape, line breaks)");
}

/** Multi-line free text (an instruction, a description): tab and line breaks allowed, other control characters (NUL, escape) refused. */
export function multilineText(max: number, min = 1) {
  return z.string().min(min).max(max).regex(MULTILINE_TEXT, "must be text without control characters (NUL, escape; tabs and line breaks are fine)");
}
