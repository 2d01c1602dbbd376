import type { DeviceView, HostView } from "@labrig/shared";
import type { DeviceRecord } from "../repositories/devices.js";
import type { HostRecord } from "../repositories/hosts.js";

/** A stored device as the REST API shows it (DeviceViewSchema). */
export function deviceView(device: DeviceRecord): DeviceView {
  return {
    id: device.id,
    labels: device.labels,
    capabilities: device.capabilities,
    resources: device.resources.map((r) => ({ name: r.name, kind: r.kind })),
    state: device.state,
  };
}

/** A stored host and its devices as the REST API shows it (HostViewSchema). */
export function hostView(host: HostRecord, devices: readonly DeviceRecord[]): HostView {
  return {
    id: host.id,
    name: host.name,
    state: host.state,
    last_seen: host.lastSeen,
    agent_version: host.agentVersion,
    devices: devices.map(deviceView),
  };
}
