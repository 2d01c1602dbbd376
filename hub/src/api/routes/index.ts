import type { HubConfig } from "../../config.js";
import type { HubDatabase } from "../../db/database.js";
import type { ActionsRepository } from "../../repositories/actions.js";
import type { DevicesRepository } from "../../repositories/devices.js";
import type { HostEventsRepository } from "../../repositories/host-events.js";
import type { HostsRepository } from "../../repositories/hosts.js";
import type { PlansRepository } from "../../repositories/plans.js";
import type { AgentArtifacts } from "../../services/agent-artifacts.js";
import type { ApiKeys } from "../../services/api-keys.js";
import type { CampaignService } from "../../services/campaigns/campaign-service.js";
import type { ConsoleBuffers } from "../../services/console-buffers.js";
import type { DeviceHealthService } from "../../services/device-health.js";
import type { LeaseManager } from "../../services/leases.js";
import type { HubMetrics } from "../../services/metrics.js";
import type { Planner } from "../../services/planner/planner.js";
import type { StatusFacts } from "../../services/system-status.js";
import type { HostTokens } from "../../services/tokens.js";
import type { WorkFacade } from "../../services/work/work.js";
import { openApiDocument } from "../openapi.js";
import type { Route } from "../route.js";
import type { LiveStateOf } from "../views.js";
import { actionRoutes } from "./actions.js";
import { artifactRoutes } from "./artifacts.js";
import { campaignRoutes } from "./campaigns.js";
import { docsRoutes } from "./docs.js";
import { hostAdminRoutes, type AgentLinks } from "./host-admin.js";
import { hostRoutes } from "./hosts.js";
import { keyRoutes } from "./keys.js";
import { leaseRoutes } from "./leases.js";
import { opsRoutes } from "./metrics.js";
import { webRoutes } from "../web.js";
import { planRoutes } from "./plans.js";
import { sessionRoutes } from "./session.js";
import { systemRoutes } from "./system.js";

/** What the routes use: repositories to read, and the units' facades to act. */
export interface RouteDeps {
  config: HubConfig;
  database: HubDatabase;
  version: string;
  startedAtMs: number;
  hosts: HostsRepository;
  devices: DevicesRepository;
  actions: ActionsRepository;
  events: HostEventsRepository;
  plans: PlansRepository;
  work: WorkFacade;
  leases: LeaseManager;
  health: DeviceHealthService;
  liveState: LiveStateOf;
  consoles: ConsoleBuffers;
  apiKeys: ApiKeys;
  tokens: HostTokens;
  agentLinks: AgentLinks;
  agentArtifacts: AgentArtifacts;
  campaigns: CampaignService;
  planner: Planner;
  metrics: HubMetrics;
  status: StatusFacts;
}

/** Every REST route the hub serves, each declared once; /docs documents exactly these. */
export function apiRoutes(deps: RouteDeps): Route[] {
  // Express tries routes in this order: the actions, the hot path, come first.
  const routes: Route[] = [
    ...actionRoutes(deps),
    ...webRoutes(),
    ...systemRoutes(deps),
    ...sessionRoutes(),
    ...opsRoutes({ metrics: deps.metrics, status: deps.status, ops: deps.config.ops }),
    ...keyRoutes(deps),
    ...hostAdminRoutes(deps),
    ...hostRoutes(deps),
    ...artifactRoutes(deps),
    ...leaseRoutes(deps),
    ...campaignRoutes(deps),
    ...planRoutes({ planner: deps.planner, plans: deps.plans, dataDir: deps.config.dataDir }),
  ];
  let doc: Record<string, unknown> | null = null;
  const all: Route[] = [...routes, ...docsRoutes((): Record<string, unknown> => (doc ??= openApiDocument(deps.version, all)))];
  return all;
}
