import { IdSchema, LabrigError, parseOrThrow, resolveResource } from "@labrig/shared";
import { Router } from "express";
import type { DevicesRepository } from "../../repositories/devices.js";
import type { HostEventsRepository } from "../../repositories/host-events.js";
import type { HostsRepository, HostRecord } from "../../repositories/hosts.js";
import type { ConsoleBuffers } from "../../services/console-buffers.js";
import type { DeviceHealthService } from "../../services/device-health.js";
import { HealthBodySchema } from "../../services/requests.js";
import { requesterName } from "../requester.js";
import { deviceView, hostView, type LiveStateOf } from "../views.js";

/** The fleet registry: GET /api/hosts, GET /api/hosts/:id, device health, and the console tail of a device. */
export function hostsRouter(deps: {
  hosts: HostsRepository;
  devices: DevicesRepository;
  events: HostEventsRepository;
  consoles: ConsoleBuffers;
  health: DeviceHealthService;
  liveState: LiveStateOf;
}): Router {
  const router = Router();

  const hostOr404 = (id: string): HostRecord => {
    const host = deps.hosts.get(id);
    if (!host) throw new LabrigError("unknown_host", `No host '${id}'. GET /api/hosts lists the hosts.`);
    return host;
  };

  router.get("/hosts", (_req, res) => {
    const devices = deps.devices.listAll();
    const hosts = deps.hosts.list().map((h) => hostView(h, devices.filter((d) => d.hostId === h.id), deps.liveState));
    res.json({ hosts });
  });

  router.get("/hosts/:host", (req, res) => {
    const host = hostOr404(req.params.host);
    res.json({ ...hostView(host, deps.devices.listForHost(host.id), deps.liveState), labels: host.labels, events: deps.events.recent(host.id, 50) });
  });

  // Role policy (admins only) is enforced by the auth middleware's route rules, not here.
  router.put("/hosts/:host/devices/:device/health", (req, res) => {
    const body = parseOrThrow(HealthBodySchema, req.body, { what: "health request" });
    const host = hostOr404(req.params.host);
    if (!deps.devices.get(host.id, req.params.device)) throw new LabrigError("unknown_device", `Host '${host.id}' has no device '${req.params.device}'.`);
    deps.health.set(host.id, req.params.device, body.health, body.reason, requesterName(res) ?? "operator");
    const device = deps.devices.get(host.id, req.params.device);
    if (!device) throw new LabrigError("unknown_device", `Device '${req.params.device}' left host '${host.id}' while its health was set.`);
    res.json(deviceView(device, deps.liveState));
  });

  router.get("/hosts/:host/devices/:device/console", (req, res) => {
    const host = hostOr404(req.params.host);
    const device = deps.devices.get(host.id, req.params.device);
    if (!device) throw new LabrigError("unknown_device", `Host '${host.id}' has no device '${req.params.device}'.`);
    const requested = typeof req.query.resource === "string" && req.query.resource !== "" ? req.query.resource : null;
    if (requested !== null && !IdSchema.safeParse(requested).success) {
      throw new LabrigError("unknown_resource", `'${requested}' is not a resource name.`);
    }
    // serial.tail is the catalogue's console-tail action, so resource resolution follows the same rules as an action.
    const resource = resolveResource("serial.tail", device.resources, requested);
    res.json({ host: host.id, device: device.id, resource, text: deps.consoles.text(host.id, device.id, resource ?? "") });
  });

  return router;
}
