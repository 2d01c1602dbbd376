import type { DeviceRecord, DevicesRepository } from "../../repositories/devices.js";
import type { HostsRepository } from "../../repositories/hosts.js";
import type { DeviceFacts, Scheduler } from "./scheduler.js";

function factsOf(d: DeviceRecord): DeviceFacts {
  return { host: d.hostId, device: d.id, labels: d.labels, capabilities: d.capabilities, resources: d.resources, health: d.health, healthReason: d.healthReason };
}

/** Loads the scheduler's device facts from the database: all at start, one host after its hello (or when another process wrote it). */
export class FleetSource {
  constructor(
    private readonly hosts: HostsRepository,
    private readonly devices: DevicesRepository,
    private readonly scheduler: Scheduler,
  ) {}

  loadAll(): void {
    const byHost = new Map<string, DeviceFacts[]>();
    for (const h of this.hosts.list()) byHost.set(h.id, []);
    for (const d of this.devices.listAll()) byHost.get(d.hostId)?.push(factsOf(d));
    for (const [host, facts] of byHost) this.scheduler.setHostDevices(host, facts);
  }

  reloadHost(host: string): "reloaded" | "unknown_host" {
    if (!this.hosts.get(host)) {
      this.scheduler.setHostDevices(host, []);
      return "unknown_host";
    }
    this.scheduler.setHostDevices(host, this.devices.listForHost(host).map(factsOf));
    return "reloaded";
  }

  onlineHosts(): string[] {
    return this.hosts.listOnline().map((h) => h.id);
  }
}
