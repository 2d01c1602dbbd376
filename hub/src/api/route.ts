import { LabrigError, parseOrThrow, roleAtLeast, type Role } from "@labrig/shared";
import type { Request, Response } from "express";
import type { z } from "zod";
import type { Logger } from "../logger.js";
import type { Principal } from "../services/operator-auth.js";

export type HttpMethod = "get" | "post" | "put" | "patch" | "delete";

/** Who may call a route: anyone (`public`) or at least this role. */
export type Access = "public" | Role;

/** What a handler gets: its validated inputs, who is calling, and the raw request for the few that need it. */
export interface RouteContext<P, Q, B> {
  params: P;
  query: Q;
  body: B;
  /** The caller; null only on public routes. */
  principal: Principal | null;
  /** Who asked, for `requested_by` (the principal's name). */
  requester: string | null;
  log: Logger;
  req: Request;
  res: Response;
}

/** A handler's answer when the status is not the route's usual one. */
export interface WithStatus<R> {
  readonly [withStatusTag]: true;
  status: number;
  body: R;
}
const withStatusTag = Symbol("withStatus");

/** Answers `body` with `status` instead of the route's declared success status. */
export function withStatus<R>(status: number, body: R): WithStatus<R> {
  return { [withStatusTag]: true, status, body };
}

/** Returned by handlers that wrote the response themselves (files, streams, XML). */
export const RESPONDED: unique symbol = Symbol("responded");

type Out<S> = S extends z.ZodType ? z.input<S> : unknown;
type In<S, Fallback> = S extends z.ZodType ? z.output<S> : Fallback;

/**
 * One REST route, declared once: method, path, access, what it takes and what it answers, and the
 * handler. Authorization, validation and the OpenAPI document all come from this declaration, and
 * the handler's return type is checked against the declared response at compile time.
 */
export interface Route<P extends z.ZodType | undefined = z.ZodType | undefined, Q extends z.ZodType | undefined = z.ZodType | undefined, B extends z.ZodType | undefined = z.ZodType | undefined, R extends z.ZodType | null | undefined = z.ZodType | null | undefined> {
  method: HttpMethod;
  /** Express path syntax: `/api/hosts/:host`. */
  path: string;
  summary: string;
  tag: string;
  /** Default: GET → viewer, other methods → operator. Set `admin` or `public` explicitly. */
  access?: Access;
  description?: string;
  /** Path parameters; each `:name` is a string when this is absent. */
  params?: P;
  query?: Q;
  body?: B;
  /** Validates the body instead of a plain parse with `body` (a domain validator that reports every problem with its path). */
  parseBody?: (raw: unknown) => In<B, undefined>;
  /** How messages name the body: "Invalid <what>: …" (default: the body of METHOD path). */
  bodyName?: string;
  /** The success answer as JSON; null for 204 No Content; absent when `responseType` names another content type. */
  response?: R;
  /** Content type of a non-JSON success answer (`image/jpeg`, `application/xml`). */
  responseType?: string;
  /** Success status; default 200 (204 when response is null). */
  status?: number;
  /** Other success statuses the handler may answer with withStatus(), documented with the same body. */
  alsoStatus?: readonly number[];
  handler: (
    ctx: RouteContext<In<P, Record<string, string>>, In<Q, Record<string, never>>, In<B, undefined>>,
  ) => Out<R> | WithStatus<Out<R>> | typeof RESPONDED | Promise<Out<R> | WithStatus<Out<R>> | typeof RESPONDED>;
}

/** Declares a route with its types inferred from its schemas (an identity function for the compiler's sake). */
export function route<P extends z.ZodType | undefined = undefined, Q extends z.ZodType | undefined = undefined, B extends z.ZodType | undefined = undefined, R extends z.ZodType | null | undefined = undefined>(
  def: Route<P, Q, B, R>,
): Route {
  return def as unknown as Route;
}

/** The role a route needs, or `public`. */
export function accessOf(r: Pick<Route, "method" | "access">): Access {
  return r.access ?? (r.method === "get" ? "viewer" : "operator");
}

/** True when a principal with `role` may call a route needing `access`. */
export function allows(role: Role | null, access: Access): boolean {
  if (access === "public") return true;
  return role !== null && roleAtLeast(role, access);
}

/** Success status of a route. */
export function statusOf(r: Pick<Route, "status" | "response">): number {
  return r.status ?? (r.response === null ? 204 : 200);
}

/** Runs a route's handler on a request whose caller is already authorized; writes the answer. */
export async function serve(r: Route, req: Request, res: Response, principal: Principal | null, logOf: () => Logger): Promise<void> {
  const what = `${r.method.toUpperCase()} ${r.path}`;
  const params = r.params ? parseOrThrow(r.params, req.params, { what: `path of ${what}`, prefix: "path" }) : req.params;
  const query = r.query ? parseOrThrow(r.query, req.query, { what: `query of ${what}`, prefix: "query" }) : {};
  if (!r.query && Object.keys(req.query as object).length > 0) {
    throw new LabrigError("validation_failed", `${what} takes no query parameters; got ${Object.keys(req.query as object).join(", ")}.`);
  }
  const raw: unknown = req.body ?? {};
  const body = r.parseBody ? r.parseBody(raw) : r.body ? parseOrThrow(r.body, raw, { what: r.bodyName ?? `body of ${what}` }) : undefined;
  const ctx = {
    params,
    query,
    body,
    principal,
    requester: principal?.name ?? null,
    // A getter: a handler that logs nothing costs no child logger.
    get log(): Logger {
      return logOf();
    },
    req,
    res,
  };
  const answer = await r.handler(ctx as never);
  if (answer === RESPONDED) return;
  let status = statusOf(r);
  let payload: unknown = answer;
  if (typeof answer === "object" && answer !== null && withStatusTag in answer) {
    status = (answer as WithStatus<unknown>).status;
    payload = (answer as WithStatus<unknown>).body;
  }
  if (status === 204) {
    res.status(204).end();
    return;
  }
  res.status(status).json(payload);
}
