import { randomUUID } from "node:crypto";
import { join } from "node:path";
import {
  LabrigError,
  PlanAnswerSchema,
  describeZodError,
  nowIso,
  settlesWithin,
  toLabrigError,
  type ActionName,
  type DashboardEventMap,
  type ErrorEnvelope,
  type FramePush,
  type PlanRecord,
  type PlannedAction,
} from "@labrig/shared";
import type { Logger } from "../../logger.js";
import type { DevicesRepository } from "../../repositories/devices.js";
import type { PlansRepository, StoredPlan } from "../../repositories/plans.js";
import type { ConsoleBuffers } from "../console-buffers.js";
import { PlannerBudget } from "./budget.js";
import { scaleJpeg } from "./frame.js";
import type { GeminiModel } from "./gemini-model.js";
import { allowedActions, planResponseJsonSchema, validatePlannedActions } from "./plan-schema.js";
import { SYSTEM_INSTRUCTION, buildPromptParts, type PlanContext } from "./prompt.js";
import { makePrivateDir, writePrivateFile } from "../../private-files.js";

/** Takes the current frame of a device's video resource (a `capture.snapshot` on the agent, then the JPEG bytes). */
export interface FrameGrabber {
  grab(host: string, device: string, resource: string | null, options: RunOptions & { maxEdge?: number }): Promise<Buffer>;
}

export interface RunOptions {
  requestedBy: string | null;
  leaseToken?: string | undefined;
  /** Aborting it cancels the action (queued or running). */
  signal?: AbortSignal | undefined;
}

/** What the planner needs to know of an action it ran: how it ended (the full record is kept in the plan). */
export type RanAction = { status: string; error: ErrorEnvelope | null } & Record<string, unknown>;

/** Runs one validated planned action on the device, as any other action is run. */
export interface PlannedActionRunner {
  run(host: string, device: string, action: PlannedAction, options: RunOptions): Promise<RanAction>;
}

export type PlanEventName = "plan.started" | "plan.partial" | "plan.finished";
export type PlanPublisher = <E extends PlanEventName>(event: E, payload: DashboardEventMap[E]) => void;

export interface PlannerSettings {
  /** Longest edge of the frame sent to the model. */
  maxEdge: number;
  requestsPerDay: number;
  tokensPerDay: number;
  /** Where the frames the model saw are kept, one JPEG per plan. */
  framesDir: string;
  /** Shortest gap between two partial-text broadcasts of one plan. */
  partialIntervalMs: number;
}

export interface PlanInput {
  /** Chosen by the caller when it must hand the id out before planning ends (agent frame pushes). */
  id?: string | undefined;
  instruction: string;
  host: string;
  device: string;
  resource?: string | undefined;
  execute: boolean;
  allow?: ActionName[] | undefined;
  requestedBy: string | null;
  leaseToken?: string | undefined;
  /** A frame pushed by the agent; otherwise the planner takes one. */
  frame?: Buffer | undefined;
  goal?: { id: string; successCondition: string; history: PlanContext["history"] } | undefined;
  signal?: AbortSignal | undefined;
}

export interface PlannerDeps {
  model: GeminiModel | null;
  plans: PlansRepository;
  devices: DevicesRepository;
  consoles: ConsoleBuffers;
  frames: FrameGrabber;
  runner: PlannedActionRunner;
  publish: PlanPublisher;
  settings: PlannerSettings;
  logger: Logger;
}

/** Longest stop() waits for plans under way to store their outcome. */
const STOP_WAIT_MS = 5000;

/** How many answers the model gets per plan: the first, and one retry with the validation error fed back. */
const ANSWER_ATTEMPTS = 2;

/**
 * Turns an instruction and a frame into validated catalogue actions: snapshot → scale →
 * prompt with the host's context → structured answer from Gemini → validation (one corrective
 * retry) → store and broadcast → optionally run the actions in order.
 */
export class Planner {
  private readonly budget: PlannerBudget;
  private readonly inflight = new Set<{ abort: AbortController; done: Promise<void> }>();
  private stopping = false;

  constructor(private readonly d: PlannerDeps) {
    this.budget = new PlannerBudget(
      { requestsPerDay: d.settings.requestsPerDay, tokensPerDay: d.settings.tokensPerDay },
      (since) => d.plans.usageSince(since),
    );
  }

  get available(): boolean {
    return this.d.model !== null;
  }

  usage(): ReturnType<PlannerBudget["usage"]> {
    return this.budget.usage();
  }

  private requireModel(): GeminiModel {
    if (!this.d.model) {
      throw new LabrigError(
        "planner_unavailable",
        "The planner is not configured: set GEMINI_API_KEY (and optionally GEMINI_MODEL) in the hub's environment and restart the hub.",
      );
    }
    return this.d.model;
  }

  /** Plans (and, when asked, executes) one step. Stores the plan whatever happens; throws the error it ended with. */
  async plan(input: PlanInput): Promise<StoredPlan> {
    if (this.stopping) throw new LabrigError("shutting_down", "The hub is shutting down; ask again in a few seconds.", { retryAfter: 5 });
    // Every plan can be cut short by stop(), so none writes to the database after the hub closed it.
    const abort = new AbortController();
    const signal = input.signal ? AbortSignal.any([input.signal, abort.signal]) : abort.signal;
    const running = this.planOnce({ ...input, signal });
    const entry = { abort, done: running.then(() => undefined, () => undefined) };
    this.inflight.add(entry);
    try {
      return await running;
    } finally {
      this.inflight.delete(entry);
    }
  }

  /** Refuses new plans, cancels those under way and waits until each has stored its outcome. */
  async stop(): Promise<void> {
    this.stopping = true;
    const pending = [...this.inflight];
    for (const p of pending) p.abort.abort(new LabrigError("shutting_down", "The hub stopped while planning."));
    // The abort reaches the actions plans run too (they take the plan's signal); the wait is still capped.
    if (!(await settlesWithin(Promise.all(pending.map((p) => p.done)), STOP_WAIT_MS))) this.d.logger.warn({ plans: this.inflight.size }, "plans still running at shutdown; their outcome may not be stored");
  }

  private async planOnce(input: PlanInput): Promise<StoredPlan> {
    const model = this.requireModel();
    const device = this.d.devices.get(input.host, input.device);
    if (!device) throw new LabrigError("unknown_device", `Host ${input.host} has no device '${input.device}'.`);
    let videoResource: string | null = null;
    if (input.resource !== undefined) {
      const found = device.resources.find((r) => r.name === input.resource);
      if (!found || found.kind !== "video") {
        throw new LabrigError("unknown_resource", `Device ${input.device} has no video resource '${input.resource}'.`);
      }
      videoResource = found.name;
    }
    const allowed = allowedActions(device.resources, input.allow);
    this.budget.check();
    // Every model call of this plan is held against the budget from just before it is made until the plan is stored.
    const reservation = this.budget.reserve();

    const started = performance.now();
    const plan: StoredPlan = {
      id: input.id ?? randomUUID(),
      status: "planned",
      host: input.host,
      device: input.device,
      resource: videoResource,
      instruction: input.instruction,
      observation: "",
      reasoning: "",
      actions: [],
      done: false,
      usage: { input_tokens: 0, output_tokens: 0 },
      latency_ms: 0,
      model: model.model,
      attempts: 0,
      frame: null,
      error: null,
      goal: input.goal?.id ?? null,
      created_at: nowIso(),
      prompt: "",
      answer: "",
    };
    const log = this.d.logger.child({ plan: plan.id, host: plan.host, device: plan.device });
    this.d.publish("plan.started", { id: plan.id, host: plan.host, device: plan.device, instruction: plan.instruction, goal: plan.goal });

    try {
      const frame = await this.frameFor(input, videoResource, device.resources.some((r) => r.kind === "video"));
      if (frame) {
        const file = join(this.d.settings.framesDir, `${plan.id}.jpg`);
        makePrivateDir(this.d.settings.framesDir);
        writePrivateFile(file, frame.jpeg);
        plan.frame = { artifact: `plans/${plan.id}.jpg`, width: frame.width, height: frame.height, bytes: frame.jpeg.length };
      }
      const consoles = device.resources
        .filter((r) => r.kind === "serial")
        .map((r) => ({ resource: r.name, text: this.d.consoles.text(input.host, input.device, r.name) }));
      const baseContext: PlanContext = {
        instruction: input.instruction,
        successCondition: input.goal?.successCondition,
        host: input.host,
        device: input.device,
        labels: device.labels,
        resources: device.resources,
        allowed,
        consoles,
        history: input.goal?.history ?? [],
      };
      const schema = planResponseJsonSchema(allowed);

      let correction: string | undefined;
      for (let attempt = 1; ; attempt++) {
        const { parts, text } = buildPromptParts({ ...baseContext, correction }, frame);
        plan.prompt = text;
        let lastPartial = 0;
        let answer;
        try {
          answer = await model.generate({
            systemInstruction: SYSTEM_INSTRUCTION,
            parts,
            responseSchema: schema,
            signal: input.signal,
            beforeCall: () => reservation.take(),
            onPartial: (soFar) => {
              const now = performance.now();
              if (now - lastPartial < this.d.settings.partialIntervalMs) return;
              lastPartial = now;
              this.d.publish("plan.partial", { id: plan.id, text: soFar });
            },
          });
        } catch (err) {
          plan.attempts += (err as { calls?: number }).calls ?? 1;
          throw err;
        }
        plan.attempts += answer.calls;
        plan.usage.input_tokens += answer.inputTokens;
        plan.usage.output_tokens += answer.outputTokens;
        plan.answer = answer.text;
        try {
          const parsed = parseAnswer(answer.text);
          plan.observation = parsed.observation;
          plan.reasoning = parsed.reasoning;
          plan.done = parsed.done;
          plan.actions = validatePlannedActions(parsed.actions, allowed, device.resources);
          break;
        } catch (err) {
          const problem = toLabrigError(err);
          log.warn({ attempt, problem: problem.message }, "model answer rejected");
          if (attempt >= ANSWER_ATTEMPTS) {
            plan.status = "invalid";
            throw new LabrigError("plan_invalid", `The model's answer was invalid twice; last problem: ${problem.message}`, {
              details: { plan_id: plan.id },
            });
          }
          correction = problem.message;
        }
      }
      plan.latency_ms = performance.now() - started;
      this.d.plans.save(plan);

      // A goal that is reached needs no more actions, whatever else the model proposed.
      if (input.execute && plan.actions.length > 0 && !(input.goal && plan.done)) {
        plan.executed = [];
        for (const action of plan.actions) {
          // A canceled or timed-out goal step must not start the rest of what the model proposed.
          if (input.signal?.aborted) {
            const reason: unknown = input.signal.reason;
            throw reason instanceof LabrigError ? reason : new LabrigError("canceled", "The plan was canceled before all its actions ran.");
          }
          const record = await this.d.runner.run(input.host, input.device, action, { requestedBy: input.requestedBy, leaseToken: input.leaseToken, signal: input.signal });
          plan.executed.push(record);
          if (record.status !== "succeeded") {
            plan.status = "failed";
            plan.error = record.error;
            break;
          }
        }
        if (plan.status === "planned") plan.status = "executed";
      }
      return plan;
    } catch (err) {
      const error = toLabrigError(err);
      if (plan.status !== "invalid") plan.status = "failed";
      plan.error = error.toEnvelope();
      throw error;
    } finally {
      plan.latency_ms = plan.latency_ms || performance.now() - started;
      try {
        this.d.plans.save(plan);
      } finally {
        reservation.release();
      }
      this.d.publish("plan.finished", publicPlan(plan));
      log.info({ status: plan.status, actions: plan.actions.length, done: plan.done, latency_ms: Math.round(plan.latency_ms), usage: plan.usage }, "plan finished");
    }
  }

  /**
   * Plans from a frame an agent pushed: checks what can be checked at once (planner on, budget left),
   * then plans in the background and returns the plan's id; the result is stored and broadcast.
   */
  accept(host: string, push: FramePush): string {
    this.requireModel();
    this.budget.check();
    const id = randomUUID();
    this.plan({
      id,
      instruction: push.instruction,
      host,
      device: push.device,
      resource: push.resource,
      execute: push.execute,
      allow: push.allow,
      requestedBy: `agent:${host}`,
      frame: Buffer.from(push.jpeg),
    }).catch((err: unknown) => {
      // Already stored with its error and broadcast as plan.finished; the agent got the id in its ack.
      this.d.logger.warn({ plan: id, host, err: toLabrigError(err).message }, "plan from a pushed frame failed");
    });
    return id;
  }

  private async frameFor(input: PlanInput, resource: string | null, hasVideo: boolean) {
    if (input.frame) return scaleJpeg(input.frame, this.d.settings.maxEdge);
    if (!hasVideo) return null;
    const jpeg = await this.d.frames.grab(input.host, input.device, resource, { requestedBy: input.requestedBy, leaseToken: input.leaseToken, signal: input.signal, maxEdge: this.d.settings.maxEdge });
    // Agents shrink snapshots themselves; scaling here only acts on frames that arrive larger.
    return scaleJpeg(jpeg, this.d.settings.maxEdge);
  }
}

function parseAnswer(text: string): { observation: string; reasoning: string; actions: unknown[]; done: boolean } {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new LabrigError("plan_invalid", `the answer is not JSON (${(err as Error).message}); answer with one JSON object matching the schema`);
  }
  const parsed = PlanAnswerSchema.safeParse(json);
  if (!parsed.success) throw new LabrigError("plan_invalid", `the answer does not match the schema: ${describeZodError(parsed.error)}`);
  return parsed.data;
}

/** A plan as the API shows it: without the prompt and raw answer (available on request). */
export function publicPlan(plan: StoredPlan, withPrompt = false): PlanRecord & { prompt?: string; answer?: string } {
  const { prompt, answer, ...rest } = plan;
  return withPrompt ? { ...rest, prompt, answer } : rest;
}
