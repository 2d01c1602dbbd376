import { z } from "zod";
import { ActionNameSchema } from "./actions.js";
import { ErrorEnvelopeSchema } from "./errors.js";
import { IdSchema } from "./model.js";
import { multilineText } from "./text.js";

/** One action as the planner proposes it; checked against the catalogue before anything runs. */
export const PlannedActionSchema = z.object({
  action: ActionNameSchema,
  resource: IdSchema.optional(),
  params: z.record(z.string(), z.unknown()).default({}),
});
export type PlannedAction = z.infer<typeof PlannedActionSchema>;

/** The model's answer, as the structured-output schema asks for it. */
export const PlanAnswerSchema = z.object({
  observation: z.string(),
  reasoning: z.string().default(""),
  actions: z.array(z.unknown()).max(20),
  done: z.boolean(),
});
export type PlanAnswer = z.infer<typeof PlanAnswerSchema>;

/** Body of `POST /api/plans`. */
export const PlanRequestBodySchema = z
  .object({
    instruction: multilineText(4000),
    host: IdSchema,
    device: IdSchema,
    /** The video resource to take the frame from, when the device has several. */
    resource: IdSchema.optional(),
    execute: z.boolean().default(false),
    /** Action kinds the plan may use; default: every action the device offers except power actions. */
    allow: z.array(ActionNameSchema).min(1).optional(),
    /** Needed when the device is leased: the actions run under this lease. */
    lease_token: z.string().max(128).optional(),
  })
  .strict();
export type PlanRequestBody = z.infer<typeof PlanRequestBodySchema>;

export const PlanStatusSchema = z.enum(["planned", "executed", "failed", "invalid"]);
export type PlanStatus = z.infer<typeof PlanStatusSchema>;

/** A stored plan: what was asked, what the model saw and answered, and what ran. */
export const PlanRecordSchema = z.object({
  id: z.string(),
  status: PlanStatusSchema,
  host: IdSchema,
  device: IdSchema,
  resource: z.string().nullable(),
  instruction: z.string(),
  observation: z.string(),
  reasoning: z.string(),
  actions: z.array(PlannedActionSchema),
  done: z.boolean(),
  usage: z.object({ input_tokens: z.number().int().nonnegative(), output_tokens: z.number().int().nonnegative() }),
  latency_ms: z.number().nonnegative(),
  model: z.string(),
  attempts: z.number().int().positive(),
  frame: z
    .object({ artifact: z.string(), width: z.number().int(), height: z.number().int(), bytes: z.number().int() })
    .nullable(),
  error: ErrorEnvelopeSchema.nullable(),
  executed: z.array(z.record(z.string(), z.unknown())).optional(),
  goal: z.string().nullable(),
  created_at: z.string(),
});
export type PlanRecord = z.infer<typeof PlanRecordSchema>;
