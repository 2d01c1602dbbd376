import type { DegradedItem, SystemStatus } from "@labrig/shared";

/**
 * The facts `GET /api/system/status` is made of, read when it is asked. The hub wires them to
 * whatever owns each fact (ops-wiring.ts); tests can hand in plain values.
 */
export interface StatusFacts {
  version: string;
  uptimeS(): number;
  draining(): boolean;
  hosts(): { total: number; online: number };
  devicesByHealth(): Record<string, number>;
  agentsConnected(): number;
  queue(): { waiting: number; running: number; max: number };
  runsUnderWay(): { id: string; name: string; campaign_id: string | null; status: string; started_at: string | null }[];
  planner(): { enabled: boolean; model: string | null; requestsUsed: number; requestsLimit: number; tokensUsed: number; tokensLimit: number };
  database(): { ok: boolean; path: string; sizeBytes: number; schemaVersion: number };
  disk(): { path: string; freeBytes: number; totalBytes: number };
}

/** Below this much free space for artifacts and the database, the hub reports itself degraded. */
export const DISK_LOW_BYTES = 1024 ** 3;
/** …or below this share of the file system, whichever is larger on small SD cards. */
export const DISK_LOW_SHARE = 0.05;

/** Builds the status from the facts: what is degraded, and the one word a health check reads. */
export function systemStatus(f: StatusFacts): SystemStatus {
  const degraded: DegradedItem[] = [];
  const database = f.database();
  if (!database.ok) degraded.push({ component: "database", severity: "unavailable", message: `The database at ${database.path} does not answer; check the disk and the hub's log.` });
  const draining = f.draining();
  if (draining) degraded.push({ component: "shutdown", severity: "unavailable", message: "The hub is shutting down or restarting: it takes no new work and finishes what runs." });

  const disk = f.disk();
  const low = Math.min(DISK_LOW_BYTES, disk.totalBytes * DISK_LOW_SHARE);
  if (disk.totalBytes > 0 && disk.freeBytes < low) {
    degraded.push({ component: "disk", severity: "degraded", message: `Only ${Math.round(disk.freeBytes / 1024 ** 2)} MiB left under ${disk.path}; lower LABRIG_ARTIFACT_MAX_BYTES or free space.` });
  }

  const hosts = f.hosts();
  if (hosts.total > 0 && hosts.online === 0) degraded.push({ component: "fleet", severity: "degraded", message: `None of the ${hosts.total} enrolled hosts is online.` });
  const byHealth = f.devicesByHealth();
  const devices = Object.values(byHealth).reduce((a, b) => a + b, 0);
  const notGood = devices - (byHealth.good ?? 0);
  if (notGood > 0) degraded.push({ component: "devices", severity: "degraded", message: `${notGood} of ${devices} devices are not good (they get no work); see GET /api/hosts.` });

  const queue = f.queue();
  if (queue.waiting >= queue.max) degraded.push({ component: "queue", severity: "degraded", message: `The dispatch queue is full (${queue.max}, LABRIG_QUEUE_MAX); new requests are refused.` });

  const p = f.planner();
  if (p.enabled && (p.requestsUsed >= p.requestsLimit || p.tokensUsed >= p.tokensLimit)) {
    degraded.push({ component: "planner", severity: "degraded", message: "The planner's daily budget is spent; planning resumes at 00:00 UTC." });
  }

  const runs = f.runsUnderWay();
  const status = degraded.some((d) => d.severity === "unavailable") ? "unavailable" : degraded.length > 0 ? "degraded" : "ok";
  return {
    status,
    version: f.version,
    uptime_s: f.uptimeS(),
    draining,
    fleet: { hosts: { total: hosts.total, online: hosts.online, offline: hosts.total - hosts.online }, devices: { total: devices, by_health: byHealth }, agents_connected: f.agentsConnected() },
    queue,
    runs: { active: runs.length, under_way: runs },
    planner: { enabled: p.enabled, model: p.model, requests_used: p.requestsUsed, requests_limit: p.requestsLimit, tokens_used: p.tokensUsed, tokens_limit: p.tokensLimit },
    database: { ok: database.ok, path: database.path, size_bytes: database.sizeBytes, schema_version: database.schemaVersion },
    disk: { path: disk.path, free_bytes: disk.freeBytes, total_bytes: disk.totalBytes },
    degraded,
  };
}
