import { LabrigError, type ErrorCode } from "@labrig/shared";
import type { NextFunction, Request, Response } from "express";
import { requestLocals, requestLog } from "./request-id.js";

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

/**
 * What an operator can do about an error, by code, in terms of this API: services say what is wrong;
 * the REST layer adds where to look next. Codes without a hint speak for themselves.
 */
const HINTS: Partial<Record<ErrorCode, (at: { host: string; device: string }) => string>> = {
  unknown_host: () => "GET /api/hosts lists the hosts; enrol one with POST /api/hosts or `labrig-hub host add NAME`.",
  unknown_device: () => "GET /api/hosts lists the devices with their labels, capabilities and resources.",
  lease_required: () => "Send the lease's token as X-Lease-Token (or lease_token in the body), or take a lease with POST /api/leases.",
  device_unavailable: (at) => `An admin sets it good again with PUT /api/hosts/${at.host}/devices/${at.device}/health.`,
  host_offline: (at) => `GET /api/hosts/${at.host} shows when it was last seen and its recent events.`,
};

function withHint(error: LabrigError): string {
  const hint = HINTS[error.code];
  if (hint === undefined) return error.message;
  const details = (typeof error.details === "object" && error.details !== null ? error.details : {}) as { host?: unknown; device?: unknown };
  const text = hint({ host: typeof details.host === "string" ? details.host : ":host", device: typeof details.device === "string" ? details.device : ":device" });
  return error.message.includes(text) ? error.message : `${error.message} ${text}`;
}

/** The one error handler: every failure leaves as `{error_code, message, recoverable, retry_after?, request_id}`. */
export function errorHandler(err: unknown, _req: Request, res: Response, next: NextFunction): void {
  const { requestId } = requestLocals(res);
  const error = err instanceof LabrigError ? err : (requestError(err) ?? new LabrigError("internal_error", "The hub failed to handle this request; it has logged the cause with this request_id.", { cause: err }));
  if (error.code === "internal_error") requestLog(res).error({ err }, "request failed");
  else if (requestLocals(res).logger.isLevelEnabled("debug")) requestLog(res).debug({ error_code: error.code, message: error.message }, "request refused");
  if (res.headersSent) {
    // Too late for an envelope; let express close the connection.
    next(err);
    return;
  }
  if (error.retryAfter !== undefined) res.setHeader("Retry-After", String(Math.ceil(error.retryAfter)));
  // RFC 6750: every 401 names the scheme the client should use.
  if (error.code === "unauthorized" && !res.hasHeader("WWW-Authenticate")) res.setHeader("WWW-Authenticate", 'Bearer realm="labrig"');
  const envelope = error.toEnvelope(requestId);
  envelope.message = withHint(error);
  res.status(error.httpStatus).json(envelope);
}
