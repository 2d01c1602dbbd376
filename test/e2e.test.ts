import { afterEach, describe, expect, it } from "vitest";
import { TestRig, exited, waitFor, waitForHostState } from "./helpers.js";

// Real processes on 127.0.0.1: the hub CLI, the agent CLI with the simulated rig (a socat PTY
// opened by the real serialport binding), talking over socket.io; driven through REST.
const HEARTBEAT_MS = 300;

describe("hub and agent end to end over the simulated rig", () => {
  let rig: TestRig;
  afterEach(async () => {
    await rig.close();
  });

  it("powers the device on, logs in over the serial console, runs a command, and goes silent when powered off", async () => {
    rig = new TestRig({ LABRIG_HEARTBEAT_MS: String(HEARTBEAT_MS) });
    await rig.startHub();
    await rig.startAgent("sim-1");

    const hosts = await rig.api<{ hosts: Array<{ id: string; state: string; devices: Array<{ id: string; capabilities: string[]; resources: unknown[] }> }> }>(
      "GET",
      "/api/hosts",
    );
    expect(hosts.status).toBe(200);
    const host = hosts.body.hosts.find((h) => h.id === "sim-1");
    expect(host?.state).toBe("online");
    expect(host?.devices[0]?.id).toBe("dut1");
    expect(host?.devices[0]?.capabilities).toEqual(["gpio", "power", "serial", "video"]);
    expect(host?.devices[0]?.resources).toEqual(
      expect.arrayContaining([
        { name: "console", kind: "serial" },
        { name: "power", kind: "power" },
        { name: "reset", kind: "gpio" },
        { name: "screen", kind: "video" },
      ]),
    );

    const on = await rig.action("sim-1", "dut1", "power.on");
    expect(on.status).toBe(200);
    expect(on.body).toMatchObject({ status: "succeeded", result: { state: "on" }, error: null });
    expect(on.body.duration_ms).toBeGreaterThanOrEqual(0);

    const login = await rig.action("sim-1", "dut1", "serial.expect", { pattern: "login: ", timeout_ms: 10_000 });
    expect(login.body.status, JSON.stringify(login.body.error)).toBe("succeeded");
    expect(login.body.result?.transcript).toContain("labrig-sim login: ");

    await rig.action("sim-1", "dut1", "serial.write", { data: "root\n" });
    expect((await rig.action("sim-1", "dut1", "serial.expect", { pattern: "Password: ", timeout_ms: 5000 })).body.status).toBe("succeeded");
    await rig.action("sim-1", "dut1", "serial.write", { data: "labrig\n" });
    expect((await rig.action("sim-1", "dut1", "serial.expect", { pattern: "# ", timeout_ms: 5000 })).body.status).toBe("succeeded");

    const write = await rig.action("sim-1", "dut1", "serial.write", { data: "uname -a\n" });
    expect(write.body).toMatchObject({ status: "succeeded", result: { bytes: 9 } });
    const uname = await rig.action("sim-1", "dut1", "serial.expect", { pattern: "Linux (\\S+) ", regex: true, timeout_ms: 5000 });
    expect(uname.body.status).toBe("succeeded");
    expect(uname.body.result?.groups).toEqual(["labrig-sim"]);

    // serial.read by cursor: what the command printed, then nothing once the board is off.
    const mark = await rig.action("sim-1", "dut1", "serial.read", {});
    expect(mark.body).toMatchObject({ status: "succeeded", result: { text: "", more: false, dropped: 0, restarted: false } });
    await rig.action("sim-1", "dut1", "serial.write", { data: "echo cursor-check\n" });
    await rig.action("sim-1", "dut1", "serial.expect", { pattern: "cursor-check\r\n", timeout_ms: 5000 });
    const echoed = await rig.action("sim-1", "dut1", "serial.read", { since: mark.body.result?.cursor });
    expect(echoed.body.result?.text).toContain("cursor-check");

    const off = await rig.action("sim-1", "dut1", "power.off");
    expect(off.body).toMatchObject({ status: "succeeded", result: { state: "off" } });
    const offMark = await rig.action("sim-1", "dut1", "serial.read", {});
    await rig.action("sim-1", "dut1", "wait", { ms: 500 });
    const quiet = await rig.action("sim-1", "dut1", "serial.read", { since: offMark.body.result?.cursor });
    expect(quiet.body.result).toMatchObject({ text: "", dropped: 0, restarted: false });

    // Silent: input is ignored (no echo, no answer) and nothing at all arrives.
    await rig.action("sim-1", "dut1", "serial.write", { data: "help\n" });
    const silent = await rig.action("sim-1", "dut1", "serial.expect", { pattern: "[\\s\\S]", regex: true, flush: true, timeout_ms: 1000 });
    expect(silent.status).toBe(200);
    expect(silent.body.status).toBe("failed");
    expect(silent.body.error?.error_code).toBe("expect_timeout");

    // Every action was stored and can be read back.
    const stored = await rig.api<{ id: string; status: string }>("GET", `/api/actions/${uname.body.id}`);
    expect(stored.body).toMatchObject({ id: uname.body.id, status: "succeeded" });
  });

  it("marks a host offline within three heartbeats when the agent stops beating, and online again when it resumes", async () => {
    rig = new TestRig({ LABRIG_HEARTBEAT_MS: String(HEARTBEAT_MS) });
    await rig.startHub();
    const agent = await rig.startAgent("sim-1");

    // SIGSTOP freezes the agent with its TCP connection still open: only missed heartbeats can reveal it.
    const frozenAt = Date.now();
    agent.kill("SIGSTOP");
    await waitForHostState(rig.url, "sim-1", "offline", 10_000);
    const elapsed = Date.now() - frozenAt;
    // Three missed beats plus one interval, plus polling and scheduling slack on a shared machine.
    expect(elapsed).toBeLessThanOrEqual((3 + 1) * HEARTBEAT_MS + 1500);
    expect(elapsed).toBeGreaterThanOrEqual(2 * HEARTBEAT_MS);

    agent.kill("SIGCONT");
    await waitForHostState(rig.url, "sim-1", "online", 10_000);
  });

  it("marks a host offline at once when its agent is killed", async () => {
    rig = new TestRig({ LABRIG_HEARTBEAT_MS: String(HEARTBEAT_MS) });
    await rig.startHub();
    const agent = await rig.startAgent("sim-1");
    const killedAt = Date.now();
    agent.kill("SIGKILL");
    await exited(agent);
    await waitForHostState(rig.url, "sim-1", "offline", 10_000);
    expect(Date.now() - killedAt).toBeLessThanOrEqual((3 + 1) * HEARTBEAT_MS + 1500);
    const offline = await rig.action("sim-1", "dut1", "power.on");
    expect(offline.status).toBe(503);
    expect(offline.body).toMatchObject({ error_code: "host_offline", recoverable: true });
  });

  it("keeps the fleet across a hub restart: the agent reconnects by itself and actions work again", async () => {
    rig = new TestRig({ LABRIG_HEARTBEAT_MS: String(HEARTBEAT_MS) });
    await rig.startHub();
    await rig.startAgent("sim-1");
    const before = await rig.action("sim-1", "dut1", "power.on");
    expect(before.body.status).toBe("succeeded");

    const port = Number(new URL(rig.url).port);
    await rig.stopHub();
    const restartedAt = new Date();
    await rig.startHub(port);
    // A restarted hub gives hosts it knew as online a grace window, so "online" alone proves nothing:
    // wait for a heartbeat that arrived after the restart.
    await waitFor(
      async () => {
        const host = await rig.api<{ state: string; last_seen: string | null }>("GET", "/api/hosts/sim-1");
        return host.body.state === "online" && host.body.last_seen !== null && new Date(host.body.last_seen) > restartedAt;
      },
      20_000,
      "the agent to reconnect to the restarted hub",
    );

    const after = await rig.action("sim-1", "dut1", "gpio.pulse", { width_ms: 20 }, "reset");
    expect(after.body.status).toBe("succeeded");
    expect(after.body.result?.width_ms).toBeGreaterThanOrEqual(20);
    // The record written before the restart is still there.
    expect((await rig.api("GET", `/api/actions/${before.body.id}`)).status).toBe(200);
  });
});
