import { LabrigError, nowIso, type ErrorCode } from "@labrig/shared";
import type { HubBus } from "../bus.js";
import type { Logger } from "../logger.js";
import type { DeviceHealth, DevicesRepository } from "../repositories/devices.js";
import type { HostEventsRepository } from "../repositories/host-events.js";

/** Failures that say something about the hardware (or its host), as opposed to a bad request or a cancel. */
export const HARDWARE_ERROR_CODES: ReadonlySet<ErrorCode> = new Set<ErrorCode>(["hardware_error", "device_unavailable", "action_timeout", "host_lost"]);

export interface DeviceHealthOptions {
  /** Hardware failures in a row after which a good device becomes `unknown`. */
  healthFailureThreshold: number;
}

/**
 * Device health (good / unknown / bad / maintenance): set by admins, or lowered to `unknown`
 * after N hardware failures in a row (counted from `action.ended`). Every change is stored with a
 * host event and announced as `device.health`.
 */
export class DeviceHealthService {
  /** Hardware failures in a row per device; in memory, so a restart gives every device a clean slate. */
  private readonly streaks = new Map<string, number>();
  private unsubscribe: (() => void) | null = null;

  constructor(
    private readonly devices: DevicesRepository,
    private readonly events: HostEventsRepository,
    private readonly bus: HubBus,
    private readonly options: DeviceHealthOptions,
    private readonly logger: Logger,
  ) {}

  start(): void {
    this.unsubscribe = this.bus.on("action.ended", ({ record }) => {
      const { host, device } = record;
      // An action that never reached a device says nothing about one.
      if (host === null || device === null) return;
      if (record.status === "succeeded") this.recordOutcome(host, device, null, null);
      else if (record.status === "failed") this.recordOutcome(host, device, record.error?.error_code ?? "internal_error", record.error?.message ?? null);
    });
  }

  stop(): void {
    this.unsubscribe?.();
    this.unsubscribe = null;
  }

  /** Sets a device's health; `by` names who (an operator, or "hub"). Throws unknown_device when there is no such device. */
  set(host: string, device: string, health: DeviceHealth, reason: string, by: string): { health: DeviceHealth; health_reason: string; changed: boolean } {
    const previous = this.devices.get(host, device)?.health;
    const at = nowIso();
    if (!this.devices.setHealth(host, device, health, reason, at)) throw new LabrigError("unknown_device", `Host '${host}' has no device '${device}'.`);
    this.events.add({ hostId: host, deviceId: device, kind: "health", detail: `${previous ?? "?"} → ${health}: ${reason} (by ${by})`, at });
    // An operator vouching for the device starts its failure count afresh.
    if (health === "good") this.streaks.delete(`${host}/${device}`);
    this.logger.info({ host, device, from: previous, to: health, reason, by }, "device health changed");
    this.bus.emit("device.health", { host, device, health, reason, by, at });
    return { health, health_reason: reason, changed: previous !== health };
  }

  /** Counts an action's outcome: null code = success (resets the streak). Only hardware errors count. */
  private recordOutcome(host: string, device: string, code: ErrorCode | null, message: string | null): void {
    const key = `${host}/${device}`;
    if (code === null) {
      this.streaks.delete(key);
      return;
    }
    if (!HARDWARE_ERROR_CODES.has(code)) return;
    const streak = (this.streaks.get(key) ?? 0) + 1;
    this.streaks.set(key, streak);
    if (streak < this.options.healthFailureThreshold) return;
    const stored = this.devices.get(host, device);
    // The device may have left its host (removed by a hello) while its action ran; then there is nothing to mark.
    if (!stored || stored.health !== "good") return;
    const reason = `${streak} hardware failures in a row (last: ${code}: ${(message ?? "").slice(0, 200)}); check the device, then set it good`;
    try {
      this.set(host, device, "unknown", reason, "hub");
    } catch (err) {
      this.logger.error({ err, host, device }, "could not mark the device unknown after repeated failures");
    }
  }
}
