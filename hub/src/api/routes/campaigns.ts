import {
  CampaignBodySchema,
  CampaignRecordSchema,
  RunAcceptedSchema,
  RunRecordSchema,
  RunSummarySchema,
  RunsQuerySchema,
  TestCaseBodySchema,
  TestCaseRecordSchema,
  TestCaseRunBodySchema,
} from "@labrig/shared";
import { z } from "zod";
import type { CampaignService } from "../../services/campaigns/campaign-service.js";
import { validateTestCase } from "../../services/campaigns/validation.js";
import { RESPONDED, route, type Route } from "../route.js";

const IdPath = z.object({ id: z.string().min(1).max(128) });
const ArtifactPath = z.object({ id: z.string().min(1).max(128), name: z.string().min(1).max(255) });

/** Test cases, campaigns, runs and their reports. */
export function campaignRoutes(deps: { campaigns: CampaignService }): Route[] {
  const svc = deps.campaigns;
  return [
    route({ method: "get", path: "/api/testcases", tag: "campaigns", summary: "Test cases.", response: z.object({ testcases: z.array(TestCaseRecordSchema) }), handler: () => ({ testcases: svc.listTestCases() }) }),
    route({
      method: "post",
      path: "/api/testcases",
      tag: "campaigns",
      summary: "Create a test case (validated against the action catalogue before it is stored).",
      body: TestCaseBodySchema,
      parseBody: validateTestCase,
      response: TestCaseRecordSchema,
      status: 201,
      handler: ({ body }) => svc.createTestCase(body),
    }),
    route({ method: "get", path: "/api/testcases/:id", tag: "campaigns", summary: "One test case.", params: IdPath, response: TestCaseRecordSchema, handler: ({ params }) => svc.getTestCase(params.id) }),
    route({
      method: "put",
      path: "/api/testcases/:id",
      tag: "campaigns",
      summary: "Replace a test case.",
      params: IdPath,
      body: TestCaseBodySchema,
      parseBody: validateTestCase,
      response: TestCaseRecordSchema,
      handler: ({ params, body }) => svc.updateTestCase(params.id, body),
    }),
    route({
      method: "delete",
      path: "/api/testcases/:id",
      tag: "campaigns",
      summary: "Delete a test case (409 while a campaign lists it).",
      params: IdPath,
      response: null,
      handler: ({ params }) => svc.deleteTestCase(params.id),
    }),
    route({
      method: "post",
      path: "/api/testcases/:id/runs",
      tag: "campaigns",
      summary: "Run one test case now (on its own target, or the one in the body).",
      params: IdPath,
      body: TestCaseRunBodySchema,
      bodyName: "run request",
      response: RunAcceptedSchema,
      status: 202,
      handler: ({ params, body, requester }) => svc.startTestCaseRun(params.id, body, requester),
    }),
    route({ method: "get", path: "/api/campaigns", tag: "campaigns", summary: "Campaigns with their next scheduled start.", response: z.object({ campaigns: z.array(CampaignRecordSchema) }), handler: () => ({ campaigns: svc.listCampaigns() }) }),
    route({
      method: "post",
      path: "/api/campaigns",
      tag: "campaigns",
      summary: "Create a campaign.",
      body: CampaignBodySchema,
      parseBody: (raw) => svc.validateCampaign(raw),
      response: CampaignRecordSchema,
      status: 201,
      handler: ({ body }) => svc.createCampaign(body),
    }),
    route({ method: "get", path: "/api/campaigns/:id", tag: "campaigns", summary: "One campaign (by id or name).", params: IdPath, response: CampaignRecordSchema, handler: ({ params }) => svc.getCampaign(params.id) }),
    route({
      method: "put",
      path: "/api/campaigns/:id",
      tag: "campaigns",
      summary: "Replace a campaign.",
      params: IdPath,
      body: CampaignBodySchema,
      parseBody: (raw) => svc.validateCampaign(raw),
      response: CampaignRecordSchema,
      handler: ({ params, body }) => svc.updateCampaign(params.id, body),
    }),
    route({ method: "delete", path: "/api/campaigns/:id", tag: "campaigns", summary: "Delete a campaign (its runs stay).", params: IdPath, response: null, handler: ({ params }) => svc.deleteCampaign(params.id) }),
    route({
      method: "post",
      path: "/api/campaigns/:id/runs",
      tag: "campaigns",
      summary: "Start a run of the campaign now.",
      params: IdPath,
      response: RunAcceptedSchema,
      status: 202,
      handler: ({ params, requester }) => svc.startCampaignRun(params.id, requester),
    }),
    route({
      method: "get",
      path: "/api/runs",
      tag: "runs",
      summary: "Runs, newest first.",
      query: RunsQuerySchema,
      response: z.object({ runs: z.array(RunSummarySchema), next_cursor: z.string().nullable() }),
      handler: ({ query }) => svc.listRuns({ campaign: query.campaign, status: query.status, limit: query.limit, beforeSeq: query.cursor === undefined ? undefined : Number(query.cursor) }),
    }),
    route({ method: "get", path: "/api/runs/:id", tag: "runs", summary: "A run with every test attempt and step.", params: IdPath, response: RunRecordSchema, handler: ({ params }) => svc.getRun(params.id) }),
    route({
      method: "get",
      path: "/api/runs/:id/junit.xml",
      tag: "runs",
      summary: "The run as JUnit XML.",
      params: IdPath,
      responseType: "application/xml",
      handler: ({ params, res }) => {
        res.type("application/xml; charset=utf-8").send(svc.junit(params.id));
        return RESPONDED;
      },
    }),
    route({
      method: "post",
      path: "/api/runs/:id/cancel",
      tag: "runs",
      summary: "Cancel a run: running actions are aborted, teardown still runs.",
      params: IdPath,
      response: RunRecordSchema,
      handler: ({ params, requester }) => svc.cancelRun(params.id, requester),
    }),
    route({
      method: "get",
      path: "/api/runs/:id/artifacts/:name",
      tag: "runs",
      summary: "A file a run produced (transcript, console, snapshot, clip).",
      params: ArtifactPath,
      responseType: "application/octet-stream",
      handler: async ({ params, res }) => {
        const file = svc.artifactFile(params.id, params.name);
        res.setHeader("Content-Type", file.mimeType);
        res.setHeader("X-Content-Type-Options", "nosniff");
        res.setHeader("Content-Disposition", `inline; filename="${params.name}"`);
        // Artifacts are never rewritten; the path is already resolved and checked, so no dotfile or root logic applies.
        await new Promise<void>((resolve, reject) => res.sendFile(file.path, { dotfiles: "deny" }, (err) => (err ? reject(err) : resolve())));
        return RESPONDED;
      },
    }),
  ];
}
