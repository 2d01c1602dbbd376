import type { DeviceView, HostView } from "@labrig/shared";
import type { DeviceRecord } from "../repositories/devices.js";
import type { HostRecord } from "../repositories/hosts.js";

/** Live facts about a device that the work and lease units know, not the database. */
export interface DeviceLiveState {
  lease: { id: string; owner: string; expires_at: string } | null;
  /** Running + queued actions for this device. */
  load: number;
}

export type LiveStateOf = (host: string, device: string) => DeviceLiveState;

/** A stored device as the REST API shows it. */
export function deviceView(device: DeviceRecord, live: LiveStateOf): DeviceView {
  return {
    id: device.id,
    labels: device.labels,
    capabilities: device.capabilities,
    resources: device.resources.map((r) => ({ name: r.name, kind: r.kind })),
    state: device.state,
    health: device.health,
    health_reason: device.healthReason,
    ...live(device.hostId, device.id),
  };
}

/** A stored host and its devices as the REST API shows it. */
export function hostView(host: HostRecord, devices: readonly DeviceRecord[], live: LiveStateOf): HostView {
  return {
    id: host.id,
    name: host.name,
    state: host.state,
    last_seen: host.lastSeen,
    agent_version: host.agentVersion,
    devices: devices.map((d) => deviceView(d, live)),
  };
}
