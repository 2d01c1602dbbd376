import { LabrigError, type PlannedAction } from "@labrig/shared";
import type { Logger } from "../../logger.js";
import type { AgentArtifacts } from "../agent-artifacts.js";
import type { WorkFacade } from "../work/work.js";
import type { FrameGrabber, PlannedActionRunner, RanAction, RunOptions } from "./planner.js";

/**
 * The planner's way to the hardware: snapshots and planned actions go through the work facade like
 * any operator's action (exact target, same leases, health and queueing; the plan's signal cancels
 * them), and the snapshot's JPEG is read back from the agent's artifact store.
 */
export class PlannerFleetBridge implements FrameGrabber, PlannedActionRunner {
  constructor(
    private readonly work: WorkFacade,
    private readonly artifacts: AgentArtifacts,
    private readonly logger: Logger,
  ) {}

  async grab(host: string, device: string, resource: string | null, options: RunOptions & { maxEdge?: number }): Promise<Buffer> {
    const { done } = this.work.submit(
      {
        action: "capture.snapshot",
        resource,
        // The agent shrinks raw pixels before encoding: far cheaper than decoding and re-encoding on the hub.
        params: options.maxEdge === undefined ? {} : { max_edge: options.maxEdge },
        target: { host, device },
        leaseToken: options.leaseToken,
        requestedBy: options.requestedBy,
      },
      { signal: options.signal },
    );
    const record = await done;
    if (record.status !== "succeeded" || !record.result) {
      const code = record.error?.error_code ?? "hardware_error";
      throw new LabrigError(code, `The snapshot for the planner failed: ${record.error?.message ?? record.status}`);
    }
    const artifact = String(record.result.artifact);
    const { data } = await this.artifacts.fetchArtifact(host, artifact);
    // The hub keeps the (scaled) frame with the plan; the agent's copy is no longer needed.
    this.artifacts.deleteArtifact(host, artifact).catch((err: unknown) => this.logger.warn({ err, host, artifact }, "could not delete a snapshot on the agent"));
    return data;
  }

  run(host: string, device: string, action: PlannedAction, options: RunOptions): Promise<RanAction> {
    return this.work.submit(
      { action: action.action, resource: action.resource, params: action.params, target: { host, device }, leaseToken: options.leaseToken, requestedBy: options.requestedBy },
      { signal: options.signal },
    ).done;
  }
}
