import type { Agent } from "@labrig/host-agent";
import jpeg from "jpeg-js";
import { afterEach, describe, expect, it } from "vitest";
import { FakeGemini, imageParts, promptText } from "./fake-gemini.js";
import { TEST_ADMIN_KEY, addHost, cleanupTempDirs, dashboardSocket, getJson, postJson, startHub, stopAll, waitFor, type RunningHub } from "./helpers.js";
import { startLocalAgent, stopLocalAgents } from "./local-agents.js";

/*
 * Planner traffic that crosses sockets, in one process: a real hub (createHub) with the real Gemini
 * SDK pointed at a local fake, a real agent (createAgent) pushing frames, and a dashboard client.
 */

let fake: FakeGemini;

afterEach(async () => {
  await stopLocalAgents();
  await stopAll();
  await fake.stop();
  cleanupTempDirs();
});

const answer = (text = "ok") => JSON.stringify({ observation: text, reasoning: "", actions: [{ action: "wait", params: { ms: 1 } }], done: false });

async function hubAndAgent(): Promise<{ hub: RunningHub; agent: Agent }> {
  fake = new FakeGemini(() => ({ text: answer() }));
  await fake.start();
  const hub = await startHub({ env: { GEMINI_API_KEY: "k-test", GEMINI_BASE_URL: fake.url, GEMINI_RETRY_BASE_MS: "5" } });
  const agent = await startLocalAgent(hub, "pl-1", [
    {
      id: "dut1",
      resources: [
        { name: "screen", kind: "video", source: "test-pattern", width: 160, height: 120, fps: 10 },
        { name: "reset", kind: "gpio", line: 5, direction: "out" },
      ],
    },
  ]);
  return { hub, agent };
}

describe("planner over sockets", () => {
  it("plans from a frame the agent pushes, stores the plan and broadcasts it to dashboards", async () => {
    const { hub, agent } = await hubAndAgent();
    const dash = dashboardSocket(hub.url, { auth: { token: TEST_ADMIN_KEY } });
    const finished: Array<{ id: string; status: string }> = [];
    dash.on("plan.finished", (p: { id: string; status: string }) => finished.push(p));
    dash.connect();
    await waitFor(async () => dash.connected, 5000);

    const frame = jpeg.encode({ width: 64, height: 48, data: Buffer.alloc(64 * 48 * 4, 200) }, 80).data;
    const planId = await agent.hubLink.pushFrame({ device: "dut1", instruction: "What is on the screen?", execute: false, jpeg: frame });
    const stored = await waitFor(async () => {
      const res = await getJson(`${hub.url}/api/plans/${planId}`);
      return res.status === 200 && res.body.status !== undefined ? res.body : null;
    }, 10_000);
    expect(stored).toMatchObject({ id: planId, status: "planned", host: "pl-1", device: "dut1", actions: [{ action: "wait", params: { ms: 1 } }] });
    expect(promptText(fake.requests[0]!)).toContain("Goal: What is on the screen?");
    // The pushed frame is what the model saw (it is small, so it was not rescaled).
    expect(Buffer.from(imageParts(fake.requests[0]!)[0]!.data, "base64").equals(frame)).toBe(true);
    await waitFor(async () => finished.some((p) => p.id === planId), 5000);
  });

  it("refuses a frame from an agent naming another host, and an invalid frame, with the envelope", async () => {
    const { agent } = await hubAndAgent();
    const err = await agent.hubLink.pushFrame({ device: "dut1", instruction: "", execute: false, jpeg: Buffer.from([1]) }).catch((e: unknown) => e);
    expect((err as { code: string }).code).toBe("validation_failed");
  });

  it("takes the snapshot through the agent and relays the model's partial text to the plan's subscribers", async () => {
    const { hub } = await hubAndAgent();
    fake.enqueue({ text: answer("a moving test pattern"), chunks: 5, chunkDelayMs: 150 });
    const dash = dashboardSocket(hub.url, { auth: { token: TEST_ADMIN_KEY } });
    const partials: string[] = [];
    dash.on("plan.started", (p: { id: string }) => dash.emit("subscribe", { topics: ["plan.started", "plan.finished"], plans: [p.id] }));
    dash.on("plan.partial", (p: { text: string }) => partials.push(p.text));
    dash.connect();
    await waitFor(async () => dash.connected, 5000);

    const res = await postJson(`${hub.url}/api/plans`, { instruction: "Describe the screen", host: "pl-1", device: "dut1" });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    expect(res.body.observation).toBe("a moving test pattern");
    expect(res.body.frame).toMatchObject({ width: 160, height: 120 });
    const sent = jpeg.decode(Buffer.from(imageParts(fake.requests[0]!)[0]!.data, "base64"), { useTArray: true });
    expect([sent.width, sent.height]).toEqual([160, 120]);
    // The partial text grows towards the full answer.
    expect(partials.length).toBeGreaterThanOrEqual(2);
    expect(answer("a moving test pattern").startsWith(partials.at(-1)!)).toBe(true);
  });

  it("refuses bad plan requests with the envelope and stores nothing", async () => {
    const { hub } = await hubAndAgent();
    for (const body of [{}, { instruction: "x", host: "pl-1" }, { instruction: "x", host: "pl-1", device: "dut1", extra: 1 }, { instruction: "x", host: "pl-1", device: "dut1", allow: ["power.explode"] }]) {
      const res = await postJson(`${hub.url}/api/plans`, body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.body.error_code).toBe("validation_failed");
    }
    const unknown = await postJson(`${hub.url}/api/plans`, { instruction: "x", host: "pl-1", device: "nope" });
    expect(unknown.status).toBe(404);
    const wrongResource = await postJson(`${hub.url}/api/plans`, { instruction: "x", host: "pl-1", device: "dut1", resource: "reset" });
    expect(wrongResource.body.error_code).toBe("unknown_resource");
    expect((await getJson(`${hub.url}/api/plans`)).body.plans).toEqual([]);
    expect(fake.requests).toHaveLength(0);
  });
});
