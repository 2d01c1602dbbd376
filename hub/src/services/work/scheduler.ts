import { canRunOn, type ActionName, type Labels, type ResourceDescription, type TargetSelector } from "@labrig/shared";
import type { DeviceHealth } from "../../repositories/devices.js";

/** The key of a device in the fleet: `host/device`. */
export function deviceKey(host: string, device: string): string {
  return `${host}/${device}`;
}

/** What the hub knows of a device from its agent's hello and its stored health. */
export interface DeviceFacts {
  readonly host: string;
  readonly device: string;
  labels: Labels;
  capabilities: string[];
  resources: ResourceDescription[];
  health: DeviceHealth;
  healthReason: string | null;
}

/** A device as the scheduler tracks it: its facts and its live load. */
export interface DeviceSlot extends DeviceFacts {
  readonly key: string;
  /** The one action the hub has sent this device and not yet seen end. */
  running: string | null;
  /** Exact-target requests waiting for this device. */
  waiting: number;
  /** When the device was last given work, as a count of decisions (least-recently-used ordering). */
  lastUsed: number;
}

/** What a request needs of a device. */
export interface Demand {
  /** One exact device (by key), or any device matching the selector. */
  readonly target: { readonly key: string } | { readonly selector: TargetSelector };
  /** The action every chosen device must be able to run (a lease's cleanup action, for a lease request); null for none. */
  readonly action: { readonly name: ActionName; readonly resource: string | null } | null;
  /** The lease the request holds: its devices may serve it. Null: only devices nobody leases. */
  readonly leaseId: string | null;
  /** Devices never to give this request (a retry that failed on them). */
  readonly exclude: ReadonlySet<string>;
  /** Hub-internal work (a lease's cleanup): runs whatever the device's health and leases. */
  readonly internal: boolean;
}

/** Why a device cannot serve a demand, static reasons first. */
export type Ineligible = "selector" | "unsupported" | "excluded" | "offline" | "health" | "leased" | "busy";

/** An action waiting for a device: it needs one idle device. */
export interface QueuedAction {
  readonly kind: "action";
  readonly id: string;
  readonly priority: number;
  readonly demand: Demand;
}

/** A lease waiting for devices: it needs `count` devices nobody leases (all at once), busy or idle. */
export interface QueuedLease {
  readonly kind: "lease";
  readonly id: string;
  readonly priority: number;
  readonly demand: Demand;
  readonly count: number;
}

export type QueuedRequest = QueuedAction | QueuedLease;

/** What the scheduler decided; the caller acts on each, in order. */
export type Decision =
  | { readonly kind: "dispatch"; readonly id: string; readonly slot: DeviceSlot }
  | { readonly kind: "grant"; readonly id: string; readonly slots: readonly DeviceSlot[] }
  /** An exact-target request that can no longer be served: its device left, became unhealthy or was leased to someone else. */
  | { readonly kind: "refuse"; readonly id: string; readonly reason: "gone" | "health" | "leased"; readonly key: string };

interface Entry {
  readonly request: QueuedRequest;
  readonly seq: number;
}

/** True when the slot's labels and capabilities satisfy the selector. */
export function matchesSelector(slot: DeviceFacts, selector: TargetSelector): boolean {
  for (const c of selector.capabilities) if (!slot.capabilities.includes(c)) return false;
  // for…in rather than Object.entries: this runs for every device on every selector submit.
  for (const k in selector.labels) if (slot.labels[k] !== selector.labels[k]) return false;
  return true;
}

/**
 * The queue of work and the one eligibility rule, with no I/O: facts come in (devices, presence,
 * health, leases, ends of actions), requests are queued, and each pass answers which request goes
 * to which device. Selector work goes to an idle, reachable, good, matching device nobody else
 * leases — the request's own leased devices first, then the least loaded, then the least recently
 * used; requests are served by priority, then age. Timers, persistence and sockets belong to the
 * caller, so every decision here is tested in milliseconds.
 */
export class Scheduler {
  private readonly slots = new Map<string, DeviceSlot>();
  private readonly reachable = new Set<string>();
  /** Device key → the lease holding it. */
  private readonly leaseOf = new Map<string, string>();
  private readonly queue: Entry[] = [];
  private readonly byId = new Map<string, Entry>();
  private seq = 0;
  private uses = 0;
  private leaseRequests = 0;

  // ---- facts ------------------------------------------------------------------------------

  /** Replaces a host's devices (after its hello); live fields of devices that stay are kept. Returns the keys that left. */
  setHostDevices(host: string, devices: readonly DeviceFacts[]): string[] {
    const keep = new Set(devices.map((d) => deviceKey(host, d.device)));
    const gone: string[] = [];
    for (const slot of this.slots.values()) {
      if (slot.host === host && !keep.has(slot.key)) {
        this.slots.delete(slot.key);
        gone.push(slot.key);
      }
    }
    for (const d of devices) {
      const key = deviceKey(host, d.device);
      const previous = this.slots.get(key);
      this.slots.set(key, {
        key,
        host,
        device: d.device,
        labels: d.labels,
        capabilities: d.capabilities,
        resources: d.resources,
        health: d.health,
        healthReason: d.healthReason,
        running: previous?.running ?? null,
        waiting: previous?.waiting ?? 0,
        lastUsed: previous?.lastUsed ?? 0,
      });
    }
    return gone;
  }

  /** Whether the host can be sent work now (online, with a live connection). */
  setReachable(host: string, reachable: boolean): void {
    if (reachable) this.reachable.add(host);
    else this.reachable.delete(host);
  }

  isReachable(host: string): boolean {
    return this.reachable.has(host);
  }

  setHealth(key: string, health: DeviceHealth, reason: string | null): void {
    const slot = this.slots.get(key);
    if (!slot) return;
    slot.health = health;
    slot.healthReason = reason;
  }

  /** A lease now holds these devices. */
  holdLease(leaseId: string, keys: readonly string[]): void {
    for (const key of keys) this.leaseOf.set(key, leaseId);
  }

  /** The lease no longer holds anything. */
  releaseLease(leaseId: string): void {
    for (const [key, id] of this.leaseOf) if (id === leaseId) this.leaseOf.delete(key);
  }

  leaseHolding(key: string): string | undefined {
    return this.leaseOf.get(key);
  }

  /** The device is no longer running `actionId` (it ended, or was taken back). */
  release(key: string, actionId: string): void {
    const slot = this.slots.get(key);
    if (slot?.running === actionId) slot.running = null;
  }

  slot(key: string): DeviceSlot | undefined {
    return this.slots.get(key);
  }

  devices(): IterableIterator<DeviceSlot> {
    return this.slots.values();
  }

  /** Running + waiting, as GET /api/hosts shows a device's load. */
  loadOf(key: string): number {
    const slot = this.slots.get(key);
    return slot ? (slot.running === null ? 0 : 1) + slot.waiting : 0;
  }

  // ---- the rule ---------------------------------------------------------------------------

  /**
   * Why `slot` cannot serve `demand` now, or null when it can. `run` asks for an action (the device
   * must be idle); `hold` asks for a lease (busy is fine, but no lease at all may hold it).
   */
  ineligible(slot: DeviceSlot, demand: Demand, purpose: "run" | "hold"): Ineligible | null {
    const target = demand.target;
    if ("selector" in target && !matchesSelector(slot, target.selector)) return "selector";
    if (demand.action !== null && !canRunOn(demand.action.name, slot.resources, demand.action.resource)) return "unsupported";
    if (demand.exclude.has(slot.key)) return "excluded";
    if (!this.reachable.has(slot.host)) return "offline";
    // A lease's cleanup belongs to the lease that just ended: it runs whatever the health, and before any new holder's work.
    if (!demand.internal) {
      if (slot.health !== "good") return "health";
      const holder = this.leaseOf.get(slot.key);
      if (holder !== undefined && (purpose === "hold" || holder !== demand.leaseId)) return "leased";
    }
    if (purpose === "run" && slot.running !== null) return "busy";
    return null;
  }

  /** Devices that could ever serve the demand (its static part: target, capability, exclusions). */
  candidates(demand: Demand): DeviceSlot[] {
    return [...this.eachCandidate(demand)];
  }

  /** Whether any device could ever serve the demand: candidates(), stopping at the first. */
  hasCandidate(demand: Demand): boolean {
    return !this.eachCandidate(demand).next().done;
  }

  private *eachCandidate(demand: Demand): Generator<DeviceSlot> {
    const target = demand.target;
    if ("key" in target) {
      const slot = this.slots.get(target.key);
      if (slot && this.staticallyFits(slot, demand)) yield slot;
      return;
    }
    for (const slot of this.slots.values()) if (this.staticallyFits(slot, demand)) yield slot;
  }

  private staticallyFits(slot: DeviceSlot, demand: Demand): boolean {
    const reason = this.ineligible(slot, demand, "hold");
    return reason === null || (reason !== "selector" && reason !== "unsupported" && reason !== "excluded");
  }

  // ---- the queue --------------------------------------------------------------------------

  get queueLength(): number {
    return this.queue.length;
  }

  has(id: string): boolean {
    return this.byId.has(id);
  }

  /** Queued requests in the order they will be served. */
  queued(): QueuedRequest[] {
    return this.queue.map((e) => e.request);
  }

  enqueue(request: QueuedRequest): void {
    if (this.byId.has(request.id)) throw new Error(`request ${request.id} is already queued`);
    const entry: Entry = { request, seq: ++this.seq };
    // Binary search for the first entry served after this one (lower priority, or same priority and newer).
    let lo = 0;
    let hi = this.queue.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const other = this.queue[mid] as Entry;
      if (other.request.priority >= request.priority) lo = mid + 1;
      else hi = mid;
    }
    this.queue.splice(lo, 0, entry);
    this.byId.set(request.id, entry);
    this.countWaiting(request, +1);
  }

  /** Takes a request out of the queue (timeout, cancel); returns it, or undefined when it was not queued. */
  dequeue(id: string): QueuedRequest | undefined {
    const entry = this.byId.get(id);
    if (!entry) return undefined;
    this.queue.splice(this.queue.indexOf(entry), 1);
    this.byId.delete(id);
    this.countWaiting(entry.request, -1);
    return entry.request;
  }

  private countWaiting(request: QueuedRequest, delta: 1 | -1): void {
    if (request.kind === "lease") {
      this.leaseRequests += delta;
      return;
    }
    const target = request.demand.target;
    if (!("key" in target)) return;
    const slot = this.slots.get(target.key);
    if (slot) slot.waiting = Math.max(0, slot.waiting + delta);
  }

  // ---- decisions --------------------------------------------------------------------------

  /**
   * One pass over the queue in service order. A plain pass (a device was freed) ends once no
   * device is idle; a full pass (presence, health, leases or devices changed) visits every request,
   * so exact targets that became impossible are refused now rather than at their timeout.
   * Every decision is applied to the scheduler's own state before the next one is made.
   */
  schedule(full: boolean): Decision[] {
    if (this.queue.length === 0) return [];
    const idle: DeviceSlot[] = [];
    for (const slot of this.slots.values()) if (slot.running === null && this.reachable.has(slot.host)) idle.push(slot);
    if (idle.length === 0 && !full && this.leaseRequests === 0) return [];
    const decisions: Decision[] = [];
    for (const entry of [...this.queue]) {
      const request = entry.request;
      if (request.kind === "lease") {
        const refusal = this.refuseExactLease(request);
        if (refusal) {
          decisions.push(refusal);
          continue;
        }
        const slots = this.pickForLease(request);
        if (slots) {
          this.dequeue(request.id);
          for (const s of slots) this.leaseOf.set(s.key, request.id);
          decisions.push({ kind: "grant", id: request.id, slots });
        }
        continue;
      }
      const target = request.demand.target;
      if ("key" in target) {
        const decision = this.decideExact(request, target.key);
        if (decision) {
          decisions.push(decision);
          if (decision.kind === "dispatch") idle.splice(idle.indexOf(decision.slot), 1);
        }
        continue;
      }
      if (idle.length === 0) {
        if (!full && this.leaseRequests === 0) break;
        continue;
      }
      const best = this.pickForAction(request, idle);
      if (best) {
        idle.splice(idle.indexOf(best), 1);
        decisions.push(this.dispatch(request, best));
      }
    }
    return decisions;
  }

  private decideExact(request: QueuedAction, key: string): Decision | null {
    const slot = this.slots.get(key);
    if (!slot) {
      this.dequeue(request.id);
      return { kind: "refuse", id: request.id, reason: "gone", key };
    }
    const reason = this.ineligible(slot, request.demand, "run");
    if (reason === null) return this.dispatch(request, slot);
    if (reason === "health" || reason === "leased") {
      this.dequeue(request.id);
      return { kind: "refuse", id: request.id, reason, key };
    }
    return null;
  }

  private dispatch(request: QueuedAction, slot: DeviceSlot): Decision {
    this.dequeue(request.id);
    slot.running = request.id;
    slot.lastUsed = ++this.uses;
    return { kind: "dispatch", id: request.id, slot };
  }

  /** The request's own leased devices first, then the fewest waiting exact requests, then the least recently used. */
  private pickForAction(request: QueuedAction, idle: readonly DeviceSlot[]): DeviceSlot | null {
    let best: DeviceSlot | null = null;
    let bestMine = false;
    for (const slot of idle) {
      if (this.ineligible(slot, request.demand, "run") !== null) continue;
      const mine = request.demand.leaseId !== null && this.leaseOf.get(slot.key) === request.demand.leaseId;
      if (best === null || (mine && !bestMine) || (mine === bestMine && (slot.waiting < best.waiting || (slot.waiting === best.waiting && slot.lastUsed < best.lastUsed)))) {
        best = slot;
        bestMine = mine;
      }
    }
    return best;
  }

  /** An exact lease waits for another lease to end, but not for a device that left or is unhealthy. */
  private refuseExactLease(request: QueuedLease): Decision | null {
    const target = request.demand.target;
    if (!("key" in target)) return null;
    const slot = this.slots.get(target.key);
    const reason = !slot ? "gone" : slot.health !== "good" ? "health" : null;
    if (reason === null) return null;
    this.dequeue(request.id);
    return { kind: "refuse", id: request.id, reason, key: target.key };
  }

  /** All or nothing: `count` devices nobody leases, idle ones first, then the least recently used. */
  private pickForLease(request: QueuedLease): DeviceSlot[] | null {
    const fit = this.candidates(request.demand).filter((s) => this.ineligible(s, request.demand, "hold") === null);
    if (fit.length < request.count) return null;
    fit.sort((a, b) => (a.running === null ? 0 : 1) - (b.running === null ? 0 : 1) || a.lastUsed - b.lastUsed);
    return fit.slice(0, request.count);
  }
}
