import { existsSync } from "node:fs";
import { join } from "node:path";
import { IdSchema, LabrigError, PlanRecordSchema, PlanRequestBodySchema } from "@labrig/shared";
import { z } from "zod";
import type { PlansRepository } from "../../repositories/plans.js";
import { publicPlan, type Planner } from "../../services/planner/planner.js";
import { RESPONDED, route, type Route } from "../route.js";

const ListQuerySchema = z
  .object({
    host: IdSchema.optional(),
    goal: z.string().max(64).optional(),
    limit: z.coerce.number().int().min(1).max(500).default(50),
    before: z.iso.datetime().optional(),
  })
  .strict();

const IdPath = z.object({ id: z.string().min(1).max(64) });

/** Gemini planning: POST /api/plans plans (and optionally runs) the next actions from a frame. */
export function planRoutes(deps: { planner: Planner; plans: PlansRepository; dataDir: string }): Route[] {
  return [
    route({
      method: "post",
      path: "/api/plans",
      tag: "plans",
      summary: "Ask the planner for the next actions from a captured frame (and run them with execute).",
      body: PlanRequestBodySchema,
      bodyName: "plan request",
      response: PlanRecordSchema,
      status: 201,
      handler: async ({ body, requester, res }) => {
        const { lease_token: leaseToken, ...request } = body;
        // A client that gives up (closes the connection) cancels the plan and the actions it runs.
        const gone = new AbortController();
        const onClose = (): void => {
          if (!res.writableFinished) gone.abort(new LabrigError("canceled", "The client closed the connection before the plan finished."));
        };
        res.once("close", onClose);
        try {
          return publicPlan(await deps.planner.plan({ ...request, requestedBy: requester, leaseToken, signal: gone.signal }));
        } finally {
          res.off("close", onClose);
        }
      },
    }),
    route({
      method: "get",
      path: "/api/plans",
      tag: "plans",
      summary: "Plans, newest first (next_before pages on).",
      query: ListQuerySchema,
      response: z.object({ plans: z.array(PlanRecordSchema), next_before: z.string().nullable() }),
      handler: ({ query }) => {
        const plans = deps.plans.list({ host: query.host, goal: query.goal, before: query.before, limit: query.limit });
        return { plans: plans.map((p) => publicPlan(p)), next_before: plans.length === query.limit ? (plans.at(-1)?.created_at ?? null) : null };
      },
    }),
    route({
      method: "get",
      path: "/api/plans/:id",
      tag: "plans",
      summary: "One plan (?prompt=1 adds the prompt it was sent).",
      params: IdPath,
      query: z.object({ prompt: z.enum(["0", "1"]).optional() }).strict(),
      response: PlanRecordSchema,
      handler: ({ params, query }) => {
        const plan = deps.plans.get(params.id);
        if (!plan) throw new LabrigError("not_found", `No plan '${params.id}'.`);
        return publicPlan(plan, query.prompt === "1");
      },
    }),
    route({
      method: "get",
      path: "/api/plans/:id/frame",
      tag: "plans",
      summary: "The frame the planner saw.",
      params: IdPath,
      responseType: "image/jpeg",
      handler: async ({ params, res }) => {
        const plan = deps.plans.get(params.id);
        if (!plan?.frame) throw new LabrigError("not_found", `Plan '${params.id}' has no frame.`);
        // The file name comes from the stored plan id (a UUID the hub generated), never from the request.
        const file = join(deps.dataDir, "plans", `${plan.id}.jpg`);
        if (!existsSync(file)) throw new LabrigError("not_found", `The frame of plan '${plan.id}' is no longer stored.`);
        res.type("image/jpeg");
        await new Promise<void>((resolve, reject) => res.sendFile(file, (err) => (err ? reject(err) : resolve())));
        return RESPONDED;
      },
    }),
  ];
}
