import { LabrigError, type ErrorCode } from "@labrig/shared";
import type { NextFunction, Request, Response } from "express";
import { requestLocals } from "./request-id.js";

/** body-parser errors carry a `type`; these map to stable codes. */
const BODY_ERRORS: Record<string, { code: ErrorCode; message: (limit?: number) => string }> = {
  "entity.parse.failed": { code: "malformed_json", message: () => "The request body is not valid JSON. Send a JSON object with Content-Type: application/json." },
  "entity.too.large": {
    code: "payload_too_large",
    message: (limit) => `The request body is larger than the hub accepts${limit ? ` (${limit} bytes)` : ""}. Send less, or raise LABRIG_BODY_LIMIT.`,
  },
  "encoding.unsupported": { code: "unsupported_media_type", message: () => "Unsupported Content-Encoding; send the body uncompressed." },
  "charset.unsupported": { code: "unsupported_media_type", message: () => "Unsupported charset; send the body as UTF-8 JSON." },
  "request.aborted": { code: "malformed_json", message: () => "The request was aborted before its body arrived." },
  "request.size.invalid": { code: "malformed_json", message: () => "The request body is not as long as its Content-Length says." },
};

/** What the request itself got wrong, as express and body-parser report it; null for the hub's own failures. */
function requestError(err: unknown): LabrigError | null {
  // express decodes path parameters with decodeURIComponent: a malformed %-escape is the client's error.
  if (err instanceof URIError) return new LabrigError("validation_failed", "The URL has a malformed %-escape (a '%' must be followed by two hex digits of UTF-8). Encode the path with encodeURIComponent.", { cause: err });
  if (typeof err !== "object" || err === null) return null;
  if ("type" in err && typeof err.type === "string") {
    const known = BODY_ERRORS[err.type];
    if (known) {
      const limit = "limit" in err && typeof err.limit === "number" ? err.limit : undefined;
      return new LabrigError(known.code, known.message(limit), { cause: err });
    }
  }
  // Any other 4xx from express or body-parser is still the request's fault, never a 500.
  const status = "status" in err && typeof err.status === "number" ? err.status : 0;
  if (status >= 400 && status < 500) return new LabrigError("validation_failed", `The request could not be read: ${(err as { message?: unknown }).message ?? "bad request"}.`, { cause: err });
  return null;
}

/** A POST/PUT/PATCH with a body that is not JSON is refused before parsing. */
export function requireJsonBody(req: Request, _res: Response, next: NextFunction): void {
  const hasBody = req.headers["transfer-encoding"] !== undefined || (req.headers["content-length"] !== undefined && req.headers["content-length"] !== "0");
  if (["POST", "PUT", "PATCH"].includes(req.method) && hasBody && !req.is(["application/json", "application/*+json"])) {
    next(
      new LabrigError(
        "unsupported_media_type",
        `Content-Type '${req.get("content-type") ?? "(none)"}' is not accepted; send JSON with Content-Type: application/json.`,
      ),
    );
    return;
  }
  next();
}

/** Unknown routes get the envelope too. */
export function notFound(req: Request, _res: Response, next: NextFunction): void {
  next(new LabrigError("not_found", `No route ${req.method} ${req.path}. GET /api/health and /api/hosts are good places to start.`));
}

/** The one error handler: every failure leaves as `{error_code, message, recoverable, retry_after?, request_id}`. */
export function errorHandler(err: unknown, _req: Request, res: Response, next: NextFunction): void {
  const { requestId, log } = requestLocals(res);
  const error = err instanceof LabrigError ? err : (requestError(err) ?? new LabrigError("internal_error", "The hub failed to handle this request; it has logged the cause with this request_id.", { cause: err }));
  if (error.code === "internal_error") log.error({ err }, "request failed");
  else log.debug({ error_code: error.code, message: error.message }, "request refused");
  if (res.headersSent) {
    // Too late for an envelope; let express close the connection.
    next(err);
    return;
  }
  if (error.retryAfter !== undefined) res.setHeader("Retry-After", String(Math.ceil(error.retryAfter)));
  // RFC 6750: every 401 names the scheme the client should use.
  if (error.code === "unauthorized" && !res.hasHeader("WWW-Authenticate")) res.setHeader("WWW-Authenticate", 'Bearer realm="labrig"');
  res.status(error.httpStatus).json(error.toEnvelope(requestId));
}
