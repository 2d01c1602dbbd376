import { ApiKeyCreateBodySchema, ApiKeyCreatedSchema, ApiKeyViewSchema } from "@labrig/shared";
import { z } from "zod";
import type { ApiKeys } from "../../services/api-keys.js";
import { route, type Route } from "../route.js";

/** Operator API keys (admin only): create (shown once), list, revoke. */
export function keyRoutes(deps: { apiKeys: ApiKeys }): Route[] {
  return [
    route({
      method: "get",
      path: "/api/keys",
      tag: "keys",
      access: "admin",
      summary: "API keys (never the key or its hash).",
      response: z.object({ keys: z.array(ApiKeyViewSchema) }),
      handler: () => ({ keys: deps.apiKeys.list() }),
    }),
    route({
      method: "post",
      path: "/api/keys",
      tag: "keys",
      access: "admin",
      summary: "Create an API key; answers the key once.",
      body: ApiKeyCreateBodySchema,
      response: ApiKeyCreatedSchema,
      status: 201,
      handler: ({ body, log, requester }) => {
        const created = deps.apiKeys.create(body);
        log.info({ key_id: created.id, key_name: created.name, key_role: created.role, by: requester }, "API key created");
        return created;
      },
    }),
    route({
      method: "delete",
      path: "/api/keys/:id",
      tag: "keys",
      access: "admin",
      summary: "Revoke an API key (the last admin key cannot be revoked); its dashboards are disconnected.",
      params: z.object({ id: z.string().min(1).max(64) }),
      response: null,
      handler: ({ params, log, requester }) => {
        const revoked = deps.apiKeys.revoke(params.id);
        log.info({ key_id: revoked.id, key_name: revoked.name, by: requester }, "API key revoked");
      },
    }),
  ];
}
