import type { z } from "zod";
import { SOCKET_EVENTS } from "./events.js";

// socket.io event maps derived from SOCKET_EVENTS, so both ends of a namespace are typed from the
// one declaration of each event: an emit with the wrong payload, or a listener for an event that
// does not exist, fails to compile. Received payloads are `unknown` on purpose: they are validated
// with the event's schema before use.

type Events = typeof SOCKET_EVENTS;
type EventName = keyof Events;

type NamesOf<NS extends string, Dir extends string> = {
  [K in EventName]: Events[K]["namespace"] extends NS ? (Events[K]["direction"] extends Dir ? K : never) : never;
}[EventName];

type AckOf<K extends EventName> = Events[K]["ack"] extends z.ZodType ? z.input<Events[K]["ack"]> : never;

/** How the sender emits an event: its payload as the wire accepts it, and the ack callback when the event has one. */
type Emitted<K extends EventName> = Events[K]["ack"] extends z.ZodType
  ? (payload: z.input<Events[K]["schema"]>, ack: (answer: unknown) => void) => void
  : (payload: z.input<Events[K]["schema"]>) => void;

/** How the receiver sees an event: a payload still to validate, and the ack to answer (absent when the sender sent none). */
type Received<K extends EventName> = Events[K]["ack"] extends z.ZodType ? (payload: unknown, ack?: (answer: AckOf<K>) => void) => void : (payload: unknown) => void;

type Side<NS extends string, Dir extends string, Mode extends "emit" | "receive"> = {
  [K in NamesOf<NS, Dir>]: Mode extends "emit" ? Emitted<K> : Received<K>;
};

/** Events the hub emits on `/agent` (typed for `Namespace<…, HubToAgentEvents>`). */
export type HubToAgentEvents = Side<"/agent", "hub→agent", "emit">;
/** Events the hub receives on `/agent`. */
export type AgentToHubEvents = Side<"/agent", "agent→hub", "receive">;
/** Events the hub emits on `/dashboard`. */
export type HubToDashboardEvents = Side<"/dashboard", "hub→dashboard", "emit">;
/** Events the hub receives on `/dashboard`. */
export type DashboardToHubEvents = Side<"/dashboard", "dashboard→hub", "receive">;
