import { GoalParamsSchema, sleep, toLabrigError } from "@labrig/shared";
import type { Logger } from "../../logger.js";
import type { GoalIteration, GoalOutcome, GoalRunner } from "../campaigns/ports.js";
import type { Planner } from "./planner.js";
import type { PlanContext } from "./prompt.js";

/**
 * Runs `ai.goal` steps: snapshot → plan → validate → run → repeat, until the model says the goal is
 * reached, the step budget or the error budget runs out, or the run is cancelled. Every iteration is a
 * stored plan (with its frame) and is returned for the run report.
 */
export class PlannerGoalRunner implements GoalRunner {
  constructor(
    private readonly planner: Planner,
    private readonly logger: Logger,
  ) {}

  async run(input: Parameters<GoalRunner["run"]>[0]): Promise<GoalOutcome> {
    const goal = GoalParamsSchema.parse(input.step.params);
    const goalId = `${input.run_id}/${input.test_id}/${input.step.name}`;
    const iterations: GoalIteration[] = [];
    const history: PlanContext["history"] = [];
    let errors = 0;
    const log = this.logger.child({ goal: goalId, host: input.host, device: input.device });

    for (let step = 1; step <= goal.max_steps; step++) {
      if (input.signal.aborted) return { status: "error", iterations, error: { error_code: "canceled", message: "The run was canceled during the goal." } };
      try {
        const plan = await this.planner.plan({
          instruction: goal.instruction,
          host: input.host,
          device: input.device,
          execute: true,
          allow: goal.allow,
          requestedBy: `run:${input.run_id}`,
          leaseToken: input.lease_token,
          goal: { id: goalId, successCondition: goal.success, history },
          signal: input.signal,
        });
        const failed = plan.status === "failed";
        iterations.push({
          iteration: step,
          plan_id: plan.id,
          observation: plan.observation,
          actions: plan.actions,
          done: plan.done,
          status: plan.status,
          frame: plan.frame ? `/api/plans/${plan.id}/frame` : null,
          executed: (plan.executed ?? []).map((a) => ({ id: a.id, action: a.action, status: a.status, error: a.error })),
          error: plan.error,
        });
        log.info({ iteration: step, plan: plan.id, done: plan.done, status: plan.status }, "goal iteration");
        if (plan.done) return { status: "passed", iterations };
        if (plan.actions.length > 0 && goal.settle_ms > 0) await sleep(goal.settle_ms, input.signal).catch(() => undefined);
        history.push({ observation: plan.observation, actions: plan.actions, outcome: failed ? `failed: ${plan.error?.message ?? "action failed"}` : "ran" });
        if (failed && ++errors > goal.max_errors) {
          return { status: "failed", iterations, error: { error_code: "budget_exhausted", message: `The goal's error budget (${goal.max_errors}) is spent; last error: ${plan.error?.message ?? "action failed"}` } };
        }
      } catch (err) {
        const e = toLabrigError(err);
        iterations.push({ iteration: step, plan_id: (e.details as { plan_id?: string } | undefined)?.plan_id ?? null, status: "error", error: e.toEnvelope() });
        // Without a planner, budget or run there is nothing to retry.
        if (["planner_unavailable", "budget_exhausted", "canceled", "unknown_device", "shutting_down"].includes(e.code)) {
          return { status: "error", iterations, error: { error_code: e.code, message: e.message } };
        }
        history.push({ observation: "(no plan)", actions: [], outcome: `error: ${e.message}` });
        if (++errors > goal.max_errors) {
          return { status: "error", iterations, error: { error_code: e.code, message: `The goal's error budget (${goal.max_errors}) is spent; last error: ${e.message}` } };
        }
      }
    }
    return { status: "failed", iterations, error: { error_code: "budget_exhausted", message: `The goal was not reached within ${goal.max_steps} steps.` } };
  }
}
