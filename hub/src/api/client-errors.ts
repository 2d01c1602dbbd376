import { randomUUID } from "node:crypto";
import { STATUS_CODES, type Server } from "node:http";
import type { Duplex } from "node:stream";
import { ERROR_CODES, makeEnvelope, type ErrorCode } from "@labrig/shared";
import type { Logger } from "../logger.js";

/** What a request Node's HTTP parser refused gets: its status follows the code, as everywhere else. */
function refusalOf(err: NodeJS.ErrnoException): { code: ErrorCode; message: string } {
  if (err.code === "HPE_HEADER_OVERFLOW") {
    return { code: "headers_too_large", message: "The request line and headers are larger than the hub reads (16 KiB in all). Send long values in a JSON body, not in the URL or a header." };
  }
  if (err.code === "ERR_HTTP_REQUEST_TIMEOUT") {
    return { code: "request_timeout", message: "The request did not arrive completely in time; send it again." };
  }
  return {
    code: "validation_failed",
    message: `The request is not valid HTTP/1.1 (${err.code ?? "parse error"}). A URL must be ASCII: %-encode everything else (encodeURIComponent), and send headers without control characters.`,
  };
}

/**
 * Answers the requests Node's HTTP parser refuses before express sees them — a URL with raw
 * non-ASCII bytes, a request line that is not HTTP, headers past Node's 16 KiB — with the one error
 * envelope and an X-Request-Id, where Node would send a bare `400 Bad Request` with no body.
 */
export function answerClientErrors(http: Server, logger: Logger): void {
  http.on("clientError", (err: NodeJS.ErrnoException, socket: Duplex) => {
    // A peer that reset the connection, or one whose answer is already on its way, gets nothing more.
    if (err.code === "ECONNRESET" || !socket.writable) {
      socket.destroy();
      return;
    }
    const { code, message } = refusalOf(err);
    const status = ERROR_CODES[code].http;
    const requestId = randomUUID();
    const body = JSON.stringify(makeEnvelope(code, message, { requestId }));
    logger.debug({ request_id: requestId, status, parser_error: err.code ?? err.message }, "unparsable request refused");
    socket.end(
      `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ""}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nX-Request-Id: ${requestId}\r\nConnection: close\r\n\r\n${body}`,
    );
  });
}
