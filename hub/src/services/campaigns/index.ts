import type { HubConfig } from "../../config.js";
import type { SqliteDb } from "../../db/database.js";
import type { Logger } from "../../logger.js";
import type { ActionsRepository } from "../../repositories/actions.js";
import { CampaignsRepository } from "../../repositories/campaigns.js";
import { RunsRepository } from "../../repositories/runs.js";
import { TestCasesRepository } from "../../repositories/testcases.js";
import type { AgentArtifacts } from "../agent-artifacts.js";
import type { ConsoleBuffers } from "../console-buffers.js";
import type { Dispatcher } from "../dispatcher.js";
import type { Fleet } from "../fleet.js";
import type { HubEvents } from "../hub-events.js";
import type { LeaseBook } from "../lease-book.js";
import type { LeaseManager } from "../leases.js";
import { RunArtifactStore } from "./artifact-store.js";
import { CampaignService } from "./campaign-service.js";
import { DispatcherFleet } from "./fleet-adapter.js";
import type { GoalRunner } from "./ports.js";
import { CampaignRunner } from "./runner.js";
import { CampaignScheduler } from "./scheduler.js";

export { CampaignService } from "./campaign-service.js";
export type { GoalRunner, GoalOutcome, CampaignFleet, RunEvents } from "./ports.js";

const HOUR_MS = 3_600_000;

export interface CampaignWiring {
  db: SqliteDb;
  config: HubConfig;
  dispatcher: Dispatcher;
  leases: LeaseManager;
  leaseBook: LeaseBook;
  fleet: Fleet;
  actions: ActionsRepository;
  consoles: ConsoleBuffers;
  agentArtifacts: AgentArtifacts | null;
  bus: HubEvents;
  /** The `ai.goal` loop; null until the planner is wired (those steps then fail with planner_unavailable). */
  goals: GoalRunner | null;
  logger: Logger;
}

/** Builds the campaign feature (repositories, artifact store, runner, scheduler) over the hub's services. */
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
  const consoles = w.consoles;
  const runner = new CampaignRunner({
    runs,
    fleet: new DispatcherFleet(w.dispatcher, w.leases, w.leaseBook, w.fleet, w.actions, log.child({ part: "fleet" })),
    artifacts,
    goals: w.goals,
    events: { publish: (event, payload) => w.bus.emit(event, payload) },
    consoles: {
      tap: (host, device, listener) =>
        consoles.onAppend((h, d, resource, text) => {
          if (h === host && d === device) listener(resource, text);
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
