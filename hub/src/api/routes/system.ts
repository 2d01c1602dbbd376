import { Router } from "express";
import type { HubConfig } from "../../config.js";
import type { HubDatabase } from "../../db/database.js";
import type { ActionsRepository } from "../../repositories/actions.js";
import type { DevicesRepository } from "../../repositories/devices.js";
import type { HostsRepository } from "../../repositories/hosts.js";
import { isAdmin } from "../requester.js";

/** GET /api/system/info: what an operator needs when something looks wrong (process details for admins only). */
export function systemRouter(deps: {
  config: HubConfig;
  database: HubDatabase;
  hosts: HostsRepository;
  devices: DevicesRepository;
  actions: ActionsRepository;
  version: string;
  startedAtMs: number;
}): Router {
  const router = Router();
  router.get("/system/info", (_req, res) => {
    // Process id, paths and the Node version help an admin and an attacker alike: admins only.
    const processInfo = isAdmin(res) ? { node_version: process.version, pid: process.pid, data_dir: deps.config.dataDir, db_path: deps.config.dbPath } : {};
    res.json({
      version: deps.version,
      ...processInfo,
      uptime_s: Math.round((Date.now() - deps.startedAtMs) / 1000),
      heartbeat_interval_ms: deps.config.heartbeatIntervalMs,
      missed_heartbeats: deps.config.missedHeartbeats,
      counts: { hosts: deps.hosts.count(), devices: deps.devices.count(), actions: deps.actions.count() },
      schema_version: deps.database.schemaVersion(),
    });
  });
  return router;
}
