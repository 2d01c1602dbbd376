/** What a credential is replaced with in a log line. */
export const REDACTED = "[redacted]";

/**
 * Structured fields censored by pino before a line is built (every value under these keys, however
 * it got there): tokens, API keys, lease tokens, handshake auth and credential headers.
 */
export const REDACT_PATHS = [
  "token",
  "*.token",
  "*.*.token",
  "key",
  "*.key",
  "lease_token",
  "*.lease_token",
  "auth",
  "*.auth",
  "handshake.auth",
  "*.handshake.auth",
  "headers.authorization",
  "*.headers.authorization",
  "headers.cookie",
  "*.headers.cookie",
  'headers["x-lease-token"]',
  '*.headers["x-lease-token"]',
  'headers["x-goog-api-key"]',
  '*.headers["x-goog-api-key"]',
];

/** Query parameters whose value is a credential (a `?token=` on a URL someone pasted, a client library's habit). */
const SECRET_PARAMS = "token|access_token|id_token|refresh_token|lease_token|api_key|apikey|key|password|secret|signature|sig";

/**
 * Credential shapes, matched anywhere in a line (messages, URLs, error stacks): labrig's API keys
 * (`lrk_`), host tokens (`lrh_`) and lease tokens (`lrl_`); JWTs (a JOSE header always starts `eyJ`);
 * the value of a Bearer header; the value of a credential query parameter. Each stops at a quote or
 * backslash, so replacing it inside a JSON line keeps the line valid JSON.
 */
const SHAPES: readonly { pattern: RegExp; keep: boolean }[] = [
  { pattern: /\blr[khl]_[A-Za-z0-9_-]{8,}/g, keep: false },
  { pattern: /\beyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*/g, keep: false },
  { pattern: /(\bBearer(?:[ \t]|%20)+)[^\s"\\&]+/gi, keep: true },
  { pattern: new RegExp(`([?&;](?:${SECRET_PARAMS})=)[^&#\\s"\\\\]*`, "gi"), keep: true },
];

/** Removes credential query parameters' values from a URL (or path with a query) before it is logged. */
export function redactUrl(url: string): string {
  const q = url.indexOf("?");
  if (q < 0) return url;
  return url.slice(0, q) + url.slice(q).replace(new RegExp(`([?&;](?:${SECRET_PARAMS})=)[^&#]*`, "gi"), `$1${REDACTED}`);
}

/**
 * A scrubber for whole serialized log lines: every credential shape above and every `known` secret
 * (the configured admin key, JWT secret, Gemini key: values with no recognisable shape) become
 * [redacted]. The last line of defence; call sites still log no credentials on purpose.
 */
export function lineRedactor(known: readonly (string | null | undefined)[] = []): (line: string) => string {
  // A secret appears in a JSON line escaped as JSON would escape it; look for both spellings.
  const literals = [...new Set(known.filter((s): s is string => typeof s === "string" && s.length >= 8).flatMap((s) => [s, JSON.stringify(s).slice(1, -1)]))];
  return (line) => {
    let out = line;
    for (const secret of literals) if (out.includes(secret)) out = out.split(secret).join(REDACTED);
    for (const { pattern, keep } of SHAPES) out = out.replace(pattern, keep ? `$1${REDACTED}` : REDACTED);
    return out;
  };
}

/** A log destination that writes every line through lineRedactor(known) to `sink`. */
export function scrubbedSink(sink: { write(line: string): unknown }, known: readonly (string | null | undefined)[] = []): { write(line: string): void } {
  const scrub = lineRedactor(known);
  return { write: (line: string) => void sink.write(scrub(line)) };
}
