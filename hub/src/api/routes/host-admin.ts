import { HostCreateBodySchema, LabrigError, parseOrThrow } from "@labrig/shared";
import { Router } from "express";
import type { HostsRepository } from "../../repositories/hosts.js";
import type { HostTokens } from "../../services/tokens.js";
import { requestLocals } from "../request-id.js";

/** Drops a host's live agent connection, if any; the /agent namespace implements it. */
export interface AgentLinks {
  disconnect(hostId: string, reason: string): boolean;
}

/** Host enrolment over REST (admin only, by the route table): create, rotate or revoke the token, remove. */
export function hostAdminRouter(deps: { tokens: HostTokens; hosts: HostsRepository; agentLinks: AgentLinks }): Router {
  const router = Router();

  const requireHost = (id: string): void => {
    if (!deps.hosts.get(id)) throw new LabrigError("unknown_host", `No host '${id}'. GET /api/hosts lists the hosts.`);
  };

  router.post("/hosts", (req, res) => {
    const body = parseOrThrow(HostCreateBodySchema, req.body, { what: "host" });
    const created = deps.tokens.add(body.name, body.labels ?? {});
    const { log, principal } = requestLocals(res);
    log.info({ host: created.id, by: principal?.name }, "host created");
    res.status(201).json(created);
  });

  router.post("/hosts/:host/token", (req, res) => {
    const id = req.params.host;
    requireHost(id);
    const token = deps.tokens.rotate(id);
    // This process owns the agent's socket, so the old token's connection ends now, not at its next heartbeat.
    const dropped = deps.agentLinks.disconnect(id, "token rotated");
    const { log, principal } = requestLocals(res);
    log.info({ host: id, agent_disconnected: dropped, by: principal?.name }, "host token rotated");
    res.json({ id, token });
  });

  router.delete("/hosts/:host/token", (req, res) => {
    const id = req.params.host;
    deps.tokens.revoke(id);
    const dropped = deps.agentLinks.disconnect(id, "token revoked");
    const { log, principal } = requestLocals(res);
    log.info({ host: id, agent_disconnected: dropped, by: principal?.name }, "host token revoked");
    res.status(204).end();
  });

  router.delete("/hosts/:host", (req, res) => {
    const id = req.params.host;
    requireHost(id);
    const dropped = deps.agentLinks.disconnect(id, "host removed");
    deps.tokens.remove(id);
    const { log, principal } = requestLocals(res);
    log.info({ host: id, agent_disconnected: dropped, by: principal?.name }, "host removed");
    res.status(204).end();
  });

  return router;
}
