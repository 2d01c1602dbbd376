import { HostCreateBodySchema, HostTokenIssuedSchema, IdSchema, LabrigError } from "@labrig/shared";
import { z } from "zod";
import type { HostsRepository } from "../../repositories/hosts.js";
import type { HostTokens } from "../../services/tokens.js";
import { route, type Route } from "../route.js";

/** Drops a host's live agent connection, if any; the /agent namespace implements it. */
export interface AgentLinks {
  disconnect(hostId: string, reason: string): boolean;
}

const HostPath = z.object({ host: IdSchema });

/** Host enrolment over REST (admin only): create, rotate or revoke the token, remove. */
export function hostAdminRoutes(deps: { tokens: HostTokens; hosts: HostsRepository; agentLinks: AgentLinks }): Route[] {
  const requireHost = (id: string): void => {
    if (!deps.hosts.get(id)) throw new LabrigError("unknown_host", `No host '${id}'.`);
  };
  return [
    route({
      method: "post",
      path: "/api/hosts",
      tag: "hosts",
      access: "admin",
      summary: "Enrol a host; answers its token once.",
      body: HostCreateBodySchema,
      response: HostTokenIssuedSchema,
      status: 201,
      handler: ({ body, log, requester }) => {
        const created = deps.tokens.add(body.name, body.labels ?? {});
        log.info({ host: created.id, by: requester }, "host created");
        return created;
      },
    }),
    route({
      method: "post",
      path: "/api/hosts/:host/token",
      tag: "hosts",
      access: "admin",
      summary: "Issue a new host token; the old one stops working and its agent is disconnected at once.",
      params: HostPath,
      response: HostTokenIssuedSchema,
      handler: ({ params, log, requester }) => {
        requireHost(params.host);
        const token = deps.tokens.rotate(params.host);
        // This process owns the agent's socket, so the old token's connection ends now, not at its next heartbeat.
        const dropped = deps.agentLinks.disconnect(params.host, "token rotated");
        log.info({ host: params.host, agent_disconnected: dropped, by: requester }, "host token rotated");
        return { id: params.host, token };
      },
    }),
    route({
      method: "delete",
      path: "/api/hosts/:host/token",
      tag: "hosts",
      access: "admin",
      summary: "Revoke the host's token: its agent is disconnected and no token works until a new one is issued.",
      params: HostPath,
      response: null,
      handler: ({ params, log, requester }) => {
        deps.tokens.revoke(params.host);
        const dropped = deps.agentLinks.disconnect(params.host, "token revoked");
        log.info({ host: params.host, agent_disconnected: dropped, by: requester }, "host token revoked");
      },
    }),
    route({
      method: "delete",
      path: "/api/hosts/:host",
      tag: "hosts",
      access: "admin",
      summary: "Remove a host (its agent is disconnected; its action history stays).",
      params: HostPath,
      response: null,
      handler: ({ params, log, requester }) => {
        requireHost(params.host);
        const dropped = deps.agentLinks.disconnect(params.host, "host removed");
        deps.tokens.remove(params.host);
        log.info({ host: params.host, agent_disconnected: dropped, by: requester }, "host removed");
      },
    }),
  ];
}
