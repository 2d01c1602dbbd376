import type { HubConfig } from "../../config.js";
import type { SqliteDb } from "../../db/database.js";
import type { Logger } from "../../logger.js";
import { CampaignsRepository } from "../../repositories/campaigns.js";
import { RunsRepository } from "../../repositories/runs.js";
import { TestCasesRepository } from "../../repositories/testcases.js";
import type { AgentArtifacts } from "../agent-artifacts.js";
import type { HubBus } from "../../bus.js";
import type { LeaseManager } from "../leases.js";
import type { Scheduler } from "../work/scheduler.js";
import type { WorkFacade } from "../work/work.js";
import { RunArtifactStore } from "./artifact-store.js";
import { CampaignService } from "./campaign-service.js";
import { WorkFleet } from "./fleet-adapter.js";
import type { GoalRunner } from "./ports.js";
import { CampaignRunner } from "./runner.js";
import { CampaignScheduler } from "./scheduler.js";

export { CampaignService } from "./campaign-service.js";
export type { GoalRunner, GoalOutcome, CampaignFleet, RunEvents } from "./ports.js";

const HOUR_MS = 3_600_000;

export interface CampaignWiring {
  db: SqliteDb;
  config: HubConfig;
  work: WorkFacade;
  leases: LeaseManager;
  devices: Pick<Scheduler, "slot">;
  agentArtifacts: AgentArtifacts | null;
  bus: HubBus;
  /** The `ai.goal` loop; null until the planner is wired (those steps then fail with planner_unavailable). */
  goals: GoalRunner | null;
  logger: Logger;
}

/** Builds the campaign feature (repositories, artifact store, runner, scheduler) over the work facade and leases. */
export function createCampaigns(w: CampaignWiring): CampaignService {
  const runs = new RunsRepository(w.db);
  const campaigns = new CampaignsRepository(w.db);
  const log = w.logger.child({ component: "campaigns" });
  const artifacts = new RunArtifactStore(
    w.config.dataDir,
    runs,
    { maxAgeMs: w.config.runs.artifactMaxAgeDays * 24 * HOUR_MS, maxBytes: w.config.runs.artifactMaxBytes, sweepIntervalMs: HOUR_MS },
    log.child({ part: "artifacts" }),
  );
  const runner = new CampaignRunner({
    runs,
    fleet: new WorkFleet(w.work, w.leases, w.devices),
    artifacts,
    goals: w.goals,
    events: { publish: (event, payload) => w.bus.emit(event, payload) },
    consoles: {
      tap: (host, device, listener) =>
        w.bus.on("console.output", (chunk) => {
          if (chunk.host === host && chunk.device === device) listener(chunk.resource, chunk.text);
        }),
    },
    agentArtifacts: w.agentArtifacts
      ? {
          fetch: async (host, id) => {
            const a = await (w.agentArtifacts as AgentArtifacts).fetchArtifact(host, id);
            return { data: a.data, mime_type: a.mime_type };
          },
        }
      : null,
    logger: log.child({ part: "runner" }),
    options: {
      leaseTtlS: w.config.runs.leaseTtlS,
      deviceWaitMs: w.config.runs.deviceWaitMs,
      retryOtherDeviceWaitMs: 1000,
      actionTimeoutMs: w.config.actionTimeoutMs,
      consoleCaptureBytes: 256 * 1024,
      stopGraceMs: 3000,
    },
  });
  const minIntervalS = w.config.runs.scheduleMinIntervalS;
  const service = new CampaignService({ testcases: new TestCasesRepository(w.db), campaigns, runs, runner, artifacts, scheduleMinIntervalS: minIntervalS, logger: log });
  service.attachScheduler(new CampaignScheduler(campaigns, (id, at) => service.fireScheduled(id, at), log.child({ part: "scheduler" }), minIntervalS));
  return service;
}
