import { z } from "zod";
import { ActionNameSchema } from "./actions.js";
import { ErrorEnvelopeSchema } from "./errors.js";
import { DeviceDescriptionSchema, HostStateSchema, IdSchema } from "./model.js";

/** Body of `POST /api/hosts/:host/devices/:device/actions`. Params are checked against the catalogue separately. */
export const ActionRequestBodySchema = z
  .object({
    action: z.string().min(1).max(64),
    resource: IdSchema.optional(),
    params: z.record(z.string(), z.unknown()).default({}),
  })
  .strict();
export type ActionRequestBody = z.infer<typeof ActionRequestBodySchema>;

export const ActionStatusSchema = z.enum(["queued", "running", "succeeded", "failed", "canceled"]);
export type ActionStatus = z.infer<typeof ActionStatusSchema>;

/** Every action the hub runs is stored and answered as this record. Times are ISO 8601. */
export const ActionRecordSchema = z.object({
  id: z.string(),
  host: IdSchema,
  device: IdSchema,
  action: ActionNameSchema,
  resource: z.string().nullable(),
  params: z.record(z.string(), z.unknown()),
  status: ActionStatusSchema,
  result: z.record(z.string(), z.unknown()).nullable(),
  error: ErrorEnvelopeSchema.nullable(),
  requested_by: z.string().nullable(),
  queued_at: z.string(),
  started_at: z.string().nullable(),
  finished_at: z.string().nullable(),
  duration_ms: z.number().nullable(),
  /** Set when the agent's result arrived after a hub restart had failed the action (`shutting_down`) and replaced that failure. */
  reconciled_at: z.string().nullable().optional(),
});
export type ActionRecord = z.infer<typeof ActionRecordSchema>;

/** A device as `GET /api/hosts` lists it. */
export const DeviceViewSchema = DeviceDescriptionSchema.extend({
  state: z.record(z.string(), z.unknown()).default({}),
});
export type DeviceView = z.infer<typeof DeviceViewSchema>;

/** A host as `GET /api/hosts` lists it. */
export const HostViewSchema = z.object({
  id: IdSchema,
  name: z.string(),
  state: HostStateSchema,
  last_seen: z.string().nullable(),
  agent_version: z.string().nullable(),
  devices: z.array(DeviceViewSchema),
});
export type HostView = z.infer<typeof HostViewSchema>;

export const HealthSchema = z.object({
  status: z.enum(["ok", "degraded"]),
  version: z.string(),
  database: z.object({ ok: z.boolean() }),
  hosts_online: z.number().int().nonnegative(),
  uptime_s: z.number().nonnegative(),
});
export type Health = z.infer<typeof HealthSchema>;
