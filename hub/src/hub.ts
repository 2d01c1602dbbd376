import { createServer, type Server as HttpServer } from "node:http";
import type { AddressInfo } from "node:net";
import { Server as SocketServer } from "socket.io";
import { createApp } from "./api/app.js";
import { configSummary, type HubConfig } from "./config.js";
import { HubDatabase } from "./db/database.js";
import { createLogger, type Logger } from "./logger.js";
import { AgentConnections } from "./realtime/agent-connections.js";
import { AgentNamespace } from "./realtime/agent-namespace.js";
import { ActionsRepository } from "./repositories/actions.js";
import { DevicesRepository } from "./repositories/devices.js";
import { HostEventsRepository } from "./repositories/host-events.js";
import { HostsRepository } from "./repositories/hosts.js";
import { ActionProxy } from "./services/action-proxy.js";
import { ConsoleBuffers } from "./services/console-buffers.js";
import { PresenceRegistry } from "./services/registry.js";
import { HostTokens } from "./services/tokens.js";
import { HUB_VERSION } from "./version.js";

export interface HubAddress {
  url: string;
  port: number;
}

export interface Hub {
  /** Opens the database, migrates, starts the services and listens. Resolves once ready for agents and operators. */
  start(): Promise<HubAddress>;
  /** Stops in reverse order: refuses new work, fails waiting actions with `shutting_down`, closes sockets, HTTP and the database. */
  stop(): Promise<void>;
}

export interface HubOptions {
  /** Defaults to a pino logger at config.logLevel on stdout. */
  logger?: Logger;
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
  let running: { http: HttpServer; io: SocketServer; agents: AgentNamespace; proxy: ActionProxy; registry: PresenceRegistry } | null = null;
  let starting: Promise<HubAddress> | null = null;

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
    const consoles = new ConsoleBuffers();
    const registry = new PresenceRegistry(hosts, events, config, logger.child({ component: "presence" }));
    const proxy = new ActionProxy(hosts, devices, actions, connections, config, logger.child({ component: "action-proxy" }));
    const app = createApp({ config, logger, database, hosts, devices, actions, events, proxy, consoles, version: HUB_VERSION, startedAtMs });
    const http = createServer(app);
    // Agents are Node processes, not browsers: no CORS. maxHttpBufferSize fits the largest console chunk the protocol allows.
    const io = new SocketServer(http, { serveClient: false, maxHttpBufferSize: 1_000_000 });
    const agents = new AgentNamespace({
      io,
      tokens,
      hosts,
      devices,
      events,
      registry,
      proxy,
      connections,
      consoles,
      hubVersion: HUB_VERSION,
      heartbeatIntervalMs: config.heartbeatIntervalMs,
      logger: logger.child({ component: "agent-namespace" }),
    });

    registry.start();
    proxy.start();
    agents.start();
    running = { http, io, agents, proxy, registry };

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
    if (r) {
      logger.info("labrig hub stopping");
      r.agents.beginShutdown();
      // io.close() stops listening and disconnects agents; then waits for HTTP connections to end.
      const closed = r.io.close();
      r.proxy.stop();
      const drain = setInterval(() => r.http.closeIdleConnections(), 50);
      const cut = setTimeout(() => r.http.closeAllConnections(), HTTP_DRAIN_MS);
      try {
        await closed;
      } finally {
        clearInterval(drain);
        clearTimeout(cut);
      }
      r.agents.stop();
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
  };
}
