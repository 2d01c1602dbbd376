import { RunsQuerySchema, parseOrThrow } from "@labrig/shared";
import { Router } from "express";
import type { CampaignService } from "../../services/campaigns/campaign-service.js";
import { requesterName } from "../requester.js";

/** Test cases, campaigns, runs and their reports. */
export function campaignsRouter(deps: { campaigns: CampaignService }): Router {
  const router = Router();
  const svc = deps.campaigns;

  router.get("/testcases", (_req, res) => {
    res.json({ testcases: svc.listTestCases() });
  });
  router.post("/testcases", (req, res) => {
    res.status(201).json(svc.createTestCase(req.body));
  });
  router.get("/testcases/:id", (req, res) => {
    res.json(svc.getTestCase(req.params.id));
  });
  router.put("/testcases/:id", (req, res) => {
    res.json(svc.updateTestCase(req.params.id, req.body));
  });
  router.delete("/testcases/:id", (req, res) => {
    svc.deleteTestCase(req.params.id);
    res.status(204).end();
  });
  router.post("/testcases/:id/runs", (req, res) => {
    res.status(202).json(svc.startTestCaseRun(req.params.id, req.body, requesterName(res)));
  });

  router.get("/campaigns", (_req, res) => {
    res.json({ campaigns: svc.listCampaigns() });
  });
  router.post("/campaigns", (req, res) => {
    res.status(201).json(svc.createCampaign(req.body));
  });
  router.get("/campaigns/:id", (req, res) => {
    res.json(svc.getCampaign(req.params.id));
  });
  router.put("/campaigns/:id", (req, res) => {
    res.json(svc.updateCampaign(req.params.id, req.body));
  });
  router.delete("/campaigns/:id", (req, res) => {
    svc.deleteCampaign(req.params.id);
    res.status(204).end();
  });
  router.post("/campaigns/:id/runs", (req, res) => {
    res.status(202).json(svc.startCampaignRun(req.params.id, requesterName(res)));
  });

  router.get("/runs", (req, res) => {
    const q = parseOrThrow(RunsQuerySchema, req.query, { what: "query", prefix: "query" });
    res.json(svc.listRuns({ campaign: q.campaign, status: q.status, limit: q.limit, beforeSeq: q.cursor === undefined ? undefined : Number(q.cursor) }));
  });
  router.get("/runs/:id", (req, res) => {
    res.json(svc.getRun(req.params.id));
  });
  router.get("/runs/:id/junit.xml", (req, res) => {
    const xml = svc.junit(req.params.id);
    res.type("application/xml; charset=utf-8").send(xml);
  });
  router.post("/runs/:id/cancel", (req, res) => {
    res.json(svc.cancelRun(req.params.id, requesterName(res)));
  });
  router.get("/runs/:id/artifacts/:name", (req, res, next) => {
    const file = svc.artifactFile(req.params.id, req.params.name);
    res.setHeader("Content-Type", file.mimeType);
    res.setHeader("X-Content-Type-Options", "nosniff");
    res.setHeader("Content-Disposition", `inline; filename="${req.params.name}"`);
    // Artifacts are never rewritten; the path is already resolved and checked, so no dotfile or root logic applies.
    res.sendFile(file.path, { dotfiles: "deny" }, (err) => {
      if (err) next(err);
    });
  });

  return router;
}
