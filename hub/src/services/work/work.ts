import { uuidv7 } from "../../ids.js";
import { LabrigError, makeEnvelope, sleep, toLabrigError } from "@labrig/shared";
import type { HubBus } from "../../bus.js";
import type { Logger } from "../../logger.js";
import type { LeaseBook } from "../lease-book.js";
import { ActionRuns, INTERNAL_PRIORITY, type Submitted } from "./action-runs.js";
import { admitAction, admitLease, refusal, type ActionSubmission, type AdmissionPorts } from "./admission.js";
import type { AgentChannel, ChannelPort } from "./agent-channel.js";
import type { LateResults } from "./late-results.js";
import type { ActionLedger } from "./ledger.js";
import { Reservations, type Reservation } from "./reservations.js";
import type { Decision, Scheduler } from "./scheduler.js";

export type { ActionSubmission } from "./admission.js";
export type { Submitted } from "./action-runs.js";
export type { Reservation } from "./reservations.js";
export { HUB_DEADLINE_MARGIN_MS, INTERNAL_PRIORITY } from "./action-runs.js";

export interface WorkOptions {
  /** Base passed to actionTimeoutMs. */
  actionTimeoutMs: number;
  /** Used for retry_after when a host is offline. */
  heartbeatIntervalMs: number;
  /** Default time a request waits for a free device. */
  queueTimeoutMs: number;
  /** Most requests waiting at once. */
  queueMax: number;
  /** How long stop() lets running actions finish before failing them. */
  drainMs: number;
}

/** What REST, campaigns, leases and the planner use to run work on devices. */
export interface WorkFacade {
  /** Validates and queues an action; throws at once what refuses it. Aborting `signal` cancels it, queued or running. */
  submit(sub: ActionSubmission, options?: { signal?: AbortSignal | undefined }): Submitted;
  /** Cancels a queued or running action; settles once it has ended. A finished or unknown one throws. */
  cancel(id: string, by: string | null): { ended: Promise<void> };
  /** Waits (up to waitMs) for free devices and grants them to a lease; aborting `signal` withdraws the request. */
  reserve<T>(request: Reservation<T>, options?: { signal?: AbortSignal | undefined }): Promise<T>;
  /** A lease now holds these devices (loaded at start). */
  holdLease(id: string, devices: readonly { host: string; device: string }[]): void;
  /** The lease holds nothing any more. */
  releaseLease(id: string): void;
  /** Running + waiting actions of a device. */
  loadOf(host: string, device: string): number;
  readonly queueLength: number;
}

/** Where the scheduler's device facts come from (the database). */
export interface FleetFacts {
  loadAll(): void;
  reloadHost(host: string): "reloaded" | "unknown_host";
  onlineHosts(): string[];
}

/**
 * The work unit: admits submissions (nothing is written before every check passed), carries out the
 * scheduler's decisions through the action runs and reservations, and keeps the scheduler's facts
 * current from the bus (presence, agent links and hellos, devices, health) and from the lease unit.
 * Stopping drains: new work is refused, queued work fails, running work may finish for drainMs.
 */
export class WorkService implements WorkFacade {
  private readonly online = new Set<string>();
  private readonly helloDone = new Set<string>();
  private readonly unsubscribe: (() => void)[] = [];
  private accepting = false;
  private pumping = false;
  private pumpAgain = false;
  private pumpFull = false;
  private channel: AgentChannel | null = null;
  private readonly admission: AdmissionPorts;
  private readonly runs: ActionRuns;
  private readonly reservations: Reservations;

  constructor(
    private readonly scheduler: Scheduler,
    private readonly ledger: ActionLedger,
    leases: LeaseBook,
    private readonly fleet: FleetFacts,
    lateResults: LateResults,
    private readonly bus: HubBus,
    private readonly options: WorkOptions,
    private readonly logger: Logger,
  ) {
    this.admission = { scheduler, leases, reload: (host) => fleet.reloadHost(host), offlineRetryAfterS: Math.max(1, Math.ceil(options.heartbeatIntervalMs / 1000)) };
    const pump = (full: boolean): void => this.pump(full);
    const retryAfterS = (): number => this.retryAfterS();
    this.runs = new ActionRuns({ scheduler, ledger, lateResults, bus, channel: () => this.wire, pump, retryAfterS, options, logger });
    this.reservations = new Reservations(scheduler, leases, retryAfterS, pump);
  }

  /** The channel reports to the action runs; it is built over them, so it is attached after construction. */
  get channelPort(): ChannelPort {
    return this.runs;
  }

  attachChannel(channel: AgentChannel): void {
    this.channel = channel;
  }

  private get wire(): AgentChannel {
    if (!this.channel) throw new Error("the work unit has no agent channel attached");
    return this.channel;
  }

  start(): void {
    const abandoned = this.ledger.abandonUnfinished(makeEnvelope("shutting_down", "The hub stopped before this action finished; its outcome on the device is unknown. Check the device and retry."));
    if (abandoned > 0) this.logger.warn({ actions: abandoned }, "actions a previous hub process left unfinished were marked failed");
    this.fleet.loadAll();
    for (const host of this.fleet.onlineHosts()) this.online.add(host);
    this.unsubscribe.push(
      this.bus.on("host.state", (e) => {
        if (e.state === "online") this.online.add(e.host);
        else this.online.delete(e.host);
        this.reach(e.host);
      }),
      this.bus.on("agent.link", (e) => {
        // A replaced connection's end changes nothing here: its successor's own "up" already did.
        if (!e.up && e.replaced) return;
        this.helloDone.delete(e.host);
        this.reach(e.host);
      }),
      this.bus.on("agent.hello", (e) => {
        this.helloDone.add(e.host);
        this.reach(e.host);
      }),
      this.bus.on("host.devices", (e) => {
        this.fleet.reloadHost(e.host);
        this.pump(true);
      }),
      this.bus.on("device.health", (e) => {
        this.scheduler.setHealth(`${e.host}/${e.device}`, e.health, e.reason);
        this.pump(true);
      }),
    );
    this.accepting = true;
  }

  /**
   * The first step of a stop: new work is refused with a recoverable `shutting_down` (retry_after 5),
   * what waits for a device fails the same way at once (it never ran, so a retry is safe), and what
   * runs gets up to drainMs to finish.
   */
  async drain(): Promise<void> {
    if (!this.accepting) return;
    this.accepting = false;
    this.reservations.failAll(new LabrigError("shutting_down", "The hub is restarting; retry the lease once it is back.", { retryAfter: 5 }));
    this.runs.endAllQueued("shutting_down", "The hub is restarting; this request was still waiting for a device and never ran. Retry in a few seconds.", 5);
    if (!this.runs.anyRunning) return;
    this.logger.info({ drain_ms: this.options.drainMs }, "draining: waiting for running actions to finish");
    const deadline = Date.now() + this.options.drainMs;
    while (Date.now() < deadline && this.runs.anyRunning) await sleep(20);
    if (this.runs.anyRunning) this.logger.warn({ drain_ms: this.options.drainMs }, "actions still running after the drain; they fail with shutting_down");
  }

  /** Fails what still runs (its outcome on the device is unknown) and stops listening to the bus. */
  async stop(): Promise<void> {
    await this.drain();
    this.runs.endAllRunning("shutting_down", "The hub shut down while the action was running; its outcome on the device is unknown. Check the device and retry once the hub is back.");
    for (const off of this.unsubscribe.splice(0)) off();
  }

  get queueLength(): number {
    return this.scheduler.queueLength;
  }

  get runningCount(): number {
    return this.wire.inFlight;
  }

  get isAccepting(): boolean {
    return this.accepting;
  }

  loadOf(host: string, device: string): number {
    return this.scheduler.loadOf(`${host}/${device}`);
  }

  submit(sub: ActionSubmission, options: { signal?: AbortSignal | undefined } = {}): Submitted {
    this.refuseWhenStopping();
    const admitted = admitAction(this.admission, sub);
    this.checkQueueRoom();
    if (options.signal?.aborted) throw toLabrigError(options.signal.reason);
    return this.runs.submit(uuidv7(), admitted, sub, sub.internal ? INTERNAL_PRIORITY : (sub.priority ?? 0), options.signal);
  }

  cancel(id: string, by: string | null): { ended: Promise<void> } {
    return this.runs.cancel(id, by);
  }

  reserve<T>(request: Reservation<T>, options: { signal?: AbortSignal | undefined } = {}): Promise<T> {
    try {
      this.refuseWhenStopping();
      const demand = admitLease(this.admission, request);
      this.checkQueueRoom();
      return this.reservations.request(request, demand, options.signal);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  holdLease(id: string, devices: readonly { host: string; device: string }[]): void {
    this.scheduler.holdLease(
      id,
      devices.map((d) => `${d.host}/${d.device}`),
    );
    this.pump(true);
  }

  releaseLease(id: string): void {
    this.scheduler.releaseLease(id);
    this.pump(true);
  }

  private refuseWhenStopping(): void {
    if (!this.accepting) throw new LabrigError("shutting_down", "The hub is restarting and takes no new work; retry in a few seconds.", { retryAfter: 5 });
  }

  private checkQueueRoom(): void {
    if (this.scheduler.queueLength >= this.options.queueMax) {
      throw new LabrigError("no_device_available", `The dispatch queue is full (${this.options.queueMax} waiting requests); retry later.`, { retryAfter: this.retryAfterS() });
    }
  }

  /** Whether the host can be given work: online, and its live connection's hello done. */
  private reach(host: string): void {
    const reachable = this.online.has(host) && this.helloDone.has(host);
    if (reachable === this.scheduler.isReachable(host)) return;
    this.scheduler.setReachable(host, reachable);
    this.pump(true);
  }

  private pump(full: boolean): void {
    if (this.runs.size === 0 && this.reservations.size === 0) return;
    if (this.pumping) {
      // Re-entered from a grant or a synchronous failure: run again once the current pass ends.
      this.pumpAgain = true;
      this.pumpFull ||= full;
      return;
    }
    this.pumping = true;
    try {
      let pass = full;
      do {
        this.pumpAgain = false;
        for (const decision of this.scheduler.schedule(pass)) this.apply(decision);
        pass = this.pumpFull;
        this.pumpFull = false;
      } while (this.pumpAgain);
    } catch (err) {
      this.logger.error({ err }, "dispatch pass failed; the queue is re-evaluated at the next event");
    } finally {
      this.pumping = false;
    }
  }

  private apply(decision: Decision): void {
    if (decision.kind === "dispatch") {
      this.runs.dispatch(decision.id, decision.slot);
    } else if (decision.kind === "grant") {
      this.reservations.grant(decision.id, decision.slots);
    } else {
      const slot = this.scheduler.slot(decision.key);
      const error = slot ? refusal(this.admission, slot, decision.reason) : new LabrigError("unknown_device", `Device ${decision.key} left the registry (its agent no longer reports it) while the request waited.`);
      this.reservations.refuse(decision.id, error);
      this.runs.refuse(decision.id, error);
    }
  }

  /** Seconds a caller might wait before retrying: about the time the queue ahead needs to drain, 1–5 s. */
  private retryAfterS(): number {
    let devices = 0;
    for (const s of this.scheduler.devices()) if (s.health === "good" && this.scheduler.isReachable(s.host)) devices += 1;
    const estimate = (this.runs.avgDurationMs * (1 + this.scheduler.queueLength / Math.max(1, devices))) / 1000;
    return Math.min(5, Math.max(1, Math.ceil(estimate)));
  }
}
