import { existsSync } from "node:fs";
import { join } from "node:path";
import { IdSchema, LabrigError, PlanRequestBodySchema, parseOrThrow } from "@labrig/shared";
import { Router } from "express";
import { z } from "zod";
import type { PlansRepository } from "../../repositories/plans.js";
import { publicPlan, type Planner } from "../../services/planner/planner.js";
import { requesterName } from "../requester.js";

const ListQuerySchema = z
  .object({
    host: IdSchema.optional(),
    goal: z.string().max(64).optional(),
    limit: z.coerce.number().int().min(1).max(500).default(50),
    before: z.iso.datetime().optional(),
  })
  .strict();

/** Gemini planning: POST /api/plans plans (and optionally runs) the next actions from a frame. */
export function plansRouter(deps: { planner: Planner; plans: PlansRepository; dataDir: string }): Router {
  const router = Router();

  router.post("/plans", async (req, res) => {
    const body = parseOrThrow(PlanRequestBodySchema, req.body, { what: "plan request" });
    const { lease_token: leaseToken, ...request } = body;
    const plan = await deps.planner.plan({ ...request, requestedBy: requesterName(res), leaseToken });
    res.status(201).json(publicPlan(plan));
  });

  router.get("/plans", (req, res) => {
    const q = parseOrThrow(ListQuerySchema, req.query, { what: "query" });
    const plans = deps.plans.list({ host: q.host, goal: q.goal, before: q.before, limit: q.limit });
    res.json({ plans: plans.map((p) => publicPlan(p)), next_before: plans.length === q.limit ? (plans.at(-1)?.created_at ?? null) : null });
  });

  router.get("/plans/:id", (req, res) => {
    const plan = deps.plans.get(req.params.id);
    if (!plan) throw new LabrigError("not_found", `No plan '${req.params.id}'.`);
    res.json(publicPlan(plan, req.query.prompt === "1"));
  });

  router.get("/plans/:id/frame", (req, res) => {
    const plan = deps.plans.get(req.params.id);
    if (!plan?.frame) throw new LabrigError("not_found", `Plan '${req.params.id}' has no frame.`);
    // The file name comes from the stored plan id (a UUID the hub generated), never from the request.
    const file = join(deps.dataDir, "plans", `${plan.id}.jpg`);
    if (!existsSync(file)) throw new LabrigError("not_found", `The frame of plan '${plan.id}' is no longer stored.`);
    res.type("image/jpeg").sendFile(file);
  });

  return router;
}
