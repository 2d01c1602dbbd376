import { statSync, statfsSync } from "node:fs";
import type { HubBus } from "../bus.js";
import type { HubConfig } from "../config.js";
import type { HubDatabase } from "../db/database.js";
import type { Logger } from "../logger.js";
import type { RunRow } from "../repositories/runs.js";
import { HubMetrics, type MetricsSources } from "./metrics.js";
import type { StatusFacts } from "./system-status.js";

/** The narrow views metrics and system status take of the hub's units (structural, so tests can hand in plain values). */
export interface OpsParts {
  config: HubConfig;
  version: string;
  startedAtMs: number;
  database: Pick<HubDatabase, "isHealthy" | "schemaVersion" | "filePath">;
  work: { readonly queueLength: number; readonly runningCount: number };
  hosts: { count(): number; countOnline(): number };
  devices: { countByHealth(): Record<string, number> };
  leases: { active(): { devices: unknown[] }[] };
  runs: { unfinished(): RunRow[] };
  planner: { readonly available: boolean; usage(): { requests: number; tokens: number; requestsPerDay: number; tokensPerDay: number } };
  agents: { readonly size: number };
  dashboards: { readonly size: number };
  video: { stats(): { streams: number; viewers: number } };
  bus: HubBus;
  logger: Logger;
}

/** What the hub gets back: the metrics registry, the status facts, and the drain flag both read. */
export interface Ops {
  metrics: HubMetrics;
  status: StatusFacts;
  /** Called first thing in stop(): status turns `unavailable` so load balancers stop sending work. */
  markDraining(): void;
  /** Stops listening to the bus. */
  stop(): void;
}

/** The database file plus its WAL: what a backup copies and what the disk holds. */
function databaseBytes(path: string, logger: Logger): number {
  let total = 0;
  for (const file of [path, `${path}-wal`]) {
    try {
      total += statSync(file).size;
    } catch (err) {
      // No WAL between checkpoints of a closed database is normal; anything else is worth a line.
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") logger.warn({ err, file }, "cannot stat the database file");
    }
  }
  return total;
}

/** Builds metrics (subscribed to the hub's bus) and the status facts over the hub's units. */
export function wireOps(p: OpsParts): Ops {
  let draining = false;
  const runsActive = (): RunRow[] => p.runs.unfinished();
  const sources: MetricsSources = {
    queue: () => ({ waiting: p.work.queueLength, running: p.work.runningCount }),
    hosts: () => {
      const online = p.hosts.countOnline();
      return { online, offline: p.hosts.count() - online };
    },
    devicesByHealth: () => p.devices.countByHealth(),
    leases: () => {
      const active = p.leases.active();
      return { active: active.length, devices: active.reduce((n, l) => n + l.devices.length, 0) };
    },
    runsActive: () => runsActive().length,
    planner: () => {
      const u = p.planner.usage();
      return { enabled: p.planner.available, requestsLeft: Math.max(0, u.requestsPerDay - u.requests), tokensLeft: Math.max(0, u.tokensPerDay - u.tokens) };
    },
    connections: () => ({ agents: p.agents.size, dashboards: p.dashboards.size }),
    video: () => p.video.stats(),
  };
  const metrics = new HubMetrics(sources, p.version);
  const unsubscribe = [
    p.bus.on("action.ended", ({ record: r }) => metrics.actionFinished({ action: r.action, status: r.status, errorCode: r.error?.error_code ?? null, queuedAt: r.queued_at })),
    p.bus.on("action.dispatched", (e) => metrics.actionDispatched(e.action, e.waitedMs)),
    p.bus.on("run.finished", (e) => metrics.runFinished(e.status ?? "unknown")),
    p.bus.on("plan.finished", (plan) => metrics.planFinished(plan.status, plan.usage)),
  ];

  const status: StatusFacts = {
    version: p.version,
    uptimeS: () => Math.round((Date.now() - p.startedAtMs) / 1000),
    draining: () => draining,
    hosts: () => ({ total: p.hosts.count(), online: p.hosts.countOnline() }),
    devicesByHealth: sources.devicesByHealth,
    agentsConnected: () => p.agents.size,
    queue: () => ({ waiting: p.work.queueLength, running: p.work.runningCount, max: p.config.queueMax }),
    runsUnderWay: () => runsActive().map((r) => ({ id: r.id, name: r.name, campaign_id: r.campaign_id, status: r.status, started_at: r.started_at })),
    planner: () => {
      const u = p.planner.usage();
      return { enabled: p.planner.available, model: p.planner.available ? p.config.planner.model : null, requestsUsed: u.requests, requestsLimit: u.requestsPerDay, tokensUsed: u.tokens, tokensLimit: u.tokensPerDay };
    },
    database: () => {
      const ok = p.database.isHealthy();
      return { ok, path: p.database.filePath, sizeBytes: databaseBytes(p.database.filePath, p.logger), schemaVersion: ok ? p.database.schemaVersion() : 0 };
    },
    disk: () => {
      const fs = statfsSync(p.config.dataDir);
      return { path: p.config.dataDir, freeBytes: fs.bavail * fs.bsize, totalBytes: fs.blocks * fs.bsize };
    },
  };
  return {
    metrics,
    status,
    markDraining: () => (draining = true),
    stop: () => {
      for (const off of unsubscribe.splice(0)) off();
    },
  };
}
