import type { Agent } from "@labrig/host-agent";
import type { StreamChunk } from "@labrig/shared";
import jpeg from "jpeg-js";
import { afterEach, describe, expect, it } from "vitest";
import { TEST_ADMIN_KEY, addHost, cleanupTempDirs, getJson, postJson, startHub, stopAll, waitFor, type RunningHub } from "./helpers.js";
import { startLocalAgent, stopLocalAgents } from "./local-agents.js";

/*
 * The capture path end to end, in one process: a real hub (createHub) and a real agent
 * (createAgent) with a test-pattern video resource, talking socket.io on 127.0.0.1.
 */

afterEach(async () => {
  await stopLocalAgents();
  await stopAll();
  cleanupTempDirs();
});

async function hubWithCameraAgent(): Promise<{ hub: RunningHub; agent: Agent }> {
  const hub = await startHub();
  const agent = await startLocalAgent(hub, "cap-1", [
    { id: "dut1", resources: [{ name: "screen", kind: "video", source: "test-pattern", width: 160, height: 120, fps: 10 }] },
  ]);
  return { hub, agent };
}

const action = (hub: RunningHub, body: Record<string, unknown>) => postJson(`${hub.url}/api/hosts/cap-1/devices/dut1/actions`, body);

describe("artifacts through the hub", () => {
  it("serves a snapshot taken on the agent at GET /api/hosts/:host/artifacts/:id", async () => {
    const { hub } = await hubWithCameraAgent();
    const snap = await action(hub, { action: "capture.snapshot" });
    expect(snap.status).toBe(200);
    expect(snap.body).toMatchObject({ status: "succeeded", result: { mime_type: "image/jpeg", width: 160, height: 120 } });
    const id = (snap.body.result as { artifact: string }).artifact;
    const res = await fetch(`${hub.url}/api/hosts/cap-1/artifacts/${id}`, { headers: { authorization: `Bearer ${TEST_ADMIN_KEY}` } });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("image/jpeg");
    const bytes = Buffer.from(await res.arrayBuffer());
    expect(Number(res.headers.get("content-length"))).toBe(bytes.length);
    expect(bytes.subarray(0, 2)).toEqual(Buffer.from([0xff, 0xd8]));
    const image = jpeg.decode(bytes, { useTArray: true });
    expect([image.width, image.height]).toEqual([160, 120]);
  });

  it("shrinks a snapshot on the agent when max_edge asks for less, and refuses a bad max_edge", async () => {
    const { hub } = await hubWithCameraAgent();
    const snap = await action(hub, { action: "capture.snapshot", params: { max_edge: 80 } });
    expect(snap.body).toMatchObject({ status: "succeeded", result: { width: 80, height: 60 } });
    const id = (snap.body.result as { artifact: string }).artifact;
    const res = await fetch(`${hub.url}/api/hosts/cap-1/artifacts/${id}`, { headers: { authorization: `Bearer ${TEST_ADMIN_KEY}` } });
    const image = jpeg.decode(Buffer.from(await res.arrayBuffer()), { useTArray: true });
    expect([image.width, image.height]).toEqual([80, 60]);
    // Larger than the frame: unchanged.
    expect((await action(hub, { action: "capture.snapshot", params: { max_edge: 4000 } })).body).toMatchObject({ result: { width: 160, height: 120 } });
    const bad = await action(hub, { action: "capture.snapshot", params: { max_edge: 4 } });
    expect(bad.status).toBe(400);
    expect(bad.body.error_code).toBe("validation_failed");
  });

  it("reads artifacts larger than one socket message in slices", async () => {
    const { hub, agent } = await hubWithCameraAgent();
    const data = Buffer.from(Array.from({ length: 1_300_000 }, (_, i) => (i * 7) % 256));
    const { id } = await agent.artifacts.put(data, "webm");
    const res = await getJson(`${hub.url}/api/hosts/cap-1/artifacts/${id}`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("video/webm");
    // getJson reads text; fetch again as bytes for an exact comparison.
    const raw = await fetch(`${hub.url}/api/hosts/cap-1/artifacts/${id}`, { headers: { authorization: `Bearer ${TEST_ADMIN_KEY}` } });
    expect(Buffer.from(await raw.arrayBuffer()).equals(data)).toBe(true);
  });

  it("refuses bad ids (400), answers not_found for unknown ones (404) and host_offline when the agent is gone (503)", async () => {
    const { hub, agent } = await hubWithCameraAgent();
    const bad = await getJson(`${hub.url}/api/hosts/cap-1/artifacts/..%2F..%2Fetc%2Fpasswd`);
    expect(bad.status).toBe(400);
    expect(bad.body.error_code).toBe("validation_failed");
    const notUuid = await getJson(`${hub.url}/api/hosts/cap-1/artifacts/not-a-uuid`);
    expect(notUuid.status).toBe(400);
    const unknown = await getJson(`${hub.url}/api/hosts/cap-1/artifacts/0b7c1a52-4a1e-4c1e-9a59-6d1f0c1e2f3a`);
    expect(unknown.status).toBe(404);
    expect(unknown.body).toMatchObject({ error_code: "not_found" });
    const noHost = await getJson(`${hub.url}/api/hosts/ghost/artifacts/0b7c1a52-4a1e-4c1e-9a59-6d1f0c1e2f3a`);
    expect(noHost.status).toBe(404);
    expect(noHost.body.error_code).toBe("unknown_host");
    const { id } = await agent.artifacts.put(Buffer.from("jpeg"), "jpg");
    await agent.stop();
    await waitFor(async () => (await getJson(`${hub.url}/api/hosts/cap-1/artifacts/${id}`)).status === 503, 5000);
    const offline = await getJson(`${hub.url}/api/hosts/cap-1/artifacts/${id}`);
    expect(offline.body).toMatchObject({ error_code: "host_offline", recoverable: true });
  });
});

describe("live video relay", () => {
  it("streams from the agent only while someone watches, starting each watcher at a keyframe", async () => {
    const { hub, agent } = await hubWithCameraAgent();
    const relay = hub.hub.video();
    if (!relay) throw new Error("the hub has no video relay");
    const capture = agent.devices.get("dut1")?.videoCapture("screen");
    expect(capture?.streaming).toBe(false);

    const first: StreamChunk[] = [];
    const unsubscribe = relay.subscribe("cap-1", "dut1", "screen", (c) => first.push(c));
    await waitFor(() => first.length >= 5, 10_000);
    expect(capture?.streaming).toBe(true);
    expect(first[0]).toMatchObject({ host: "cap-1", device: "dut1", resource: "screen", codec: "vp8", type: "key", width: 160, height: 120 });
    expect(Buffer.isBuffer(first[0]?.data)).toBe(true);
    expect(relay.latestKeyframe("cap-1", "dut1", "screen")?.type).toBe("key");

    const second: StreamChunk[] = [];
    const unsubscribeSecond = relay.subscribe("cap-1", "dut1", "screen", (c) => second.push(c));
    await waitFor(() => second.length >= 1, 10_000);
    expect(second[0]?.type).toBe("key");
    unsubscribe();
    expect(relay.watchers("cap-1", "dut1", "screen")).toBe(1);
    await new Promise((r) => setTimeout(r, 200));
    expect(capture?.streaming).toBe(true);

    unsubscribeSecond();
    await waitFor(() => capture?.streaming === false, 5000);
    const after = second.length;
    await new Promise((r) => setTimeout(r, 400));
    expect(second.length).toBe(after);
    // The stream's counters reach the hub as the resource's state.
    const host = await getJson(`${hub.url}/api/hosts/cap-1`);
    const devices = host.body.devices as { id: string; state: Record<string, { detail?: string }> }[];
    expect(devices[0]?.state.screen?.detail).toMatch(/stream stopped: sent \d+ frames, dropped \d+/);
  });

  it("asks a reconnecting agent for the streams still watched", async () => {
    const { hub, agent } = await hubWithCameraAgent();
    const relay = hub.hub.video();
    if (!relay) throw new Error("the hub has no video relay");
    const chunks: StreamChunk[] = [];
    relay.subscribe("cap-1", "dut1", "screen", (c) => chunks.push(c));
    await waitFor(() => chunks.length >= 2, 10_000);
    // Cut the agent's transport; socket.io reconnects it, and the hub must ask for the stream again.
    const capture = agent.devices.get("dut1")?.videoCapture("screen");
    agent.hubLink["socket"]?.io.engine.close();
    await waitFor(() => capture?.streaming === false, 5000);
    const before = chunks.length;
    await waitFor(() => chunks.length > before + 2 && capture?.streaming === true, 15_000);
  }, 30_000);
});
