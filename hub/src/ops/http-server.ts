import type { Server as HttpServer } from "node:http";
import type { HubConfig } from "../config.js";
import type { Logger } from "../logger.js";

/**
 * Keep-alive that never closes a pooled connection under a request. A client (Node's fetch keeps
 * idle sockets 4 s, nginx's upstream pool 60 s) may send on an idle connection at the very moment
 * the server's keep-alive timer closes it, and gets ECONNRESET (Node's default 5 s is right in that
 * window). The server must outlast every client's idle time, and announce its own in the
 * Keep-Alive header so clients that honour it retire the socket first. headersTimeout must exceed
 * keepAliveTimeout or Node may cut a connection whose next request's headers are still arriving.
 */
export function applyKeepAlive(http: HttpServer, keepAliveMs: number): void {
  http.keepAliveTimeout = keepAliveMs;
  http.headersTimeout = keepAliveMs + 5000;
}

const LOOPBACK = /^(127\.|::1$|::ffff:127\.|localhost$)/;

/** True when the hub is reachable from other machines over plain HTTP and nobody said TLS is in front. */
export function plainHttpExposed(config: Pick<HubConfig, "bind" | "ops">): boolean {
  return !LOOPBACK.test(config.bind) && !config.ops.tlsUpstream;
}

/** Warns once at start when host tokens and API keys would cross the network in clear. */
export function warnIfPlainHttp(config: Pick<HubConfig, "bind" | "ops">, logger: Logger): void {
  if (!plainHttpExposed(config)) return;
  logger.warn(
    { bind: config.bind, tls_upstream: false },
    "the hub listens on a non-loopback address over plain HTTP: host tokens and API keys cross the network in clear. Put nginx with TLS in front (deployment/nginx/) and set LABRIG_TLS_UPSTREAM=true, or bind 127.0.0.1",
  );
}
