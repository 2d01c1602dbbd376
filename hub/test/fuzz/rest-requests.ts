import { deflateSync, gzipSync, brotliCompressSync } from "node:zlib";
import { mutate, nested, ODD_STRINGS, VALUE_MUTATIONS, type ValueMutation } from "./mutations.js";
import type { Random } from "./random.js";
import { validValue, type JsonSchema, type ValueContext } from "./schema-values.js";

/*
 * REST requests generated from the published OpenAPI document: one operation (method, path template,
 * access, parameters, body schema) at a time, a valid request built from its schemas, then spoiled in
 * one way — a value mutation of the body or the query, or an encoding that only exists on the wire.
 */

export type Access = "public" | "viewer" | "operator" | "admin";

export interface ParamSpec {
  name: string;
  in: "path" | "query";
  required: boolean;
  schema: JsonSchema;
}

export interface Operation {
  method: string;
  /** The OpenAPI path: `/api/hosts/{host}`. */
  template: string;
  access: Access;
  params: ParamSpec[];
  body: JsonSchema | null;
}

/** Every operation of an OpenAPI document, in document order. */
export function operationsOf(doc: JsonSchema): Operation[] {
  const out: Operation[] = [];
  for (const [template, ops] of Object.entries(doc.paths as Record<string, Record<string, JsonSchema>>)) {
    for (const [method, op] of Object.entries(ops)) {
      const body = (op.requestBody as { content?: Record<string, { schema?: JsonSchema }> } | undefined)?.content?.["application/json"]?.schema ?? null;
      out.push({ method: method.toUpperCase(), template, access: op["x-labrig-access"] as Access, params: (op.parameters as ParamSpec[] | undefined) ?? [], body });
    }
  }
  return out;
}

/** Who a request claims to be: a role's API key, a key the hub never issued, or nobody. */
export type Identity = "admin" | "operator" | "viewer" | "bad" | "none";

const WIRE_BODY = ["invalid_json", "invalid_utf8", "nul_byte", "bom", "duplicate_keys", "wrong_content_type", "no_content_type", "utf16_charset", "gzip", "bad_gzip", "deflate", "brotli", "deep_text", "empty_body", "over_limit"] as const;
const PATH_KINDS = ["bad_escape", "invalid_utf8_escape", "nul_escape", "raw_bytes", "long_segment", "double_encoded", "dot_segments"] as const;
const QUERY_KINDS = ["query_values", "duplicate_query", "bad_query_escape", "unknown_query", "huge_query"] as const;
const OTHER_KINDS = ["odd_headers", "undeclared_method", "body_on_bodiless"] as const;

export type RequestMutation = ValueMutation | (typeof WIRE_BODY)[number] | (typeof PATH_KINDS)[number] | (typeof QUERY_KINDS)[number] | (typeof OTHER_KINDS)[number];

export interface FuzzRequest {
  op: Operation;
  method: string;
  /** The request target as sent (latin1: a char above 0x7f goes out as that one byte). */
  path: string;
  headers: Record<string, string>;
  body: Buffer | null;
  identity: Identity;
  mutation: RequestMutation;
  /** The JSON body as generated, when it went out intact as JSON (for checking it against the schema); undefined otherwise. */
  json?: unknown;
}

/** What the fixture supplies: values for path parameters, hints for body fields, and credentials. */
export interface RestFixture {
  pathValue(op: Operation, param: string, rnd: Random): string;
  /** How values for this operation's query and body are steered (hints, related fields). */
  values(op: Operation): Omit<ValueContext, "rnd">;
  token(identity: Identity): string | null;
}

function pickIdentity(rnd: Random): Identity {
  return rnd.weighted<Identity>([
    ["admin", 50],
    ["operator", 15],
    ["viewer", 10],
    ["bad", 15],
    ["none", 10],
  ]);
}

function pickMutation(op: Operation, rnd: Random): RequestMutation {
  const hasQuery = op.params.some((p) => p.in === "query");
  const hasPath = op.params.some((p) => p.in === "path");
  const choices: [RequestMutation, number][] = [];
  if (op.body) {
    for (const m of VALUE_MUTATIONS) choices.push([m, m === "valid" ? 30 : 5]);
    for (const m of WIRE_BODY) choices.push([m, 2]);
  } else {
    choices.push(["valid", 20], ["body_on_bodiless", 4]);
  }
  if (hasPath) for (const m of PATH_KINDS) choices.push([m, op.body ? 1 : 4]);
  for (const m of QUERY_KINDS) choices.push([m, hasQuery ? 5 : m === "unknown_query" ? 3 : 0]);
  choices.push(["odd_headers", 2], ["undeclared_method", 1]);
  return rnd.weighted(choices.filter(([, w]) => w > 0));
}

/** encodeURIComponent, except that a lone surrogate goes out as its three WTF-8 bytes (invalid UTF-8) instead of throwing. */
function enc(value: string): string {
  return value.replace(/[\ud800-\udfff]/g, (c, at: number, all: string) => {
    const code = c.charCodeAt(0);
    const paired = code < 0xdc00 ? /[\udc00-\udfff]/.test(all[at + 1] ?? "") : /[\ud800-\udbff]/.test(all[at - 1] ?? "");
    if (paired) return c;
    return [0xe0 | (code >> 12), 0x80 | ((code >> 6) & 0x3f), 0x80 | (code & 0x3f)].map((b) => `%${b.toString(16).toUpperCase()}`).join("");
  }).replace(/[^%]+/g, (chunk) => encodeURIComponent(chunk));
}

function pathWith(op: Operation, fixture: RestFixture, rnd: Random, mutation: RequestMutation): string {
  const names = [...op.template.matchAll(/\{([^}]+)\}/g)].map((m) => m[1] as string);
  const spoiled = (PATH_KINDS as readonly string[]).includes(mutation) ? rnd.pick(names) : null;
  return op.template.replace(/\{([^}]+)\}/g, (_m, name: string) => {
    const value = fixture.pathValue(op, name, rnd);
    if (name !== spoiled) return enc(value);
    switch (mutation) {
      case "bad_escape":
        return enc(value) + rnd.pick(["%", "%z", "%zz", "%E0%A4%A", "%%41"]);
      case "invalid_utf8_escape":
        return enc(value) + rnd.pick(["%C3%28", "%FF", "%ED%A0%80", "%F8%88%80%80%80", "%C0%AF"]);
      case "nul_escape":
        return `${enc(value)}%00`;
      case "raw_bytes":
        return enc(value) + rnd.pick(["\u00ff", "\u00e9", "\u0080\u0081", "\u00c3\u0028"]);
      case "long_segment":
        return "a".repeat(rnd.pick([300, 5_000, 60_000]));
      case "double_encoded":
        return enc(enc(`../${value}`));
      default:
        return rnd.pick(["..", ".", "%2e%2e", "..%2f..%2fapi%2fkeys"]);
    }
  });
}

function queryWith(op: Operation, fixture: RestFixture, rnd: Random, mutation: RequestMutation): string {
  const pairs: string[] = [];
  for (const p of op.params.filter((x) => x.in === "query")) {
    if (!p.required && !rnd.chance(0.5)) continue;
    let value: unknown = validValue(p.schema, { ...fixture.values(op), rnd }, [p.name]);
    if (mutation === "query_values") value = rnd.pick<unknown>(["", "-1", "1e9", "abc", "0x10", "1.5", "999999999999999999999", ...ODD_STRINGS]);
    pairs.push(`${enc(p.name)}=${enc(String(value))}`);
    if (mutation === "duplicate_query") pairs.push(`${enc(p.name)}=${enc(String(value))}2`);
  }
  if (mutation === "bad_query_escape") pairs.push(rnd.pick(["q=%", "limit=%zz", "%=1", "host=%C3%28", "a=%00"]));
  if (mutation === "unknown_query") pairs.push(rnd.pick(["unknown=1", "token=lrk_x", "a[b]=c", "__proto__[x]=1", "=", "&&&"]));
  if (mutation === "huge_query") pairs.push(`x=${"q".repeat(rnd.pick([1_000, 20_000]))}`);
  return pairs.length === 0 ? "" : `?${pairs.join("&")}`;
}

function injectDuplicateKey(text: string): string {
  const m = /^\{"([^"\\]+)":/.exec(text);
  return m ? `{"${m[1]}":"first",${text.slice(1)}` : text;
}

/** The body of a request: a (possibly spoiled) JSON value, or bytes that are not JSON at all. */
function bodyWith(op: Operation, fixture: RestFixture, rnd: Random, mutation: RequestMutation, headers: Record<string, string>): { body: Buffer | null; json?: unknown } {
  if (!op.body && mutation !== "body_on_bodiless") return { body: null };
  const valid = op.body ? validValue(op.body, { ...fixture.values(op), rnd }, []) : { unexpected: true };
  headers["content-type"] = "application/json";
  if ((VALUE_MUTATIONS as readonly string[]).includes(mutation) || mutation === "body_on_bodiless") {
    const value = mutate(valid, mutation === "body_on_bodiless" ? "valid" : (mutation as ValueMutation), rnd);
    return { body: Buffer.from(JSON.stringify(value) ?? "null", "utf8"), json: value };
  }
  const text = JSON.stringify(valid);
  switch (mutation) {
    case "invalid_json":
      return { body: Buffer.from(rnd.pick([text.slice(0, Math.max(1, text.length - 1)), `${text},`, text.replace(/"/g, "'"), "{", "nul", `{"a":1}{"b":2}`, "[1,]", "NaN"])) };
    case "invalid_utf8": {
      const at = Math.max(1, text.indexOf('"') + 1);
      return { body: Buffer.concat([Buffer.from(text.slice(0, at)), Buffer.from(rnd.pick([[0xc3, 0x28], [0xff], [0xed, 0xa0, 0x80], [0xc0, 0xaf]])), Buffer.from(text.slice(at))]) };
    }
    case "nul_byte":
      return { body: Buffer.concat([Buffer.from(text.slice(0, 1)), Buffer.from([0]), Buffer.from(text.slice(1))]) };
    case "bom":
      return { body: Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(text)]) };
    case "duplicate_keys":
      return { body: Buffer.from(injectDuplicateKey(text)) };
    case "wrong_content_type":
      headers["content-type"] = rnd.pick(["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/xml", "application/octet-stream", "json", "application/json-seq"]);
      return { body: Buffer.from(text) };
    case "no_content_type":
      delete headers["content-type"];
      return { body: Buffer.from(text) };
    case "utf16_charset":
      headers["content-type"] = rnd.pick(["application/json; charset=utf-16", "application/json; charset=latin1", "application/json; charset=nope"]);
      return { body: Buffer.from(text, "utf16le") };
    case "gzip":
      headers["content-encoding"] = "gzip";
      return { body: gzipSync(text) };
    case "bad_gzip":
      headers["content-encoding"] = rnd.pick(["gzip", "deflate", "br", "x-unknown"]);
      return { body: Buffer.from(text) };
    case "deflate":
      headers["content-encoding"] = "deflate";
      return { body: deflateSync(text) };
    case "brotli":
      headers["content-encoding"] = "br";
      return { body: brotliCompressSync(text) };
    case "deep_text": {
      const depth = rnd.pick([33, 1_000, 100_000]);
      return { body: Buffer.from(rnd.chance(0.5) ? "[".repeat(depth) + "]".repeat(depth) : JSON.stringify({ value: nested(Math.min(depth, 2_000), 1, true) })) };
    }
    case "empty_body":
      return { body: Buffer.alloc(0) };
    case "over_limit":
      return { body: Buffer.from(JSON.stringify({ ...(valid as object), pad: "p".repeat(rnd.pick([300_000, 2_000_000])) })) };
    default:
      return { body: Buffer.from(text), json: valid };
  }
}

function oddHeaders(headers: Record<string, string>, rnd: Random): void {
  const [name, value] = rnd.pick<[string, string]>([
    ["x-lease-token", "\u00ff".repeat(10)],
    ["x-lease-token", "l".repeat(10_000)],
    ["x-request-id", "../../etc"],
    ["x-request-id", "r".repeat(5_000)],
    ["accept", "*/*;q=garbage"],
    ["x-forwarded-for", "1.2.3.4, 999.999.1.1, ::ffff"],
    ["expect", "100-continue"],
  ]);
  headers[name] = value;
}

/** One generated request for `op`. */
export function generateRequest(op: Operation, fixture: RestFixture, rnd: Random): FuzzRequest {
  const identity = pickIdentity(rnd);
  const mutation = pickMutation(op, rnd);
  const headers: Record<string, string> = {};
  const token = fixture.token(identity);
  if (token !== null) headers.authorization = `Bearer ${token}`;
  const path = pathWith(op, fixture, rnd, mutation) + queryWith(op, fixture, rnd, mutation);
  const { body, json } = bodyWith(op, fixture, rnd, mutation, headers);
  if (mutation === "odd_headers") oddHeaders(headers, rnd);
  let method = op.method;
  if (mutation === "undeclared_method") method = rnd.pick(["PATCH", "PUT", "OPTIONS", "TRACE", "PROPFIND"].filter((m) => m !== op.method));
  const req: FuzzRequest = { op, method, path, headers, body, identity, mutation };
  if (json !== undefined) req.json = json;
  return req;
}
