import { performance } from "node:perf_hooks";
import {
  ACTIONS,
  LabrigError,
  abortReason,
  raceAbort,
  nowIso,
  parseActionParams,
  parseActionResult,
  resolveResource,
  settlesWithin,
  type ActionName,
  type ActionRequest,
  type ActionResult,
  type ActionStarted,
  type ResourceDescription,
} from "@labrig/shared";
import type { Logger } from "./logger.js";

/** What the executor needs of a device: its resources (to resolve names) and a way to run one action. */
export interface RunnableDevice {
  readonly id: string;
  readonly resources: readonly ResourceDescription[];
  run(action: ActionName, resource: string | null, params: Record<string, unknown>, signal: AbortSignal): Promise<Record<string, unknown>>;
}

export interface ExecutorOptions {
  /** After an abort, how long a driver that ignores its signal may hold the device before the next action starts anyway. */
  settleGraceMs?: number;
  /** How many finished action ids are remembered to ignore a request the hub sends twice. */
  rememberIds?: number;
  /**
   * Asked right before an action touches hardware; false means "do not run it" (the hub lost us
   * or gave the action to another device), and the action fails with `host_lost` without running.
   */
  confirmStart?: (started: ActionStarted) => Promise<boolean>;
}

interface Entry {
  req: ActionRequest;
  controller: AbortController;
}

interface DeviceQueue {
  queue: Entry[];
  running: Entry | null;
  /** Settles when the running action's driver has let go of the device. */
  idle: Promise<void>;
}

/** Anything a driver throws, as a LabrigError; errors that know no code are hardware errors. */
export function toActionError(err: unknown): LabrigError {
  if (err instanceof LabrigError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new LabrigError("hardware_error", message, { cause: err });
}

/**
 * Runs actions: one FIFO queue per device (one device never does two things at once; two
 * devices work in parallel), each action under an AbortController with its timeout.
 * Timeout and cancel abort with a LabrigError that says why; drivers pass it on.
 */
export class Executor {
  private readonly queues = new Map<string, DeviceQueue>();
  private readonly active = new Set<string>();
  private readonly finished = new Set<string>();
  private stopping = false;
  private readonly settleGraceMs: number;
  private readonly rememberIds: number;
  private readonly confirmStart: ((started: ActionStarted) => Promise<boolean>) | undefined;

  constructor(
    private readonly host: string,
    private readonly devices: ReadonlyMap<string, RunnableDevice>,
    private readonly onResult: (result: ActionResult) => void,
    private readonly logger: Logger,
    options: ExecutorOptions = {},
  ) {
    this.settleGraceMs = options.settleGraceMs ?? 1000;
    this.rememberIds = options.rememberIds ?? 1000;
    this.confirmStart = options.confirmStart;
  }

  start(): void {
    this.stopping = false;
  }

  /** Fails queued actions and aborts running ones with `shutting_down`, then waits (bounded) for drivers to let go. */
  async stop(): Promise<void> {
    this.stopping = true;
    const reason = new LabrigError("shutting_down", "The agent is shutting down; run the action again when the host is back online.");
    const waits: Promise<void>[] = [];
    for (const [deviceId, q] of this.queues) {
      for (const entry of q.queue.splice(0)) this.finish(entry.req, deviceId, nowIso(), performance.now(), null, reason);
      q.running?.controller.abort(reason);
      waits.push(q.idle);
    }
    await Promise.all(waits);
  }

  /** Queues a request behind the device's earlier ones. The outcome always arrives through onResult. */
  submit(req: ActionRequest): void {
    if (this.active.has(req.id) || this.finished.has(req.id)) {
      // The hub may resend a request it is unsure we got; running it twice could power-cycle a board twice.
      this.logger.warn({ action_id: req.id }, "duplicate action request ignored; its result is or was delivered once");
      return;
    }
    const device = this.devices.get(req.device);
    if (!device) {
      const known = [...this.devices.keys()].join(", ") || "none";
      this.finish(req, req.device, nowIso(), performance.now(), null, new LabrigError("unknown_device", `Host ${this.host} has no device '${req.device}'. Its devices: ${known}.`));
      return;
    }
    if (this.stopping) {
      this.finish(req, req.device, nowIso(), performance.now(), null, new LabrigError("shutting_down", "The agent is shutting down; retry when the host is back online."));
      return;
    }
    this.active.add(req.id);
    let q = this.queues.get(device.id);
    if (!q) {
      q = { queue: [], running: null, idle: Promise.resolve() };
      this.queues.set(device.id, q);
    }
    q.queue.push({ req, controller: new AbortController() });
    this.logger.debug({ action_id: req.id, device: device.id, action: req.action, queued: q.queue.length }, "action queued");
    if (!q.running) q.idle = this.drain(device, q);
  }

  /** Answers a request that could not even be read (the hub sent a malformed one) with a failed result. */
  reject(id: string, device: string, error: LabrigError): void {
    const req: ActionRequest = { id, device, action: "wait", resource: null, params: {}, timeout_ms: 1, confirm_start: true };
    this.finish(req, device, nowIso(), performance.now(), null, error);
  }

  /** Cancels a queued action (result `canceled` at once) or aborts a running one. False when the id is unknown. */
  cancel(id: string): boolean {
    for (const [deviceId, q] of this.queues) {
      if (q.running?.req.id === id) {
        q.running.controller.abort(new LabrigError("canceled", `Action ${id} was canceled while running.`));
        return true;
      }
      const i = q.queue.findIndex((e) => e.req.id === id);
      if (i >= 0) {
        const [entry] = q.queue.splice(i, 1);
        this.finish((entry as Entry).req, deviceId, nowIso(), performance.now(), null, new LabrigError("canceled", `Action ${id} was canceled before it started.`));
        return true;
      }
    }
    this.logger.info({ action_id: id }, "cancel for an action that is not queued or running (already finished?)");
    return false;
  }

  /** Resolves when every device queue is empty (tests and shutdown). */
  async idle(): Promise<void> {
    while ([...this.queues.values()].some((q) => q.running || q.queue.length > 0)) {
      await Promise.all([...this.queues.values()].map((q) => q.idle));
    }
  }

  private async drain(device: RunnableDevice, q: DeviceQueue): Promise<void> {
    for (let entry = q.queue.shift(); entry; entry = q.queue.shift()) {
      q.running = entry;
      try {
        await this.execute(device, entry);
      } finally {
        q.running = null;
      }
    }
  }

  private async execute(device: RunnableDevice, entry: Entry): Promise<void> {
    const { req, controller } = entry;
    const signal = controller.signal;
    const startedAt = nowIso();
    const t0 = performance.now();
    const timer = setTimeout(() => {
      controller.abort(new LabrigError("action_timeout", `${req.action} on ${req.device} did not finish within ${req.timeout_ms} ms; it was aborted. Raise timeout_ms if the device is just slow.`));
    }, req.timeout_ms);
    let work: Promise<Record<string, unknown>> | null = null;
    let result: Record<string, unknown> | null = null;
    let error: LabrigError | null = null;
    try {
      // Validated again here, whatever the hub checked: this is the last stop before hardware.
      const params = parseActionParams(req.action, req.params);
      const resource = resolveLine(req.action, device, req.resource);
      if (signal.aborted) throw abortReason(signal);
      // A cancel or timeout while the hub's confirmation is on its way ends the wait at once (the action is then not run).
      if (req.confirm_start && this.confirmStart && !(await raceAbort(this.confirmStart({ id: req.id, host: this.host, device: device.id, started_at: startedAt }), signal))) {
        throw new LabrigError("host_lost", `The hub did not confirm the start of ${req.action} (connection lost, or the action went to another device); it was not run.`);
      }
      if (signal.aborted) throw abortReason(signal);
      work = device.run(req.action, resource, params, signal);
      result = parseActionResult(req.action, await raceAbort(work, signal));
    } catch (err) {
      error = toActionError(err);
    } finally {
      clearTimeout(timer);
    }
    this.finish(req, device.id, startedAt, t0, result, error);
    if (work && signal.aborted) await this.settle(work, req);
  }

  /** Waits, bounded, for an aborted driver to return, so the next action does not race it on the same hardware. */
  private async settle(work: Promise<unknown>, req: ActionRequest): Promise<void> {
    if (!(await settlesWithin(work, this.settleGraceMs))) {
      this.logger.warn({ action_id: req.id, device: req.device, action: req.action, grace_ms: this.settleGraceMs }, "driver ignored the abort; starting the next action anyway");
    }
  }

  private finish(req: ActionRequest, device: string, startedAt: string, t0: number, result: Record<string, unknown> | null, error: LabrigError | null): void {
    this.active.delete(req.id);
    this.finished.add(req.id);
    if (this.finished.size > this.rememberIds) {
      const oldest = this.finished.values().next().value;
      if (oldest !== undefined) this.finished.delete(oldest);
    }
    const status = error === null ? "succeeded" : error.code === "canceled" ? "canceled" : "failed";
    const out: ActionResult = {
      id: req.id,
      host: this.host,
      device,
      status,
      result: error === null ? result : null,
      error: error === null ? null : error.toEnvelope(),
      started_at: startedAt,
      finished_at: nowIso(),
      duration_ms: Math.max(0, performance.now() - t0),
    };
    const log = { action_id: req.id, device, action: req.action, status, duration_ms: Math.round(out.duration_ms), error_code: error?.code };
    if (error && status === "failed") this.logger.warn({ ...log, message: error.message }, "action failed");
    else this.logger.info(log, "action finished");
    try {
      this.onResult(out);
    } catch (err) {
      this.logger.error({ action_id: req.id, err: (err as Error).message }, "could not hand the action result to the outbox; the hub will not hear of it");
    }
  }
}

/**
 * resolveResource, except that a gpio/power action naming anything but a configured line of
 * that kind is `forbidden_line`: the hub normally prevents it, but the agent guards the pins itself.
 */
function resolveLine(action: ActionName, device: RunnableDevice, requested: string | null): string | null {
  try {
    return resolveResource(action, device.resources, requested);
  } catch (err) {
    const kind = ACTIONS[action].resourceKind;
    if (err instanceof LabrigError && err.code === "unknown_resource" && requested && (kind === "gpio" || kind === "power")) {
      throw new LabrigError("forbidden_line", `${action} refused: '${requested}' is not a configured ${kind} line of device ${device.id}. ${err.message}`);
    }
    throw err;
  }
}
