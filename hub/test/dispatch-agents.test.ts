import { Writable } from "node:stream";
import { createLogger, type Agent } from "@labrig/host-agent";
import { afterEach, describe, expect, it } from "vitest";
import { api, post, waitFor } from "./dispatch-helpers.js";
import { cleanupTempDirs, startHub, stopAll, type RunningHub } from "./helpers.js";
import { startLocalAgent, stopLocalAgents } from "./local-agents.js";

// Real in-process agents (host-agent's createAgent, memory GPIO lines) against a real hub: the
// agent asks the hub before each action starts (confirm_start), which is what makes failover safe.

afterEach(async () => {
  await stopLocalAgents();
  await stopAll();
  cleanupTempDirs();
});

/** Starts a real agent with one memory-GPIO device; `ran` collects the ids of actions its executor finished. */
async function realAgent(hub: RunningHub, host: string, labels: Record<string, string>): Promise<{ agent: Agent; ran: string[] }> {
  const ran: string[] = [];
  // The executor logs every finished action with its id; reading that log is how the test counts runs.
  const logs = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString("utf8").split("\n")) {
        if (line.trim() === "") continue;
        const entry = JSON.parse(line) as { msg?: string; action_id?: string; status?: string };
        if ((entry.msg === "action finished" || entry.msg === "action failed") && entry.action_id && entry.status !== "failed") ran.push(entry.action_id);
      }
      cb();
    },
  });
  const agent = await startLocalAgent(hub, host, [{ id: "dut", labels, resources: [{ name: "io", kind: "gpio", line: 5, direction: "out" }] }], {
    logger: createLogger("info", logs),
  });
  return { agent, ran };
}

describe("dispatch with real agents", () => {
  it("routes selector actions over real agents, which confirm each start with the hub", async () => {
    const hub = await startHub();
    const a = await realAgent(hub, "pi-a", { board: "rpi4" });
    const b = await realAgent(hub, "pi-b", { board: "rpi4" });
    const results = await Promise.all(
      Array.from({ length: 4 }, () => post(hub, "/api/actions", { action: "wait", params: { ms: 100 }, target: { selector: { labels: { board: "rpi4" } } } })),
    );
    for (const r of results) expect(r.body).toMatchObject({ status: "succeeded", result: { waited_ms: expect.any(Number) } });
    expect(results.filter((r) => r.body.host === "pi-a")).toHaveLength(2);
    expect(results.filter((r) => r.body.host === "pi-b")).toHaveLength(2);
    expect([...a.ran, ...b.ran].sort()).toEqual(results.map((r) => r.body.id as string).sort());
    for (const r of results) expect(typeof r.body.started_at).toBe("string");
  });

  it("cancels a running action on a real agent", async () => {
    const hub = await startHub();
    await realAgent(hub, "pi-a", {});
    const running = post(hub, "/api/hosts/pi-a/devices/dut/actions", { action: "wait", params: { ms: 30_000 } });
    let id = "";
    await waitFor(async () => {
      const list = (await api(hub, "GET", "/api/actions?status=running")).body.actions as { id: string; started_at: string | null }[];
      // started_at is set when the agent reported the start.
      id = list.find((x) => x.started_at !== null)?.id ?? "";
      return id !== "";
    });
    const canceled = await api(hub, "DELETE", `/api/actions/${id}`);
    expect(canceled.status).toBe(200);
    expect(canceled.body).toMatchObject({ status: "canceled", error: { error_code: "canceled" } });
    expect((await running).body.status).toBe("canceled");
  });

  it("an action a real agent had started fails with host_lost when the agent goes away; queued ones run on the other agent", async () => {
    const hub = await startHub();
    const a = await realAgent(hub, "pi-a", { pool: "p" });
    const target = { selector: { labels: { pool: "p" } } };
    const long = post(hub, "/api/actions", { action: "wait", params: { ms: 20_000 }, target });
    await waitFor(async () => ((await api(hub, "GET", "/api/actions?status=running")).body.actions as { started_at: string | null }[]).some((x) => x.started_at !== null));
    const queued = [post(hub, "/api/actions", { action: "gpio.read", params: {}, target }), post(hub, "/api/actions", { action: "gpio.read", params: {}, target })];
    await waitFor(async () => ((await api(hub, "GET", "/api/actions?status=queued")).body.actions as unknown[]).length === 2);
    await a.agent.hubLink.stop();
    expect((await long).body).toMatchObject({ status: "failed", error: { error_code: "host_lost" } });
    const b = await realAgent(hub, "pi-b", { pool: "p" });
    const done = await Promise.all(queued);
    for (const r of done) expect(r.body, JSON.stringify(r.body.error)).toMatchObject({ status: "succeeded", host: "pi-b" });
    expect(b.ran.sort()).toEqual(done.map((r) => r.body.id as string).sort());
    expect(a.ran.filter((id) => done.some((r) => r.body.id === id))).toEqual([]);
  });
});
