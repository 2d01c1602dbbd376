import { makeEnvelope } from "@labrig/shared";
import type { HubBus } from "../bus.js";
import type { Logger } from "../logger.js";
import type { AgentNamespace } from "../realtime/agent-namespace.js";
import type { DevicesRepository } from "../repositories/devices.js";
import type { ConsoleBuffers } from "./console-buffers.js";

/**
 * What agents report about their devices between actions: console output (kept as a tail per
 * resource and announced as `console.output`) and resource state (merged into the device's stored
 * state). Both must name a resource of the device as its last hello described it.
 */
export class AgentReports {
  private unsubscribe: (() => void) | null = null;

  constructor(
    agents: AgentNamespace,
    private readonly devices: DevicesRepository,
    private readonly consoles: ConsoleBuffers,
    private readonly bus: HubBus,
    private readonly logger: Logger,
  ) {
    agents.handle("console.output", (session, chunk, ack) => {
      const device = this.devices.get(session.host, chunk.device);
      if (!device?.resources.some((r) => r.name === chunk.resource)) {
        this.logger.warn({ host: session.host, device: chunk.device, resource: chunk.resource }, "console output for an unknown device resource ignored");
        ack?.({ ok: false, error: makeEnvelope("unknown_resource", `Device '${chunk.device}' has no resource '${chunk.resource}' in the last hello.`) });
        return;
      }
      const text = chunk.dropped_bytes > 0 ? `\n[labrig: agent dropped ${chunk.dropped_bytes} bytes]\n${chunk.data}` : chunk.data;
      this.consoles.append(session.host, chunk.device, chunk.resource, text);
      this.bus.emit("console.output", { host: session.host, device: chunk.device, resource: chunk.resource, text });
      ack?.({ ok: true });
    });
    agents.handle("device.state", (session, update, ack) => {
      const { host: _host, device: deviceId, resource, ...state } = update;
      const stored = this.devices.transaction(() => {
        const device = this.devices.get(session.host, deviceId);
        if (!device?.resources.some((r) => r.name === resource)) return false;
        return this.devices.setState(session.host, deviceId, { ...device.state, [resource]: state }, new Date().toISOString());
      });
      if (!stored) {
        this.logger.warn({ host: session.host, device: deviceId, resource }, "state for an unknown device resource ignored");
        ack?.({ ok: false, error: makeEnvelope("unknown_resource", `Device '${deviceId}' has no resource '${resource}' in the last hello.`) });
        return;
      }
      this.bus.emit("resource.state", update);
      ack?.({ ok: true });
    });
  }

  start(): void {
    this.unsubscribe = this.bus.on("host.devices", (e) => {
      for (const device of e.removed) this.consoles.forgetDevice(e.host, device);
    });
  }

  stop(): void {
    this.unsubscribe?.();
    this.unsubscribe = null;
  }
}
