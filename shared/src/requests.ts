import { z } from "zod";
import { TargetSelectorSchema } from "./campaigns.js";
import { DeviceHealthSchema, IdSchema } from "./model.js";
import { PageQueryFields } from "./paging.js";
import { ActionRequestBodySchema, ActionStatusSchema } from "./records.js";
import { lineText } from "./text.js";

// REST request bodies and queries of dispatch, leases and health: declared once here, so the hub's
// validation, its OpenAPI document and the dashboard's forms agree.

/** An exact device. */
export const ExactTargetSchema = z.object({ host: IdSchema, device: IdSchema }).strict();
/** Where work may run: one exact device, or any device matching a selector. */
export const TargetSchema = z.union([ExactTargetSchema, z.object({ selector: TargetSelectorSchema }).strict()]);
export type Target = z.infer<typeof TargetSchema>;

const leaseToken = z.string().min(1).max(256);
const priority = z.number().int().min(-1_000_000).max(1_000_000).default(0);
const queueTimeout = z.number().int().min(0).max(600_000).optional();

/** Body of `POST /api/actions`. */
export const DispatchBodySchema = z
  .object({
    action: z.string().min(1).max(64),
    resource: IdSchema.optional(),
    params: z.record(z.string(), z.unknown()).default({}),
    target: TargetSchema,
    lease_token: leaseToken.optional(),
    priority,
    queue_timeout_ms: queueTimeout,
  })
  .strict();

/** Body of `POST /api/hosts/:host/devices/:device/actions`: the exact-target shortcut, with the same queueing and lease fields. */
export const ExactActionBodySchema = ActionRequestBodySchema.extend({ lease_token: leaseToken.optional(), priority, queue_timeout_ms: queueTimeout }).strict();

/** A lease's cleanup action; params are checked against the catalogue when the lease is requested. */
export const LeaseCleanupSchema = z
  .object({ action: z.string().min(1).max(64), resource: IdSchema.optional(), params: z.record(z.string(), z.unknown()).default({}) })
  .strict();

/** Body of `POST /api/leases`. */
export const LeaseBodySchema = z
  .object({
    target: TargetSchema,
    count: z.number().int().min(1).max(64).default(1),
    ttl_s: z.number().int().min(1).max(86_400),
    owner: lineText(128),
    cleanup: LeaseCleanupSchema.optional(),
    wait_ms: z.number().int().min(0).max(600_000).default(0),
  })
  .strict();

/** Body of `POST /api/leases/:id/keepalive`. */
export const KeepaliveBodySchema = z
  .object({ ttl_s: z.number().int().min(1).max(86_400).optional(), lease_token: leaseToken.optional() })
  .strict();

/** Body of `DELETE /api/leases/:id` (optional: the token may come as X-Lease-Token instead). */
export const ReleaseBodySchema = KeepaliveBodySchema.pick({ lease_token: true }).strict();

/** Body of `PUT /api/hosts/:host/devices/:device/health`. */
export const HealthBodySchema = z.object({ health: DeviceHealthSchema, reason: lineText(500) }).strict();

/** Query of `GET /api/actions`. */
export const ActionsQuerySchema = z
  .object({
    host: IdSchema.optional(),
    device: IdSchema.optional(),
    status: ActionStatusSchema.optional(),
    ...PageQueryFields,
  })
  .strict();

/** Query of `GET /api/leases`: `all=1` includes ended leases. */
export const LeasesQuerySchema = z.object({ all: z.enum(["0", "1", "true", "false"]).optional() }).strict();
