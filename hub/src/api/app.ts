import express, { type Express } from "express";
import type { HubConfig } from "../config.js";
import type { HubDatabase } from "../db/database.js";
import type { Logger } from "../logger.js";
import type { ActionsRepository } from "../repositories/actions.js";
import type { DevicesRepository } from "../repositories/devices.js";
import type { HostEventsRepository } from "../repositories/host-events.js";
import type { HostsRepository } from "../repositories/hosts.js";
import type { ApiKeys } from "../services/api-keys.js";
import type { AgentArtifacts } from "../services/agent-artifacts.js";
import type { CampaignService } from "../services/campaigns/campaign-service.js";
import type { AuthFailureLimiter } from "../services/auth-failure-limiter.js";
import type { ConsoleBuffers } from "../services/console-buffers.js";
import type { DeviceHealthService } from "../services/device-health.js";
import type { Dispatcher } from "../services/dispatcher.js";
import type { LeaseManager } from "../services/leases.js";
import type { OperatorAuth } from "../services/operator-auth.js";
import type { HostTokens } from "../services/tokens.js";
import { guard } from "./auth.js";
import { errorHandler, notFound, requireJsonBody } from "./errors.js";
import { requestContext } from "./request-id.js";
import { assertRoutesDeclared } from "./route-inventory.js";
import { actionsRouter } from "./routes/actions.js";
import { artifactsRouter } from "./routes/artifacts.js";
import { docsRouter } from "./routes/docs.js";
import { healthRouter } from "./routes/health.js";
import { hostAdminRouter, type AgentLinks } from "./routes/host-admin.js";
import { hostsRouter } from "./routes/hosts.js";
import { keysRouter } from "./routes/keys.js";
import { leasesRouter } from "./routes/leases.js";
import { campaignsRouter } from "./routes/campaigns.js";
import { plansRouter } from "./routes/plans.js";
import type { Planner } from "../services/planner/planner.js";
import type { PlansRepository } from "../repositories/plans.js";
import { systemRouter } from "./routes/system.js";
import { sessionRouter } from "./routes/session.js";
import { webRouter } from "./web.js";
import { corsPolicy, securityHeaders } from "./security.js";
import type { LiveStateOf } from "./views.js";

export interface AppDeps {
  config: HubConfig;
  logger: Logger;
  database: HubDatabase;
  hosts: HostsRepository;
  devices: DevicesRepository;
  actions: ActionsRepository;
  events: HostEventsRepository;
  dispatcher: Dispatcher;
  leases: LeaseManager;
  health: DeviceHealthService;
  liveState: LiveStateOf;
  consoles: ConsoleBuffers;
  version: string;
  startedAtMs: number;
  apiKeys: ApiKeys;
  auth: OperatorAuth;
  limiter: AuthFailureLimiter;
  tokens: HostTokens;
  agentLinks: AgentLinks;
  agentArtifacts: AgentArtifacts;
  campaigns: CampaignService;
  planner: Planner;
  plans: PlansRepository;
}

/**
 * The REST API as an express app; the caller owns the HTTP server. Every route needs an entry in
 * route-policy.ts (authorization and docs); createApp throws when one is missing.
 */
export function createApp(deps: AppDeps): Express {
  const app = express();
  app.disable("x-powered-by");
  // nginx in front terminates TLS; trust one proxy hop so req.ip is the operator, not nginx.
  app.set("trust proxy", "loopback");
  app.use(requestContext(deps.logger));
  app.use(securityHeaders());
  app.use(corsPolicy(deps.config.security.corsOrigins));
  // Authenticate and authorize before reading bodies: anonymous callers cannot make the hub parse 256 kB.
  app.use(guard(deps));
  app.use(requireJsonBody);
  app.use(express.json({ limit: deps.config.bodyLimit, type: ["application/json", "application/*+json"] }));

  app.use(docsRouter(deps));
  app.use(webRouter()); // dashboard hook: the SPA at / and /assets/:file
  const api = express.Router();
  api.use(healthRouter(deps));
  api.use(keysRouter(deps));
  api.use(hostAdminRouter(deps));
  api.use(systemRouter(deps));
  api.use(sessionRouter()); // dashboard hook: GET /api/session
  api.use(hostsRouter(deps));
  api.use(artifactsRouter(deps));
  api.use(actionsRouter(deps));
  api.use(leasesRouter(deps));
  api.use(campaignsRouter(deps));
  api.use(plansRouter({ planner: deps.planner, plans: deps.plans, dataDir: deps.config.dataDir }));
  app.use("/api", api);

  app.use(notFound);
  app.use(errorHandler);
  assertRoutesDeclared(app);
  return app;
}
