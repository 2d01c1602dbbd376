import { ActionRequestBodySchema, ActionStatusSchema, PageQueryFields, IdSchema, TargetSelectorSchema, lineText, type TargetSelector } from "@labrig/shared";
import { z } from "zod";
import { DEVICE_HEALTH } from "../repositories/devices.js";

// REST request bodies of dispatch, leases and health. They belong beside ActionRequestBodySchema in
// shared/src/records.ts; they live here until the protocol package takes them (one shared edit per change).

/** Which devices may run a request: shared's selector, so actions, leases and test cases match devices alike. */
export const SelectorSchema = TargetSelectorSchema;
export type Selector = TargetSelector;

export const ExactTargetSchema = z.object({ host: IdSchema, device: IdSchema }).strict();
export const TargetSchema = z.union([ExactTargetSchema, z.object({ selector: SelectorSchema }).strict()]);
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

/** Body of `POST /api/leases/:id/keepalive` (and the optional body of DELETE). */
export const KeepaliveBodySchema = z
  .object({ ttl_s: z.number().int().min(1).max(86_400).optional(), lease_token: leaseToken.optional() })
  .strict();

/** Body of `PUT /api/hosts/:host/devices/:device/health`. */
export const HealthBodySchema = z.object({ health: z.enum(DEVICE_HEALTH), reason: lineText(500) }).strict();

/** Query of `GET /api/actions`. */
export const ActionsQuerySchema = z
  .object({
    host: IdSchema.optional(),
    device: IdSchema.optional(),
    status: ActionStatusSchema.optional(),
    ...PageQueryFields,
  })
  .strict();
