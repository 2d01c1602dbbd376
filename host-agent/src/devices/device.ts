import { performance } from "node:perf_hooks";
import {
  ACTIONS,
  LabrigError,
  deriveCapabilities,
  sleep,
  type ActionName,
  type ActionParamsOf,
  type DeviceDescription,
  type DeviceState,
  type ResourceDescription,
} from "@labrig/shared";
import type { ArtifactStore } from "../capture/artifact-store.js";
import type { StreamSink } from "../capture/live-stream.js";
import type { ScreenOverlay } from "../capture/test-pattern.js";
import { VideoCapture } from "../capture/video-capture.js";
import type { DeviceConfig, GpioResourceConfig, PowerResourceConfig, SerialResourceConfig, VideoResourceConfig } from "../config.js";
import type { Logger } from "../logger.js";
import { consoleLogPath } from "./console-log-file.js";
import { GpioDriver } from "./drivers/gpio-driver.js";
import { PowerDriver } from "./drivers/power-driver.js";
import { handlerFor, type ActionHandlers } from "./drivers/resource-driver.js";
import { SerialDriver } from "./drivers/serial-driver.js";
import { VideoDriver } from "./drivers/video-driver.js";
import type { GpioLine, LineFactory, LineSpec } from "./gpio/gpio-line.js";
import { PowerSwitch } from "./power-switch.js";
import { SerialConsole } from "./serial-console.js";

/** A resource's state change, before the device adds host, device and time. */
export type ResourceStateReport = Omit<DeviceState, "host" | "device" | "at">;

export interface DeviceCollaborators {
  lineFactory: LineFactory;
  logger: Logger;
  reportState: (state: ResourceStateReport) => void;
  onConsoleData: (resource: string, text: string) => void;
  /** The agent's data_dir; serial consoles keep their rotating logs under <dataDir>/console. None: no disk log. */
  dataDir?: string;
  /** What video resources need: where artifacts go, where stream chunks go, ffmpeg, and a simulated screen. */
  capture?: DeviceCaptureDeps;
}

export interface DeviceCaptureDeps {
  host: string;
  artifacts: ArtifactStore;
  sink: StreamSink;
  ffmpeg: string;
  /** For test-pattern sources of simulated devices: what the board's screen shows now. */
  overlay?: () => ScreenOverlay | null;
}

function lineSpec(deviceId: string, r: PowerResourceConfig | GpioResourceConfig): LineSpec {
  const out = r.kind === "power" || r.direction === "out";
  return {
    name: `${deviceId}/${r.name}`,
    line: r.line,
    chip: r.chip,
    direction: out ? "out" : "in",
    activeLow: r.active_low,
    initial: r.kind === "power" ? r.initial : (r.initial ?? 0),
    ...(r.kind === "gpio" && r.direction === "in" ? { bias: r.bias, debounceMs: r.debounce_ms } : {}),
  };
}

/** Every driver a device can hold; the kind tells which handler map it carries. */
type AnyResourceDriver = SerialDriver | GpioDriver | PowerDriver | VideoDriver;

/** Resources start lines first (outputs get their initial level at once), then consoles, then video; they stop in reverse. */
const START_RANK: Record<DeviceConfig["resources"][number]["kind"], number> = { power: 0, gpio: 0, serial: 1, video: 2 };

/**
 * One device under test: its description (config data) and one driver per resource, each with
 * the typed handlers of its kind's actions. Resources come only from config, so an action can
 * never reach a line or port the device was not given.
 */
export class Device {
  /** In start order; stopped in reverse. */
  private readonly drivers = new Map<string, AnyResourceDriver>();
  private started = false;

  /** Actions that touch no resource. */
  private readonly deviceHandlers: ActionHandlers<null> = {
    wait: async (p, signal) => {
      const t0 = performance.now();
      await sleep(p.ms, signal);
      return { waited_ms: performance.now() - t0 };
    },
  };

  constructor(
    readonly config: DeviceConfig,
    private readonly c: DeviceCollaborators,
  ) {}

  get id(): string {
    return this.config.id;
  }

  get resources(): ResourceDescription[] {
    return this.config.resources.map((r) => ({ name: r.name, kind: r.kind }));
  }

  /** The device as announced in `hello`. */
  describe(): DeviceDescription {
    const resources = this.resources;
    return {
      id: this.config.id,
      labels: this.config.labels,
      capabilities: deriveCapabilities(resources, this.config.capabilities),
      resources,
    };
  }

  /** The line behind a gpio or power resource (the simulator attaches to these). */
  line(resource: string): GpioLine | undefined {
    const d = this.drivers.get(resource);
    return d?.kind === "gpio" || d?.kind === "power" ? d.line : undefined;
  }

  serialConsole(resource: string): SerialConsole | undefined {
    const d = this.drivers.get(resource);
    return d?.kind === "serial" ? d.console : undefined;
  }

  /** The capture driver behind a video resource (stream control, tests). */
  videoCapture(resource: string): VideoCapture | undefined {
    const d = this.drivers.get(resource);
    return d?.kind === "video" ? d.capture : undefined;
  }

  /**
   * Builds and starts one driver per resource in START_RANK order. If any fails to start, what was
   * already started is stopped before the error is rethrown: the agent never stops a device whose
   * start failed, and a claimed pin or a console that keeps reopening must not outlive that failure.
   * Video resources never fail the device: a missing dongle or ffmpeg shows as the resource's state.
   */
  async start(): Promise<void> {
    try {
      const ordered = [...this.config.resources].sort((a, b) => START_RANK[a.kind] - START_RANK[b.kind]);
      for (const r of ordered) {
        const driver = await this.buildDriver(r);
        if (!driver) continue;
        // Registered before it starts, so stop() releases what it holds even when its start throws.
        this.drivers.set(r.name, driver);
        await driver.start();
      }
    } catch (err) {
      await this.stop();
      throw err;
    }
    this.started = true;
  }

  /** Stops every driver in the reverse of start order; one failing does not keep the others running. */
  async stop(): Promise<void> {
    this.started = false;
    for (const d of [...this.drivers.values()].reverse()) {
      try {
        await d.stop();
      } catch (err) {
        this.c.logger.error({ device: this.id, resource: d.resource, err: (err as Error).message }, "stopping a resource failed; continuing with the rest");
      }
    }
    this.drivers.clear();
  }

  /**
   * Runs one action whose params are already validated (defaults applied) and whose resource is
   * already resolved, through the handler of the resource's driver. Returns the raw result; the
   * executor checks its shape.
   */
  async run(action: ActionName, resource: string | null, params: Record<string, unknown>, signal: AbortSignal): Promise<Record<string, unknown>> {
    if (!this.started) throw new LabrigError("device_unavailable", `Device ${this.id} is not started; the agent is starting or stopping. Retry shortly.`);
    const kind = ACTIONS[action].resourceKind;
    const handler = kind === null ? handlerFor(this.deviceHandlers, action) : handlerFor(this.driverOf(resource, kind).handlers, action);
    if (!handler) throw new LabrigError("unsupported_action", `Device ${this.id} has no handler for ${action}.`);
    return { ...(await handler(params as ActionParamsOf<ActionName>, signal)) };
  }

  /** The driver behind `resource`, which must be of `kind`; gpio and power actions reach only configured lines of their kind (forbidden_line). */
  private driverOf(resource: string | null, kind: AnyResourceDriver["kind"]): AnyResourceDriver {
    const d = resource === null ? undefined : this.drivers.get(resource);
    if (d?.kind === kind) return d;
    if (kind === "gpio" || kind === "power") {
      const lines = [...this.drivers.values()].filter((x) => x.kind === kind).map((x) => x.resource);
      throw new LabrigError(
        "forbidden_line",
        `'${resource}' is not a configured ${kind} line of ${this.id}; the agent drives only lines in its config (${kind} lines here: ${lines.join(", ") || "none"}).`,
      );
    }
    if (!d) throw new LabrigError("unknown_resource", `Device ${this.id} has no resource '${resource}'.`);
    throw new LabrigError("unknown_resource", `Resource '${resource}' of ${this.id} is ${d.kind}, not ${kind}.`);
  }

  private async buildDriver(r: DeviceConfig["resources"][number]): Promise<AnyResourceDriver | null> {
    const report = this.c.reportState;
    switch (r.kind) {
      case "power": {
        const line = await this.c.lineFactory.open(lineSpec(this.id, r));
        const power = new PowerSwitch(line, { cycleOffMs: r.cycle_off_ms }, (state) => report({ resource: r.name, status: "ready", power: state }));
        return new PowerDriver(r.name, this.id, line, power, report, this.c.logger);
      }
      case "gpio":
        return new GpioDriver(r.name, this.id, await this.c.lineFactory.open(lineSpec(this.id, r)), r, report, this.c.logger);
      case "serial":
        return new SerialDriver(r.name, this.serialConsoleFor(r));
      case "video":
        return this.videoDriverFor(r);
    }
  }

  private serialConsoleFor(r: SerialResourceConfig): SerialConsole {
    return new SerialConsole(
      {
        name: `${this.id}/${r.name}`,
        path: r.path,
        baudRate: r.baud_rate,
        dataBits: r.data_bits,
        parity: r.parity,
        stopBits: r.stop_bits,
        rtsCts: r.rts_cts,
        txCharDelayMs: r.tx_char_delay_ms,
        ...(this.c.dataDir === undefined ? {} : { logFile: { path: consoleLogPath(this.c.dataDir, this.id, r.name), maxBytes: r.log_max_bytes, files: r.log_files } }),
      },
      this.c.logger,
      {
        onData: (text) => this.c.onConsoleData(r.name, text),
        onState: (status, detail) => this.c.reportState({ resource: r.name, status, ...(detail === undefined ? {} : { detail: detail.slice(0, 1024) }) }),
      },
    );
  }

  private videoDriverFor(r: VideoResourceConfig): VideoDriver | null {
    const deps = this.c.capture;
    if (!deps) {
      this.c.reportState({ resource: r.name, status: "unavailable", detail: "this agent was built without capture support for this device" });
      return null;
    }
    const capture = new VideoCapture(this.id, r, {
      host: deps.host,
      logger: this.c.logger,
      artifacts: deps.artifacts,
      sink: deps.sink,
      ffmpeg: deps.ffmpeg,
      reportState: (status, detail) => this.c.reportState({ resource: r.name, status, detail: detail.slice(0, 1024) }),
      ...(deps.overlay ? { overlay: deps.overlay } : {}),
    });
    return new VideoDriver(r.name, this.id, capture, this.c.logger);
  }
}
