import type { ErrorEnvelope, PlanRecord, PlanStatus, PlannedAction } from "@labrig/shared";
import type { SqliteDb } from "../db/database.js";

interface PlanRow {
  id: string;
  status: PlanStatus;
  host_id: string;
  device_id: string;
  resource: string | null;
  instruction: string;
  observation: string;
  reasoning: string;
  actions_json: string;
  done: number;
  input_tokens: number;
  output_tokens: number;
  latency_ms: number;
  model: string;
  attempts: number;
  frame_json: string | null;
  prompt: string;
  answer: string;
  error_json: string | null;
  executed_json: string | null;
  goal_id: string | null;
  created_at: string;
}

/** A plan with what the API does not show by default: the prompt and the model's raw answer. */
export interface StoredPlan extends PlanRecord {
  prompt: string;
  answer: string;
}

const PLAN_COLUMNS: ReadonlyArray<keyof PlanRow> = [
  "id", "status", "host_id", "device_id", "resource", "instruction", "observation", "reasoning", "actions_json", "done",
  "input_tokens", "output_tokens", "latency_ms", "model", "attempts", "frame_json", "prompt", "answer", "error_json",
  "executed_json", "goal_id", "created_at",
];

function toPlan(row: PlanRow): StoredPlan {
  return {
    id: row.id,
    status: row.status,
    host: row.host_id,
    device: row.device_id,
    resource: row.resource,
    instruction: row.instruction,
    observation: row.observation,
    reasoning: row.reasoning,
    actions: JSON.parse(row.actions_json) as PlannedAction[],
    done: row.done === 1,
    usage: { input_tokens: row.input_tokens, output_tokens: row.output_tokens },
    latency_ms: row.latency_ms,
    model: row.model,
    attempts: row.attempts,
    frame: row.frame_json === null ? null : (JSON.parse(row.frame_json) as PlanRecord["frame"]),
    error: row.error_json === null ? null : (JSON.parse(row.error_json) as ErrorEnvelope),
    ...(row.executed_json === null ? {} : { executed: JSON.parse(row.executed_json) as Array<Record<string, unknown>> }),
    goal: row.goal_id,
    created_at: row.created_at,
    prompt: row.prompt,
    answer: row.answer,
  };
}

function toRow(plan: StoredPlan): PlanRow {
  return {
    id: plan.id,
    status: plan.status,
    host_id: plan.host,
    device_id: plan.device,
    resource: plan.resource,
    instruction: plan.instruction,
    observation: plan.observation,
    reasoning: plan.reasoning,
    actions_json: JSON.stringify(plan.actions),
    done: plan.done ? 1 : 0,
    input_tokens: plan.usage.input_tokens,
    output_tokens: plan.usage.output_tokens,
    latency_ms: plan.latency_ms,
    model: plan.model,
    attempts: plan.attempts,
    frame_json: plan.frame === null ? null : JSON.stringify(plan.frame),
    prompt: plan.prompt,
    answer: plan.answer,
    error_json: plan.error === null ? null : JSON.stringify(plan.error),
    executed_json: plan.executed === undefined ? null : JSON.stringify(plan.executed),
    goal_id: plan.goal,
    created_at: plan.created_at,
  };
}

/** SQL for stored plans. */
export class PlansRepository {
  private readonly stmts;

  constructor(db: SqliteDb) {
    const columns = PLAN_COLUMNS;
    this.stmts = {
      upsert: db.prepare(
        `INSERT INTO plans (${columns.join(", ")}) VALUES (${columns.map((c) => `@${c}`).join(", ")})
         ON CONFLICT (id) DO UPDATE SET ${columns.filter((c) => c !== "id").map((c) => `${c} = excluded.${c}`).join(", ")}`,
      ),
      get: db.prepare("SELECT * FROM plans WHERE id = ?"),
      list: db.prepare(
        `SELECT * FROM plans WHERE (@host IS NULL OR host_id = @host) AND (@goal IS NULL OR goal_id = @goal)
         AND (@before IS NULL OR created_at < @before) ORDER BY created_at DESC LIMIT @limit`,
      ),
      usageSince: db.prepare(
        "SELECT COALESCE(SUM(attempts), 0) AS requests, COALESCE(SUM(input_tokens + output_tokens), 0) AS tokens FROM plans WHERE created_at >= ?",
      ),
    };
  }

  save(plan: StoredPlan): void {
    this.stmts.upsert.run(toRow(plan));
  }

  get(id: string): StoredPlan | undefined {
    const row = this.stmts.get.get(id) as PlanRow | undefined;
    return row ? toPlan(row) : undefined;
  }

  list(filter: { host?: string | undefined; goal?: string | undefined; before?: string | undefined; limit: number }): StoredPlan[] {
    const rows = this.stmts.list.all({ host: filter.host ?? null, goal: filter.goal ?? null, before: filter.before ?? null, limit: filter.limit }) as PlanRow[];
    return rows.map(toPlan);
  }

  /** Model calls and tokens spent since `sinceIso`, for the daily budget. */
  usageSince(sinceIso: string): { requests: number; tokens: number } {
    return this.stmts.usageSince.get(sinceIso) as { requests: number; tokens: number };
  }
}
