import { LabrigError } from "@labrig/shared";
import { Router, type Request } from "express";
import type { OpsConfig } from "../../config.js";
import type { HubMetrics } from "../../services/metrics.js";
import { hashToken, tokenMatchesHash } from "../../services/tokens.js";
import { bearerToken } from "../auth.js";

/** req.ip is the client behind a loopback proxy (trust proxy), so a request relayed by nginx is not "loopback". */
function fromLoopback(req: Request): boolean {
  const ip = req.ip ?? "";
  return ip.startsWith("127.") || ip === "::1" || ip.startsWith("::ffff:127.");
}

/**
 * GET /metrics for Prometheus. Not an operator route: its own access rule (LABRIG_METRICS_ACCESS)
 * is a scraper's token or the loopback interface, so a Prometheus beside the hub needs no API key.
 */
export function metricsRouter(deps: { metrics: HubMetrics; ops: OpsConfig }): Router {
  const router = Router();
  const tokenHash = deps.ops.metricsToken === null ? null : hashToken(deps.ops.metricsToken);
  router.get("/metrics", (req, res, next) => {
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
    deps.metrics.text().then((text) => {
      res.set("content-type", deps.metrics.contentType).send(text);
    }, next);
  });
  return router;
}
