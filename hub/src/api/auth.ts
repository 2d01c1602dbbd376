import { LabrigError } from "@labrig/shared";
import type { NextFunction, Request, Response } from "express";
import type { AuthFailureLimiter } from "../services/auth-failure-limiter.js";
import type { OperatorAuth } from "../services/operator-auth.js";
import { requestLocals } from "./request-id.js";
import { accessOf, allows, matchRoutes, strictest } from "./route-policy.js";

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

/**
 * The one gate in front of every route: looks the request up in the route table, lets public
 * routes through, authenticates everything else (401), refuses unknown routes only after that
 * (404, so anonymous callers learn nothing about which routes exist) and checks the role (403).
 */
export function guard(deps: GuardDeps) {
  return async (req: Request, res: Response, next: NextFunction): Promise<void> => {
    const matched = matchRoutes(req.method, req.path);
    const access = matched.length === 0 ? null : strictest(matched.map(accessOf));
    if (access === "public") {
      next();
      return;
    }
    const { log } = requestLocals(res);
    const address = req.ip ?? req.socket.remoteAddress ?? "unknown";
    const retryAfter = deps.limiter.blockedFor(address);
    if (retryAfter !== null) {
      next(new LabrigError("rate_limited", `Too many failed authentications from ${address}; try again in ${retryAfter} s.`, { retryAfter }));
      return;
    }
    const credential = bearerToken(req.get("authorization"));
    if (credential === null) {
      res.setHeader("WWW-Authenticate", 'Bearer realm="labrig"');
      next(new LabrigError("unauthorized", "This needs credentials: send 'Authorization: Bearer <API key or JWT>'. An admin creates keys with: labrig-hub key add NAME --role viewer|operator|admin."));
      return;
    }
    let principal;
    try {
      principal = await deps.auth.authenticate(credential);
    } catch (err) {
      if (err instanceof LabrigError && err.code === "unauthorized") {
        log[deps.limiter.fail(address)]({ address, method: req.method, path: req.path, reason: err.message }, "authentication failed");
        res.setHeader("WWW-Authenticate", 'Bearer realm="labrig", error="invalid_token"');
      }
      next(err);
      return;
    }
    const locals = requestLocals(res);
    locals.principal = principal;
    locals.log = locals.log.child({ principal: principal.name, role: principal.role });
    if (access === null) {
      next(new LabrigError("not_found", `No route ${req.method} ${req.path}. GET /docs lists the API.`));
      return;
    }
    if (!allows(principal.role, access)) {
      next(new LabrigError("forbidden", `${req.method} ${req.path} needs the ${access} role; '${principal.name}' has ${principal.role}. Ask an admin for a key with that role.`));
      return;
    }
    next();
  };
}
