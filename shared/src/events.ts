import { z } from "zod";
import { ActionNameSchema } from "./actions.js";
import { ErrorEnvelopeSchema } from "./errors.js";
import { DeviceDescriptionSchema, IdSchema } from "./model.js";

/** socket.io namespace agents connect to. Auth: `{ host, token }` in the handshake. */
export const AGENT_NAMESPACE = "/agent";

/** agent → hub, first thing after connecting (with an ack). */
export const HelloSchema = z.object({
  host: IdSchema,
  version: z.string().max(64),
  started_at: z.string(),
  devices: z.array(DeviceDescriptionSchema).max(256),
});
export type Hello = z.infer<typeof HelloSchema>;

/** hub → agent, the ack of `hello`. */
export const HelloAckSchema = z.union([
  z.object({ ok: z.literal(true), heartbeat_interval_ms: z.number().int().positive(), hub_version: z.string() }),
  z.object({ ok: z.literal(false), error: ErrorEnvelopeSchema }),
]);
export type HelloAck = z.infer<typeof HelloAckSchema>;

/** agent → hub, every heartbeat interval. */
export const HeartbeatSchema = z.object({
  host: IdSchema,
  seq: z.number().int().nonnegative(),
  sent_at: z.string(),
});
export type Heartbeat = z.infer<typeof HeartbeatSchema>;

/** hub → agent: run one catalogue action on a device. Params are already validated by the hub; the agent validates again. */
export const ActionRequestSchema = z.object({
  id: z.string().min(1).max(64),
  device: IdSchema,
  action: ActionNameSchema,
  resource: IdSchema.nullable(),
  params: z.record(z.string(), z.unknown()),
  timeout_ms: z.number().int().positive(),
});
export type ActionRequest = z.infer<typeof ActionRequestSchema>;

/** hub → agent: abort an action that is queued or running. */
export const ActionCancelSchema = z.object({ id: z.string().min(1).max(64) });
export type ActionCancel = z.infer<typeof ActionCancelSchema>;

/** agent → hub: the outcome of an action request (delivered once, by id, even across reconnects). */
export const ActionResultSchema = z.object({
  id: z.string().min(1).max(64),
  host: IdSchema,
  device: IdSchema,
  status: z.enum(["succeeded", "failed", "canceled"]),
  result: z.record(z.string(), z.unknown()).nullable(),
  error: ErrorEnvelopeSchema.nullable(),
  started_at: z.string(),
  finished_at: z.string(),
  duration_ms: z.number().nonnegative(),
});
export type ActionResult = z.infer<typeof ActionResultSchema>;

/** hub → agent, the ack of `action.result`: once received, the agent drops it from its outbox. */
export const ResultAckSchema = z.object({ ok: z.boolean() });

/** agent → hub: a chunk of console output. */
export const ConsoleOutputSchema = z.object({
  host: IdSchema,
  device: IdSchema,
  resource: IdSchema,
  seq: z.number().int().nonnegative(),
  at: z.string(),
  data: z.string().max(262_144),
  dropped_bytes: z.number().int().nonnegative().default(0),
});
export type ConsoleOutput = z.infer<typeof ConsoleOutputSchema>;

/** agent → hub: the state of one resource changed (port lost, power switched, ...). */
export const DeviceStateSchema = z.object({
  host: IdSchema,
  device: IdSchema,
  resource: IdSchema,
  status: z.enum(["ready", "unavailable", "error"]),
  power: z.enum(["on", "off"]).optional(),
  value: z.union([z.literal(0), z.literal(1)]).optional(),
  detail: z.string().max(1024).optional(),
  at: z.string(),
});
export type DeviceState = z.infer<typeof DeviceStateSchema>;

/** Every socket event with its direction, for docs and JSON Schema export. */
export const SOCKET_EVENTS = {
  hello: { namespace: AGENT_NAMESPACE, direction: "agent→hub", schema: HelloSchema, ack: HelloAckSchema },
  heartbeat: { namespace: AGENT_NAMESPACE, direction: "agent→hub", schema: HeartbeatSchema, ack: null },
  "action.request": { namespace: AGENT_NAMESPACE, direction: "hub→agent", schema: ActionRequestSchema, ack: null },
  "action.cancel": { namespace: AGENT_NAMESPACE, direction: "hub→agent", schema: ActionCancelSchema, ack: null },
  "action.result": { namespace: AGENT_NAMESPACE, direction: "agent→hub", schema: ActionResultSchema, ack: ResultAckSchema },
  "console.output": { namespace: AGENT_NAMESPACE, direction: "agent→hub", schema: ConsoleOutputSchema, ack: null },
  "device.state": { namespace: AGENT_NAMESPACE, direction: "agent→hub", schema: DeviceStateSchema, ack: null },
} as const;
export type SocketEventName = keyof typeof SOCKET_EVENTS;
