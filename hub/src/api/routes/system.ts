import { Router } from "express";
import type { HubConfig } from "../../config.js";
import type { HubDatabase } from "../../db/database.js";
import type { ActionsRepository } from "../../repositories/actions.js";
import type { DevicesRepository } from "../../repositories/devices.js";
import type { HostsRepository } from "../../repositories/hosts.js";

/** GET /api/system/info: what an operator needs when something looks wrong. */
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
    res.json({
      version: deps.version,
      node_version: process.version,
      pid: process.pid,
      uptime_s: Math.round((Date.now() - deps.startedAtMs) / 1000),
      data_dir: deps.config.dataDir,
      db_path: deps.config.dbPath,
      heartbeat_interval_ms: deps.config.heartbeatIntervalMs,
      missed_heartbeats: deps.config.missedHeartbeats,
      counts: { hosts: deps.hosts.count(), devices: deps.devices.count(), actions: deps.actions.count() },
      schema_version: deps.database.schemaVersion(),
    });
  });
  return router;
}
