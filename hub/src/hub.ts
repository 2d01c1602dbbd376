import { createServer, type Server as HttpServer } from "node:http";
import type { AddressInfo } from "node:net";
import { Server as SocketServer } from "socket.io";
import { createApp } from "./api/app.js";
import { servedRoutes, type ServedRoute } from "./api/route-inventory.js";
import { configSummary, type HubConfig } from "./config.js";
import { HubDatabase } from "./db/database.js";
import { createLogger, type Logger } from "./logger.js";
import { AgentConnections } from "./realtime/agent-connections.js";
import { AgentNamespace } from "./realtime/agent-namespace.js";
import { AgentArtifacts } from "./services/agent-artifacts.js";
import { VideoRelay } from "./services/video-relay.js";
import { DashboardNamespace } from "./realtime/dashboard-namespace.js";
import { DashboardStreams } from "./realtime/dashboard-streams.js";
import { ActionsRepository } from "./repositories/actions.js";
import { ApiKeysRepository } from "./repositories/api-keys.js";
import { DevicesRepository } from "./repositories/devices.js";
import { HostEventsRepository } from "./repositories/host-events.js";
import { HostsRepository } from "./repositories/hosts.js";
import { LeasesRepository } from "./repositories/leases.js";
import { ApiKeys } from "./services/api-keys.js";
import { AuthFailureLimiter } from "./services/auth-failure-limiter.js";
import { HubEvents } from "./services/hub-events.js";
import { OperatorAuth } from "./services/operator-auth.js";
import { ConsoleBuffers } from "./services/console-buffers.js";
import { DeviceHealthService } from "./services/device-health.js";
import { Dispatcher } from "./services/dispatcher.js";
import { Fleet, deviceKey } from "./services/fleet.js";
import { LeaseBook } from "./services/lease-book.js";
import { LeaseManager } from "./services/leases.js";
import { PresenceRegistry } from "./services/registry.js";
import { HostTokens } from "./services/tokens.js";
import { HUB_VERSION } from "./version.js";
import { createCampaigns, type CampaignService, type GoalRunner } from "./services/campaigns/index.js";
import { PlansRepository } from "./repositories/plans.js";
import { PlannerFleetBridge } from "./services/planner/fleet-bridge.js";
import { GeminiModel } from "./services/planner/gemini-model.js";
import { PlannerGoalRunner } from "./services/planner/goal-runner.js";
import { Planner } from "./services/planner/planner.js";
import { nowIso } from "@labrig/shared";
import { join } from "node:path";

export interface HubAddress {
  url: string;
  port: number;
}

export interface Hub {
  /** Opens the database, migrates, starts the services and listens. Resolves once ready for agents and operators. */
  start(): Promise<HubAddress>;
  /** Stops in reverse order: refuses new work, fails waiting actions with `shutting_down`, closes sockets, HTTP and the database. */
  stop(): Promise<void>;
  /** Every method+path the running REST app serves (empty when stopped); the route-table test checks them. */
  routes(): ServedRoute[];
  /** Live video fan-out from agents (null when stopped). */
  video(): VideoRelay | null;
}

export interface HubOptions {
  /** Defaults to a pino logger at config.logLevel on stdout. */
  logger?: Logger;
  /** Where a generated admin key is printed, once (default: stderr, so it stays out of the JSON log stream). */
  announce?: (text: string) => void;
  /** Runs `ai.goal` steps of test cases; without one they fail with planner_unavailable. */
  goals?: GoalRunner;
}

/** How long stop() lets in-flight HTTP responses finish before cutting connections. */
const HTTP_DRAIN_MS = 3000;

/**
 * Composition root. Nothing touches the disk or the network until start(); the service
 * graph is built there because repositories prepare statements against the open database.
 */
export function createHub(config: HubConfig, options: HubOptions = {}): Hub {
  const logger = options.logger ?? createLogger(config.logLevel);
  const database = new HubDatabase(config.dbPath, logger);
  const announce = options.announce ?? ((text: string) => void process.stderr.write(text));
  let running: { http: HttpServer; io: SocketServer; agents: AgentNamespace; dashboard: DashboardNamespace; streams: DashboardStreams; dispatcher: Dispatcher; leases: LeaseManager; registry: PresenceRegistry; routes: ServedRoute[]; campaigns: CampaignService; planner: Planner } | null = null;
  let starting: Promise<HubAddress> | null = null;
  let videoRelay: VideoRelay | null = null;

  async function start(): Promise<HubAddress> {
    logger.info({ config: configSummary(config), version: HUB_VERSION }, "labrig hub starting");
    const startedAtMs = Date.now();
    database.start();
    const db = database.db;
    const hosts = new HostsRepository(db);
    const devices = new DevicesRepository(db);
    const actions = new ActionsRepository(db);
    const events = new HostEventsRepository(db);
    const tokens = new HostTokens(hosts, events);
    const connections = new AgentConnections();
    const agentArtifacts = new AgentArtifacts(connections, hosts, logger.child({ component: "agent-artifacts" }));
    const video = new VideoRelay(connections, logger.child({ component: "video-relay" }));
    videoRelay = video;
    const consoles = new ConsoleBuffers();
    const registry = new PresenceRegistry(hosts, events, config, logger.child({ component: "presence" }));
    const fleet = new Fleet(devices);
    fleet.loadAll();
    const bus = new HubEvents(logger.child({ component: "hub-events" }));
    const health = new DeviceHealthService(fleet, devices, events, config, logger.child({ component: "device-health" }), bus);
    const leaseBook = new LeaseBook();
    const dispatcher = new Dispatcher(fleet, hosts, actions, connections, health, leaseBook, config, logger.child({ component: "dispatcher" }), bus);
    const leases = new LeaseManager(new LeasesRepository(db), leaseBook, dispatcher, events, logger.child({ component: "leases" }), bus);
    registry.onChange((host, state) => dispatcher.hostPresence(host, state === "online"));
    health.onChange(() => dispatcher.kick());
    const liveState = (host: string, device: string) => {
      const lease = leaseBook.forDevice(deviceKey(host, device));
      return { lease: lease ? { id: lease.id, owner: lease.owner, expires_at: new Date(lease.expiresAtMs).toISOString() } : null, load: dispatcher.loadOf(host, device) };
    };
    const apiKeys = new ApiKeys(new ApiKeysRepository(db));
    const bootstrap = apiKeys.bootstrap(config.security.adminKey ?? undefined);
    if (bootstrap.envKeyId !== null) logger.info({ key_id: bootstrap.envKeyId, key_name: "env-admin" }, "admin API key set from LABRIG_ADMIN_KEY");
    const auth = new OperatorAuth(apiKeys, config.security, logger.child({ component: "operator-auth" }));
    await auth.start();
    const limiter = new AuthFailureLimiter(config.security.authFailLimit);
    registry.onChange((host, state) => bus.emit("host.state", { host, state, at: nowIso() }));
    dispatcher.onFinished((record) => {
      // The dashboard topic carries ActionRecordSchema, whose host/device are required: actions that never reached a device are not announced.
      if (record.host !== null && record.device !== null) bus.emit("action.finished", { ...record, host: record.host, device: record.device });
    });
    // Gemini planning: off (planner_unavailable) without GEMINI_API_KEY; snapshots and actions go through the dispatcher.
    const plans = new PlansRepository(db);
    const plannerLog = logger.child({ component: "planner" });
    const p = config.planner;
    const model =
      p.apiKey === null
        ? null
        : new GeminiModel(
            { apiKey: p.apiKey, model: p.model, baseUrl: p.baseUrl ?? undefined, apiVersion: p.apiVersion, timeoutMs: p.timeoutMs, retries: p.retries, retryBaseMs: p.retryBaseMs, stream: p.stream },
            plannerLog,
          );
    const bridge = new PlannerFleetBridge(dispatcher, agentArtifacts, plannerLog);
    const planner = new Planner({
      model,
      plans,
      devices,
      consoles,
      frames: bridge,
      runner: bridge,
      publish: (event, payload) => bus.emit(event, payload),
      settings: { maxEdge: p.maxEdge, requestsPerDay: p.requestsPerDay, tokensPerDay: p.tokensPerDay, framesDir: join(config.dataDir, "plans"), partialIntervalMs: 100 },
      logger: plannerLog,
    });
    const goals = options.goals ?? (planner.available ? new PlannerGoalRunner(planner, plannerLog) : null);
    // Test cases, campaigns and runs: runner, cron scheduler and artifact retention over the dispatcher and leases.
    const campaigns = createCampaigns({ db, config, dispatcher, leases, leaseBook, fleet, actions, consoles, agentArtifacts, bus, goals, logger });
    // The app exists before the /agent namespace; it reaches it through this link once started.
    const agentLinks = { disconnect: (hostId: string, reason: string): boolean => running?.agents.disconnectHost(hostId, reason) ?? false };
    const app = createApp({
      config,
      logger,
      database,
      hosts,
      devices,
      actions,
      events,
      dispatcher,
      leases,
      health,
      liveState,
      consoles,
      version: HUB_VERSION,
      startedAtMs,
      apiKeys,
      auth,
      limiter,
      tokens,
      agentLinks,
      agentArtifacts,
      campaigns,
      planner,
      plans,
    });
    const http = createServer(app);
    // maxHttpBufferSize fits the largest console chunk the protocol allows. CORS only matters for browsers
    // (dashboards); agents are Node processes. Origins of WebSocket dashboards are checked by the namespace.
    const corsOrigins = config.security.corsOrigins;
    const io = new SocketServer(http, {
      serveClient: false,
      maxHttpBufferSize: 1_000_000,
      ...(corsOrigins.length > 0 ? { cors: { origin: [...corsOrigins], allowedHeaders: ["Authorization"] } } : {}),
    });
    const agents = new AgentNamespace({
      io,
      tokens,
      hosts,
      devices,
      events,
      registry,
      dispatcher,
      connections,
      consoles,
      hubVersion: HUB_VERSION,
      heartbeatIntervalMs: config.heartbeatIntervalMs,
      logger: logger.child({ component: "agent-namespace" }),
      video,
      bus,
      ...(planner.available ? { frames: planner } : {}),
    });

    const streams = new DashboardStreams({ hosts, devices, consoles, video, submit: (sub) => dispatcher.submitAction(sub), logger: logger.child({ component: "dashboard-streams" }) });
    const dashboard = new DashboardNamespace({ io, auth, limiter, bus, corsOrigins, streams, logger: logger.child({ component: "dashboard-namespace" }) });
    apiKeys.onRevoke((keyId) => dashboard.disconnectPrincipal(keyId, "API key revoked"));

    registry.start();
    dispatcher.start();
    leases.start();
    agents.start();
    streams.start();
    dashboard.start();
    running = { http, io, agents, dashboard, streams, dispatcher, leases, registry, routes: servedRoutes(app), campaigns, planner };
    await campaigns.start();

    await new Promise<void>((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException): void => {
        http.off("listening", onListening);
        const hint = err.code === "EADDRINUSE" ? ` Port ${config.port} is in use: stop the other process or set PORT.` : "";
        reject(new Error(`Cannot listen on ${config.bind}:${config.port}: ${err.message}.${hint}`, { cause: err }));
      };
      const onListening = (): void => {
        http.off("error", onError);
        resolve();
      };
      http.once("error", onError);
      http.once("listening", onListening);
      http.listen(config.port, config.bind);
    });
    http.on("error", (err) => logger.error({ err }, "http server error"));

    const port = (http.address() as AddressInfo).port;
    const host = config.bind === "0.0.0.0" || config.bind === "::" ? "127.0.0.1" : config.bind;
    const url = `http://${host.includes(":") ? `[${host}]` : host}:${port}`;
    logger.info({ url, port, bind: config.bind }, "listening");
    if (bootstrap.generated) {
      const key = bootstrap.generated.key;
      announce(
        [
          "",
          "=".repeat(78),
          "  labrig: no admin API key existed, so the hub created one.",
          `  LABRIG ADMIN KEY (shown only this once; store it now): ${key}`,
          `  Try: curl -H "Authorization: Bearer ${key}" ${url}/api/hosts`,
          "  More keys: labrig-hub key add NAME --role viewer|operator|admin",
          "=".repeat(78),
          "",
          "",
        ].join("\n"),
      );
      logger.warn(
        { key_id: bootstrap.generated.id, key_name: bootstrap.generated.name },
        "created an admin API key and printed it once on stderr (the 'LABRIG ADMIN KEY' banner); only its hash is stored, so it cannot be shown again",
      );
    }
    return { url, port };
  }

  async function stop(): Promise<void> {
    if (starting) {
      // Wait for an in-progress start so its resources are released below; a start failure is
      // reported to start()'s caller, so it is not rethrown here.
      await starting.catch(() => undefined);
      starting = null;
    }
    const r = running;
    running = null;
    videoRelay = null;
    if (r) {
      logger.info("labrig hub stopping");
      // Runs first: they cancel their actions and release their leases while dispatcher and agents are still up.
      await r.campaigns.stop();
      // Then plans under way: canceled, each stored with its outcome before the database closes.
      await r.planner.stop();
      r.agents.beginShutdown();
      // io.close() stops listening and disconnects agents; then waits for HTTP connections to end.
      const closed = r.io.close();
      r.leases.stop();
      r.dispatcher.stop();
      const drain = setInterval(() => r.http.closeIdleConnections(), 50);
      const cut = setTimeout(() => r.http.closeAllConnections(), HTTP_DRAIN_MS);
      try {
        await closed;
      } finally {
        clearInterval(drain);
        clearTimeout(cut);
      }
      r.agents.stop();
      r.dashboard.stop();
      r.streams.stop();
      r.registry.stop();
    }
    database.stop();
    if (r) logger.info("labrig hub stopped");
  }

  return {
    start: () => {
      if (running || starting) return Promise.reject(new Error("The hub is already started; stop() it first."));
      starting = start();
      return starting.then(
        (address) => {
          starting = null;
          return address;
        },
        async (err: unknown) => {
          starting = null;
          await stop();
          throw err;
        },
      );
    },
    stop,
    routes: () => running?.routes ?? [],
    video: () => videoRelay,
  };
}
