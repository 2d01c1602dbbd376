import { HealthSchema, SystemInfoSchema } from "@labrig/shared";
import type { HubConfig } from "../../config.js";
import type { HubDatabase } from "../../db/database.js";
import type { ActionsRepository } from "../../repositories/actions.js";
import type { DevicesRepository } from "../../repositories/devices.js";
import type { HostsRepository } from "../../repositories/hosts.js";
import { route, withStatus, type Route } from "../route.js";

/** Liveness for pm2, load balancers and the dashboard, and what an operator needs when something looks wrong. */
export function systemRoutes(deps: {
  config: HubConfig;
  database: HubDatabase;
  hosts: HostsRepository;
  devices: DevicesRepository;
  actions: ActionsRepository;
  version: string;
  startedAtMs: number;
}): Route[] {
  const uptimeS = (): number => Math.round((Date.now() - deps.startedAtMs) / 1000);
  return [
    route({
      method: "get",
      path: "/api/health",
      tag: "system",
      access: "public",
      summary: "Liveness for pm2, load balancers and the dashboard (503 while the database is not usable).",
      response: HealthSchema,
      alsoStatus: [503],
      handler: () => {
        const dbOk = deps.database.isHealthy();
        const body = { status: dbOk ? ("ok" as const) : ("degraded" as const), version: deps.version, database: { ok: dbOk }, hosts_online: dbOk ? deps.hosts.countOnline() : 0, uptime_s: uptimeS() };
        return dbOk ? body : withStatus(503, body);
      },
    }),
    route({
      method: "get",
      path: "/api/system/info",
      tag: "system",
      summary: "Versions, settings, counts and schema version; pid, paths and Node version for admins only.",
      response: SystemInfoSchema,
      handler: ({ principal }) => ({
        version: deps.version,
        // Process id, paths and the Node version help an admin and an attacker alike: admins only.
        ...(principal?.role === "admin" ? { node_version: process.version, pid: process.pid, data_dir: deps.config.dataDir, db_path: deps.config.dbPath } : {}),
        uptime_s: uptimeS(),
        heartbeat_interval_ms: deps.config.heartbeatIntervalMs,
        missed_heartbeats: deps.config.missedHeartbeats,
        counts: { hosts: deps.hosts.count(), devices: deps.devices.count(), actions: deps.actions.count() },
        schema_version: deps.database.schemaVersion(),
      }),
    }),
  ];
}
