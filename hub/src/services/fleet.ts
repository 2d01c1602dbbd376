import type { Labels, ResourceDescription } from "@labrig/shared";
import type { DeviceHealth, DeviceRecord, DevicesRepository } from "../repositories/devices.js";

/** What the dispatcher knows about one device: its description (data), its health, and its live load. */
export interface DeviceSlot {
  readonly key: string;
  readonly host: string;
  readonly device: string;
  labels: Labels;
  capabilities: string[];
  resources: ResourceDescription[];
  health: DeviceHealth;
  healthReason: string | null;
  /** Hardware failures in a row; reset by a success. Kept in memory: a restart gives a device a clean slate. */
  failureStreak: number;
  /** The action the hub has sent and not yet seen finish (the hub sends one at a time per device). */
  runningId: string | null;
  /** Exact-target requests waiting on the hub for this device (for the `load` figure). */
  waiting: number;
  /** When the device was last given work (monotonic ms), for least-recently-used ordering. */
  lastUsedMs: number;
}

export function deviceKey(host: string, device: string): string {
  return `${host}/${device}`;
}

/**
 * The registry of devices in memory, for routing without a query per candidate: descriptions
 * and health loaded from SQLite, presence fed by the registry, load fed by the dispatcher.
 */
export class Fleet {
  private readonly slots = new Map<string, DeviceSlot>();
  private readonly online = new Set<string>();

  constructor(private readonly devices: DevicesRepository) {}

  /** Loads every stored device (at start, before any agent is connected). */
  loadAll(): void {
    this.slots.clear();
    for (const d of this.devices.listAll()) this.slots.set(deviceKey(d.hostId, d.id), this.toSlot(d, undefined));
  }

  /** Re-reads one host's devices after its hello; live fields of devices that stay are kept. */
  reloadHost(host: string): void {
    const fresh = this.devices.listForHost(host);
    const keep = new Set(fresh.map((d) => deviceKey(host, d.id)));
    for (const slot of this.forHost(host)) if (!keep.has(slot.key)) this.slots.delete(slot.key);
    for (const d of fresh) {
      const key = deviceKey(host, d.id);
      this.slots.set(key, this.toSlot(d, this.slots.get(key)));
    }
  }

  setOnline(host: string, online: boolean): void {
    if (online) this.online.add(host);
    else this.online.delete(host);
  }

  isOnline(host: string): boolean {
    return this.online.has(host);
  }

  get(host: string, device: string): DeviceSlot | undefined {
    return this.slots.get(deviceKey(host, device));
  }

  forHost(host: string): DeviceSlot[] {
    return [...this.slots.values()].filter((s) => s.host === host);
  }

  all(): IterableIterator<DeviceSlot> {
    return this.slots.values();
  }

  private toSlot(d: DeviceRecord, previous: DeviceSlot | undefined): DeviceSlot {
    return {
      key: deviceKey(d.hostId, d.id),
      host: d.hostId,
      device: d.id,
      labels: d.labels,
      capabilities: d.capabilities,
      resources: d.resources,
      health: d.health,
      healthReason: d.healthReason,
      failureStreak: previous?.failureStreak ?? 0,
      runningId: previous?.runningId ?? null,
      waiting: previous?.waiting ?? 0,
      lastUsedMs: previous?.lastUsedMs ?? 0,
    };
  }
}
