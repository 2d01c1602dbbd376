import { LabrigError, nowIso, type ErrorCode } from "@labrig/shared";
import type { Logger } from "../logger.js";
import type { DeviceHealth, DevicesRepository } from "../repositories/devices.js";
import type { HostEventsRepository } from "../repositories/host-events.js";
import { deviceKey, type DeviceSlot, type Fleet } from "./fleet.js";
import type { HubEvents } from "./hub-events.js";

/** Failures that say something about the hardware (or its host), as opposed to a bad request or a cancel. */
export const HARDWARE_ERROR_CODES: ReadonlySet<ErrorCode> = new Set<ErrorCode>(["hardware_error", "device_unavailable", "action_timeout", "host_lost"]);

export interface DeviceHealthOptions {
  /** Hardware failures in a row after which a good device becomes `unknown`. */
  healthFailureThreshold: number;
}

/**
 * Device health (good / unknown / bad / maintenance): set by admins, or lowered to `unknown`
 * after N hardware failures in a row. Every change is stored as a host event with its reason.
 */
export class DeviceHealthService {
  private readonly listeners: (() => void)[] = [];

  constructor(
    private readonly fleet: Fleet,
    private readonly devices: DevicesRepository,
    private readonly events: HostEventsRepository,
    private readonly options: DeviceHealthOptions,
    private readonly logger: Logger,
    private readonly bus?: HubEvents,
  ) {}

  /** Called after every health change (the dispatcher re-evaluates its queue). */
  onChange(listener: () => void): void {
    this.listeners.push(listener);
  }

  /** Sets a device's health; `by` names who (an operator, or "hub"). Throws unknown_device when there is no such device. */
  set(host: string, device: string, health: DeviceHealth, reason: string, by: string): { health: DeviceHealth; health_reason: string; changed: boolean } {
    const slot = this.fleet.get(host, device);
    const at = nowIso();
    const previous = slot?.health;
    if (!this.devices.setHealth(host, device, health, reason, at)) {
      throw new LabrigError("unknown_device", `Host '${host}' has no device '${device}'. GET /api/hosts/${host} lists its devices.`);
    }
    this.events.add({ hostId: host, deviceId: device, kind: "health", detail: `${previous ?? "?"} → ${health}: ${reason} (by ${by})`, at });
    if (slot) {
      slot.health = health;
      slot.healthReason = reason;
      // An operator vouching for the device starts its failure count afresh.
      if (health === "good") slot.failureStreak = 0;
    }
    this.logger.info({ host, device, from: previous, to: health, reason, by }, "device health changed");
    this.bus?.emit("device.health", { host, device, health, reason, by, at }); // dashboard hook
    this.notify();
    return { health, health_reason: reason, changed: previous !== health };
  }

  /** Counts an action's outcome: null code = success (resets the streak). Only hardware errors count. */
  recordOutcome(slot: DeviceSlot, code: ErrorCode | null, message: string | null): void {
    if (code === null) {
      slot.failureStreak = 0;
      return;
    }
    if (!HARDWARE_ERROR_CODES.has(code)) return;
    slot.failureStreak += 1;
    if (slot.failureStreak < this.options.healthFailureThreshold || slot.health !== "good") return;
    // The slot may have left the fleet (device removed by a hello) while its action ran; then there is nothing to mark.
    if (this.fleet.get(slot.host, slot.device) !== slot) return;
    const reason = `${slot.failureStreak} hardware failures in a row (last: ${code}: ${(message ?? "").slice(0, 200)}); check the device, then set it good`;
    try {
      this.set(slot.host, slot.device, "unknown", reason, "hub");
    } catch (err) {
      this.logger.error({ err, device: deviceKey(slot.host, slot.device) }, "could not mark the device unknown after repeated failures");
    }
  }

  private notify(): void {
    for (const listener of this.listeners) {
      try {
        listener();
      } catch (err) {
        this.logger.error({ err }, "device health listener failed");
      }
    }
  }
}
