import express, { type Express } from "express";
import type { HubConfig } from "../config.js";
import type { HubDatabase } from "../db/database.js";
import type { Logger } from "../logger.js";
import type { ActionsRepository } from "../repositories/actions.js";
import type { DevicesRepository } from "../repositories/devices.js";
import type { HostEventsRepository } from "../repositories/host-events.js";
import type { HostsRepository } from "../repositories/hosts.js";
import type { ActionProxy } from "../services/action-proxy.js";
import type { ConsoleBuffers } from "../services/console-buffers.js";
import { errorHandler, notFound, requireJsonBody } from "./errors.js";
import { requestContext } from "./request-id.js";
import { actionsRouter } from "./routes/actions.js";
import { healthRouter } from "./routes/health.js";
import { hostsRouter } from "./routes/hosts.js";
import { systemRouter } from "./routes/system.js";

export interface AppDeps {
  config: HubConfig;
  logger: Logger;
  database: HubDatabase;
  hosts: HostsRepository;
  devices: DevicesRepository;
  actions: ActionsRepository;
  events: HostEventsRepository;
  proxy: ActionProxy;
  consoles: ConsoleBuffers;
  version: string;
  startedAtMs: number;
}

/** The REST API as an express app; the caller owns the HTTP server. */
export function createApp(deps: AppDeps): Express {
  const app = express();
  app.disable("x-powered-by");
  // nginx in front terminates TLS; trust one proxy hop so req.ip is the operator, not nginx.
  app.set("trust proxy", "loopback");
  app.use(requestContext(deps.logger));
  app.use(requireJsonBody);
  app.use(express.json({ limit: deps.config.bodyLimit, type: ["application/json", "application/*+json"] }));

  const api = express.Router();
  api.use(healthRouter(deps));
  api.use(systemRouter(deps));
  api.use(hostsRouter(deps));
  api.use(actionsRouter(deps));
  app.use("/api", api);

  app.use(notFound);
  app.use(errorHandler);
  return app;
}
