import { z } from "zod";
import { ACTION_NAMES, ActionNameSchema, MAX_ACTION_MS } from "./actions.js";
import { ErrorEnvelopeSchema } from "./errors.js";
import { IdSchema, LabelsSchema } from "./model.js";
import { PageQueryFields } from "./paging.js";
import { lineText, multilineText } from "./text.js";

// Test cases, campaigns, runs and their reports: REST bodies, stored records and dashboard events.
// Cross-field rules (step references, params against the catalogue, regexes) are checked by the
// hub's test-case validator, which names the exact path; these schemas check shape only.

/** The action a step runs: a catalogue action, or `ai.goal` (the planner drives the device until a success condition holds). */
export const GOAL_ACTION = "ai.goal";
export const StepActionSchema = z.enum([...ACTION_NAMES, GOAL_ACTION]);
export type StepAction = z.infer<typeof StepActionSchema>;

/** Which devices may run a test, an action or a lease: all listed capabilities and labels must match (the one selector shape). */
export const TargetSelectorSchema = z
  .object({
    capabilities: z.array(z.string().min(1).max(64)).max(32).default([]),
    labels: LabelsSchema.default({}),
  })
  .strict();
export type TargetSelector = z.infer<typeof TargetSelectorSchema>;

export const RunTargetSchema = z.object({ selector: TargetSelectorSchema }).strict();
export type RunTarget = z.infer<typeof RunTargetSchema>;

/** Step names are referred to by templates (`{{steps.<name>.<path>}}`), so they are identifiers. */
export const StepNameSchema = z
  .string()
  .regex(/^[A-Za-z_][A-Za-z0-9_-]{0,62}$/, "must be 1-63 characters: letters, digits, '_' or '-', starting with a letter or '_'");

export const EXPECT_OPS = ["equals", "not_equals", "contains", "matches", "gt", "gte", "lt", "lte"] as const;

/** One check of an action's result: `field` is a dotted path into it (`groups.0`, `text`, `value`). */
export const ExpectationSchema = z
  .object({
    field: z.string().regex(/^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*$/, "must be a dotted path into the result such as text, value or groups.0"),
    op: z.enum(EXPECT_OPS),
    value: z.unknown(),
  })
  .strict();
export type Expectation = z.infer<typeof ExpectationSchema>;

/** Parameters of an `ai.goal` step. Power actions are allowed only when listed in `allow`. */
export const GoalParamsSchema = z
  .object({
    instruction: multilineText(4000),
    success: multilineText(2000),
    max_steps: z.number().int().min(1).max(100).default(10),
    max_errors: z.number().int().min(0).max(50).default(3),
    /** Pause after each iteration's actions before the next snapshot, so the screen and console catch up. */
    settle_ms: z.number().int().min(0).max(60_000).default(500),
    allow: z.array(ActionNameSchema).min(1).max(ACTION_NAMES.length),
  })
  .strict();
export type GoalParams = z.infer<typeof GoalParamsSchema>;

/** One step of a test case. Params are checked against the action catalogue when the test case is saved. */
export const StepSchema = z
  .object({
    name: StepNameSchema,
    action: z.string().min(1).max(64),
    resource: IdSchema.optional(),
    params: z.record(z.string(), z.unknown()).default({}),
    timeout_ms: z.number().int().min(1).max(MAX_ACTION_MS).optional(),
    expect: z.union([ExpectationSchema, z.array(ExpectationSchema).max(32)]).optional(),
    /** A failure of this step is recorded but does not fail the test (GitHub Actions' continue-on-error). */
    continue_on_failure: z.boolean().default(false),
  })
  .strict();
export type Step = z.infer<typeof StepSchema>;

const TagSchema = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._:/-]{0,63}$/, "tags are 1-64 characters: letters, digits, '.', '_', ':', '/' or '-'");
const NameSchema = lineText(128);

/** Body of `POST /api/testcases` and `PUT /api/testcases/:id`. */
export const TestCaseBodySchema = z
  .object({
    name: NameSchema,
    description: multilineText(4000, 0).default(""),
    tags: z.array(TagSchema).max(32).default([]),
    target: RunTargetSchema.default({ selector: { capabilities: [], labels: {} } }),
    setup: z.array(StepSchema).max(100).default([]),
    steps: z.array(StepSchema).min(1).max(200),
    teardown: z.array(StepSchema).max(100).default([]),
  })
  .strict();
export type TestCaseBody = z.infer<typeof TestCaseBodySchema>;

/** A stored test case. */
export const TestCaseRecordSchema = TestCaseBodySchema.extend({
  id: z.string(),
  created_at: z.string(),
  updated_at: z.string(),
});
export type TestCaseRecord = z.infer<typeof TestCaseRecordSchema>;

/** When a campaign runs by itself: a cron expression (5 fields, or 6 with seconds) in an IANA time zone. */
export const ScheduleSchema = z
  .object({
    cron: z.string().trim().min(1).max(128),
    timezone: z.string().trim().min(1).max(64).default("UTC"),
  })
  .strict();
export type Schedule = z.infer<typeof ScheduleSchema>;

/** Body of `POST /api/campaigns` and `PUT /api/campaigns/:id`. */
export const CampaignBodySchema = z
  .object({
    name: NameSchema,
    testcases: z.array(z.string().min(1).max(64)).min(1).max(500),
    target: RunTargetSchema.default({ selector: { capabilities: [], labels: {} } }),
    parallelism: z.number().int().min(1).max(32).default(1),
    retries: z.number().int().min(0).max(5).default(0),
    /** False: once a test fails, the tests not yet started are skipped. */
    continue_on_failure: z.boolean().default(true),
    timeout_s: z.number().int().min(1).max(7 * 86_400).default(3600),
    schedule: ScheduleSchema.nullable().optional(),
    enabled: z.boolean().default(true),
  })
  .strict();
export type CampaignBody = z.infer<typeof CampaignBodySchema>;

/** A stored campaign; `next_run_at` is the next scheduled start (null without a schedule or when disabled). */
export const CampaignRecordSchema = CampaignBodySchema.extend({
  id: z.string(),
  schedule: ScheduleSchema.nullable(),
  next_run_at: z.string().nullable(),
  created_at: z.string(),
  updated_at: z.string(),
});
export type CampaignRecord = z.infer<typeof CampaignRecordSchema>;

/** Body of `POST /api/testcases/:id/runs` (optional): run one test case, on another target than its own. */
export const TestCaseRunBodySchema = z.object({ target: RunTargetSchema.optional() }).strict();
export type TestCaseRunBody = z.infer<typeof TestCaseRunBodySchema>;

/**
 * Run states. `skipped` is a scheduled start that did not happen because the previous run of the
 * same campaign was still going (recorded so a missing nightly result is explained, not silent).
 */
export const RUN_STATUSES = ["queued", "running", "passed", "failed", "error", "canceled", "interrupted", "skipped"] as const;
export const RunStatusSchema = z.enum(RUN_STATUSES);
export type RunStatus = z.infer<typeof RunStatusSchema>;
export const FINISHED_RUN_STATUSES: readonly RunStatus[] = ["passed", "failed", "error", "canceled", "interrupted", "skipped"];

/** Test and step outcomes: `failed` = the device did not do what the test expects; `error` = the rig or hub could not run it. */
export const RESULT_STATUSES = ["running", "passed", "failed", "error", "canceled", "skipped"] as const;
export const ResultStatusSchema = z.enum(RESULT_STATUSES);
export type ResultStatus = z.infer<typeof ResultStatusSchema>;

export const StepPhaseSchema = z.enum(["setup", "main", "teardown"]);
export type StepPhase = z.infer<typeof StepPhaseSchema>;

/** A file a step produced, served by `GET /api/runs/:id/artifacts/:name` until retention deletes it. */
export const RunArtifactSchema = z.object({
  name: z.string(),
  kind: z.enum(["transcript", "console", "snapshot", "clip", "other"]),
  mime_type: z.string(),
  bytes: z.number().int().nonnegative(),
  created_at: z.string(),
  deleted: z.boolean(),
});
export type RunArtifact = z.infer<typeof RunArtifactSchema>;

export const StepResultSchema = z.object({
  index: z.number().int().nonnegative(),
  phase: StepPhaseSchema,
  name: z.string(),
  action: z.string(),
  status: ResultStatusSchema,
  message: z.string().nullable(),
  action_ids: z.array(z.string()),
  result: z.unknown().nullable(),
  error: ErrorEnvelopeSchema.nullable(),
  started_at: z.string().nullable(),
  finished_at: z.string().nullable(),
  duration_ms: z.number().nullable(),
  artifacts: z.array(RunArtifactSchema),
});
export type StepResult = z.infer<typeof StepResultSchema>;

export const TestResultSchema = z.object({
  id: z.string(),
  testcase_id: z.string(),
  name: z.string(),
  position: z.number().int().nonnegative(),
  attempt: z.number().int().positive(),
  /** False for attempts that were retried; the final attempt of each test is the one that counts. */
  final: z.boolean(),
  status: ResultStatusSchema,
  message: z.string().nullable(),
  host: z.string().nullable(),
  device: z.string().nullable(),
  lease_id: z.string().nullable(),
  started_at: z.string().nullable(),
  finished_at: z.string().nullable(),
  duration_ms: z.number().nullable(),
  steps: z.array(StepResultSchema),
});
export type TestResult = z.infer<typeof TestResultSchema>;

export const RunSummarySchema = z.object({
  id: z.string(),
  campaign_id: z.string().nullable(),
  testcase_id: z.string().nullable(),
  name: z.string(),
  status: RunStatusSchema,
  reason: z.string().nullable(),
  trigger: z.enum(["api", "schedule"]),
  requested_by: z.string().nullable(),
  created_at: z.string(),
  started_at: z.string().nullable(),
  finished_at: z.string().nullable(),
  duration_ms: z.number().nullable(),
  counts: z.object({ tests: z.number().int(), passed: z.number().int(), failed: z.number().int(), error: z.number().int(), skipped: z.number().int(), canceled: z.number().int() }),
});
export type RunSummary = z.infer<typeof RunSummarySchema>;

/** `GET /api/runs/:id`: the run with every attempt of every test and their steps. */
export const RunRecordSchema = RunSummarySchema.extend({
  settings: z.object({ parallelism: z.number().int(), retries: z.number().int(), continue_on_failure: z.boolean(), timeout_s: z.number().int(), target: RunTargetSchema }),
  tests: z.array(TestResultSchema),
});
export type RunRecord = z.infer<typeof RunRecordSchema>;

/** Query of `GET /api/runs`. */
export const RunsQuerySchema = z
  .object({
    campaign: z.string().min(1).max(64).optional(),
    status: RunStatusSchema.optional(),
    ...PageQueryFields,
  })
  .strict();

/** Answer of `POST /api/campaigns/:id/runs` and `POST /api/testcases/:id/runs` (202). */
export const RunAcceptedSchema = z.object({ id: z.string(), status: RunStatusSchema });

/** Dashboard events of the campaign runner (published on /dashboard). */
export const RUN_EVENT_NAMES = ["run.started", "test.started", "test.finished", "step.finished", "run.finished"] as const;
export type RunEventName = (typeof RUN_EVENT_NAMES)[number];
export const RunEventSchema = z.object({
  run_id: z.string(),
  campaign_id: z.string().nullable(),
  at: z.string(),
  status: z.string().optional(),
  reason: z.string().nullable().optional(),
  test: z.object({ id: z.string(), name: z.string(), attempt: z.number().int(), host: z.string().nullable(), device: z.string().nullable() }).optional(),
  step: z.object({ name: z.string(), phase: StepPhaseSchema, status: ResultStatusSchema, message: z.string().nullable(), duration_ms: z.number().nullable() }).optional(),
});
export type RunEvent = z.infer<typeof RunEventSchema>;
