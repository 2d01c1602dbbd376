import { z } from "zod";
import { ActionNameSchema } from "./actions.js";
import { ErrorEnvelopeSchema } from "./errors.js";
import { DeviceDescriptionSchema, HostStateSchema, IdSchema } from "./model.js";
import { ActionRecordSchema } from "./records.js";
import { RUN_EVENT_NAMES, RunEventSchema, type RunEvent } from "./campaigns.js";
import { PlanRecordSchema, type PlanRecord } from "./plans.js";
import { multilineText } from "./text.js";
import {
  ActionProgressEventSchema,
  ConsoleDataEventSchema,
  ConsoleSubscribeAckSchema,
  ConsoleWriteAckSchema,
  ConsoleWriteSchema,
  DeviceHealthEventSchema,
  FLEET_EVENT_NAMES,
  LeaseEventSchema,
  StreamSelectSchema,
  UnsubscribeAckSchema,
  VideoSubscribeAckSchema,
  type ActionProgressEvent,
  type DeviceHealthEvent,
  type LeaseEvent,
} from "./dashboard-streams.js";

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
  z.object({
    ok: z.literal(true),
    heartbeat_interval_ms: z.number().int().positive(),
    hub_version: z.string(),
    /** True when the hub acks `action.started`: the agent then waits for that ack before touching hardware (see ActionStartedSchema). */
    confirm_start: z.boolean().optional(),
  }),
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
  /**
   * Whether the agent must have the hub confirm the start (see ActionStartedSchema) before it touches
   * hardware. The hub sends false for reads (the catalogue's readOnly actions): the agent starts them at
   * once, saving a round trip, and if their host vanishes the hub simply sends them again — a read that
   * ran twice changed nothing.
   */
  confirm_start: z.boolean().default(true),
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

/**
 * agent → hub: an action is about to run on the device. When the hello ack said `confirm_start`,
 * the agent runs it only after the hub acks `{ok: true}`; `{ok: false}` (or no ack) means the hub
 * has given the action to another device or dropped it, so the agent must not run it. This is what
 * lets the hub re-dispatch an action that had not started when its host vanished without ever running it twice.
 */
export const ActionStartedSchema = z.object({
  id: z.string().min(1).max(64),
  host: IdSchema,
  device: IdSchema,
  started_at: z.string(),
});
export type ActionStarted = z.infer<typeof ActionStartedSchema>;

/** hub → agent, the ack of `action.started`: ok false means "do not run it". */
export const StartAckSchema = z.object({ ok: z.boolean() });

/** hub → agent, the ack of `action.result`: once received, the agent drops it from its outbox. */
export const ResultAckSchema = z.object({ ok: z.boolean(), error: ErrorEnvelopeSchema.optional() });

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

/** hub → dashboard: the state of one resource of a device changed (power, a GPIO value or edge, serial or video status), as its agent reported it. */
export const ResourceStateEventSchema = DeviceStateSchema;
export type ResourceStateEvent = DeviceState;

/** Artifact ids are v4-style uuids the agent makes itself; nothing else is ever used as a file name. */
export const ArtifactIdSchema = z.string().regex(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/, "must be an artifact id (a lowercase uuid)");

/** Largest slice of an artifact one `artifact.fetch` answers with; fits under the hub's socket message limit. */
export const ARTIFACT_FETCH_MAX_BYTES = 512 * 1024;

/** Binary payloads (Buffer in Node, ArrayBuffer views elsewhere); socket.io sends them as binary attachments. */
const BinarySchema = z.custom<Uint8Array>((v) => v instanceof Uint8Array, { message: "must be binary data (a Buffer)" }).meta({ description: "binary (socket.io attachment)" });

/** hub → agent: read a slice of an artifact the agent stores (snapshot, clip). Large ones are read in several slices. */
export const ArtifactFetchSchema = z.object({
  id: ArtifactIdSchema,
  offset: z.number().int().nonnegative().default(0),
  max_bytes: z.number().int().positive().max(ARTIFACT_FETCH_MAX_BYTES).default(ARTIFACT_FETCH_MAX_BYTES),
});
export type ArtifactFetch = z.infer<typeof ArtifactFetchSchema>;

/** agent → hub, the ack of `artifact.fetch`: the slice at `offset` of an artifact of `size` bytes. */
export const ArtifactFetchAckSchema = z.union([
  z.object({ ok: z.literal(true), mime_type: z.string().max(128), size: z.number().int().nonnegative(), offset: z.number().int().nonnegative(), data: BinarySchema }),
  z.object({ ok: z.literal(false), error: ErrorEnvelopeSchema }),
]);
export type ArtifactFetchAck = z.infer<typeof ArtifactFetchAckSchema>;

/** hub → agent: the hub has stored the artifact; the agent may delete its copy. */
export const ArtifactDeleteSchema = z.object({ id: ArtifactIdSchema });
export type ArtifactDelete = z.infer<typeof ArtifactDeleteSchema>;

/** The ack of requests that only succeed or fail (`artifact.delete`, `stream.start`, `stream.stop`, `stream.chunk`). */
export const OkAckSchema = z.union([z.object({ ok: z.literal(true) }), z.object({ ok: z.literal(false), error: ErrorEnvelopeSchema })]);
export type OkAck = z.infer<typeof OkAckSchema>;

/** hub → agent: start or stop sending `stream.chunk` for a video resource (the hub sends start on the first watcher, stop after the last). */
export const StreamControlSchema = z.object({ device: IdSchema, resource: IdSchema });
export type StreamControl = z.infer<typeof StreamControlSchema>;

/** Video codecs of live streams and clips: H.264 baseline (WebCodecs string avc1.42001f) or VP8. */
export const VideoCodecSchema = z.enum(["avc1.42001f", "vp8"]);
export type VideoCodec = z.infer<typeof VideoCodecSchema>;

/** Largest encoded frame the agent sends; bigger ones are dropped (and a keyframe requested). */
export const STREAM_CHUNK_MAX_BYTES = 900_000;

/** agent → hub: one encoded frame of a live stream (H.264 as Annex B, VP8 as raw frames). A decoder can start at any `key` chunk. */
export const StreamChunkSchema = z.object({
  host: IdSchema,
  device: IdSchema,
  resource: IdSchema,
  seq: z.number().int().nonnegative(),
  codec: VideoCodecSchema,
  type: z.enum(["key", "delta"]),
  timestamp_us: z.number().int().nonnegative(),
  /**
   * Wall-clock time (ms since the epoch, fractional) at which the agent took the frame from its
   * source, so a viewer can show capture → display latency. Optional only for agents older than this field.
   */
  captured_at_ms: z.number().nonnegative().optional(),
  data: BinarySchema.refine((d) => d.byteLength <= STREAM_CHUNK_MAX_BYTES, `must be at most ${STREAM_CHUNK_MAX_BYTES} bytes`),
  width: z.number().int().positive().max(8192),
  height: z.number().int().positive().max(8192),
});
export type StreamChunk = z.infer<typeof StreamChunkSchema>;

/** socket.io namespace operators' dashboards connect to. Auth: an API key or JWT as `auth.token`, `?token=` or `Authorization: Bearer`. */
export const DASHBOARD_NAMESPACE = "/dashboard";

/** hub → dashboard: a host went online or offline. */
export const HostStateEventSchema = z.object({
  host: IdSchema,
  state: HostStateSchema,
  at: z.string(),
});
export type HostStateEvent = z.infer<typeof HostStateEventSchema>;

/** hub → dashboard: the planner began a plan (subscribe to its id for the model's partial text). */
export const PlanStartedEventSchema = z.object({
  id: z.string(),
  host: IdSchema,
  device: IdSchema,
  instruction: z.string(),
  goal: z.string().nullable(),
});
export type PlanStartedEvent = z.infer<typeof PlanStartedEventSchema>;

/** hub → dashboard, only to sockets subscribed to this plan: the model's answer so far, while it streams. */
export const PlanPartialEventSchema = z.object({ id: z.string(), text: z.string() });
export type PlanPartialEvent = z.infer<typeof PlanPartialEventSchema>;

export const PLAN_EVENT_NAMES = ["plan.started", "plan.partial", "plan.finished"] as const;

/** Topics a dashboard can subscribe to: the hub → dashboard event names (a new socket receives all of them). */
export const DASHBOARD_TOPICS = ["host.state", "action.finished", ...FLEET_EVENT_NAMES, ...RUN_EVENT_NAMES, ...PLAN_EVENT_NAMES] as const;
export const DashboardTopicSchema = z.enum(DASHBOARD_TOPICS);
export type DashboardTopic = z.infer<typeof DashboardTopicSchema>;

/** What the hub publishes to dashboards, by topic. */
export interface DashboardEventMap {
  "host.state": HostStateEvent;
  "action.finished": z.infer<typeof ActionRecordSchema>;
  "resource.state": ResourceStateEvent;
  "device.health": DeviceHealthEvent;
  "lease.granted": LeaseEvent;
  "lease.extended": LeaseEvent;
  "lease.ended": LeaseEvent;
  "action.queued": ActionProgressEvent;
  "action.running": ActionProgressEvent;
  "run.started": RunEvent;
  "test.started": RunEvent;
  "test.finished": RunEvent;
  "step.finished": RunEvent;
  "run.finished": RunEvent;
  "plan.started": PlanStartedEvent;
  "plan.partial": PlanPartialEvent;
  "plan.finished": PlanRecord;
}

/** dashboard → hub: receive only these topics from now on (a new socket receives all of them). */
export const SubscribeSchema = z
  .object({
    topics: z.array(DashboardTopicSchema).max(DASHBOARD_TOPICS.length),
    /** Plans whose partial text this socket wants (plan.partial goes only to a plan's subscribers). */
    plans: z.array(z.uuid()).max(32).optional(),
  })
  .strict();
export type Subscribe = z.infer<typeof SubscribeSchema>;

/** hub → dashboard, the ack of `subscribe`. */
export const SubscribeAckSchema = z.union([
  z.object({ ok: z.literal(true), topics: z.array(DashboardTopicSchema) }),
  z.object({ ok: z.literal(false), error: ErrorEnvelopeSchema }),
]);
export type SubscribeAck = z.infer<typeof SubscribeAckSchema>;

/** Largest JPEG an agent may push with a `frame` event. */
export const FRAME_PUSH_MAX_BYTES = 900_000;

/** agent → hub: a frame with an instruction; the hub plans (and runs the plan when `execute`) and broadcasts it like any plan. */
export const FramePushSchema = z
  .object({
    host: IdSchema,
    device: IdSchema,
    resource: IdSchema.optional(),
    instruction: multilineText(4000),
    execute: z.boolean().default(false),
    allow: z.array(ActionNameSchema).min(1).optional(),
    jpeg: BinarySchema.refine((d) => d.byteLength <= FRAME_PUSH_MAX_BYTES, `must be at most ${FRAME_PUSH_MAX_BYTES} bytes`),
  })
  .strict();
export type FramePush = z.infer<typeof FramePushSchema>;

/** hub → agent, the ack of `frame`: the plan's id once it is accepted (planning goes on after the ack). */
export const FramePushAckSchema = z.union([
  z.object({ ok: z.literal(true), plan_id: z.string() }),
  z.object({ ok: z.literal(false), error: ErrorEnvelopeSchema }),
]);
export type FramePushAck = z.infer<typeof FramePushAckSchema>;

/** Every socket event with its direction, for docs and JSON Schema export. */
export const SOCKET_EVENTS = {
  hello: { namespace: AGENT_NAMESPACE, direction: "agent→hub", schema: HelloSchema, ack: HelloAckSchema },
  heartbeat: { namespace: AGENT_NAMESPACE, direction: "agent→hub", schema: HeartbeatSchema, ack: null },
  "action.request": { namespace: AGENT_NAMESPACE, direction: "hub→agent", schema: ActionRequestSchema, ack: null },
  "action.cancel": { namespace: AGENT_NAMESPACE, direction: "hub→agent", schema: ActionCancelSchema, ack: null },
  "action.started": { namespace: AGENT_NAMESPACE, direction: "agent→hub", schema: ActionStartedSchema, ack: StartAckSchema },
  "action.result": { namespace: AGENT_NAMESPACE, direction: "agent→hub", schema: ActionResultSchema, ack: ResultAckSchema },
  "console.output": { namespace: AGENT_NAMESPACE, direction: "agent→hub", schema: ConsoleOutputSchema, ack: null },
  "device.state": { namespace: AGENT_NAMESPACE, direction: "agent→hub", schema: DeviceStateSchema, ack: null },
  "artifact.fetch": { namespace: AGENT_NAMESPACE, direction: "hub→agent", schema: ArtifactFetchSchema, ack: ArtifactFetchAckSchema },
  "artifact.delete": { namespace: AGENT_NAMESPACE, direction: "hub→agent", schema: ArtifactDeleteSchema, ack: OkAckSchema },
  "stream.start": { namespace: AGENT_NAMESPACE, direction: "hub→agent", schema: StreamControlSchema, ack: OkAckSchema },
  "stream.stop": { namespace: AGENT_NAMESPACE, direction: "hub→agent", schema: StreamControlSchema, ack: OkAckSchema },
  "stream.chunk": { namespace: AGENT_NAMESPACE, direction: "agent→hub", schema: StreamChunkSchema, ack: OkAckSchema },
  subscribe: { namespace: DASHBOARD_NAMESPACE, direction: "dashboard→hub", schema: SubscribeSchema, ack: SubscribeAckSchema },
  "host.state": { namespace: DASHBOARD_NAMESPACE, direction: "hub→dashboard", schema: HostStateEventSchema, ack: null },
  "action.finished": { namespace: DASHBOARD_NAMESPACE, direction: "hub→dashboard", schema: ActionRecordSchema, ack: null },
  "run.started": { namespace: DASHBOARD_NAMESPACE, direction: "hub→dashboard", schema: RunEventSchema, ack: null },
  "test.started": { namespace: DASHBOARD_NAMESPACE, direction: "hub→dashboard", schema: RunEventSchema, ack: null },
  "test.finished": { namespace: DASHBOARD_NAMESPACE, direction: "hub→dashboard", schema: RunEventSchema, ack: null },
  "step.finished": { namespace: DASHBOARD_NAMESPACE, direction: "hub→dashboard", schema: RunEventSchema, ack: null },
  "run.finished": { namespace: DASHBOARD_NAMESPACE, direction: "hub→dashboard", schema: RunEventSchema, ack: null },
  "plan.started": { namespace: DASHBOARD_NAMESPACE, direction: "hub→dashboard", schema: PlanStartedEventSchema, ack: null },
  "plan.partial": { namespace: DASHBOARD_NAMESPACE, direction: "hub→dashboard", schema: PlanPartialEventSchema, ack: null },
  "plan.finished": { namespace: DASHBOARD_NAMESPACE, direction: "hub→dashboard", schema: PlanRecordSchema, ack: null },
  "resource.state": { namespace: DASHBOARD_NAMESPACE, direction: "hub→dashboard", schema: ResourceStateEventSchema, ack: null },
  "device.health": { namespace: DASHBOARD_NAMESPACE, direction: "hub→dashboard", schema: DeviceHealthEventSchema, ack: null },
  "lease.granted": { namespace: DASHBOARD_NAMESPACE, direction: "hub→dashboard", schema: LeaseEventSchema, ack: null },
  "lease.extended": { namespace: DASHBOARD_NAMESPACE, direction: "hub→dashboard", schema: LeaseEventSchema, ack: null },
  "lease.ended": { namespace: DASHBOARD_NAMESPACE, direction: "hub→dashboard", schema: LeaseEventSchema, ack: null },
  "action.queued": { namespace: DASHBOARD_NAMESPACE, direction: "hub→dashboard", schema: ActionProgressEventSchema, ack: null },
  "action.running": { namespace: DASHBOARD_NAMESPACE, direction: "hub→dashboard", schema: ActionProgressEventSchema, ack: null },
  "console.subscribe": { namespace: DASHBOARD_NAMESPACE, direction: "dashboard→hub", schema: StreamSelectSchema, ack: ConsoleSubscribeAckSchema },
  "console.unsubscribe": { namespace: DASHBOARD_NAMESPACE, direction: "dashboard→hub", schema: StreamSelectSchema, ack: UnsubscribeAckSchema },
  "console.data": { namespace: DASHBOARD_NAMESPACE, direction: "hub→dashboard", schema: ConsoleDataEventSchema, ack: null },
  "console.write": { namespace: DASHBOARD_NAMESPACE, direction: "dashboard→hub", schema: ConsoleWriteSchema, ack: ConsoleWriteAckSchema },
  "video.subscribe": { namespace: DASHBOARD_NAMESPACE, direction: "dashboard→hub", schema: StreamSelectSchema, ack: VideoSubscribeAckSchema },
  "video.unsubscribe": { namespace: DASHBOARD_NAMESPACE, direction: "dashboard→hub", schema: StreamSelectSchema, ack: UnsubscribeAckSchema },
  /** Volatile: a chunk the browser's connection cannot take now is dropped, and that viewer skips to the next keyframe. */
  "video.chunk": { namespace: DASHBOARD_NAMESPACE, direction: "hub→dashboard", schema: StreamChunkSchema, ack: null },
  frame: { namespace: AGENT_NAMESPACE, direction: "agent→hub", schema: FramePushSchema, ack: FramePushAckSchema },
} as const;
export type SocketEventName = keyof typeof SOCKET_EVENTS;
