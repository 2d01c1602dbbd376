import type { Health } from "@labrig/shared";
import { Router } from "express";
import type { HubDatabase } from "../../db/database.js";
import type { HostsRepository } from "../../repositories/hosts.js";

/** GET /api/health: liveness for pm2, load balancers and the dashboard. */
export function healthRouter(deps: { database: HubDatabase; hosts: HostsRepository; version: string; startedAtMs: number }): Router {
  const router = Router();
  router.get("/health", (_req, res) => {
    const dbOk = deps.database.isHealthy();
    let hostsOnline = 0;
    if (dbOk) hostsOnline = deps.hosts.countOnline();
    const body: Health = {
      status: dbOk ? "ok" : "degraded",
      version: deps.version,
      database: { ok: dbOk },
      hosts_online: hostsOnline,
      uptime_s: Math.round((Date.now() - deps.startedAtMs) / 1000),
    };
    res.status(dbOk ? 200 : 503).json(body);
  });
  return router;
}
