import { parseOrThrow } from "@labrig/shared";
import { Router, type Request, type Response } from "express";
import type { LeaseCaller, LeaseManager } from "../../services/leases.js";
import { KeepaliveBodySchema, LeaseBodySchema } from "../../services/requests.js";
import { isAdmin, requesterName } from "../requester.js";

function caller(req: Request, res: Response, bodyToken: string | undefined): LeaseCaller {
  const header = req.get("x-lease-token");
  return { token: bodyToken ?? (header !== undefined && header !== "" ? header : undefined), isAdmin: isAdmin(res), name: requesterName(res) };
}

/** Leases: exclusive, expiring holds on devices. */
export function leasesRouter(deps: { leases: LeaseManager }): Router {
  const router = Router();

  router.post("/leases", async (req, res) => {
    const body = parseOrThrow(LeaseBodySchema, req.body, { what: "lease request" });
    const lease = await deps.leases.create(body, requesterName(res));
    res.status(201).json(lease);
  });

  router.get("/leases", (req, res) => {
    const all = req.query.all === "1" || req.query.all === "true";
    res.json({ leases: deps.leases.list(all) });
  });

  router.get("/leases/:id", (req, res) => {
    res.json(deps.leases.get(req.params.id));
  });

  router.post("/leases/:id/keepalive", (req, res) => {
    const body = parseOrThrow(KeepaliveBodySchema, req.body ?? {}, { what: "keepalive request" });
    res.json(deps.leases.keepalive(req.params.id, body, caller(req, res, body.lease_token)));
  });

  router.delete("/leases/:id", (req, res) => {
    const body = parseOrThrow(KeepaliveBodySchema.pick({ lease_token: true }).strict(), req.body ?? {}, { what: "release request" });
    res.json(deps.leases.release(req.params.id, caller(req, res, body.lease_token)));
  });

  return router;
}
