import { Router } from "express";
import { systemStatus, type StatusFacts } from "../../services/system-status.js";

/** GET /api/system/status: the hub's state for operators and for a load balancer's health check (200 or 503). */
export function systemStatusRouter(deps: { status: StatusFacts }): Router {
  const router = Router();
  router.get("/system/status", (_req, res) => {
    const body = systemStatus(deps.status);
    res.status(body.status === "unavailable" ? 503 : 200).json(body);
  });
  return router;
}
