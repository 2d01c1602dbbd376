import { ActionPageSchema, ActionsQuerySchema, DispatchBodySchema, ExactActionBodySchema, IdSchema, LabrigError, StoredActionSchema, settlesWithin } from "@labrig/shared";
import type { Request } from "express";
import { z } from "zod";
import type { ActionsRepository } from "../../repositories/actions.js";
import type { ActionSubmission, WorkFacade } from "../../services/work/work.js";
import { route, withStatus, type Route } from "../route.js";

/** How long DELETE waits for a running action to end on the agent before answering 202. */
const CANCEL_WAIT_MS = 5000;

const DevicePath = z.object({ host: IdSchema, device: IdSchema });
const IdPath = z.object({ id: z.string().min(1).max(64) });

function leaseTokenOf(req: Request, fromBody: string | undefined): string | undefined {
  const header = req.get("x-lease-token");
  return fromBody ?? (header !== undefined && header !== "" ? header : undefined);
}

/** What both action routes hand the work facade: the validated body, its target, the lease token and the caller. */
function submission(req: Request, requester: string | null, body: z.infer<typeof ExactActionBodySchema>, target: ActionSubmission["target"]): ActionSubmission {
  return {
    action: body.action,
    resource: body.resource,
    params: body.params,
    target,
    leaseToken: leaseTokenOf(req, body.lease_token),
    priority: body.priority,
    queueTimeoutMs: body.queue_timeout_ms,
    requestedBy: requester,
  };
}

/** Running actions (by selector or exact target), reading their records, and canceling them. */
export function actionRoutes(deps: { work: WorkFacade; actions: ActionsRepository }): Route[] {
  return [
    route({
      method: "post",
      path: "/api/actions",
      tag: "actions",
      summary: "Run an action on an exact device or on any device matching a selector, and wait for its record.",
      body: DispatchBodySchema,
      response: StoredActionSchema,
      handler: ({ req, body, requester }) => deps.work.submit(submission(req, requester, body, body.target)).done,
    }),
    route({
      method: "post",
      path: "/api/hosts/:host/devices/:device/actions",
      tag: "actions",
      summary: "Run one catalogue action on an exact device and wait for its record (the same queueing, lease and health rules as POST /api/actions).",
      params: DevicePath,
      body: ExactActionBodySchema,
      response: StoredActionSchema,
      handler: ({ req, params, body, requester }) => deps.work.submit(submission(req, requester, body, params)).done,
    }),
    route({
      method: "get",
      path: "/api/actions",
      tag: "actions",
      summary: "Action records, newest first.",
      query: ActionsQuerySchema,
      response: ActionPageSchema,
      handler: ({ query }) => {
        const page = deps.actions.list({ host: query.host, device: query.device, status: query.status, beforeSeq: query.cursor === undefined ? undefined : Number(query.cursor), limit: query.limit });
        return { actions: page.actions, next_cursor: page.next === null ? null : String(page.next) };
      },
    }),
    route({
      method: "get",
      path: "/api/actions/:id",
      tag: "actions",
      summary: "One action record.",
      params: IdPath,
      response: StoredActionSchema,
      handler: ({ params }) => {
        const record = deps.actions.get(params.id);
        if (!record) throw new LabrigError("not_found", `No action '${params.id}'.`);
        return record;
      },
    }),
    route({
      method: "delete",
      path: "/api/actions/:id",
      tag: "actions",
      summary: "Cancel a queued or running action: 200 once it ended, 202 while the agent is still aborting it.",
      params: IdPath,
      response: StoredActionSchema,
      alsoStatus: [202],
      handler: async ({ params, requester }) => {
        const { ended } = deps.work.cancel(params.id, requester);
        const done = await settlesWithin(ended, CANCEL_WAIT_MS);
        const record = deps.actions.get(params.id);
        if (!record) throw new LabrigError("not_found", `No action '${params.id}'.`);
        // 202: the agent was told to abort but has not answered yet; GET the action to see how it ends.
        return done ? record : withStatus(202, record);
      },
    }),
  ];
}
