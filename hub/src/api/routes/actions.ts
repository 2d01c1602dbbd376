import { LabrigError, parseOrThrow, settlesWithin } from "@labrig/shared";
import { Router, type Request, type Response } from "express";
import type { z } from "zod";
import type { ActionsRepository } from "../../repositories/actions.js";
import type { ActionSubmission, Dispatcher } from "../../services/dispatcher.js";
import { ActionsQuerySchema, DispatchBodySchema, ExactActionBodySchema } from "../../services/requests.js";
import { requesterName } from "../requester.js";

/** How long DELETE waits for a running action to end on the agent before answering 202. */
const CANCEL_WAIT_MS = 5000;

function leaseTokenOf(req: Request, fromBody: string | undefined): string | undefined {
  const header = req.get("x-lease-token");
  return fromBody ?? (header !== undefined && header !== "" ? header : undefined);
}

/** What both action routes hand the dispatcher: the validated body, its target, the lease token and the caller. */
function submission(req: Request, res: Response, body: z.infer<typeof ExactActionBodySchema>, target: ActionSubmission["target"]): ActionSubmission {
  return {
    action: body.action,
    resource: body.resource,
    params: body.params,
    target,
    leaseToken: leaseTokenOf(req, body.lease_token),
    priority: body.priority,
    queueTimeoutMs: body.queue_timeout_ms,
    requestedBy: requesterName(res),
  };
}

/** Running actions (by selector or exact target), reading their records, and canceling them. */
export function actionsRouter(deps: { dispatcher: Dispatcher; actions: ActionsRepository }): Router {
  const router = Router();

  router.post("/actions", async (req, res) => {
    const body = parseOrThrow(DispatchBodySchema, req.body, { what: "action request" });
    res.json(await deps.dispatcher.submitAction(submission(req, res, body, body.target)));
  });

  // The exact-target shortcut: the same dispatcher, queueing, lease and health rules as POST /api/actions.
  router.post("/hosts/:host/devices/:device/actions", async (req, res) => {
    const body = parseOrThrow(ExactActionBodySchema, req.body, { what: "action request" });
    res.json(await deps.dispatcher.submitAction(submission(req, res, body, { host: req.params.host, device: req.params.device })));
  });

  router.get("/actions", (req, res) => {
    const q = parseOrThrow(ActionsQuerySchema, req.query, { what: "query" });
    const page = deps.actions.list({
      host: q.host,
      device: q.device,
      status: q.status,
      beforeSeq: q.cursor === undefined ? undefined : Number(q.cursor),
      limit: q.limit,
    });
    res.json({ actions: page.actions, next_cursor: page.next === null ? null : String(page.next) });
  });

  router.get("/actions/:id", (req, res) => {
    const record = deps.actions.get(req.params.id);
    if (!record) throw new LabrigError("not_found", `No action '${req.params.id}'.`);
    res.json(record);
  });

  router.delete("/actions/:id", async (req, res) => {
    const { ended } = deps.dispatcher.cancel(req.params.id, requesterName(res));
    const done = await settlesWithin(ended, CANCEL_WAIT_MS);
    const record = deps.actions.get(req.params.id);
    // 202: the agent was told to abort but has not answered yet; GET the action to see how it ends.
    res.status(done ? 200 : 202).json(record);
  });

  return router;
}
