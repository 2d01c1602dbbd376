import { performance } from "node:perf_hooks";
import {
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
import type { DeviceConfig, GpioResourceConfig, PowerResourceConfig } from "../config.js";
import type { Logger } from "../logger.js";
import { consoleLogPath } from "./console-log-file.js";
import type { Bit, GpioLine, LineFactory, LineSpec } from "./gpio/gpio-line.js";
import { InputWatcher } from "./gpio/input-watcher.js";
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

type Driver =
  | { kind: "serial"; console: SerialConsole }
  | { kind: "gpio"; line: GpioLine; config: GpioResourceConfig; watcher: InputWatcher | null }
  | { kind: "power"; power: PowerSwitch; line: GpioLine }
  | { kind: "video"; capture: VideoCapture };

function lineSpec(deviceId: string, r: PowerResourceConfig | GpioResourceConfig): LineSpec {
  const out = r.kind === "power" || r.direction === "out";
  return {
    name: `${deviceId}/${r.name}`,
    line: r.line,
    chip: r.chip,
    direction: out ? "out" : "in",
    activeLow: r.active_low,
    initial: r.kind === "power" ? r.initial : (r.initial ?? 0),
  };
}

/**
 * One device under test: its description (config data) and the drivers that operate its
 * resources. Resources come only from config, so an action can never reach a line or port
 * the device was not given.
 */
export class Device {
  private readonly drivers = new Map<string, Driver>();
  private started = false;

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
    return d && (d.kind === "gpio" || d.kind === "power") ? d.line : undefined;
  }

  serialConsole(resource: string): SerialConsole | undefined {
    const d = this.drivers.get(resource);
    return d?.kind === "serial" ? d.console : undefined;
  }

  /**
   * Opens lines first (outputs get their initial level at once), then serial consoles. If any
   * resource fails to open, what was already opened is released before the error is rethrown:
   * the agent never stops a device whose start failed, and an exported pin or a console that
   * keeps reopening must not outlive that failure.
   */
  async start(): Promise<void> {
    try {
      await this.startDrivers();
    } catch (err) {
      await this.stop();
      throw err;
    }
    this.started = true;
  }

  private async startDrivers(): Promise<void> {
    for (const r of this.config.resources) {
      if (r.kind !== "power" && r.kind !== "gpio") continue;
      const line = await this.c.lineFactory.open(lineSpec(this.id, r));
      if (r.kind === "power") {
        const power = new PowerSwitch(line, { cycleOffMs: r.cycle_off_ms }, (state) => this.c.reportState({ resource: r.name, status: "ready", power: state }));
        this.drivers.set(r.name, { kind: "power", power, line });
        this.c.reportState({ resource: r.name, status: "ready", power: power.state });
      } else {
        // Registered before anything below can throw, so stop() releases the line.
        const driver: Extract<Driver, { kind: "gpio" }> = { kind: "gpio", line, config: r, watcher: null };
        this.drivers.set(r.name, driver);
        let detail: string | undefined;
        if (r.direction === "in" && r.edge !== "none") {
          const watcher = new InputWatcher(line, { edge: r.edge, debounceMs: r.debounce_ms, pollMs: r.poll_ms }, (value) => this.c.reportState({ resource: r.name, status: "ready", value, ...(detail === undefined ? {} : { detail }) }), this.c.logger);
          driver.watcher = watcher;
          detail = watcher.start().detail;
        }
        this.c.reportState({ resource: r.name, status: "ready", value: line.read(), ...(detail === undefined ? {} : { detail }) });
      }
    }
    for (const r of this.config.resources) {
      if (r.kind !== "serial") continue;
      const console = new SerialConsole(
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
      this.drivers.set(r.name, { kind: "serial", console });
      await console.start();
    }
    await this.startVideo();
  }

  /** Closes serial consoles, then releases lines: the reverse of start. */
  async stop(): Promise<void> {
    this.started = false;
    const drivers = [...this.drivers.entries()].reverse();
    for (const [name, d] of drivers) {
      if (d.kind !== "video") continue;
      try {
        await d.capture.stop();
      } catch (err) {
        this.c.logger.error({ device: this.id, resource: name, err: (err as Error).message }, "stopping video capture failed; continuing");
      }
    }
    for (const [, d] of drivers) {
      if (d.kind === "serial") await d.console.stop();
    }
    for (const [name, d] of drivers) {
      if (d.kind === "serial" || d.kind === "video") continue;
      if (d.kind === "gpio") d.watcher?.stop();
      try {
        d.line.release();
      } catch (err) {
        this.c.logger.warn({ device: this.id, resource: name, err: (err as Error).message }, "releasing GPIO line failed; it stays exported until reboot");
      }
    }
    this.drivers.clear();
  }

  /**
   * Runs one action whose params are already validated (defaults applied) and whose
   * resource is already resolved. Returns the raw result; the executor checks its shape.
   */
  async run(action: ActionName, resource: string | null, params: Record<string, unknown>, signal: AbortSignal): Promise<Record<string, unknown>> {
    if (!this.started) throw new LabrigError("device_unavailable", `Device ${this.id} is not started; the agent is starting or stopping. Retry shortly.`);
    switch (action) {
      case "wait": {
        const p = params as ActionParamsOf<"wait">;
        const t0 = performance.now();
        await sleep(p.ms, signal);
        return { waited_ms: performance.now() - t0 };
      }
      case "serial.write": {
        const p = params as ActionParamsOf<"serial.write">;
        return { bytes: await this.serial(resource).write(p.data, signal) };
      }
      case "serial.expect": {
        const p = params as ActionParamsOf<"serial.expect">;
        const r = await this.serial(resource).expect({ pattern: p.pattern, regex: p.regex, timeoutMs: p.timeout_ms, flush: p.flush }, signal);
        return { ...r };
      }
      case "serial.read": {
        const p = params as ActionParamsOf<"serial.read">;
        return { text: this.serial(resource).read(p.max_bytes) };
      }
      case "gpio.write": {
        const p = params as ActionParamsOf<"gpio.write">;
        this.outputLine(resource).write(p.value);
        this.c.reportState({ resource: resource as string, status: "ready", value: p.value });
        return { value: p.value };
      }
      case "gpio.read":
        return { value: this.gpio(resource).line.read() };
      case "gpio.pulse": {
        const p = params as ActionParamsOf<"gpio.pulse">;
        const line = this.outputLine(resource);
        const inactive = (1 - p.value) as Bit;
        // Timed here, next to the pin: the hub's clock would add network jitter to the width.
        const t0 = performance.now();
        line.write(p.value);
        try {
          await sleep(p.width_ms, signal);
          // Timers may fire up to a millisecond early against performance.now(); a pulse is never shorter than asked.
          while (performance.now() - t0 < p.width_ms) {
            /* spin for the sub-millisecond remainder */
          }
        } finally {
          // Even when aborted, the line must not be left active (a reset held forever).
          line.write(inactive);
        }
        return { width_ms: performance.now() - t0 };
      }
      case "power.on":
        return { state: this.power(resource).on() };
      case "power.off":
        return { state: this.power(resource).off() };
      case "power.cycle": {
        const p = params as ActionParamsOf<"power.cycle">;
        return { state: await this.power(resource).cycle(p.off_ms, signal) };
      }
      case "capture.snapshot": {
        const p = params as ActionParamsOf<"capture.snapshot">;
        return { ...(await this.video(resource).snapshot(signal, p.max_edge)) };
      }
      case "capture.record": {
        const p = params as ActionParamsOf<"capture.record">;
        return { ...(await this.video(resource).record(p.duration_s, p.format, signal)) };
      }
    }
  }

  private driver(resource: string | null): Driver {
    const d = resource === null ? undefined : this.drivers.get(resource);
    if (!d) throw new LabrigError("unknown_resource", `Device ${this.id} has no resource '${resource}'.`);
    return d;
  }

  /** The capture driver behind a video resource (stream control, tests). */
  videoCapture(resource: string): VideoCapture | undefined {
    const d = this.drivers.get(resource);
    return d?.kind === "video" ? d.capture : undefined;
  }

  /** Video resources start last and never fail the device: a missing dongle or ffmpeg shows as the resource's state. */
  private async startVideo(): Promise<void> {
    for (const r of this.config.resources) {
      if (r.kind !== "video") continue;
      const deps = this.c.capture;
      if (!deps) {
        this.c.reportState({ resource: r.name, status: "unavailable", detail: "this agent was built without capture support for this device" });
        continue;
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
      this.drivers.set(r.name, { kind: "video", capture });
      await capture.start();
    }
  }

  private video(resource: string | null): VideoCapture {
    const d = this.driver(resource);
    if (d.kind !== "video") throw new LabrigError("unknown_resource", `Resource '${resource}' of ${this.id} is ${d.kind}, not video.`);
    return d.capture;
  }

  private serial(resource: string | null): SerialConsole {
    const d = this.driver(resource);
    if (d.kind !== "serial") throw new LabrigError("unknown_resource", `Resource '${resource}' of ${this.id} is ${d.kind}, not serial.`);
    return d.console;
  }

  /** gpio and power actions reach only lines this device was configured with; anything else is forbidden_line. */
  private lineDriver(resource: string | null, kind: "gpio" | "power"): Driver {
    const d = resource === null ? undefined : this.drivers.get(resource);
    if (!d || d.kind !== kind) {
      const lines = [...this.drivers.entries()].filter(([, x]) => x.kind === kind).map(([n]) => n);
      throw new LabrigError(
        "forbidden_line",
        `'${resource}' is not a configured ${kind} line of ${this.id}; the agent drives only lines in its config (${kind} lines here: ${lines.join(", ") || "none"}).`,
      );
    }
    return d;
  }

  private gpio(resource: string | null): { line: GpioLine; config: GpioResourceConfig } {
    const d = this.lineDriver(resource, "gpio");
    if (d.kind !== "gpio") throw new LabrigError("forbidden_line", `Resource '${resource}' of ${this.id} is not a gpio line.`);
    return d;
  }

  private outputLine(resource: string | null): GpioLine {
    const { line, config } = this.gpio(resource);
    if (config.direction !== "out") {
      throw new LabrigError("forbidden_line", `Line '${config.name}' of ${this.id} is an input; set direction: out in the agent config to drive it.`);
    }
    return line;
  }

  private power(resource: string | null): PowerSwitch {
    const d = this.lineDriver(resource, "power");
    if (d.kind !== "power") throw new LabrigError("forbidden_line", `Resource '${resource}' of ${this.id} is not a power line.`);
    return d.power;
  }
}
