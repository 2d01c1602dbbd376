import type { ActionRecord, ResourceDescription, RunEvent, RunEventName, Step, TargetSelector } from "@labrig/shared";

/** A device held exclusively for one test attempt. */
export interface DeviceLease {
  id: string;
  /** The lease's secret; actions on the device carry it. Kept in memory only. */
  token: string;
  host: string;
  device: string;
  resources: ResourceDescription[];
}

export interface AcquireOptions {
  owner: string;
  ttl_s: number;
  /** How long to wait on the hub for a matching free device before failing with `no_device_available`. */
  wait_ms: number;
  /** Devices not to hand out (a retry prefers a device the test has not failed on). */
  exclude: readonly { host: string; device: string }[];
  signal?: AbortSignal | undefined;
  requested_by: string | null;
}

export interface RunActionRequest {
  host: string;
  device: string;
  action: string;
  resource: string | null;
  params: Record<string, unknown>;
  lease_token: string;
  timeout_ms: number;
  /** Aborting cancels the action on the agent; the promise still resolves with the (canceled) record. */
  signal: AbortSignal;
  requested_by: string | null;
}

/**
 * What the campaign runner needs from the fleet: leases and actions. Implemented over the
 * work facade and the lease manager (fleet-adapter.ts), so the runner never routes anything itself.
 */
export interface CampaignFleet {
  acquire(selector: TargetSelector, options: AcquireOptions): Promise<DeviceLease>;
  keepalive(lease: DeviceLease, ttl_s: number): Promise<void>;
  /** Ends the lease (by id: at start-up the hub releases the leases of interrupted runs, whose tokens died with the old process). */
  release(leaseId: string, reason: string): Promise<void>;
  runAction(request: RunActionRequest): Promise<ActionRecord>;
}

export interface GoalIteration {
  [key: string]: unknown;
}

export interface GoalOutcome {
  status: "passed" | "failed" | "error";
  iterations: GoalIteration[];
  error?: { error_code: string; message: string } | undefined;
}

/** Runs an `ai.goal` step: the planner drives the device until the success condition holds (wired by the planner's owner). */
export interface GoalRunner {
  run(input: { run_id: string; test_id: string; step: Step; host: string; device: string; lease_token: string; signal: AbortSignal }): Promise<GoalOutcome>;
}

/** Where run progress goes (the /dashboard namespace). */
export interface RunEvents {
  publish(event: RunEventName, payload: RunEvent): void;
}

/** Fetches an artifact the agent stored (snapshot, clip) by its id. */
export interface AgentArtifactSource {
  fetch(host: string, artifactId: string, signal?: AbortSignal): Promise<{ data: Buffer; mime_type: string }>;
}

/** Console output as the hub receives it, for the per-step transcript. */
export interface ConsoleTap {
  /** Calls `listener` with every chunk from the device until the returned function is called. */
  tap(host: string, device: string, listener: (resource: string, text: string) => void): () => void;
}
