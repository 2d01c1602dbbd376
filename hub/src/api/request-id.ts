import { randomUUID } from "node:crypto";
import { redactUrl } from "@labrig/shared";
import type { NextFunction, Request, Response } from "express";
import type { Logger } from "../logger.js";
import type { Principal } from "../services/operator-auth.js";

const INCOMING_ID = /^[A-Za-z0-9._-]{1,64}$/;

// Typed per-request state, kept on res.locals so no global Express type is augmented.
export interface RequestLocals {
  requestId: string;
  /** The hub's logger; requestLog() binds the request id to it on first use. */
  logger: Logger;
  log?: Logger;
  /** Who is calling; set by the route's gate on every authenticated route (absent on public ones). */
  principal?: Principal;
}

/** The request's id and (lazily) its logger, as requestContext() set them. */
export function requestLocals(res: Response): RequestLocals {
  return res.locals as RequestLocals;
}

/**
 * The request's logger, with its request id and caller. Made on first use: most requests log only
 * their response line, and a child logger per request costs more than the route itself.
 */
export function requestLog(res: Response): Logger {
  const locals = requestLocals(res);
  if (!locals.log) {
    const p = locals.principal;
    locals.log = locals.logger.child(p ? { request_id: locals.requestId, principal: p.name, role: p.role } : { request_id: locals.requestId });
  }
  return locals.log;
}

/**
 * Gives every request an id (the caller's X-Request-Id when it is well-formed, so a trace crosses
 * proxies) and logs the response with its duration.
 */
export function requestContext(logger: Logger) {
  return (req: Request, res: Response, next: NextFunction): void => {
    const incoming = req.get("x-request-id");
    const requestId = incoming !== undefined && INCOMING_ID.test(incoming) ? incoming : randomUUID();
    const locals = res.locals as RequestLocals;
    locals.requestId = requestId;
    locals.logger = logger;
    res.setHeader("X-Request-Id", requestId);
    const started = process.hrtime.bigint();
    res.on("finish", () => {
      const level = res.statusCode >= 500 ? "error" : "info";
      if (!logger.isLevelEnabled(level)) return;
      const durationMs = Number(process.hrtime.bigint() - started) / 1e6;
      // A credential in the query (refused on REST, but clients send one anyway) must not reach the log.
      logger[level]({ request_id: requestId, method: req.method, url: redactUrl(req.originalUrl), status: res.statusCode, duration_ms: Math.round(durationMs * 1000) / 1000 }, "response");
    });
    next();
  };
}
