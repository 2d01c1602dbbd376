import {
  DASHBOARD_NAMESPACE,
  type ActionProgressEvent,
  type ActionRecord,
  type DashboardEventMap,
  type DashboardTopic,
  type HostView,
  type LeaseEvent,
} from "@labrig/shared";
import { signal } from "@preact/signals";
import { io, type Socket } from "socket.io-client";
import { api, errorText } from "./api.js";
import { credential, signOut } from "./session.js";

/** A device as GET /api/hosts shows it (health, lease and load beside the shared DeviceView). */
export type DeviceRow = HostView["devices"][number] & {
  health: "good" | "unknown" | "bad" | "maintenance";
  health_reason: string | null;
  lease: { id: string; owner: string; expires_at: string } | null;
  load: number;
};
export type HostRow = Omit<HostView, "devices"> & { devices: DeviceRow[] };

/** One line of the live action feed: what the hub last said about an action. */
export interface FeedEntry {
  id: string;
  action: string;
  status: string;
  host: string | null;
  device: string | null;
  resource: string | null;
  requested_by: string | null;
  at: string;
  error: string | null;
}

export const hosts = signal<HostRow[]>([]);
export const connected = signal(false);
export const liveError = signal<string | null>(null);
export const feed = signal<FeedEntry[]>([]);
/** Bumped on every event that changes leases, so views showing them re-read. */
export const leaseVersion = signal(0);

const FEED_MAX = 200;
let socket: Socket | null = null;
const listeners = new Map<string, Set<(payload: never) => void>>();

/** The live dashboard connection (null while signed out). */
export function liveSocket(): Socket | null {
  return socket;
}

/** Calls `fn` for every `event` from the hub until the returned function is called. */
export function onLive<E extends DashboardTopic>(event: E, fn: (payload: DashboardEventMap[E]) => void): () => void {
  let set = listeners.get(event);
  if (!set) listeners.set(event, (set = new Set()));
  set.add(fn as (payload: never) => void);
  return () => set.delete(fn as (payload: never) => void);
}

/** Calls `fn` after every (re)connection, when views should re-read what they show (missed events are not replayed). */
export function onReconnect(fn: () => void): () => void {
  let set = listeners.get("reconnected");
  if (!set) listeners.set("reconnected", (set = new Set()));
  set.add(fn as (payload: never) => void);
  return () => set.delete(fn as (payload: never) => void);
}

function dispatch(event: string, payload: unknown): void {
  for (const fn of listeners.get(event) ?? []) (fn as (p: unknown) => void)(payload);
}

export async function reloadHosts(): Promise<void> {
  try {
    hosts.value = (await api<{ hosts: HostRow[] }>("GET", "/api/hosts")).hosts;
  } catch (err) {
    liveError.value = errorText(err);
  }
}

// Load figures change with every action; one re-read per burst of events is enough.
let reloadTimer: ReturnType<typeof setTimeout> | null = null;
function reloadSoon(): void {
  if (reloadTimer) return;
  reloadTimer = setTimeout(() => {
    reloadTimer = null;
    void reloadHosts();
  }, 150);
}

function patchDevice(host: string, device: string, patch: (d: DeviceRow) => DeviceRow): void {
  hosts.value = hosts.value.map((h) => (h.id !== host ? h : { ...h, devices: h.devices.map((d) => (d.id === device ? patch(d) : d)) }));
}

function toFeed(e: ActionProgressEvent | ActionRecord): FeedEntry {
  const record = "finished_at" in e ? e : null;
  return {
    id: e.id,
    action: e.action,
    status: e.status,
    host: e.host,
    device: e.device,
    resource: e.resource,
    requested_by: e.requested_by,
    at: record ? (record.finished_at ?? record.queued_at) : (e as ActionProgressEvent).at,
    error: record?.error ? `${record.error.error_code}: ${record.error.message}` : null,
  };
}

function pushFeed(entry: FeedEntry): void {
  const old = feed.value.find((f) => f.id === entry.id);
  const merged = old ? { ...old, ...entry, host: entry.host ?? old.host, device: entry.device ?? old.device, requested_by: entry.requested_by ?? old.requested_by } : entry;
  feed.value = [merged, ...feed.value.filter((f) => f.id !== entry.id)].slice(0, FEED_MAX);
}

function applyLease(e: LeaseEvent, ended: boolean): void {
  for (const d of e.devices) patchDevice(d.host, d.device, (row) => ({ ...row, lease: ended ? null : { id: e.id, owner: e.owner, expires_at: e.expires_at } }));
  leaseVersion.value++;
}

/** Opens the /dashboard connection with the tab's credential and keeps the fleet state current from its events. */
export function connectLive(): void {
  if (socket) return;
  const token = credential.value;
  if (!token) return;
  // WebSocket only: no long-polling fallback whose extra round trips would add to console and video latency.
  const s = io(DASHBOARD_NAMESPACE, { auth: { token }, transports: ["websocket"], reconnectionDelayMax: 5000 });
  socket = s;
  s.on("connect", () => {
    connected.value = true;
    liveError.value = null;
    // Events missed while disconnected are not replayed: read the state afresh.
    void reloadHosts();
    dispatch("reconnected", null);
  });
  s.on("connect_error", (err: Error & { data?: { error_code?: string; message?: string } }) => {
    connected.value = false;
    if (err.data?.error_code === "unauthorized") {
      disconnectLive();
      signOut(err.data.message ?? "Your credential is no longer valid.");
      return;
    }
    liveError.value = err.data?.message ?? err.message;
  });
  s.on("disconnect", (reason) => {
    connected.value = false;
    // The hub drops dashboards whose key was revoked: ask whether this credential still works (401 signs out).
    if (reason === "io server disconnect") {
      api("GET", "/api/session").then(
        () => s.connect(),
        (err: unknown) => (liveError.value = errorText(err)),
      );
    }
  });
  s.on("host.state", (e: DashboardEventMap["host.state"]) => {
    hosts.value = hosts.value.map((h) => (h.id === e.host ? { ...h, state: e.state, last_seen: e.at } : h));
    reloadSoon();
  });
  s.on("resource.state", (e: DashboardEventMap["resource.state"]) => {
    const { host, device, resource, ...state } = e;
    patchDevice(host, device, (d) => ({ ...d, state: { ...d.state, [resource]: state } }));
  });
  s.on("device.health", (e: DashboardEventMap["device.health"]) => patchDevice(e.host, e.device, (d) => ({ ...d, health: e.health, health_reason: e.reason })));
  s.on("lease.granted", (e: LeaseEvent) => applyLease(e, false));
  s.on("lease.extended", (e: LeaseEvent) => applyLease(e, false));
  s.on("lease.ended", (e: LeaseEvent) => applyLease(e, true));
  for (const name of ["action.queued", "action.running", "action.finished"] as const) {
    s.on(name, (e: ActionProgressEvent | ActionRecord) => {
      pushFeed(toFeed(e));
      reloadSoon();
    });
  }
  for (const name of ["host.state", "resource.state", "device.health", "lease.granted", "lease.extended", "lease.ended", "action.queued", "action.running", "action.finished", "run.started", "test.started", "test.finished", "step.finished", "run.finished", "plan.started", "plan.partial", "plan.finished"]) {
    s.on(name, (payload: unknown) => dispatch(name, payload));
  }
}

export function disconnectLive(): void {
  socket?.disconnect();
  socket = null;
  connected.value = false;
}

/** Emits a dashboard → hub event and resolves with its ack (`{ok: true, …}` or `{ok: false, error}`). */
export async function request<T extends { ok: boolean }>(event: string, payload: unknown, timeoutMs = 15_000): Promise<T> {
  const s = socket;
  if (!s) throw new Error("Not connected to the hub.");
  return (await s.timeout(timeoutMs).emitWithAck(event, payload)) as T;
}
