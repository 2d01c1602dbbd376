import {
  ActionRecordSchema,
  ApiKeyCreateBodySchema,
  ApiKeyCreatedSchema,
  ApiKeyViewSchema,
  HealthSchema,
  HostCreateBodySchema,
  HostTokenIssuedSchema,
  HostViewSchema,
  IdSchema,
  PlanRecordSchema,
  PlanRequestBodySchema,
  SessionViewSchema,
  roleAtLeast,
  type Role,
} from "@labrig/shared";
import { CampaignBodySchema, CampaignRecordSchema, RunAcceptedSchema, RunRecordSchema, RunSummarySchema, RunsQuerySchema, TestCaseBodySchema, TestCaseRecordSchema, TestCaseRunBodySchema } from "@labrig/shared";
import { z } from "zod";
import { ActionsQuerySchema, DispatchBodySchema, ExactActionBodySchema, HealthBodySchema, KeepaliveBodySchema, LeaseBodySchema } from "../services/requests.js";

export type HttpMethod = "get" | "post" | "put" | "patch" | "delete";

/** Who may call a route: anyone (`public`) or at least this role. */
export type Access = "public" | Role;

/**
 * One HTTP route: how it is authorized and how it is documented. Every route the express app
 * serves must have an entry here (the hub refuses to start otherwise), and nothing else decides
 * who may call what.
 */
export interface RouteSpec {
  method: HttpMethod;
  /** Express path syntax, full path: `/api/hosts/:host`. */
  path: string;
  summary: string;
  /** Default: GET → viewer, other methods → operator. Set `admin` or `public` explicitly. */
  access?: Access;
  tag: string;
  description?: string;
  query?: z.ZodObject;
  body?: z.ZodType;
  /** The success answer; null for 204 No Content. Default: a JSON object. */
  response?: z.ZodType | null;
  /** Content type of a non-JSON success answer (`image/jpeg`, `text/html`). */
  responseType?: string;
  /** Success status; default 200 (204 when response is null). */
  status?: number;
}

const AnyObject = z.record(z.string(), z.unknown());

/** The route table. Add one line per route, next to where its router is mounted in app.ts. */
export const ROUTES: readonly RouteSpec[] = [
  // Public
  { method: "get", path: "/api/health", tag: "system", access: "public", summary: "Liveness for pm2, load balancers and the dashboard.", response: HealthSchema },
  { method: "get", path: "/docs", tag: "docs", access: "public", summary: "This page: the REST API, browsable.", responseType: "text/html" },
  { method: "get", path: "/docs/openapi.json", tag: "docs", access: "public", summary: "The REST API as OpenAPI 3.1." },
  { method: "get", path: "/docs/ws", tag: "docs", access: "public", summary: "JSON Schema of every socket.io event (/agent and /dashboard)." },
  { method: "get", path: "/", tag: "dashboard", access: "public", summary: "The dashboard (a single page; sign-in happens in the page).", responseType: "text/html" },
  { method: "get", path: "/assets/:file", tag: "dashboard", access: "public", summary: "The dashboard's content-hashed scripts and styles (cached for a year, immutable).", responseType: "application/octet-stream" },

  // System and fleet
  { method: "get", path: "/api/system/info", tag: "system", summary: "Versions, settings, counts and schema version." },
  { method: "get", path: "/api/session", tag: "system", summary: "Who this credential belongs to: name, role and expiry (what the dashboard may offer).", response: SessionViewSchema },
  { method: "get", path: "/api/hosts", tag: "hosts", summary: "Every host with its devices.", response: z.object({ hosts: z.array(HostViewSchema) }) },
  { method: "post", path: "/api/hosts", tag: "hosts", access: "admin", summary: "Enrol a host; answers its token once.", body: HostCreateBodySchema, response: HostTokenIssuedSchema, status: 201 },
  { method: "get", path: "/api/hosts/:host", tag: "hosts", summary: "One host with its devices, labels and recent events.", response: HostViewSchema.extend({ labels: AnyObject, events: z.array(AnyObject) }) },
  { method: "delete", path: "/api/hosts/:host", tag: "hosts", access: "admin", summary: "Remove a host (its agent is disconnected; its action history stays).", response: null },
  { method: "post", path: "/api/hosts/:host/token", tag: "hosts", access: "admin", summary: "Issue a new host token; the old one stops working and its agent is disconnected at once.", response: HostTokenIssuedSchema },
  { method: "delete", path: "/api/hosts/:host/token", tag: "hosts", access: "admin", summary: "Revoke the host's token: its agent is disconnected and no token works until a new one is issued.", response: null },
  { method: "get", path: "/api/hosts/:host/devices/:device/console", tag: "hosts", summary: "The tail of a device's serial console.", query: z.object({ resource: IdSchema.optional() }) },
  { method: "get", path: "/api/hosts/:host/artifacts/:id", tag: "hosts", summary: "A snapshot or clip, read from the agent that holds it (400 bad id, 404 unknown, 503 host offline).", responseType: "application/octet-stream" },
  { method: "put", path: "/api/hosts/:host/devices/:device/health", tag: "hosts", access: "admin", summary: "Override a device's health (good, unknown, bad, maintenance).", body: HealthBodySchema },

  // Actions
  { method: "post", path: "/api/hosts/:host/devices/:device/actions", tag: "actions", summary: "Run one catalogue action on an exact device and wait for its record.", body: ExactActionBodySchema, response: ActionRecordSchema },
  { method: "post", path: "/api/actions", tag: "actions", summary: "Run an action on an exact device or on any device matching a selector.", body: DispatchBodySchema, response: ActionRecordSchema },
  { method: "get", path: "/api/actions", tag: "actions", summary: "Action records, newest first.", query: ActionsQuerySchema },
  { method: "get", path: "/api/actions/:id", tag: "actions", summary: "One action record.", response: ActionRecordSchema },
  { method: "delete", path: "/api/actions/:id", tag: "actions", summary: "Cancel a queued or running action." },

  // Leases
  { method: "post", path: "/api/leases", tag: "leases", summary: "Take an exclusive, expiring hold on devices; answers its token once.", body: LeaseBodySchema, status: 201 },
  { method: "get", path: "/api/leases", tag: "leases", summary: "Active leases (?all=1 includes ended ones)." },
  { method: "get", path: "/api/leases/:id", tag: "leases", summary: "One lease (never its token)." },
  { method: "post", path: "/api/leases/:id/keepalive", tag: "leases", summary: "Extend a lease by ttl_s from now (lease token or admin).", body: KeepaliveBodySchema },
  { method: "delete", path: "/api/leases/:id", tag: "leases", summary: "Release a lease (admins may release anyone's)." },

  // Planner
  { method: "post", path: "/api/plans", tag: "plans", summary: "Ask the planner for the next actions from a captured frame.", body: PlanRequestBodySchema, response: PlanRecordSchema, status: 201 },
  { method: "get", path: "/api/plans", tag: "plans", summary: "Plans, newest first." },
  { method: "get", path: "/api/plans/:id", tag: "plans", summary: "One plan.", response: PlanRecordSchema },
  { method: "get", path: "/api/plans/:id/frame", tag: "plans", summary: "The frame the planner saw.", responseType: "image/jpeg" },

  // Test cases, campaigns, runs
  { method: "get", path: "/api/testcases", tag: "campaigns", summary: "Test cases.", response: z.object({ testcases: z.array(TestCaseRecordSchema) }) },
  { method: "post", path: "/api/testcases", tag: "campaigns", summary: "Create a test case (validated against the action catalogue before it is stored).", body: TestCaseBodySchema, response: TestCaseRecordSchema, status: 201 },
  { method: "get", path: "/api/testcases/:id", tag: "campaigns", summary: "One test case.", response: TestCaseRecordSchema },
  { method: "put", path: "/api/testcases/:id", tag: "campaigns", summary: "Replace a test case.", body: TestCaseBodySchema, response: TestCaseRecordSchema },
  { method: "delete", path: "/api/testcases/:id", tag: "campaigns", summary: "Delete a test case (409 while a campaign lists it).", response: null },
  { method: "post", path: "/api/testcases/:id/runs", tag: "campaigns", summary: "Run one test case now.", body: TestCaseRunBodySchema, response: RunAcceptedSchema, status: 202 },
  { method: "get", path: "/api/campaigns", tag: "campaigns", summary: "Campaigns with their next scheduled start.", response: z.object({ campaigns: z.array(CampaignRecordSchema) }) },
  { method: "post", path: "/api/campaigns", tag: "campaigns", summary: "Create a campaign.", body: CampaignBodySchema, response: CampaignRecordSchema, status: 201 },
  { method: "get", path: "/api/campaigns/:id", tag: "campaigns", summary: "One campaign (by id or name).", response: CampaignRecordSchema },
  { method: "put", path: "/api/campaigns/:id", tag: "campaigns", summary: "Replace a campaign.", body: CampaignBodySchema, response: CampaignRecordSchema },
  { method: "delete", path: "/api/campaigns/:id", tag: "campaigns", summary: "Delete a campaign (its runs stay).", response: null },
  { method: "post", path: "/api/campaigns/:id/runs", tag: "campaigns", summary: "Start a run of the campaign now.", response: RunAcceptedSchema, status: 202 },
  { method: "get", path: "/api/runs", tag: "runs", summary: "Runs, newest first.", query: RunsQuerySchema, response: z.object({ runs: z.array(RunSummarySchema), next_cursor: z.string().nullable() }) },
  { method: "get", path: "/api/runs/:id", tag: "runs", summary: "A run with every test attempt and step.", response: RunRecordSchema },
  { method: "get", path: "/api/runs/:id/junit.xml", tag: "runs", summary: "The run as JUnit XML.", responseType: "application/xml" },
  { method: "post", path: "/api/runs/:id/cancel", tag: "runs", summary: "Cancel a run: running actions are aborted, teardown still runs.", response: RunRecordSchema },
  { method: "get", path: "/api/runs/:id/artifacts/:name", tag: "runs", summary: "A file a run produced (transcript, console, snapshot, clip).", responseType: "application/octet-stream" },

  // Operators
  { method: "get", path: "/api/keys", tag: "keys", access: "admin", summary: "API keys (never the key or its hash).", response: z.object({ keys: z.array(ApiKeyViewSchema) }) },
  { method: "post", path: "/api/keys", tag: "keys", access: "admin", summary: "Create an API key; answers the key once.", body: ApiKeyCreateBodySchema, response: ApiKeyCreatedSchema, status: 201 },
  { method: "delete", path: "/api/keys/:id", tag: "keys", access: "admin", summary: "Revoke an API key (the last admin key cannot be revoked).", response: null },
];

/** The role a route needs, or `public`. */
export function accessOf(route: RouteSpec): Access {
  return route.access ?? (route.method === "get" ? "viewer" : "operator");
}

/** True when a principal with `role` may call a route needing `access`. */
export function allows(role: Role | null, access: Access): boolean {
  if (access === "public") return true;
  return role !== null && roleAtLeast(role, access);
}

/** The strictest of several accesses (public < viewer < operator < admin). */
export function strictest(accesses: readonly Access[]): Access {
  const order: Access[] = ["public", "viewer", "operator", "admin"];
  return accesses.reduce<Access>((a, b) => (order.indexOf(b) > order.indexOf(a) ? b : a), "public");
}

const escapeRegExp = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/**
 * A matcher at least as permissive as express's own routing (case-insensitive, optional trailing
 * slash, a `:param` is one non-empty segment), so no request express would route escapes the policy.
 */
function compile(path: string): RegExp {
  const body = path
    .split("/")
    .map((seg) => (seg.startsWith(":") ? "[^/]+" : escapeRegExp(seg)))
    .join("/");
  return new RegExp(`^${body}/?$`, "i");
}

const COMPILED = new WeakMap<RouteSpec, RegExp>();

function matcherOf(route: RouteSpec): RegExp {
  let re = COMPILED.get(route);
  if (!re) {
    re = compile(route.path);
    COMPILED.set(route, re);
  }
  return re;
}

/** The table entries a request matches (HEAD counts as GET). */
export function matchRoutes(method: string, path: string, routes: readonly RouteSpec[] = ROUTES): RouteSpec[] {
  const m = method.toLowerCase() === "head" ? "get" : method.toLowerCase();
  return routes.filter((r) => r.method === m && matcherOf(r).test(path));
}

/** `/api/hosts/:host` → `/api/hosts/:`, so two spellings of the same route compare equal. */
export function routeKey(method: string, path: string): string {
  return `${method.toUpperCase()} ${path.replace(/:[^/]+/g, ":").replace(/(.)\/$/, "$1")}`;
}
