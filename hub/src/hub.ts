import { createServer, type Server as HttpServer } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { Server as SocketServer } from "socket.io";
import { createApp } from "./api/app.js";
import { answerClientErrors } from "./api/client-errors.js";
import type { Route } from "./api/route.js";
import { apiRoutes } from "./api/routes/index.js";
import { HubBus } from "./bus.js";
import { configSecrets, configSummary, type HubConfig } from "./config.js";
import { HubDatabase } from "./db/database.js";
import { applyKeepAlive, warnIfPlainHttp } from "./ops/http-server.js";
import { InstanceLock } from "./ops/instance-lock.js";
import { createLogger, type Logger } from "./logger.js";
import { AgentConnections } from "./realtime/agent-connections.js";
import { AgentNamespace } from "./realtime/agent-namespace.js";
import { DashboardNamespace } from "./realtime/dashboard-namespace.js";
import { DashboardStreams } from "./realtime/dashboard-streams.js";
import { ActionsRepository } from "./repositories/actions.js";
import { ApiKeysRepository } from "./repositories/api-keys.js";
import { DevicesRepository } from "./repositories/devices.js";
import { HostEventsRepository } from "./repositories/host-events.js";
import { HostsRepository } from "./repositories/hosts.js";
import { LeasesRepository } from "./repositories/leases.js";
import { PlansRepository } from "./repositories/plans.js";
import { RunsRepository } from "./repositories/runs.js";
import { RetentionRepository } from "./repositories/retention.js";
import { AgentArtifacts } from "./services/agent-artifacts.js";
import { AgentReports } from "./services/agent-reports.js";
import { ApiKeys } from "./services/api-keys.js";
import { AuthFailureLimiter } from "./services/auth-failure-limiter.js";
import { createCampaigns, type GoalRunner } from "./services/campaigns/index.js";
import { ConsoleBuffers } from "./services/console-buffers.js";
import { DeviceHealthService } from "./services/device-health.js";
import { LeaseBook } from "./services/lease-book.js";
import { LeaseManager } from "./services/leases.js";
import { OperatorAuth } from "./services/operator-auth.js";
import { wireOps } from "./services/ops-wiring.js";
import { PlannerFleetBridge } from "./services/planner/fleet-bridge.js";
import { acceptFramePushes } from "./services/planner/frame-pushes.js";
import { GeminiModel } from "./services/planner/gemini-model.js";
import { PlannerGoalRunner } from "./services/planner/goal-runner.js";
import { Planner } from "./services/planner/planner.js";
import { Presence } from "./services/presence.js";
import { RetentionPruner } from "./services/retention/pruner.js";
import { HostTokens } from "./services/tokens.js";
import { VideoRelay } from "./services/video-relay.js";
import { AgentChannel } from "./services/work/agent-channel.js";
import { FleetSource } from "./services/work/fleet-source.js";
import { LateResults } from "./services/work/late-results.js";
import { ActionLedger } from "./services/work/ledger.js";
import { Scheduler } from "./services/work/scheduler.js";
import { WorkService } from "./services/work/work.js";
import { HUB_VERSION } from "./version.js";

export interface HubAddress {
  url: string;
  port: number;
}

export interface Hub {
  /** Opens the database, migrates, starts the units and listens. Resolves once ready for agents and operators. */
  start(): Promise<HubAddress>;
  /** Drains and stops: refuses new work, lets running actions finish (bounded), stops the units in reverse, closes the database. */
  stop(): Promise<void>;
  /** Every REST route the running hub serves, as declared (empty when stopped). */
  routes(): readonly Route[];
  /** Live video fan-out from agents (null when stopped). */
  video(): VideoRelay | null;
}

export interface HubOptions {
  /** Defaults to a pino logger at config.logLevel on stdout. */
  logger?: Logger;
  /** Where a generated admin key is printed, once (default: stderr, so it stays out of the JSON log stream). */
  announce?: (text: string) => void;
  /** Runs `ai.goal` steps of test cases; without one (and no planner) they fail with planner_unavailable. */
  goals?: GoalRunner;
}

/**
 * One part of the hub with a lifecycle; units start in list order and stop in reverse. Before any
 * stops, each that can drain does (in reverse too): it stops taking new work and lets what runs finish.
 */
interface Unit {
  readonly name: string;
  start(): void | Promise<void>;
  drain?(): void | Promise<void>;
  stop(): void | Promise<void>;
}

/** How long stop() lets in-flight HTTP responses finish before cutting connections. */
const HTTP_DRAIN_MS = 3000;

interface Running {
  http: HttpServer;
  io: SocketServer;
  agents: AgentNamespace;
  units: Unit[];
  routes: readonly Route[];
  video: VideoRelay;
}

/**
 * Composition root. Nothing touches the disk or the network until start(): repositories prepare
 * statements against the open database, so the units are built there — each with its collaborators
 * through its constructor, all talking through the one bus or a small facade.
 */
export function createHub(config: HubConfig, options: HubOptions = {}): Hub {
  const logger = options.logger ?? createLogger(config.logLevel, 1, configSecrets(config));
  const database = new HubDatabase(config.dbPath, logger);
  const announce = options.announce ?? ((text: string) => void process.stderr.write(text));
  let running: Running | null = null;
  let starting: Promise<HubAddress> | null = null;
  let started: Unit[] = [];
  let instanceLock: InstanceLock | null = null;

  function build(startedAtMs: number): Running & { bootstrap: ReturnType<ApiKeys["bootstrap"]> } {
    const db = database.db;
    const log = (component: string): Logger => logger.child({ component });
    const bus = new HubBus(log("bus"));
    const hosts = new HostsRepository(db);
    const devices = new DevicesRepository(db);
    const actions = new ActionsRepository(db);
    const events = new HostEventsRepository(db);
    const plans = new PlansRepository(db);
    const tokens = new HostTokens(hosts, events);
    const apiKeys = new ApiKeys(new ApiKeysRepository(db), (keyId) => bus.emit("key.revoked", { keyId }));
    const bootstrap = apiKeys.bootstrap(config.security.adminKey ?? undefined);
    const auth = new OperatorAuth(apiKeys, config.security, log("operator-auth"));
    const limiter = new AuthFailureLimiter(config.security.authFailLimit);

    // The REST app is built last (its routes need every unit); socket.io takes its own paths before it.
    let app: ReturnType<typeof createApp> | null = null;
    const http = createServer((req, res) => {
      if (app) app(req, res);
      else res.writeHead(503, { "retry-after": "1" }).end();
    });
    // maxHttpBufferSize fits the largest console chunk the protocol allows. CORS only matters for browsers
    // (dashboards); agents are Node processes. Origins of WebSocket dashboards are checked by the namespace.
    const corsOrigins = config.security.corsOrigins;
    const io = new SocketServer(http, {
      serveClient: false,
      maxHttpBufferSize: 1_000_000,
      ...(corsOrigins.length > 0 ? { cors: { origin: [...corsOrigins], allowedHeaders: ["Authorization"] } } : {}),
    });
    const connections = new AgentConnections();
    const agents = new AgentNamespace({ io, tokens, connections, limiter, bus, logger: log("agent-namespace") });
    const presence = new Presence({
      hosts,
      devices,
      events,
      tokens,
      connections,
      agents,
      bus,
      options: { heartbeatIntervalMs: config.heartbeatIntervalMs, missedHeartbeats: config.missedHeartbeats, hubVersion: HUB_VERSION, limits: config.hostLimits },
      logger: log("presence"),
    });
    const health = new DeviceHealthService(devices, events, bus, config, log("device-health"));
    const consoles = new ConsoleBuffers({ resourceBytes: config.hostLimits.consoleResourceBytes, hostBytes: config.hostLimits.consoleHostBytes });
    const reports = new AgentReports(agents, devices, consoles, bus, log("agent-reports"));
    const video = new VideoRelay(connections, agents, bus, log("video-relay"));
    const agentArtifacts = new AgentArtifacts(connections, hosts, log("agent-artifacts"));

    const scheduler = new Scheduler();
    const leaseBook = new LeaseBook();
    const ledger = new ActionLedger(actions, new LeasesRepository(db), events);
    const work = new WorkService(scheduler, ledger, leaseBook, new FleetSource(hosts, devices, scheduler), new LateResults(ledger, bus, log("late-results")), bus, { ...config, drainMs: config.ops.drainMs }, log("work"));
    const channel = new AgentChannel(connections, agents, bus, work.channelPort, log("agent-channel"));
    work.attachChannel(channel);
    // Consoles, video and typing for dashboards (typing becomes serial.write actions through the work facade).
    const streams = new DashboardStreams({ hosts, devices, consoles, video, bus, submit: (sub) => work.submit(sub).done, logger: log("dashboard-streams") });
    const dashboard = new DashboardNamespace({ io, auth, limiter, bus, corsOrigins, streams, logger: log("dashboard-namespace") });
    const leases = new LeaseManager(new LeasesRepository(db), leaseBook, work, ledger, bus, log("leases"));

    // Gemini planning: off (planner_unavailable) without GEMINI_API_KEY; snapshots and actions go through the work facade.
    const plannerLog = log("planner");
    const p = config.planner;
    const model =
      p.apiKey === null
        ? null
        : new GeminiModel({ apiKey: p.apiKey, model: p.model, baseUrl: p.baseUrl ?? undefined, apiVersion: p.apiVersion, timeoutMs: p.timeoutMs, retries: p.retries, retryBaseMs: p.retryBaseMs, stream: p.stream }, plannerLog);
    const bridge = new PlannerFleetBridge(work, agentArtifacts, plannerLog);
    const planner = new Planner({
      model,
      plans,
      devices,
      consoles,
      frames: bridge,
      runner: bridge,
      // A plan event is a dashboard topic; the cast only bridges the generic index of the two event maps.
      publish: (event, payload) => bus.emit(event, payload as never),
      settings: { maxEdge: p.maxEdge, requestsPerDay: p.requestsPerDay, tokensPerDay: p.tokensPerDay, framesDir: join(config.dataDir, "plans"), partialIntervalMs: 100 },
      logger: plannerLog,
    });
    acceptFramePushes(agents, planner);
    const goals = options.goals ?? (planner.available ? new PlannerGoalRunner(planner, plannerLog) : null);
    const campaigns = createCampaigns({ db, config, work, leases, devices: scheduler, agentArtifacts, bus, goals, logger });
    const pruner = new RetentionPruner(new RetentionRepository(db), { runs: join(config.dataDir, "runs"), plans: join(config.dataDir, "plans") }, config.retention, log("retention"));

    // Metrics and system status read the units through narrow views, and count what the bus announces.
    const ops = wireOps({ config, version: HUB_VERSION, startedAtMs, database, work, hosts, devices, leases: leaseBook, runs: new RunsRepository(db), planner, agents: connections, dashboards: dashboard, video, bus, logger });
    const routes = apiRoutes({
      config,
      database,
      version: HUB_VERSION,
      startedAtMs,
      hosts,
      devices,
      actions,
      events,
      plans,
      work,
      leases,
      health,
      liveState: (host, device) => {
        const lease = leaseBook.forDevice(`${host}/${device}`);
        return { lease: lease ? { id: lease.id, owner: lease.owner, expires_at: new Date(lease.expiresAtMs).toISOString() } : null, load: work.loadOf(host, device) };
      },
      consoles,
      apiKeys,
      tokens,
      agentLinks: { disconnect: (hostId, reason) => agents.disconnectHost(hostId, reason) },
      agentArtifacts,
      campaigns,
      planner,
      metrics: ops.metrics,
      status: ops.status,
    });
    app = createApp({ logger, auth, limiter, bodyLimit: config.bodyLimit, corsOrigins, routes });

    applyKeepAlive(http, config.ops.keepAliveMs);
    answerClientErrors(http, log("http"));

    const units: Unit[] = [
      { name: "operator auth", start: () => auth.start(), stop: () => undefined },
      // Keys revoked by the CLI (another process) cut their dashboards too, within a poll.
      { name: "key revocations", start: () => apiKeys.watchExternalRevocations(log("api-keys")), stop: () => apiKeys.stopWatching() },
      // Before the agent namespace, so it stops after it: the last heartbeats of closing sockets are written too.
      { name: "presence", start: () => presence.start(), stop: () => presence.stop() },
      { name: "agent namespace", start: () => agents.start(), stop: () => agents.stop() },
      { name: "dashboard namespace", start: () => dashboard.start(), stop: () => dashboard.stop() },
      { name: "dashboard streams", start: () => streams.start(), stop: () => streams.stop() },
      { name: "device health", start: () => health.start(), stop: () => health.stop() },
      { name: "agent reports", start: () => reports.start(), stop: () => reports.stop() },
      { name: "video", start: () => video.start(), stop: () => video.stop() },
      { name: "agent channel", start: () => channel.start(), stop: () => channel.stop() },
      { name: "work", start: () => work.start(), drain: () => work.drain(), stop: () => work.stop() },
      { name: "leases", start: () => leases.start(), stop: () => leases.stop() },
      // Plans and runs stop before the work drains: they cancel their actions and release their leases while agents are still connected.
      { name: "planner", start: () => undefined, stop: () => planner.stop() },
      { name: "campaigns", start: () => campaigns.start(), stop: () => campaigns.stop() },
      { name: "retention", start: () => pruner.start(), stop: () => pruner.stop() },
      // Drained first: the status turns `unavailable` at once, so load balancers stop sending work.
      { name: "metrics and status", start: () => undefined, drain: () => ops.markDraining(), stop: () => ops.stop() },
      { name: "http", start: () => listen(http), stop: () => void http.close() },
    ];
    return { http, io, agents, units, routes, video, bootstrap };
  }

  async function listen(http: HttpServer): Promise<void> {
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
  }

  async function start(): Promise<HubAddress> {
    logger.info({ config: configSummary(config), version: HUB_VERSION }, "labrig hub starting");
    const startedAtMs = Date.now();
    // One hub per data directory: the lock also tells `labrig-hub restore` that a hub runs here.
    instanceLock = InstanceLock.acquire(config.dataDir, "labrig-hub serve");
    database.start();
    // Retention: the quiet moment before anything runs converts an old database to incremental vacuum, once.
    database.ensureIncrementalVacuum();
    const built = build(startedAtMs);
    if (built.bootstrap.envKeyId !== null) logger.info({ key_id: built.bootstrap.envKeyId, key_name: "env-admin" }, "admin API key set from LABRIG_ADMIN_KEY");
    running = built;
    for (const unit of built.units) {
      await unit.start();
      started.push(unit);
    }
    const port = (built.http.address() as AddressInfo).port;
    const host = config.bind === "0.0.0.0" || config.bind === "::" ? "127.0.0.1" : config.bind;
    const url = `http://${host.includes(":") ? `[${host}]` : host}:${port}`;
    logger.info({ url, port, bind: config.bind }, "listening");
    warnIfPlainHttp(config, logger);
    if (built.bootstrap.generated) announceGeneratedKey(built.bootstrap.generated, url);
    return { url, port };
  }

  function announceGeneratedKey(generated: { id: string; name: string; key: string }, url: string): void {
    const key = generated.key;
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
      { key_id: generated.id, key_name: generated.name },
      "created an admin API key and printed it once on stderr (the 'LABRIG ADMIN KEY' banner); only its hash is stored, so it cannot be shown again",
    );
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
    if (r) {
      logger.info("labrig hub stopping");
      // From here on no agent may connect, and disconnects are the hub's own: nothing is re-queued.
      r.agents.beginShutdown();
    }
    const units = started.splice(0).reverse();
    // Draining first: no new work (503 shutting_down), queued work fails recoverably, running actions may finish.
    for (const unit of units) {
      try {
        await unit.drain?.();
      } catch (err) {
        logger.error({ err, unit: unit.name }, "draining a unit failed; stopping it anyway");
      }
    }
    for (const unit of units) {
      try {
        await unit.stop();
      } catch (err) {
        logger.error({ err, unit: unit.name }, "stopping a unit failed; continuing with the rest");
      }
    }
    if (r) {
      // io.close() disconnects what is left and waits for the HTTP server to close.
      const closed = r.io.close();
      const drain = setInterval(() => r.http.closeIdleConnections(), 50);
      const cut = setTimeout(() => r.http.closeAllConnections(), HTTP_DRAIN_MS);
      try {
        await closed;
      } finally {
        clearInterval(drain);
        clearTimeout(cut);
      }
    }
    database.stop();
    instanceLock?.release();
    instanceLock = null;
    if (r) logger.info("labrig hub stopped");
  }

  return {
    start: () => {
      if (running || starting) return Promise.reject(new Error("The hub is already started; stop() it first."));
      started = [];
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
    video: () => running?.video ?? null,
  };
}
