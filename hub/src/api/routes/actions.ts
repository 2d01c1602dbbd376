import { LabrigError } from "@labrig/shared";
import { Router } from "express";
import type { ActionsRepository } from "../../repositories/actions.js";
import type { ActionProxy } from "../../services/action-proxy.js";

/** Running actions on an exact host+device, and reading their records. */
export function actionsRouter(deps: { proxy: ActionProxy; actions: ActionsRepository }): Router {
  const router = Router();

  router.post("/hosts/:host/devices/:device/actions", async (req, res) => {
    // Operators are not authenticated yet, so there is no "who" to record; API keys will fill requested_by.
    const record = await deps.proxy.run(req.params.host, req.params.device, req.body, null);
    res.json(record);
  });

  router.get("/actions/:id", (req, res) => {
    const record = deps.actions.get(req.params.id);
    if (!record) throw new LabrigError("not_found", `No action '${req.params.id}'.`);
    res.json(record);
  });

  return router;
}
