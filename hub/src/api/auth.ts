import { LabrigError } from "@labrig/shared";
import type { NextFunction, Request, RequestHandler, Response } from "express";
import type { AuthFailureLimiter } from "../services/auth-failure-limiter.js";
import type { OperatorAuth, Principal } from "../services/operator-auth.js";
import { requestLocals, requestLog } from "./request-id.js";
import { allows, type Access } from "./route.js";

/** The credential in `Authorization: Bearer …`, or null. Query-string tokens are refused on REST: they end up in access logs. */
export function bearerToken(header: string | undefined): string | null {
  if (header === undefined) return null;
  const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header);
  return m?.[1] ?? null;
}

export interface GuardDeps {
  auth: OperatorAuth;
  limiter: AuthFailureLimiter;
}

/** Authenticates the request's bearer credential (401, or 429 after too many failures from one address). */
async function authenticate(deps: GuardDeps, req: Request, res: Response): Promise<Principal> {
  const address = req.ip ?? req.socket.remoteAddress ?? "unknown";
  const retryAfter = deps.limiter.blockedFor(address);
  if (retryAfter !== null) throw new LabrigError("rate_limited", `Too many failed authentications from ${address}; try again in ${retryAfter} s.`, { retryAfter });
  const credential = bearerToken(req.get("authorization"));
  if (credential === null) {
    res.setHeader("WWW-Authenticate", 'Bearer realm="labrig"');
    throw new LabrigError("unauthorized", "This needs credentials: send 'Authorization: Bearer <API key or JWT>'. An admin creates keys with: labrig-hub key add NAME --role viewer|operator|admin.");
  }
  try {
    const principal = await deps.auth.authenticate(credential);
    requestLocals(res).principal = principal;
    return principal;
  } catch (err) {
    if (err instanceof LabrigError && err.code === "unauthorized") {
      requestLog(res)[deps.limiter.fail(address)]({ address, method: req.method, path: req.path, reason: err.message }, "authentication failed");
      res.setHeader("WWW-Authenticate", 'Bearer realm="labrig", error="invalid_token"');
    }
    throw err;
  }
}

/** The gate of one route: authenticates (401) and checks the role the route declares (403), before any body is read. */
export function authorize(deps: GuardDeps, access: Exclude<Access, "public">): RequestHandler {
  return (req: Request, res: Response, next: NextFunction): void => {
    authenticate(deps, req, res).then((principal) => {
      if (!allows(principal.role, access)) {
        next(new LabrigError("forbidden", `${req.method} ${req.path} needs the ${access} role; '${principal.name}' has ${principal.role}. Ask an admin for a key with that role.`));
        return;
      }
      next();
    }, next);
  };
}

/**
 * What no route matched: authenticated first (401 for anonymous callers, so they learn nothing about
 * which routes exist), then 404.
 */
export function unknownRoute(deps: GuardDeps): RequestHandler {
  return (req: Request, res: Response, next: NextFunction): void => {
    authenticate(deps, req, res).then(() => next(new LabrigError("not_found", `No route ${req.method} ${req.path}. GET /docs lists the API.`)), next);
  };
}
