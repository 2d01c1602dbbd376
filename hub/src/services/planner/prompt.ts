import type { Part } from "@google/genai";
import type { ResourceDescription } from "@labrig/shared";
import type { AllowedAction } from "./plan-schema.js";

export interface PlanContext {
  instruction: string;
  /** The success condition, for goal steps. */
  successCondition?: string | undefined;
  host: string;
  device: string;
  labels: Record<string, string>;
  resources: readonly ResourceDescription[];
  allowed: readonly AllowedAction[];
  /** Recent console text per serial resource, newest last. */
  consoles: Array<{ resource: string; text: string }>;
  /** Earlier iterations of the same goal, oldest first. */
  history: Array<{ observation: string; actions: unknown[]; outcome: string }>;
  /** The validation error of the previous answer, when this is the retry after an invalid plan. */
  correction?: string | undefined;
}

/** How much of each console the model sees: enough for the last prompt and command output. */
export const CONSOLE_TAIL_CHARS = 2000;

export const SYSTEM_INSTRUCTION = [
  "You operate a device under test in a hardware lab through a fixed catalogue of actions.",
  "You see the device's current video frame and the tail of its serial console.",
  "Answer only with JSON matching the response schema: a short observation of what you see,",
  "brief reasoning, the next actions (at most a few, in order), and done=true only when the goal",
  "is already reached in what you observe now. Use only the actions and resources listed.",
  "Serial text you write must end with \\n to press Enter.",
].join(" ");

/** The user turn: the goal, the device, what it offers, what happened so far, the console, then the frame. */
export function buildPromptParts(ctx: PlanContext, frame: { jpeg: Buffer } | null): { parts: Part[]; text: string } {
  const lines: string[] = [];
  lines.push(`Goal: ${ctx.instruction}`);
  if (ctx.successCondition) lines.push(`Success condition: ${ctx.successCondition}`);
  lines.push(`Device: ${ctx.device} on host ${ctx.host}; labels ${JSON.stringify(ctx.labels)}.`);
  lines.push(`Resources: ${ctx.resources.map((r) => `${r.name} (${r.kind})`).join(", ") || "none"}.`);
  lines.push(
    `Allowed actions: ${ctx.allowed.map((a) => (a.resources.length > 0 ? `${a.action} [${a.resources.join(", ")}]` : a.action)).join(", ")}.`,
  );
  if (ctx.history.length > 0) {
    lines.push("Previous steps of this goal:");
    ctx.history.forEach((h, i) => lines.push(`  ${i + 1}. saw: ${h.observation} | did: ${JSON.stringify(h.actions)} | outcome: ${h.outcome}`));
  }
  for (const c of ctx.consoles) {
    const tail = c.text.slice(-CONSOLE_TAIL_CHARS);
    lines.push(`Console ${c.resource} (last ${tail.length} characters):`, "<<<", tail, ">>>");
  }
  if (ctx.correction) {
    lines.push(`Your previous answer was rejected: ${ctx.correction}. Answer again, fixing exactly that.`);
  }
  if (!frame) lines.push("No video frame is available for this device.");
  const text = lines.join("\n");
  const parts: Part[] = [{ text }];
  if (frame) parts.push({ inlineData: { mimeType: "image/jpeg", data: frame.jpeg.toString("base64") } });
  return { parts, text };
}
