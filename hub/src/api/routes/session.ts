import { LabrigError, type SessionView } from "@labrig/shared";
import { Router } from "express";
import { requestLocals } from "../request-id.js";

/** GET /api/session: who the caller's credential belongs to, so the dashboard can show what it may do and why not. */
export function sessionRouter(): Router {
  const router = Router();
  router.get("/session", (_req, res) => {
    const principal = requestLocals(res).principal;
    // The guard authenticates every non-public route before it gets here; without a principal something is miswired.
    if (!principal) throw new LabrigError("internal_error", "No principal on an authenticated route; the hub has logged it.");
    const view: SessionView = {
      name: principal.name,
      role: principal.role,
      kind: principal.kind,
      expires_at: principal.expiresAtMs === null ? null : new Date(principal.expiresAtMs).toISOString(),
    };
    res.json(view);
  });
  return router;
}
