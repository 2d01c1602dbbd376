import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { LabrigError, nowIso } from "@labrig/shared";
import { ArtifactStore } from "./capture/artifact-store.js";
import type { VideoCapture } from "./capture/video-capture.js";
import type { AgentConfig, DeviceConfig } from "./config.js";
import { ConsoleStream } from "./console-stream.js";
import { Device } from "./devices/device.js";
import { createLineFactory } from "./devices/gpio/driver-choice.js";
import { MemoryLine, MemoryLineFactory } from "./devices/gpio/memory-line.js";
import { Executor } from "./executor.js";
import { HubLink } from "./hub-link.js";
import type { Logger } from "./logger.js";
import { Outbox } from "./outbox.js";
import { BoardJournal } from "./sim/board-journal.js";
import { SimPty } from "./sim/pty.js";
import { SimulatedDut, type SimulatedDutOptions } from "./sim/simulated-dut.js";
import { AGENT_VERSION } from "./version.js";

export interface AgentOptions {
  /** Options for every simulated board (tests shorten the boot). */
  sim?: SimulatedDutOptions;
}

export interface Agent {
  start(): Promise<void>;
  stop(): Promise<void>;
  readonly devices: ReadonlyMap<string, Device>;
  readonly executor: Executor;
  readonly hubLink: HubLink;
  readonly outbox: Outbox;
  /** Snapshots and clips waiting for the hub to fetch them. */
  readonly artifacts: ArtifactStore;
  /** Simulated boards by device id. */
  readonly sims: ReadonlyMap<string, { pty: SimPty; dut: SimulatedDut | null }>;
}

interface Component {
  name: string;
  start: () => Promise<void> | void;
  stop: () => Promise<void> | void;
}

function simResources(config: DeviceConfig): { serial: string; power: string; reset: string | undefined; path: string } {
  const serial = config.resources.find((r) => r.kind === "serial");
  const power = config.resources.find((r) => r.kind === "power");
  // The config schema guarantees both for simulated devices; this guards code that builds configs by hand.
  if (!serial || serial.kind !== "serial" || !power) throw new Error(`simulated device ${config.id} needs a serial and a power resource`);
  const reset = config.resources.find((r) => r.kind === "gpio" && r.name === "reset");
  return { serial: serial.name, power: power.name, reset: reset?.name, path: serial.path };
}

/**
 * Builds the agent from its config: hub link, simulated pseudo-terminals, devices (lines, then
 * serial consoles), simulated boards, executor. start() runs them in that order and connects to the
 * hub last; stop() runs them in reverse.
 */
export function createAgent(config: AgentConfig, logger: Logger, options: AgentOptions = {}): Agent {
  const host = config.host;
  const sharedLines = createLineFactory(config.gpio, logger);
  const devices = new Map<string, Device>();
  const streams = new Map<string, ConsoleStream>();
  const sims = new Map<string, { pty: SimPty; dut: SimulatedDut | null }>();

  const outbox = new Outbox(logger);
  const artifacts = new ArtifactStore(
    join(config.data_dir, "artifacts"),
    { maxBytes: config.artifacts.max_bytes, maxCount: config.artifacts.max_count, maxAgeS: config.artifacts.max_age_s },
    logger.child({ component: "artifacts" }),
  );
  const streamSink = { streamCongested: () => hubLink.streamCongested(), sendStreamChunk: (c: Parameters<HubLink["sendStreamChunk"]>[0]) => hubLink.sendStreamChunk(c) };
  const videoOf = (device: string, resource: string): VideoCapture => {
    const d = devices.get(device);
    if (!d) throw new LabrigError("unknown_device", `Host ${host} has no device '${device}'.`);
    const capture = d.videoCapture(resource);
    if (!capture) throw new LabrigError("unknown_resource", `Device ${device} has no started video resource '${resource}'.`);
    return capture;
  };

  for (const dc of config.devices) {
    // A simulated board's lines are private memory lines: the simulator must see them, and they must never touch real pins.
    const lineFactory = dc.simulated ? new MemoryLineFactory() : sharedLines;
    const device = new Device(dc, {
      lineFactory,
      logger: logger.child({ device: dc.id }),
      // hubLink is built below; devices only report once started, long after that.
      reportState: (s) => hubLink.sendDeviceState({ host, device: dc.id, ...s, at: nowIso() }),
      onConsoleData: (resource, text) => streams.get(`${dc.id}/${resource}`)?.push(text),
      dataDir: config.data_dir,
      capture: {
        host,
        artifacts,
        sink: streamSink,
        ffmpeg: config.ffmpeg_path,
        // The simulated board is built after the devices start; until then its screen is dark, like a board that is off.
        ...(dc.simulated ? { overlay: () => sims.get(dc.id)?.dut?.screen() ?? { blank: true } } : {}),
      },
    });
    devices.set(dc.id, device);
    if (dc.simulated) {
      const { path } = simResources(dc);
      sims.set(dc.id, { pty: new SimPty({ path }, logger.child({ sim: dc.id })), dut: null });
    }
  }

  const hubLink = new HubLink(
    {
      url: config.hub.url,
      host,
      token: config.hub.token,
      ca: config.hub.ca,
      version: AGENT_VERSION,
      startedAt: nowIso(),
      devices: [...devices.values()].map((d) => d.describe()),
    },
    {
      onActionRequest: (req) => executor.submit(req),
      onActionCancel: (id) => executor.cancel(id),
      onInvalidActionRequest: (id, device, error) => executor.reject(id, device, error),
      onReady: () => {
        outbox.flush();
        for (const s of streams.values()) s.flush();
      },
      capture: {
        fetchArtifact: (req) => artifacts.read(req.id, req.offset, req.max_bytes),
        deleteArtifact: (id) => artifacts.delete(id),
        startStream: (device, resource) => videoOf(device, resource).startStream(),
        stopStream: (device, resource) => videoOf(device, resource).stopStream(),
        stopAllStreams: () => {
          for (const d of devices.values()) for (const r of d.resources) if (r.kind === "video") d.videoCapture(r.name)?.stopStream();
        },
      },
    },
    logger,
  );
  outbox.attach(hubLink);
  for (const dc of config.devices) {
    for (const r of dc.resources) {
      if (r.kind === "serial") streams.set(`${dc.id}/${r.name}`, new ConsoleStream({ host, device: dc.id, resource: r.name }, hubLink));
    }
  }
  const executor = new Executor(host, devices, (result) => outbox.add(result), logger, { confirmStart: (started) => hubLink.confirmStart(started) });

  const components: Component[] = [
    { name: "data dir", start: () => void mkdirSync(config.data_dir, { recursive: true }), stop: () => undefined },
    { name: "artifact store", start: () => artifacts.start(), stop: () => artifacts.stop() },
    // Stopped late (results of what the executor cancels at stop still reach the hub), but connected
    // last, below: a hello before the devices are up would get work they refuse as not started.
    { name: "hub link", start: () => undefined, stop: () => hubLink.stop() },
    { name: "outbox", start: () => undefined, stop: () => outbox.stop() },
    ...[...sims.entries()].map(([id, sim]) => ({ name: `sim pty ${id}`, start: () => sim.pty.start(), stop: () => sim.pty.stop() })),
    { name: "console streams", start: () => undefined, stop: () => [...streams.values()].forEach((s) => s.stop()) },
    ...[...devices.values()].map((d) => ({ name: `device ${d.id}`, start: () => d.start(), stop: () => d.stop() })),
    ...[...sims.entries()].map(([id, sim]) => ({
      name: `sim board ${id}`,
      start: () => {
        const device = devices.get(id) as Device;
        const names = simResources(device.config);
        const power = device.line(names.power);
        const reset = names.reset === undefined ? undefined : device.line(names.reset);
        if (!(power instanceof MemoryLine) || (reset !== undefined && !(reset instanceof MemoryLine))) {
          throw new Error(`simulated device ${id} must have in-memory lines`);
        }
        const simLogger = logger.child({ sim: id });
        const journal = device.config.sim_journal === undefined ? null : new BoardJournal(device.config.sim_journal, simLogger);
        sim.dut = new SimulatedDut(sim.pty, { power, reset }, simLogger, { ...options.sim, ...(journal ? { onLineReceived: (line, state) => journal.record(line, state) } : {}) });
        sim.dut.start();
      },
      stop: () => sim.dut?.stop(),
    })),
    { name: "executor", start: () => executor.start(), stop: () => executor.stop() },
    { name: "hub connection", start: () => hubLink.start(), stop: () => undefined },
  ];

  const started: Component[] = [];
  const stopAll = async (): Promise<void> => {
    for (const c of started.splice(0).reverse()) {
      try {
        await c.stop();
        logger.debug({ component: c.name }, "stopped");
      } catch (err) {
        logger.error({ component: c.name, err: (err as Error).message }, "stopping failed; continuing with the rest");
      }
    }
  };

  return {
    devices,
    executor,
    hubLink,
    outbox,
    artifacts,
    sims,
    async start() {
      logger.info({ host, hub: config.hub.url, version: AGENT_VERSION, devices: [...devices.keys()], config: config.config_path }, "agent starting");
      for (const c of components) {
        try {
          await c.start();
        } catch (err) {
          logger.error({ component: c.name, err: (err as Error).message }, "start failed; stopping what was started");
          await stopAll();
          throw err;
        }
        started.push(c);
      }
      logger.info({ host }, "agent started");
    },
    async stop() {
      logger.info({ host }, "agent stopping");
      await stopAll();
      logger.info({ host }, "agent stopped");
    },
  };
}
