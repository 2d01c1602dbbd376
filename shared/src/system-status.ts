import { z } from "zod";

/** One thing that is not as it should be, as `GET /api/system/status` reports it. */
export const DegradedItemSchema = z.object({
  component: z.enum(["database", "disk", "fleet", "devices", "queue", "planner", "shutdown"]),
  message: z.string(),
  /** `unavailable` makes the whole status unavailable (HTTP 503); `degraded` keeps it serving (HTTP 200). */
  severity: z.enum(["degraded", "unavailable"]),
});
export type DegradedItem = z.infer<typeof DegradedItemSchema>;

const count = z.number().int().nonnegative();

/**
 * `GET /api/system/status`: one page an operator or a load balancer's health check reads. HTTP 200
 * while `status` is `ok` or `degraded`, 503 when `unavailable` (database down, or the hub draining).
 */
export const SystemStatusSchema = z.object({
  status: z.enum(["ok", "degraded", "unavailable"]),
  version: z.string(),
  uptime_s: z.number().nonnegative(),
  draining: z.boolean(),
  fleet: z.object({
    hosts: z.object({ total: count, online: count, offline: count }),
    devices: z.object({ total: count, by_health: z.record(z.string(), count) }),
    agents_connected: count,
  }),
  queue: z.object({ waiting: count, running: count, max: count }),
  runs: z.object({
    active: count,
    under_way: z.array(z.object({ id: z.string(), name: z.string(), campaign_id: z.string().nullable(), status: z.string(), started_at: z.string().nullable() })),
  }),
  planner: z.object({
    enabled: z.boolean(),
    model: z.string().nullable(),
    requests_used: count,
    requests_limit: count,
    tokens_used: count,
    tokens_limit: count,
  }),
  database: z.object({ ok: z.boolean(), path: z.string(), size_bytes: count, schema_version: count }),
  disk: z.object({ path: z.string(), free_bytes: count, total_bytes: count }),
  degraded: z.array(DegradedItemSchema),
});
export type SystemStatus = z.infer<typeof SystemStatusSchema>;
