import { LabrigError, SystemStatusSchema } from "@labrig/shared";
import type { Request } from "express";
import type { OpsConfig } from "../../config.js";
import type { HubMetrics } from "../../services/metrics.js";
import { systemStatus, type StatusFacts } from "../../services/system-status.js";
import { hashToken, tokenMatchesHash } from "../../services/tokens.js";
import { bearerToken } from "../auth.js";
import { RESPONDED, route, withStatus, type Route } from "../route.js";

/** req.ip is the client behind a loopback proxy (trust proxy), so a request relayed by nginx is not "loopback". */
function fromLoopback(req: Request): boolean {
  const ip = req.ip ?? "";
  return ip.startsWith("127.") || ip === "::1" || ip.startsWith("::ffff:127.");
}

/**
 * Prometheus metrics and the hub's status. /metrics is not an operator route: its own access rule
 * (LABRIG_METRICS_ACCESS) is a scraper's token or the loopback interface, so a Prometheus beside the
 * hub needs no API key.
 */
export function opsRoutes(deps: { metrics: HubMetrics; status: StatusFacts; ops: OpsConfig }): Route[] {
  const tokenHash = deps.ops.metricsToken === null ? null : hashToken(deps.ops.metricsToken);
  return [
    route({
      method: "get",
      path: "/metrics",
      tag: "system",
      access: "public",
      summary: "Prometheus metrics; its own access rule (LABRIG_METRICS_ACCESS): loopback clients, or Bearer LABRIG_METRICS_TOKEN.",
      responseType: "text/plain",
      handler: async ({ req, res }) => {
        const access = deps.ops.metricsAccess;
        if (access === "off") throw new LabrigError("not_found", "Metrics are off (LABRIG_METRICS_ACCESS=off).");
        if (access === "loopback" && !fromLoopback(req)) {
          throw new LabrigError("forbidden", "Metrics are served to loopback clients only. Scrape from the hub's machine, or set LABRIG_METRICS_ACCESS=token with LABRIG_METRICS_TOKEN.");
        }
        if (access === "token") {
          const presented = bearerToken(req.get("authorization"));
          if (presented === null || tokenHash === null || !tokenMatchesHash(presented, tokenHash)) {
            throw new LabrigError("unauthorized", "Metrics need 'Authorization: Bearer <LABRIG_METRICS_TOKEN>' (Prometheus: authorization.credentials in the scrape config).");
          }
        }
        res.set("content-type", deps.metrics.contentType).send(await deps.metrics.text());
        return RESPONDED;
      },
    }),
    route({
      method: "get",
      path: "/api/system/status",
      tag: "system",
      summary: "Fleet, queue, runs, planner, database and disk, and what is degraded; 503 when unavailable (for load balancers).",
      response: SystemStatusSchema,
      alsoStatus: [503],
      handler: () => {
        const body = systemStatus(deps.status);
        return body.status === "unavailable" ? withStatus(503, body) : body;
      },
    }),
  ];
}
