import { LabrigError, getAction, parseActionParams, resolveResource, type ActionName, type TargetSelector } from "@labrig/shared";
import type { ActionTarget } from "../../repositories/actions.js";
import type { ActiveLease, LeaseBook } from "../lease-book.js";
import { deviceKey, type Demand, type DeviceSlot, type Scheduler } from "./scheduler.js";

/** What to run and where; shape-checked by the caller (REST validates its body), checked against the catalogue here. */
export interface ActionSubmission {
  action: string;
  resource?: string | null | undefined;
  params: Record<string, unknown>;
  target: ActionTarget;
  /** The token of a lease the caller holds: its devices then serve this action. */
  leaseToken?: string | undefined;
  priority?: number | undefined;
  /** How long to wait for a free device; default from the hub's settings. */
  queueTimeoutMs?: number | undefined;
  requestedBy: string | null;
  /** Hub-internal work (a lease's cleanup): runs whatever the device's health and leases, and waits for an offline host. */
  internal?: boolean | undefined;
}

/** A submission that passed every check that can refuse it before anything is written. */
export interface AdmittedAction {
  action: ActionName;
  params: Record<string, unknown>;
  /** The resource asked for by name (null: the device's only one of the action's kind). */
  requested: string | null;
  /** For an exact target, the resource resolved on that device. */
  exactResource: string | null;
  exact: { host: string; device: string } | null;
  selector: TargetSelector | null;
  lease: ActiveLease | null;
  demand: Demand;
}

export interface AdmissionPorts {
  scheduler: Scheduler;
  leases: LeaseBook;
  /** Finds a device the scheduler has not loaded (written by another process, e.g. the CLI); null when the host is unknown. */
  reload(host: string): "reloaded" | "unknown_host";
  /** Seconds a caller should wait before retrying against an offline host. */
  offlineRetryAfterS: number;
}

const NO_EXCLUSIONS: ReadonlySet<string> = new Set();

function describeSelector(selector: TargetSelector): string {
  return JSON.stringify({ capabilities: selector.capabilities, labels: selector.labels });
}

/** The device named by an exact target, reloading once for devices written by another process. */
export function exactSlot(ports: AdmissionPorts, host: string, device: string): DeviceSlot {
  const key = deviceKey(host, device);
  let slot = ports.scheduler.slot(key);
  if (slot) return slot;
  if (ports.reload(host) === "unknown_host") throw new LabrigError("unknown_host", `No host '${host}'.`);
  slot = ports.scheduler.slot(key);
  if (slot) return slot;
  const known = [...ports.scheduler.devices()].filter((s) => s.host === host).map((s) => s.device);
  throw new LabrigError("unknown_device", `Host '${host}' has no device '${device}'. Its devices: ${known.join(", ") || "none (its agent has not said hello yet)"}.`);
}

/** Why the device cannot take this work at all right now (not merely busy), as the error to answer. */
export function refusal(ports: AdmissionPorts, slot: DeviceSlot, reason: "health" | "leased" | "gone"): LabrigError {
  if (reason === "gone") return new LabrigError("unknown_device", `Device ${slot.key} left the registry (its agent no longer reports it).`);
  if (reason === "health") return new LabrigError("device_unavailable", `Device ${slot.key} is ${slot.health}: ${slot.healthReason ?? "no reason given"}.`, { details: { host: slot.host, device: slot.device } });
  const holder = ports.leases.forDevice(slot.key);
  const until = holder ? new Date(holder.expiresAtMs).toISOString() : "?";
  return new LabrigError("lease_required", `Device ${slot.key} is leased to '${holder?.owner ?? "someone else"}' until ${until}; send that lease's lease_token, or wait for the lease to end.`, {
    retryAfter: holder ? Math.min(3600, Math.max(1, Math.ceil((holder.expiresAtMs - Date.now()) / 1000))) : 1,
  });
}

/**
 * Checks a submission against the catalogue, its lease and the fleet, and answers the demand the
 * scheduler will serve; throws the error that says what is wrong. Nothing is written here.
 */
export function admitAction(ports: AdmissionPorts, sub: ActionSubmission): AdmittedAction {
  getAction(sub.action);
  const action = sub.action as ActionName;
  const params = parseActionParams(action, sub.params);
  const requested = sub.resource ?? null;
  const internal = sub.internal === true;
  let lease: ActiveLease | null = null;
  if (sub.leaseToken !== undefined) {
    lease = ports.leases.byToken(sub.leaseToken) ?? null;
    if (!lease) throw new LabrigError("lease_required", "No active lease has this lease_token (it expired or was released); take a new lease.");
  }
  const base = { action: { name: action, resource: requested }, leaseId: lease?.id ?? null, exclude: NO_EXCLUSIONS, internal };

  if ("host" in sub.target) {
    const slot = exactSlot(ports, sub.target.host, sub.target.device);
    const exactResource = resolveResource(action, slot.resources, requested);
    const demand: Demand = { ...base, target: { key: slot.key } };
    if (!internal) {
      const reason = ports.scheduler.ineligible(slot, demand, "run");
      if (reason === "health" || reason === "leased") throw refusal(ports, slot, reason);
      if (reason === "offline") {
        throw new LabrigError("host_offline", `Host '${slot.host}' is offline; check its agent (systemctl status labrig-agent) and retry.`, { retryAfter: ports.offlineRetryAfterS, details: { host: slot.host, device: slot.device } });
      }
    }
    return { action, params, requested, exactResource, exact: { host: slot.host, device: slot.device }, selector: null, lease, demand };
  }

  const selector = sub.target.selector;
  const demand: Demand = { ...base, target: { selector } };
  if (!ports.scheduler.hasCandidate(demand)) {
    throw new LabrigError("unknown_device", `No device matches selector ${describeSelector(selector)} and can run ${action}${requested ? ` on a resource named '${requested}'` : ""}.`);
  }
  return { action, params, requested, exactResource: null, exact: null, selector, lease, demand };
}

/** A lease request: `count` devices for `target`, each able to run the cleanup action when one is given. */
export interface LeaseDemandInput {
  target: ActionTarget;
  count: number;
  cleanup: { action: ActionName; resource: string | null } | null;
  /** Devices not to hand out (a retry that failed on them). */
  exclude?: readonly { host: string; device: string }[] | undefined;
}

/** Checks a lease request against the fleet and answers the demand the scheduler will serve. */
export function admitLease(ports: AdmissionPorts, req: LeaseDemandInput): Demand {
  const exclude = req.exclude && req.exclude.length > 0 ? new Set(req.exclude.map((d) => deviceKey(d.host, d.device))) : NO_EXCLUSIONS;
  const base = { action: req.cleanup ? { name: req.cleanup.action, resource: req.cleanup.resource } : null, leaseId: null, exclude, internal: false };
  if ("host" in req.target) {
    if (req.count !== 1) throw new LabrigError("validation_failed", "Invalid lease request: count: an exact target is one device, so count must be 1 (or use a selector).");
    const slot = exactSlot(ports, req.target.host, req.target.device);
    if (req.cleanup) resolveResource(req.cleanup.action, slot.resources, req.cleanup.resource);
    if (slot.health !== "good") throw refusal(ports, slot, "health");
    return { ...base, target: { key: slot.key } };
  }
  const selector = req.target.selector;
  const demand: Demand = { ...base, target: { selector } };
  const matching = ports.scheduler.candidates(demand).length;
  if (matching < req.count) {
    const why = req.cleanup ? ` and can run the cleanup ${req.cleanup.action}` : "";
    const others = exclude.size > 0 ? ` (other than ${[...exclude].join(", ")})` : "";
    throw new LabrigError("unknown_device", `Only ${matching} device(s)${others} match selector ${describeSelector(selector)}${why}, fewer than count ${req.count}.`);
  }
  return demand;
}
