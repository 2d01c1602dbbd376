import { z } from "zod";
import { ActionNameSchema } from "./actions.js";
import { ErrorEnvelopeSchema } from "./errors.js";
import { TargetSelectorSchema } from "./campaigns.js";
import { DeviceDescriptionSchema, DeviceHealthSchema, HostStateSchema, IdSchema, LabelsSchema } from "./model.js";

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

/**
 * An action as the REST API answers it: the record plus how it was targeted. host and device are
 * null while a selector action waits for a device; attempts counts dispatches (a failover re-dispatch adds one).
 */
export const StoredActionSchema = ActionRecordSchema.extend({
  host: IdSchema.nullable(),
  device: IdSchema.nullable(),
  target: z.union([z.object({ host: IdSchema, device: IdSchema }), z.object({ selector: TargetSelectorSchema })]),
  priority: z.number().int(),
  lease_id: z.string().nullable(),
  attempts: z.number().int().nonnegative(),
});
export type StoredActionRecord = z.infer<typeof StoredActionSchema>;

/** `GET /api/actions`: newest first; pass next_cursor as `cursor` for the next page. */
export const ActionPageSchema = z.object({ actions: z.array(StoredActionSchema), next_cursor: z.string().nullable() });

/** The lease holding a device, as device views show it (never its token). */
export const DeviceLeaseSchema = z.object({ id: z.string(), owner: z.string(), expires_at: z.string() });

/** A device as `GET /api/hosts` lists it: its description, last reported state, health, lease and load. */
export const DeviceViewSchema = DeviceDescriptionSchema.extend({
  state: z.record(z.string(), z.unknown()).default({}),
  health: DeviceHealthSchema,
  health_reason: z.string().nullable(),
  lease: DeviceLeaseSchema.nullable(),
  /** Running plus waiting actions. */
  load: z.number().int().nonnegative(),
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

/** One entry of a host's history (online, offline, devices changed, health, lease, token). */
export const HostEventSchema = z.object({
  id: z.number().int(),
  host_id: z.string(),
  device_id: z.string().nullable(),
  kind: z.string(),
  detail: z.string().nullable(),
  at: z.string(),
});

/** `GET /api/hosts/:host`: the host with its labels and recent events. */
export const HostDetailSchema = HostViewSchema.extend({ labels: LabelsSchema, events: z.array(HostEventSchema) });

/** `GET /api/hosts/:host/devices/:device/console`: the tail the hub keeps of a serial console. */
export const ConsoleTailSchema = z.object({ host: IdSchema, device: IdSchema, resource: z.string().nullable(), text: z.string() });

/** A lease as the API shows it; the token only in the answer to its creation. */
export const LeaseViewSchema = z.object({
  id: z.string(),
  owner: z.string(),
  devices: z.array(z.object({ host: z.string(), device: z.string() })),
  ttl_s: z.number().int(),
  cleanup: z.object({ action: z.string(), resource: z.string().optional(), params: z.record(z.string(), z.unknown()) }).nullable(),
  requested_by: z.string().nullable(),
  created_at: z.string(),
  expires_at: z.string(),
  state: z.enum(["active", "ended"]),
  ended_at: z.string().nullable(),
  end_reason: z.string().nullable(),
});
export type LeaseView = z.infer<typeof LeaseViewSchema>;
/** `POST /api/leases` (201): the lease and its token, shown this once. */
export const LeaseGrantedSchema = LeaseViewSchema.extend({ token: z.string() });

/** `GET /api/system/info`: versions, settings and counts; the process fields only for admins. */
export const SystemInfoSchema = z.object({
  version: z.string(),
  node_version: z.string().optional(),
  pid: z.number().int().optional(),
  uptime_s: z.number().nonnegative(),
  data_dir: z.string().optional(),
  db_path: z.string().optional(),
  heartbeat_interval_ms: z.number().int(),
  missed_heartbeats: z.number().int(),
  counts: z.object({ hosts: z.number().int(), devices: z.number().int(), actions: z.number().int() }),
  schema_version: z.number().int(),
});

export const HealthSchema = z.object({
  status: z.enum(["ok", "degraded"]),
  version: z.string(),
  database: z.object({ ok: z.boolean() }),
  hosts_online: z.number().int().nonnegative(),
  uptime_s: z.number().nonnegative(),
});
export type Health = z.infer<typeof HealthSchema>;
