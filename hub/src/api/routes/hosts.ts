import { ConsoleTailSchema, DeviceViewSchema, HealthBodySchema, HostDetailSchema, HostViewSchema, IdSchema, LabrigError, resolveResource } from "@labrig/shared";
import { z } from "zod";
import type { DevicesRepository } from "../../repositories/devices.js";
import type { HostEventsRepository } from "../../repositories/host-events.js";
import type { HostRecord, HostsRepository } from "../../repositories/hosts.js";
import type { ConsoleBuffers } from "../../services/console-buffers.js";
import type { DeviceHealthService } from "../../services/device-health.js";
import { route, type Route } from "../route.js";
import { deviceView, hostView, type LiveStateOf } from "../views.js";

const HostPath = z.object({ host: IdSchema });
const DevicePath = z.object({ host: IdSchema, device: IdSchema });

/** The fleet registry: hosts with their devices, one host with its history, device health, and a console's tail. */
export function hostRoutes(deps: {
  hosts: HostsRepository;
  devices: DevicesRepository;
  events: HostEventsRepository;
  consoles: ConsoleBuffers;
  health: DeviceHealthService;
  liveState: LiveStateOf;
}): Route[] {
  const hostOr404 = (id: string): HostRecord => {
    const host = deps.hosts.get(id);
    if (!host) throw new LabrigError("unknown_host", `No host '${id}'.`);
    return host;
  };

  return [
    route({
      method: "get",
      path: "/api/hosts",
      tag: "hosts",
      summary: "Every host with its devices (health, lease, load and last reported state).",
      response: z.object({ hosts: z.array(HostViewSchema) }),
      handler: () => {
        const devices = deps.devices.listAll();
        return { hosts: deps.hosts.list().map((h) => hostView(h, devices.filter((d) => d.hostId === h.id), deps.liveState)) };
      },
    }),
    route({
      method: "get",
      path: "/api/hosts/:host",
      tag: "hosts",
      summary: "One host with its devices, labels and recent events.",
      params: HostPath,
      response: HostDetailSchema,
      handler: ({ params }) => {
        const host = hostOr404(params.host);
        return { ...hostView(host, deps.devices.listForHost(host.id), deps.liveState), labels: host.labels, events: deps.events.recent(host.id, 50) };
      },
    }),
    route({
      method: "put",
      path: "/api/hosts/:host/devices/:device/health",
      tag: "hosts",
      access: "admin",
      summary: "Override a device's health (good, unknown, bad, maintenance).",
      params: DevicePath,
      body: HealthBodySchema,
      response: DeviceViewSchema,
      handler: ({ params, body, requester }) => {
        const host = hostOr404(params.host);
        deps.health.set(host.id, params.device, body.health, body.reason, requester ?? "operator");
        const device = deps.devices.get(host.id, params.device);
        if (!device) throw new LabrigError("unknown_device", `Device '${params.device}' left host '${host.id}' while its health was set.`);
        return deviceView(device, deps.liveState);
      },
    }),
    route({
      method: "get",
      path: "/api/hosts/:host/devices/:device/console",
      tag: "hosts",
      summary: "The tail of a device's serial console, as the hub keeps it.",
      params: DevicePath,
      query: z.object({ resource: IdSchema.optional() }).strict(),
      response: ConsoleTailSchema,
      handler: ({ params, query }) => {
        const host = hostOr404(params.host);
        const device = deps.devices.get(host.id, params.device);
        if (!device) throw new LabrigError("unknown_device", `Host '${host.id}' has no device '${params.device}'.`);
        // serial.tail is the catalogue's console-tail action, so resource resolution follows the same rules as an action.
        const resource = resolveResource("serial.tail", device.resources, query.resource ?? null);
        return { host: host.id, device: device.id, resource, text: deps.consoles.text(host.id, device.id, resource ?? "") };
      },
    }),
  ];
}
