import jpeg from "jpeg-js";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { FakeGemini, imageParts, promptText, type GeminiRequest } from "../hub/test/fake-gemini.js";
import { E2E_ADMIN_KEY, TestRig, waitFor } from "./helpers.js";

// The whole planning path with real processes: the hub (real @google/genai SDK, pointed at a local fake
// Gemini through GEMINI_BASE_URL), an agent with the simulated board (its screen is a generated test
// pattern, its console a real PTY). The fake model decides only from what the SDK sent it: the frame's
// brightness (the screen is dark while the board is off) and the console tail in the prompt.

function meanLuma(req: GeminiRequest): number {
  const image = imageParts(req)[0];
  if (!image) return -1;
  const { data, width, height } = jpeg.decode(Buffer.from(image.data, "base64"), { useTArray: true });
  let sum = 0;
  for (let i = 0; i < width * height * 4; i += 4) sum += 0.299 * data[i]! + 0.587 * data[i + 1]! + 0.114 * data[i + 2]!;
  return sum / (width * height);
}

function consoleTail(req: GeminiRequest): string {
  const match = /<<<\n([\s\S]*)\n>>>/.exec(promptText(req));
  return match?.[1] ?? "";
}

function reply(actions: unknown[], done: boolean, observation: string) {
  return { text: JSON.stringify({ observation, reasoning: "from the frame and console", actions, done }), inputTokens: 500, outputTokens: 40 };
}

/** A model that boots the simulated board and logs in, one step at a time. */
function operatorBrain(req: GeminiRequest) {
  const tail = consoleTail(req).trimEnd();
  const luma = meanLuma(req);
  if (/root@labrig-sim:~#$/.test(tail)) return reply([], true, "a root shell prompt");
  if (luma >= 0 && luma < 12 && tail === "") return reply([{ action: "power.on", params: {} }], false, `dark screen (luma ${luma.toFixed(1)})`);
  if (/Password:$/.test(tail)) return reply([{ action: "serial.write", params: { data: "labrig\n" } }], false, "password prompt");
  if (/login:$/.test(tail)) return reply([{ action: "serial.write", params: { data: "root\n" } }], false, "login prompt");
  return reply([{ action: "wait", params: { ms: 400 } }], false, "booting");
}

describe("planning from frames of the simulated board", () => {
  let rig: TestRig;
  let fake: FakeGemini;

  beforeEach(async () => {
    fake = new FakeGemini(operatorBrain);
    await fake.start();
  });

  afterEach(async () => {
    await rig.close();
    await fake.stop();
  });

  it("plans from a snapshot through the agent and executes the plan on the board", async () => {
    rig = new TestRig({ GEMINI_API_KEY: "fake-key-for-tests", GEMINI_BASE_URL: fake.url, GEMINI_RETRY_BASE_MS: "10", PLANNER_MAX_EDGE: "160" });
    await rig.startHub();
    await rig.startAgent("sim-1");

    const res = await rig.api<Record<string, unknown>>("POST", "/api/plans", {
      instruction: "Switch the board on",
      host: "sim-1",
      device: "dut1",
      execute: true,
      allow: ["power.on", "serial.write", "wait"],
    });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    expect(res.body).toMatchObject({ status: "executed", done: false, actions: [{ action: "power.on", resource: "power", params: {} }] });
    expect(res.body.usage).toEqual({ input_tokens: 500, output_tokens: 40 });
    expect((res.body.executed as Array<{ status: string }>)[0]?.status).toBe("succeeded");
    // The frame went to the model scaled to PLANNER_MAX_EDGE, and the model saw the dark screen of a board that is off.
    const sent = jpeg.decode(Buffer.from(imageParts(fake.requests[0]!)[0]!.data, "base64"), { useTArray: true });
    expect(Math.max(sent.width, sent.height)).toBe(160);
    expect(res.body.observation).toMatch(/dark screen/);

    const stored = await rig.api<{ id: string; frame: { width: number } }>("GET", `/api/plans/${String(res.body.id)}`);
    expect(stored.body.frame.width).toBe(160);
    const frame = await fetch(`${rig.url}/api/plans/${String(res.body.id)}/frame`, { headers: { authorization: `Bearer ${E2E_ADMIN_KEY}` } });
    expect(frame.headers.get("content-type")).toBe("image/jpeg");
    const listed = await rig.api<{ plans: unknown[] }>("GET", "/api/plans?host=sim-1");
    expect(listed.body.plans).toHaveLength(1);
  });

  it("runs an ai.goal step that powers the board on and logs in, and reports every iteration", async () => {
    rig = new TestRig({ GEMINI_API_KEY: "fake-key-for-tests", GEMINI_BASE_URL: fake.url, GEMINI_RETRY_BASE_MS: "10", PLANNER_MAX_EDGE: "160" });
    await rig.startHub();
    await rig.startAgent("sim-1");

    const tc = await rig.api<{ id: string }>("POST", "/api/testcases", {
      name: "boot and log in by sight",
      steps: [
        {
          name: "reach_shell",
          action: "ai.goal",
          params: {
            instruction: "Power the board on and log in as root (password labrig).",
            success: "A root shell prompt is on the console.",
            max_steps: 12,
            allow: ["power.on", "serial.write", "wait"],
          },
        },
        { name: "check", action: "serial.write", params: { data: "whoami\n" } },
        { name: "is_root", action: "serial.expect", params: { pattern: "root", timeout_ms: 5000 } },
      ],
      teardown: [{ name: "off", action: "power.off", params: {} }],
    });
    expect(tc.status, JSON.stringify(tc.body)).toBe(201);
    const started = await rig.api<{ id: string }>("POST", `/api/testcases/${tc.body.id}/runs`, {});
    expect(started.status, JSON.stringify(started.body)).toBe(202);

    const run = await waitFor(
      async () => {
        const r = await rig.api<{ status: string; tests: Array<{ status: string; steps: Array<{ name: string; status: string; result: { iterations?: Array<{ plan_id: string; done: boolean }> } | null }> }> }>(
          "GET",
          `/api/runs/${started.body.id}`,
        );
        return ["passed", "failed", "error", "canceled", "interrupted"].includes(r.body.status) ? r.body : null;
      },
      60_000,
      "the run to finish",
    );
    const goalStep = run.tests[0]?.steps.find((s) => s.name === "reach_shell");
    expect(run.status, JSON.stringify(goalStep)).toBe("passed");
    const iterations = goalStep?.result?.iterations ?? [];
    expect(iterations.length).toBeGreaterThanOrEqual(3);
    expect(iterations.at(-1)?.done).toBe(true);
    // Each iteration is a stored plan of this goal, with its frame.
    const plans = await rig.api<{ plans: Array<{ goal: string | null; frame: unknown }> }>("GET", "/api/plans?host=sim-1");
    expect(plans.body.plans.length).toBe(iterations.length);
    for (const p of plans.body.plans) {
      expect(p.goal).toMatch(/reach_shell$/);
      expect(p.frame).not.toBeNull();
    }
    // The goal's own prompt carried the success condition.
    expect(promptText(fake.requests[0]!)).toContain("Success condition: A root shell prompt is on the console.");
  });

  it("answers 503 planner_unavailable without GEMINI_API_KEY while the rest of the hub works", async () => {
    rig = new TestRig();
    await rig.startHub();
    await rig.startAgent("sim-1");
    const res = await rig.api("POST", "/api/plans", { instruction: "x", host: "sim-1", device: "dut1" });
    expect(res.status).toBe(503);
    expect(res.body).toMatchObject({ error_code: "planner_unavailable", recoverable: false });
    expect(String(res.body.message)).toContain("GEMINI_API_KEY");
    const on = await rig.action("sim-1", "dut1", "power.on");
    expect(on.body.status).toBe("succeeded");
    expect(fake.requests).toHaveLength(0);
  });
});
