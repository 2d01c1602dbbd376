import { z } from "zod";

/**
 * Every error labrig reports carries one of these stable codes. The HTTP status
 * and whether a retry can help are properties of the code, so the hub and the
 * agent agree on them without re-declaring anything.
 */
export const ERROR_CODES = {
  validation_failed: { http: 400, recoverable: false },
  malformed_json: { http: 400, recoverable: false },
  payload_too_large: { http: 413, recoverable: false },
  headers_too_large: { http: 431, recoverable: false },
  request_timeout: { http: 408, recoverable: true },
  unsupported_media_type: { http: 415, recoverable: false },
  not_found: { http: 404, recoverable: false },
  unknown_action: { http: 400, recoverable: false },
  unknown_host: { http: 404, recoverable: false },
  unknown_device: { http: 404, recoverable: false },
  unknown_resource: { http: 400, recoverable: false },
  ambiguous_resource: { http: 400, recoverable: false },
  unsupported_action: { http: 400, recoverable: false },
  conflict: { http: 409, recoverable: false },
  host_offline: { http: 503, recoverable: true },
  host_lost: { http: 502, recoverable: true },
  device_unavailable: { http: 503, recoverable: true },
  device_busy: { http: 409, recoverable: true },
  no_device_available: { http: 503, recoverable: true },
  forbidden_line: { http: 403, recoverable: false },
  hardware_error: { http: 502, recoverable: true },
  storage_full: { http: 507, recoverable: true },
  expect_timeout: { http: 504, recoverable: true },
  action_timeout: { http: 504, recoverable: true },
  canceled: { http: 409, recoverable: false },
  unauthorized: { http: 401, recoverable: false },
  forbidden: { http: 403, recoverable: false },
  rate_limited: { http: 429, recoverable: true },
  auth_unavailable: { http: 503, recoverable: true },
  lease_required: { http: 423, recoverable: true },
  planner_unavailable: { http: 503, recoverable: false },
  plan_invalid: { http: 502, recoverable: true },
  planner_error: { http: 502, recoverable: true },
  planner_timeout: { http: 504, recoverable: true },
  budget_exhausted: { http: 429, recoverable: true },
  shutting_down: { http: 503, recoverable: true },
  internal_error: { http: 500, recoverable: true },
} as const satisfies Record<string, { http: number; recoverable: boolean }>;

export type ErrorCode = keyof typeof ERROR_CODES;

const errorCodeNames = Object.keys(ERROR_CODES) as [ErrorCode, ...ErrorCode[]];

/** Schema of a stable error code. */
export const ErrorCodeSchema = z.enum(errorCodeNames);

/** The one error envelope used by every REST answer, socket ack and action record. */
export const ErrorEnvelopeSchema = z.object({
  error_code: ErrorCodeSchema,
  message: z.string(),
  recoverable: z.boolean(),
  retry_after: z.number().nonnegative().optional(),
  request_id: z.string().optional(),
  details: z.unknown().optional(),
});
export type ErrorEnvelope = z.infer<typeof ErrorEnvelopeSchema>;

/** An error that knows its stable code; thrown by hub and agent code, turned into an envelope at the edge. */
export class LabrigError extends Error {
  readonly code: ErrorCode;
  readonly retryAfter: number | undefined;
  readonly details: unknown;

  constructor(code: ErrorCode, message: string, options: { retryAfter?: number; details?: unknown; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "LabrigError";
    this.code = code;
    this.retryAfter = options.retryAfter;
    this.details = options.details;
  }

  /** The HTTP status that goes with this error's code. */
  get httpStatus(): number {
    return ERROR_CODES[this.code].http;
  }

  /** This error as the wire envelope. */
  toEnvelope(requestId?: string): ErrorEnvelope {
    return makeEnvelope(this.code, this.message, {
      retryAfter: this.retryAfter,
      requestId,
      details: this.details,
    });
  }
}

/** Builds an envelope for a code, filling `recoverable` from the code table. */
export function makeEnvelope(
  code: ErrorCode,
  message: string,
  options: { retryAfter?: number | undefined; requestId?: string | undefined; details?: unknown } = {},
): ErrorEnvelope {
  const envelope: ErrorEnvelope = { error_code: code, message, recoverable: ERROR_CODES[code].recoverable };
  if (options.retryAfter !== undefined) envelope.retry_after = options.retryAfter;
  if (options.requestId !== undefined) envelope.request_id = options.requestId;
  if (options.details !== undefined) envelope.details = options.details;
  return envelope;
}

/** Turns anything thrown into a LabrigError; unknown errors become `internal_error`. */
export function toLabrigError(err: unknown): LabrigError {
  if (err instanceof LabrigError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new LabrigError("internal_error", message, { cause: err });
}
