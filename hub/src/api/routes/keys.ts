import { Router } from "express";
import type { ApiKeys } from "../../services/api-keys.js";
import { requestLocals } from "../request-id.js";

/** Operator API keys (admin only, by the route table): create (shown once), list, revoke. */
export function keysRouter(deps: { apiKeys: ApiKeys }): Router {
  const router = Router();

  router.get("/keys", (_req, res) => {
    res.json({ keys: deps.apiKeys.list() });
  });

  router.post("/keys", (req, res) => {
    const created = deps.apiKeys.create(req.body);
    const { log, principal } = requestLocals(res);
    log.info({ key_id: created.id, key_name: created.name, key_role: created.role, by: principal?.name }, "API key created");
    res.status(201).json(created);
  });

  router.delete("/keys/:id", (req, res) => {
    const revoked = deps.apiKeys.revoke(req.params.id);
    const { log, principal } = requestLocals(res);
    log.info({ key_id: revoked.id, key_name: revoked.name, by: principal?.name }, "API key revoked");
    res.status(204).end();
  });

  return router;
}
