import { type ActionRequest, type ActionResult } from "@labrig/shared";
import { afterEach, describe, expect, it } from "vitest";
import { parseConfig, type DeviceConfig } from "../src/config.js";
import { Device } from "../src/devices/device.js";
import { MemoryLineFactory } from "../src/devices/gpio/memory-line.js";
import { Executor } from "../src/executor.js";
import { testLogger, until } from "./helpers.js";

function deviceConfigs(): DeviceConfig[] {
  return parseConfig(
    {
      host: "exec-host",
      hub: { url: "http://127.0.0.1:9", token: "t" },
      gpio: { driver: "memory" },
      devices: [
        { id: "dut1", resources: [{ name: "power", kind: "power", line: 17 }] },
        { id: "dut2", resources: [{ name: "power", kind: "power", line: 18 }] },
      ],
    },
    { baseDir: "/tmp" },
  ).devices;
}

let seq = 0;
function request(device: string, action: ActionRequest["action"], params: Record<string, unknown>, timeout_ms = 5000): ActionRequest {
  return { id: `a${++seq}`, device, action, resource: null, params, timeout_ms, confirm_start: true };
}

describe("Executor", () => {
  const results: ActionResult[] = [];
  let executor: Executor;
  let devices: Map<string, Device>;

  async function setup(options: ConstructorParameters<typeof Executor>[4] = {}): Promise<void> {
    results.length = 0;
    const lines = new MemoryLineFactory();
    devices = new Map(
      deviceConfigs().map((dc) => [dc.id, new Device(dc, { lineFactory: lines, logger: testLogger(), reportState: () => undefined, onConsoleData: () => undefined })]),
    );
    for (const d of devices.values()) await d.start();
    executor = new Executor("exec-host", devices, (r) => results.push(r), testLogger(), options);
    executor.start();
  }

  const resultOf = (id: string): ActionResult => {
    const r = results.find((x) => x.id === id);
    if (!r) throw new Error(`no result for ${id}`);
    return r;
  };

  afterEach(async () => {
    await executor.stop();
    for (const d of devices.values()) await d.stop();
  });

  it("times out at once while the hub's start confirmation is still on its way, and never runs the action", async () => {
    let confirmations = 0;
    // The hub never answers: a lost ack must not hold the device for the link's own ack timeout.
    await setup({ confirmStart: () => ((confirmations += 1), new Promise<boolean>(() => undefined)) });
    const a = request("dut1", "power.on", {}, 300);
    const started = Date.now();
    executor.submit(a);
    await until(() => results.some((r) => r.id === a.id), "the timed-out result");
    expect(Date.now() - started).toBeLessThan(3000);
    expect(resultOf(a.id)).toMatchObject({ status: "failed", error: { error_code: "action_timeout" } });
    expect(confirmations).toBe(1);
    expect(devices.get("dut1")?.line("power")?.read()).toBe(0);
  });

  it("runs two actions on one device one after the other (FIFO)", async () => {
    await setup();
    const a = request("dut1", "wait", { ms: 150 });
    const b = request("dut1", "wait", { ms: 150 });
    executor.submit(a);
    executor.submit(b);
    await executor.idle();
    expect(results.map((r) => r.id)).toEqual([a.id, b.id]);
    const ra = resultOf(a.id);
    const rb = resultOf(b.id);
    expect(ra.status).toBe("succeeded");
    expect(rb.status).toBe("succeeded");
    expect(Date.parse(rb.started_at)).toBeGreaterThanOrEqual(Date.parse(ra.finished_at));
    expect((ra.result as { waited_ms: number }).waited_ms).toBeGreaterThanOrEqual(149);
  });

  it("runs actions on two devices in parallel", async () => {
    await setup();
    // Waits long enough that one after the other (≥ 1000 ms) stays far from the bound on a loaded shared box.
    const a = request("dut1", "wait", { ms: 500 });
    const b = request("dut2", "wait", { ms: 500 });
    const t0 = Date.now();
    executor.submit(a);
    executor.submit(b);
    await executor.idle();
    expect(Date.now() - t0).toBeLessThan(900);
    expect(Date.parse(resultOf(b.id).started_at)).toBeLessThan(Date.parse(resultOf(a.id).finished_at));
  });

  it("fails an action that outlives its timeout_ms with action_timeout", async () => {
    await setup();
    const a = request("dut1", "wait", { ms: 2000 }, 100);
    executor.submit(a);
    await executor.idle();
    const r = resultOf(a.id);
    expect(r.status).toBe("failed");
    expect(r.error?.error_code).toBe("action_timeout");
    expect(r.error?.recoverable).toBe(true);
    expect(r.duration_ms).toBeGreaterThanOrEqual(95);
    expect(r.duration_ms).toBeLessThan(1000);
  });

  it("cancels a queued action at once and leaves the running one alone", async () => {
    await setup();
    const a = request("dut1", "wait", { ms: 200 });
    const b = request("dut1", "wait", { ms: 200 });
    executor.submit(a);
    executor.submit(b);
    expect(executor.cancel(b.id)).toBe(true);
    expect(resultOf(b.id)).toMatchObject({ status: "canceled", result: null, error: { error_code: "canceled" } });
    await executor.idle();
    expect(resultOf(a.id).status).toBe("succeeded");
  });

  it("cancels a running action by aborting it", async () => {
    await setup();
    const a = request("dut1", "wait", { ms: 3000 });
    executor.submit(a);
    await new Promise((r) => setTimeout(r, 50));
    expect(executor.cancel(a.id)).toBe(true);
    await until(() => results.length === 1, "the canceled result");
    const r = resultOf(a.id);
    expect(r.status).toBe("canceled");
    expect(r.error?.error_code).toBe("canceled");
    expect(r.duration_ms).toBeLessThan(1000);
  });

  it("answers unknown devices, bad params and unsupported actions with their error codes", async () => {
    await setup();
    const unknown = request("nope", "wait", { ms: 1 });
    const bad = request("dut1", "wait", { ms: -5 });
    const extra = request("dut1", "power.on", { force: true });
    const capture = request("dut1", "capture.snapshot", {});
    const serial = request("dut1", "serial.read", {});
    for (const r of [unknown, bad, extra, capture, serial]) executor.submit(r);
    await executor.idle();
    expect(resultOf(unknown.id).error?.error_code).toBe("unknown_device");
    expect(resultOf(unknown.id).error?.message).toContain("dut1");
    expect(resultOf(bad.id).error?.error_code).toBe("validation_failed");
    expect(resultOf(bad.id).error?.message).toContain("params.ms");
    expect(resultOf(extra.id).error?.error_code).toBe("validation_failed");
    expect(resultOf(capture.id).error?.error_code).toBe("unsupported_action");
    expect(resultOf(serial.id).error?.error_code).toBe("unsupported_action");
    for (const r of results) expect(r.status).toBe("failed");
  });

  it("runs a request id only once", async () => {
    await setup();
    const a = request("dut1", "power.on", {});
    executor.submit(a);
    executor.submit(a);
    await executor.idle();
    executor.submit(a);
    await executor.idle();
    expect(results.filter((r) => r.id === a.id)).toHaveLength(1);
  });

  it("fails queued and running actions with shutting_down when stopped", async () => {
    await setup();
    const a = request("dut1", "wait", { ms: 3000 });
    const b = request("dut1", "wait", { ms: 3000 });
    executor.submit(a);
    executor.submit(b);
    await new Promise((r) => setTimeout(r, 20));
    await executor.stop();
    expect(resultOf(a.id).error?.error_code).toBe("shutting_down");
    expect(resultOf(b.id).error?.error_code).toBe("shutting_down");
  });
});
