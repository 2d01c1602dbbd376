import { ErrorEnvelopeSchema, ROLES, toJsonSchema, type ErrorCode } from "@labrig/shared";
import type { z } from "zod";
import { accessOf, statusOf, type Route } from "./route.js";

type Json = Record<string, unknown>;

/** A zod schema as an OpenAPI 3.1 schema object (JSON Schema 2020-12 without the top-level $schema). */
function schemaOf(schema: z.ZodType, io: "input" | "output"): Json {
  const { $schema: _drop, ...rest } = toJsonSchema(schema, io);
  return rest;
}

const ERROR_REF = { $ref: "#/components/schemas/ErrorEnvelope" };

function errorResponse(description: string, codes: readonly ErrorCode[]): Json {
  return { description: `${description} (error_code: ${codes.join(", ")})`, content: { "application/json": { schema: ERROR_REF } } };
}

/** `/api/hosts/:host` → `/api/hosts/{host}`. */
export function openApiPath(path: string): string {
  return path.replace(/:([A-Za-z0-9_]+)/g, "{$1}");
}

function operationId(route: Route): string {
  const words = route.path
    .split("/")
    .filter((s) => s !== "" && s !== "api")
    .map((s) => (s.startsWith(":") ? `by_${s.slice(1)}` : s.replace(/[^A-Za-z0-9]+/g, "_")));
  return [route.method, ...words].join("_");
}

function operation(route: Route): Json {
  const access = accessOf(route);
  const params: Json[] = [...route.path.matchAll(/:([A-Za-z0-9_]+)/g)].map((m) => ({
    name: m[1],
    in: "path",
    required: true,
    schema: { type: "string" },
  }));
  if (route.params) {
    const declared = (schemaOf(route.params, "input") as { properties?: Record<string, Json> }).properties ?? {};
    for (const p of params) p.schema = declared[p.name as string] ?? p.schema;
  }
  if (route.query) {
    const query = schemaOf(route.query, "input") as { properties?: Record<string, Json>; required?: string[] };
    for (const [name, schema] of Object.entries(query.properties ?? {})) {
      params.push({ name, in: "query", required: query.required?.includes(name) ?? false, schema });
    }
  }
  const status = statusOf(route);
  const success: Json =
    route.response === null
      ? { description: "Done; no content." }
      : route.responseType
        ? { description: "Success.", content: { [route.responseType]: {} } }
        : { description: "Success.", content: { "application/json": { schema: route.response ? schemaOf(route.response, "output") : { type: "object" } } } };
  const responses: Json = { [String(status)]: success };
  for (const other of route.alsoStatus ?? []) {
    responses[String(other)] = { ...success, description: other === 202 ? "Accepted; not finished yet." : other >= 500 ? "Degraded; the same body says what is wrong." : "Success." };
  }
  if (route.body || route.query) responses["400"] = errorResponse("Invalid request", ["validation_failed", "malformed_json"]);
  if (access !== "public") {
    responses["401"] = errorResponse("Missing, invalid or expired credentials", ["unauthorized"]);
    responses["403"] = errorResponse(`Needs the ${access} role`, ["forbidden"]);
    responses["429"] = errorResponse("Too many failed authentications from this address", ["rate_limited"]);
  }
  if (params.some((p) => p.in === "path")) responses["404"] = errorResponse("Not found", ["not_found", "unknown_host", "unknown_device"]);
  responses.default = errorResponse("Any other failure, always as the envelope", ["internal_error"]);

  const op: Json = {
    operationId: operationId(route),
    summary: route.summary,
    tags: [route.tag],
    "x-labrig-access": access,
    security: access === "public" ? [] : [{ bearer: [] }],
    responses,
  };
  if (route.description) op.description = route.description;
  if (params.length > 0) op.parameters = params;
  if (route.body) op.requestBody = { required: true, content: { "application/json": { schema: schemaOf(route.body, "input") } } };
  return op;
}

/** The REST API as OpenAPI 3.1, generated from the route declarations and the shared zod schemas. */
export function openApiDocument(version: string, routes: readonly Route[]): Json {
  const paths: Record<string, Json> = {};
  for (const route of routes) {
    const path = openApiPath(route.path);
    paths[path] = { ...(paths[path] ?? {}), [route.method]: operation(route) };
  }
  const doc: Json = {
    openapi: "3.1.0",
    info: {
      title: "labrig hub API",
      version,
      description: `Roles, weakest first: ${ROLES.join(", ")}. Send an API key or a JWT as 'Authorization: Bearer …'. Every error is the envelope {error_code, message, recoverable, retry_after?, request_id}. Socket events: GET /docs/ws.`,
    },
    paths,
    components: {
      schemas: { ErrorEnvelope: schemaOf(ErrorEnvelopeSchema, "output") },
      securitySchemes: { bearer: { type: "http", scheme: "bearer", description: "An API key (lrk_…) or a JWT (HS256 or RS256, role in a claim)." } },
    },
  };
  return doc;
}
