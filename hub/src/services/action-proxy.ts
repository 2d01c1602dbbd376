import { randomUUID } from "node:crypto";
import {
  ActionRequestBodySchema,
  LabrigError,
  actionTimeoutMs,
  isActionName,
  getAction,
  makeEnvelope,
  nowIso,
  parseActionParams,
  parseActionResult,
  parseOrThrow,
  resolveResource,
  type ActionCancel,
  type ActionName,
  type ActionRecord,
  type ActionRequest,
  type ActionResult,
  type ErrorCode,
} from "@labrig/shared";
import type { Logger } from "../logger.js";
import type { AgentConnections } from "../realtime/agent-connections.js";
import type { ActionOutcome, ActionsRepository } from "../repositories/actions.js";
import type { DevicesRepository } from "../repositories/devices.js";
import type { HostsRepository } from "../repositories/hosts.js";

/** Extra time the hub waits beyond the agent's own timeout, so the agent's (better) error normally wins. */
export const HUB_DEADLINE_MARGIN_MS = 5000;

export interface ActionProxyOptions {
  /** Base passed to actionTimeoutMs. */
  actionTimeoutMs: number;
  /** Used for retry_after when a host is offline. */
  heartbeatIntervalMs: number;
}

interface PendingAction {
  hostId: string;
  startedAtMs: number;
  timer: NodeJS.Timeout;
  resolve: (record: ActionRecord) => void;
  reject: (err: LabrigError) => void;
}

/** What became of an `action.result` an agent delivered. */
export type ResultDisposition = "finished" | "duplicate" | "unknown" | "wrong_host";

function isoOr(value: string, fallback: string): string {
  return Number.isNaN(Date.parse(value)) ? fallback : value;
}

/**
 * Runs one action on an exact host+device: validates, records, sends it to the host's
 * live socket, and waits for the agent's result (or a deadline, or the host vanishing).
 */
export class ActionProxy {
  private readonly pending = new Map<string, PendingAction>();
  private stopping = false;

  constructor(
    private readonly hosts: HostsRepository,
    private readonly devices: DevicesRepository,
    private readonly actions: ActionsRepository,
    private readonly agents: AgentConnections,
    private readonly options: ActionProxyOptions,
    private readonly logger: Logger,
  ) {}

  start(): void {
    this.stopping = false;
  }

  /** Fails every waiting request with `shutting_down`; new requests are refused from now on. */
  stop(): void {
    this.stopping = true;
    this.failWhere(() => true, "shutting_down", "The hub shut down while the action was running; its outcome on the device is unknown. Check the device and retry once the hub is back.");
  }

  get pendingCount(): number {
    return this.pending.size;
  }

  /**
   * Validates `body` and runs the action. Every check that can reject the request runs
   * before anything is written, so bad input leaves no trace in the database.
   */
  async run(hostId: string, deviceId: string, body: unknown, requestedBy: string | null): Promise<ActionRecord> {
    if (this.stopping) throw new LabrigError("shutting_down", "The hub is shutting down; retry in a few seconds.", { retryAfter: 5 });
    const request = parseOrThrow(ActionRequestBodySchema, body, { what: "action request" });
    getAction(request.action);
    if (!isActionName(request.action)) throw new LabrigError("unknown_action", `Unknown action '${request.action}'.`);
    const action: ActionName = request.action;
    const params = parseActionParams(action, request.params);

    const host = this.hosts.get(hostId);
    if (!host) throw new LabrigError("unknown_host", `No host '${hostId}'. GET /api/hosts lists the hosts; add one with: labrig-hub host add ${hostId}`);
    const device = this.devices.get(hostId, deviceId);
    if (!device) {
      const known = this.devices.listForHost(hostId).map((d) => d.id);
      throw new LabrigError(
        "unknown_device",
        `Host '${hostId}' has no device '${deviceId}'. Its devices: ${known.join(", ") || "none (the agent has not said hello yet)"}.`,
      );
    }
    const resource = resolveResource(action, device.resources, request.resource ?? null);
    const socket = this.agents.get(hostId);
    if (!socket || host.state !== "online") {
      const retryAfter = Math.max(1, Math.ceil(this.options.heartbeatIntervalMs / 1000));
      throw new LabrigError("host_offline", `Host '${hostId}' is offline (last seen ${host.lastSeen ?? "never"}). Check its agent (systemctl status labrig-agent) and retry.`, {
        retryAfter,
      });
    }

    const timeoutMs = actionTimeoutMs(action, params, this.options.actionTimeoutMs);
    const now = nowIso();
    const record: ActionRecord = {
      id: randomUUID(),
      host: hostId,
      device: deviceId,
      action,
      resource,
      params,
      status: "running",
      result: null,
      error: null,
      requested_by: requestedBy,
      queued_at: now,
      started_at: now,
      finished_at: null,
      duration_ms: null,
    };
    this.actions.insert(record);

    const done = new Promise<ActionRecord>((resolve, reject) => {
      const timer = setTimeout(() => this.onDeadline(record.id, timeoutMs), timeoutMs + HUB_DEADLINE_MARGIN_MS);
      this.pending.set(record.id, { hostId, startedAtMs: Date.now(), timer, resolve, reject });
    });
    const message: ActionRequest = { id: record.id, device: deviceId, action, resource, params, timeout_ms: timeoutMs };
    socket.emit("action.request", message);
    this.logger.info({ action_id: record.id, host: hostId, device: deviceId, action, resource, timeout_ms: timeoutMs }, "action sent");
    return done;
  }

  /** An agent delivered a result. Idempotent: the agent redelivers from its outbox after reconnects. */
  handleResult(fromHost: string, result: ActionResult): ResultDisposition {
    const record = this.actions.get(result.id);
    if (!record) return "unknown";
    if (record.host !== fromHost) return "wrong_host";
    const outcome = this.outcomeOf(record, result);
    if (!this.actions.finish(result.id, outcome)) return "duplicate";
    this.settle(result.id);
    this.logger.info({ action_id: result.id, host: fromHost, status: outcome.status, duration_ms: outcome.durationMs }, "action finished");
    return "finished";
  }

  /** The host's live socket went away: its waiting requests fail with `host_lost`. */
  failHost(hostId: string, reason: string): void {
    this.failWhere(
      (p) => p.hostId === hostId,
      "host_lost",
      `Lost the connection to host '${hostId}' (${reason}) while the action was running; its outcome on the device is unknown. Check the device and retry.`,
    );
  }

  private outcomeOf(record: ActionRecord, result: ActionResult): ActionOutcome {
    // Timings come from the agent, which measured them next to the hardware.
    const base = {
      startedAt: isoOr(result.started_at, record.started_at ?? record.queued_at),
      finishedAt: isoOr(result.finished_at, nowIso()),
      durationMs: result.duration_ms,
    };
    if (result.status === "succeeded") {
      try {
        return { ...base, status: "succeeded", result: parseActionResult(record.action, result.result ?? {}), error: null };
      } catch (err) {
        const e = err instanceof LabrigError ? err : new LabrigError("internal_error", String(err));
        this.logger.warn({ action_id: record.id, host: record.host, err: e.message }, "agent returned a result that does not match the catalogue");
        return { ...base, status: "failed", result: null, error: e.toEnvelope() };
      }
    }
    const error =
      result.error ??
      (result.status === "canceled"
        ? makeEnvelope("canceled", "The action was canceled on the agent.")
        : makeEnvelope("internal_error", "The agent reported a failure without an error envelope; check the agent's log."));
    return { ...base, status: result.status, result: result.result, error };
  }

  private onDeadline(id: string, timeoutMs: number): void {
    const pending = this.pending.get(id);
    if (!pending) return;
    const socket = this.agents.get(pending.hostId);
    // The agent should have given up already; tell it again so a stuck action does not hold the device.
    if (socket) socket.emit("action.cancel", { id } satisfies ActionCancel);
    this.failOne(id, pending, "action_timeout", `No result from host '${pending.hostId}' within ${timeoutMs + HUB_DEADLINE_MARGIN_MS} ms (agent timeout ${timeoutMs} ms + hub margin). Check the agent's log; the device may need a power cycle.`);
  }

  private failWhere(match: (p: PendingAction) => boolean, code: ErrorCode, message: string): void {
    for (const [id, pending] of [...this.pending]) if (match(pending)) this.failOne(id, pending, code, message);
  }

  private failOne(id: string, pending: PendingAction, code: ErrorCode, message: string): void {
    const finishedAtMs = Date.now();
    const record = this.actions.get(id);
    const updated = this.actions.finish(id, {
      status: "failed",
      result: null,
      error: makeEnvelope(code, message),
      startedAt: record?.started_at ?? new Date(pending.startedAtMs).toISOString(),
      finishedAt: new Date(finishedAtMs).toISOString(),
      durationMs: finishedAtMs - pending.startedAtMs,
    });
    if (updated) this.logger.warn({ action_id: id, host: pending.hostId, error_code: code }, "action failed on the hub side");
    this.settle(id);
  }

  private settle(id: string): void {
    const pending = this.pending.get(id);
    if (!pending) return;
    clearTimeout(pending.timer);
    this.pending.delete(id);
    const record = this.actions.get(id);
    if (record) {
      pending.resolve(record);
      return;
    }
    this.logger.error({ action_id: id }, "action record vanished while its request was waiting");
    pending.reject(new LabrigError("internal_error", `The record of action ${id} disappeared from the database; check the hub's data directory.`));
  }
}
