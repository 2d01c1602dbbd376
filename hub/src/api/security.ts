import { LabrigError } from "@labrig/shared";
import cors from "cors";
import type { NextFunction, Request, RequestHandler, Response } from "express";
import helmet from "helmet";

/** Headers browsers may send and read cross-origin. */
const ALLOWED_HEADERS = ["Authorization", "Content-Type", "X-Request-Id"];
const EXPOSED_HEADERS = ["X-Request-Id", "Retry-After", "WWW-Authenticate"];

/**
 * helmet's default headers (CSP `default-src 'self'` suits the self-contained /docs page: inline
 * styles only, no scripts). They do not depend on the request, so helmet runs once here and each
 * response just gets the headers it set: one middleware on the hot path instead of helmet's dozen.
 */
export function securityHeaders(): RequestHandler {
  const headers: [string, string][] = [];
  const recorder = {
    setHeader: (name: string, value: unknown) => void headers.push([name, String(value)]),
    removeHeader: () => undefined,
    getHeader: () => undefined,
  };
  let failure: unknown = null;
  helmet()({ headers: {} } as unknown as Request, recorder as unknown as Response, (err?: unknown) => {
    if (err) failure = err;
  });
  if (failure !== null) throw failure instanceof Error ? failure : new Error(String(failure));
  return (_req: Request, res: Response, next: NextFunction): void => {
    for (const [name, value] of headers) res.setHeader(name, value);
    next();
  };
}

/** True when `origin` is the origin the request was sent to (what browsers do not need CORS for). */
export function isSameOrigin(origin: string, hostHeader: string | undefined): boolean {
  try {
    return hostHeader !== undefined && new URL(origin).host.toLowerCase() === hostHeader.toLowerCase();
  } catch {
    // Not a URL (e.g. "null" from a sandboxed iframe): never the same origin.
    return false;
  }
}

/** True when a browser page at `origin` may use the API: listed in LABRIG_CORS_ORIGINS or the hub's own origin. */
export function originAllowed(origins: ReadonlySet<string>, origin: string | undefined, hostHeader: string | undefined): boolean {
  return origin === undefined || origins.has(origin) || isSameOrigin(origin, hostHeader);
}

/**
 * CORS for the allowlist only (none by default: same origin). A preflight from any other origin is
 * refused with the envelope; simple requests from other origins are served without CORS headers, so
 * the browser keeps the answer from the page.
 */
export function corsPolicy(origins: readonly string[]): RequestHandler {
  const allowed = new Set(origins);
  const handler = cors({
    origin: (origin, cb) => cb(null, origin !== undefined && allowed.has(origin)),
    methods: ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"],
    allowedHeaders: ALLOWED_HEADERS,
    exposedHeaders: EXPOSED_HEADERS,
    maxAge: 600,
  });
  return (req: Request, res: Response, next: NextFunction): void => {
    const origin = req.get("origin");
    const preflight = req.method === "OPTIONS" && origin !== undefined && req.get("access-control-request-method") !== undefined;
    if (preflight && !allowed.has(origin)) {
      next(new LabrigError("forbidden", `Origin ${origin} may not call this API. An admin can allow it with LABRIG_CORS_ORIGINS.`));
      return;
    }
    handler(req, res, next);
  };
}
