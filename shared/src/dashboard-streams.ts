import { z } from "zod";
import { ActionNameSchema } from "./actions.js";
import { ErrorEnvelopeSchema } from "./errors.js";
import { IdSchema } from "./model.js";
import { ActionStatusSchema } from "./records.js";

// The dashboard's live streams and fleet topics. Consoles and video flow only while a browser
// watches: it subscribes per device and resource (bounded per connection) and unsubscribes when
// it stops looking. Every dashboard → hub event is acked with `{ok: true, …}` or the error envelope.

/** Console subscriptions one dashboard connection may hold at once. */
export const MAX_CONSOLE_SUBSCRIPTIONS = 16;
/** Video subscriptions one dashboard connection may hold at once (each costs the agent an encoder). */
export const MAX_VIDEO_SUBSCRIPTIONS = 4;
/** Largest text one `console.write` may carry; typing arrives a few bytes at a time, pastes are cut by the browser. */
export const CONSOLE_WRITE_MAX_BYTES = 4096;
/** Console output the hub holds for one slow dashboard stream before it drops the oldest and says so. */
export const CONSOLE_PENDING_MAX_BYTES = 65_536;

/** dashboard → hub: which console or video to watch (or stop watching). `resource` may be left out when the device has one of the kind. */
export const StreamSelectSchema = z
  .object({
    host: IdSchema,
    device: IdSchema,
    resource: IdSchema.optional(),
  })
  .strict();
export type StreamSelect = z.infer<typeof StreamSelectSchema>;

const fail = z.object({ ok: z.literal(false), error: ErrorEnvelopeSchema });

/** hub → dashboard, the ack of `console.subscribe`: the hub's kept tail of the console; `console.data` follows from there on. */
export const ConsoleSubscribeAckSchema = z.union([
  z.object({ ok: z.literal(true), host: IdSchema, device: IdSchema, resource: IdSchema, backlog: z.string() }),
  fail,
]);
export type ConsoleSubscribeAck = z.infer<typeof ConsoleSubscribeAckSchema>;

/** hub → dashboard, to subscribers only: console output as it arrives. `dropped_bytes` > 0: the browser was too slow and that much was skipped before `data`. */
export const ConsoleDataEventSchema = z.object({
  host: IdSchema,
  device: IdSchema,
  resource: IdSchema,
  data: z.string(),
  dropped_bytes: z.number().int().nonnegative(),
});
export type ConsoleDataEvent = z.infer<typeof ConsoleDataEventSchema>;

/**
 * dashboard → hub: type into a console (operator role and up). The hub runs it as a `serial.write`
 * action through the dispatcher, so it is recorded and obeys the device's lease like any action.
 */
export const ConsoleWriteSchema = z
  .object({
    host: IdSchema,
    device: IdSchema,
    resource: IdSchema.optional(),
    data: z.string().min(1),
    lease_token: z.string().min(1).max(256).optional(),
  })
  .strict();
export type ConsoleWrite = z.infer<typeof ConsoleWriteSchema>;

/** hub → dashboard, the ack of `console.write`: the action that wrote it, once it finished. */
export const ConsoleWriteAckSchema = z.union([z.object({ ok: z.literal(true), action_id: z.string(), bytes: z.number().int().nonnegative() }), fail]);
export type ConsoleWriteAck = z.infer<typeof ConsoleWriteAckSchema>;

/** The ack of `console.unsubscribe` and `video.unsubscribe`. */
export const UnsubscribeAckSchema = z.union([z.object({ ok: z.literal(true) }), fail]);

/** hub → dashboard, the ack of `video.subscribe`: chunks follow as `video.chunk`, starting at a keyframe. */
export const VideoSubscribeAckSchema = z.union([z.object({ ok: z.literal(true), host: IdSchema, device: IdSchema, resource: IdSchema }), fail]);
export type VideoSubscribeAck = z.infer<typeof VideoSubscribeAckSchema>;

/** hub → dashboard: a device's health changed (set by an admin, or lowered by the hub after repeated hardware failures). */
export const DeviceHealthEventSchema = z.object({
  host: IdSchema,
  device: IdSchema,
  health: z.enum(["good", "unknown", "bad", "maintenance"]),
  reason: z.string(),
  by: z.string(),
  at: z.string(),
});
export type DeviceHealthEvent = z.infer<typeof DeviceHealthEventSchema>;

/** hub → dashboard: a lease was granted, extended (keepalive) or ended (released or expired). Never its token. */
export const LeaseEventSchema = z.object({
  id: z.string(),
  owner: z.string(),
  devices: z.array(z.object({ host: IdSchema, device: IdSchema })),
  expires_at: z.string(),
  reason: z.string().nullable(),
  at: z.string(),
});
export type LeaseEvent = z.infer<typeof LeaseEventSchema>;

/** hub → dashboard: an action entered the queue (host and device are null while a selector action waits) or started on its device. */
export const ActionProgressEventSchema = z.object({
  id: z.string(),
  action: ActionNameSchema,
  status: ActionStatusSchema.extract(["queued", "running"]),
  host: IdSchema.nullable(),
  device: IdSchema.nullable(),
  resource: z.string().nullable(),
  requested_by: z.string().nullable(),
  at: z.string(),
});
export type ActionProgressEvent = z.infer<typeof ActionProgressEventSchema>;

/** Topics of the fleet's liveness (beside host.state, action.finished, run.* and plan.*). */
export const FLEET_EVENT_NAMES = ["resource.state", "device.health", "lease.granted", "lease.extended", "lease.ended", "action.queued", "action.running"] as const;
