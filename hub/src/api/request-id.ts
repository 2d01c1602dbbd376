import { randomUUID } from "node:crypto";
import type { NextFunction, Request, Response } from "express";
import { redactUrl } from "../log-redaction.js";
import type { Logger } from "../logger.js";
import type { Principal } from "../services/operator-auth.js";

const INCOMING_ID = /^[A-Za-z0-9._-]{1,64}$/;

// Typed per-request state, kept on res.locals so no global Express type is augmented.
export interface RequestLocals {
  requestId: string;
  log: Logger;
  /** Who is calling; set by the guard on every authenticated route (absent on public ones). */
  principal?: Principal;
}

/** The request's id and logger, set by requestContext(). */
export function requestLocals(res: Response): RequestLocals {
  return res.locals as RequestLocals;
}

/**
 * Gives every request an id (the caller's X-Request-Id when it is well-formed, so a trace
 * crosses proxies) and a child logger, and logs the response with its duration.
 */
export function requestContext(logger: Logger) {
  return (req: Request, res: Response, next: NextFunction): void => {
    const incoming = req.get("x-request-id");
    const requestId = incoming !== undefined && INCOMING_ID.test(incoming) ? incoming : randomUUID();
    const log = logger.child({ request_id: requestId });
    res.locals.requestId = requestId;
    res.locals.log = log;
    res.setHeader("X-Request-Id", requestId);
    const started = process.hrtime.bigint();
    // A credential in the query (refused on REST, but clients send one anyway) must not reach the log.
    const url = redactUrl(req.originalUrl);
    log.debug({ method: req.method, url }, "request");
    res.on("finish", () => {
      const durationMs = Number(process.hrtime.bigint() - started) / 1e6;
      const entry = { method: req.method, url, status: res.statusCode, duration_ms: Math.round(durationMs * 1000) / 1000, request_id: requestId };
      if (res.statusCode >= 500) log.error(entry, "response");
      else log.info(entry, "response");
    });
    next();
  };
}
