import {
  ACTIONS,
  CampaignBodySchema,
  GOAL_ACTION,
  GoalParamsSchema,
  LabrigError,
  TestCaseBodySchema,
  isActionName,
  type CampaignBody,
  type Step,
  type TargetSelector,
  type TestCaseBody,
  patternProblem,
} from "@labrig/shared";
import { Cron } from "croner";
import type { z } from "zod";
import { expectationList } from "./expectations.js";
import { hasTemplate, parseTemplates, withPlaceholders } from "./templates.js";

/** One problem with a saved definition, with the path an editor can highlight (`steps[2].params.data`). */
export interface Problem {
  path: string;
  message: string;
}

/** `["steps", 2, "params", "data"]` → `steps[2].params.data`. */
export function formatPath(parts: readonly PropertyKey[]): string {
  let out = "";
  for (const p of parts) {
    if (typeof p === "number") out += `[${p}]`;
    else out += out === "" ? String(p) : `.${String(p)}`;
  }
  return out;
}

function zodProblems(error: z.ZodError, prefix: readonly PropertyKey[] = []): Problem[] {
  return error.issues.map((i) => ({ path: formatPath([...prefix, ...i.path]), message: i.message }));
}

/** Throws `validation_failed` listing every problem (message and `details`), or returns when there are none. */
export function throwIfProblems(what: string, problems: readonly Problem[]): void {
  if (problems.length === 0) return;
  const text = problems.map((p) => (p.path === "" ? p.message : `${p.path}: ${p.message}`)).join("; ");
  throw new LabrigError("validation_failed", `Invalid ${what}: ${text}`, { details: problems });
}

// A templated string is checked with each reference replaced by this text, so the rest of the value
// (and every other param) is still validated at save time. Templates are substituted as text, so a
// reference can only stand in for a string param: in a number or boolean param it fails the check,
// which is the right answer (the action would receive a string there at run time).
const PLACEHOLDER = "x";

/** Flat execution order of a test case's steps, with where each lives in the body. */
function allSteps(tc: TestCaseBody): { step: Step; path: string }[] {
  return [
    ...tc.setup.map((step, i) => ({ step, path: `setup[${i}]` })),
    ...tc.steps.map((step, i) => ({ step, path: `steps[${i}]` })),
    ...tc.teardown.map((step, i) => ({ step, path: `teardown[${i}]` })),
  ];
}

function stepProblems(step: Step, path: string, earlier: ReadonlySet<string>, all: ReadonlySet<string>): Problem[] {
  const problems: Problem[] = [];
  // Template references: each must name a step that runs earlier (setup before main before teardown).
  for (const [key, value] of Object.entries(step.params)) {
    if (typeof value !== "string" || !hasTemplate(value)) continue;
    const { refs, malformed } = parseTemplates(value);
    for (const m of malformed) problems.push({ path: `${path}.params.${key}`, message: `'${m}' is not a reference; write {{steps.<step name>.<result path>}}` });
    for (const ref of refs) {
      if (!all.has(ref.step)) problems.push({ path: `${path}.params.${key}`, message: `refers to unknown step '${ref.step}'` });
      else if (!earlier.has(ref.step)) problems.push({ path: `${path}.params.${key}`, message: `refers to step '${ref.step}', which runs later (or is this step); only earlier steps can pass values forward` });
    }
  }
  const params = Object.fromEntries(Object.entries(step.params).map(([k, v]) => [k, typeof v === "string" ? withPlaceholders(v, PLACEHOLDER) : v]));

  if (step.action === GOAL_ACTION) {
    const parsed = GoalParamsSchema.safeParse(params);
    if (!parsed.success) problems.push(...zodProblems(parsed.error, [...pathParts(path), "params"]));
    if (step.expect !== undefined) problems.push({ path: `${path}.expect`, message: "ai.goal steps are judged by their success condition; leave expect out" });
    return problems;
  }
  if (!isActionName(step.action)) {
    problems.push({ path: `${path}.action`, message: `unknown action '${step.action}'; use one of ${Object.keys(ACTIONS).join(", ")} or ${GOAL_ACTION}` });
    return problems;
  }
  const parsed = ACTIONS[step.action].params.safeParse(params);
  if (!parsed.success) problems.push(...zodProblems(parsed.error, [...pathParts(path), "params"]));
  if (step.resource !== undefined && ACTIONS[step.action].resourceKind === null) {
    problems.push({ path: `${path}.resource`, message: `${step.action} uses no resource; leave it out` });
  }
  const list = expectationList(step.expect);
  list.forEach((e, i) => {
    const at = Array.isArray(step.expect) ? `${path}.expect[${i}]` : `${path}.expect`;
    if (e.op === "matches") {
      if (typeof e.value !== "string") problems.push({ path: `${at}.value`, message: "matches needs a regular expression as a string" });
      else {
        // The hub matches it on its event loop against action results, so it must compile for RE2 (linear time).
        const problem = patternProblem(e.value);
        if (problem) problems.push({ path: `${at}.value`, message: problem });
      }
    } else if (["gt", "gte", "lt", "lte"].includes(e.op) && typeof e.value !== "number") {
      problems.push({ path: `${at}.value`, message: `${e.op} needs a number` });
    } else if (e.op === "contains" && e.value === undefined) {
      problems.push({ path: `${at}.value`, message: "contains needs a value" });
    }
  });
  return problems;
}

function pathParts(path: string): PropertyKey[] {
  // "steps[2]" → ["steps", 2]
  const m = /^(\w+)\[(\d+)\]$/.exec(path);
  return m ? [m[1] as string, Number(m[2])] : [path];
}

/** Validates a test case body completely (shape, catalogue params, names, references, regexes) before anything is written. */
export function validateTestCase(body: unknown): TestCaseBody {
  const parsed = TestCaseBodySchema.safeParse(body);
  if (!parsed.success) throwIfProblems("test case", zodProblems(parsed.error));
  const tc = (parsed as { data: TestCaseBody }).data;
  const problems: Problem[] = [];
  const steps = allSteps(tc);
  const names = new Map<string, string>();
  for (const { step, path } of steps) {
    const first = names.get(step.name);
    if (first !== undefined) problems.push({ path: `${path}.name`, message: `duplicate step name '${step.name}' (also ${first}); step names are unique within a test case` });
    else names.set(step.name, path);
  }
  const all = new Set(names.keys());
  const earlier = new Set<string>();
  for (const { step, path } of steps) {
    problems.push(...stepProblems(step, path, earlier, all));
    earlier.add(step.name);
  }
  throwIfProblems("test case", problems);
  return tc;
}

/** Labels both selectors require: conflicting values mean no device can match. */
export function mergeSelectors(a: TargetSelector, b: TargetSelector): { selector: TargetSelector; conflicts: string[] } {
  const labels: Record<string, string> = { ...a.labels };
  const conflicts: string[] = [];
  for (const [k, v] of Object.entries(b.labels)) {
    if (labels[k] !== undefined && labels[k] !== v) conflicts.push(`${k}=${labels[k]} vs ${k}=${v}`);
    labels[k] = v;
  }
  return { selector: { capabilities: [...new Set([...a.capabilities, ...b.capabilities])].sort(), labels }, conflicts };
}

/** Upcoming starts compared to find a schedule's shortest gap (enough to meet every pattern of a day-long cron). */
const SCHEDULE_SAMPLE = 200;

/**
 * A schedule's cron and time zone as croner reads them; null with a message when invalid, or when
 * it can fire less than `minIntervalS` apart (LABRIG_SCHEDULE_MIN_INTERVAL_S: a six-field
 * `* * * * * *` would otherwise record a run, or a skipped one, every second).
 */
export function checkSchedule(cron: string, timezone: string, minIntervalS = 0): { path: string; message: string } | null {
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: timezone });
  } catch {
    // Intl throws RangeError for an unknown zone; that is the answer, not an error to log.
    return { path: "schedule.timezone", message: `unknown time zone '${timezone}'; use an IANA name such as UTC or Europe/Paris` };
  }
  let upcoming: Date[];
  try {
    const job = new Cron(cron, { timezone, paused: true });
    upcoming = job.nextRuns(SCHEDULE_SAMPLE);
    job.stop();
  } catch (err) {
    return { path: "schedule.cron", message: `not a valid cron expression: ${(err as Error).message}` };
  }
  if (upcoming.length === 0) return { path: "schedule.cron", message: `'${cron}' never fires` };
  let shortestMs = Number.POSITIVE_INFINITY;
  for (let i = 1; i < upcoming.length; i++) shortestMs = Math.min(shortestMs, (upcoming[i] as Date).getTime() - (upcoming[i - 1] as Date).getTime());
  if (shortestMs < minIntervalS * 1000) {
    return {
      path: "schedule.cron",
      message: `'${cron}' starts runs as little as ${Math.round(shortestMs / 1000)} s apart; the hub allows at most one scheduled start per ${minIntervalS} s (LABRIG_SCHEDULE_MIN_INTERVAL_S). Use a coarser schedule, e.g. '*/5 * * * *'`,
    };
  }
  return null;
}

/**
 * Validates a campaign body: shape, schedule, that every test case exists, and that the campaign's
 * target and each test case's own target can both hold on one device.
 */
export function validateCampaign(body: unknown, lookup: (id: string) => TestCaseBody | undefined, scheduleMinIntervalS = 0): CampaignBody {
  const parsed = CampaignBodySchema.safeParse(body);
  if (!parsed.success) throwIfProblems("campaign", zodProblems(parsed.error));
  const c = (parsed as { data: CampaignBody }).data;
  const problems: Problem[] = [];
  if (c.schedule) {
    const bad = checkSchedule(c.schedule.cron, c.schedule.timezone, scheduleMinIntervalS);
    if (bad) problems.push(bad);
  }
  c.testcases.forEach((id, i) => {
    const tc = lookup(id);
    if (!tc) {
      problems.push({ path: `testcases[${i}]`, message: `no test case '${id}'; GET /api/testcases lists them` });
      return;
    }
    const { conflicts } = mergeSelectors(c.target.selector, tc.target.selector);
    if (conflicts.length > 0) problems.push({ path: `testcases[${i}]`, message: `test case '${tc.name}' needs labels that contradict the campaign's target (${conflicts.join(", ")})` });
  });
  throwIfProblems("campaign", problems);
  return c;
}
