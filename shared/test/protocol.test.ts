import { describe, expect, it } from "vitest";
import {
  ACTIONS,
  ACTION_NAMES,
  ActionRecordSchema,
  DeviceDescriptionSchema,
  ERROR_CODES,
  ErrorEnvelopeSchema,
  HelloSchema,
  LabrigError,
  actionTimeoutMs,
  actionsForResources,
  deriveCapabilities,
  makeEnvelope,
  parseActionParams,
  protocolJsonSchema,
  resolveResource,
  SOCKET_EVENTS,
  type ActionName,
} from "@labrig/shared";

/** One valid example and several invalid ones per action, with the field the error must name. */
const examples: Record<ActionName, { valid: Record<string, unknown>; invalid: Array<[unknown, string]> }> = {
  "serial.write": { valid: { data: "help\n" }, invalid: [[{}, "params.data"], [{ data: "" }, "params.data"], [{ data: 5 }, "params.data"]] },
  "serial.expect": {
    valid: { pattern: "login:", timeout_ms: 5000 },
    invalid: [
      [{ pattern: "x" }, "params.timeout_ms"],
      [{ pattern: "x", timeout_ms: 0 }, "params.timeout_ms"],
      [{ pattern: "x", timeout_ms: 600_001 }, "params.timeout_ms"],
      [{ pattern: "(", timeout_ms: 10, regex: true }, "params.pattern"],
      [{ pattern: "", timeout_ms: 10 }, "params.pattern"],
    ],
  },
  "serial.read": {
    valid: { since: "3fa9c2:1024", max_bytes: 100 },
    invalid: [
      [{ max_bytes: 0 }, "params.max_bytes"],
      [{ since: "1024" }, "params.since"],
      [{ since: "ab:-1" }, "params.since"],
      [{ since: 5 }, "params.since"],
    ],
  },
  "serial.tail": { valid: { max_bytes: 100 }, invalid: [[{ max_bytes: 0 }, "params.max_bytes"], [{ max_bytes: 1.5 }, "params.max_bytes"]] },
  "gpio.write": { valid: { value: 1 }, invalid: [[{ value: 2 }, "params.value"], [{ value: true }, "params.value"], [{}, "params.value"]] },
  "gpio.read": { valid: {}, invalid: [[{ value: 1 }, "params"]] },
  "gpio.pulse": { valid: { width_ms: 50 }, invalid: [[{ width_ms: 0 }, "params.width_ms"], [{ width_ms: 60_001 }, "params.width_ms"]] },
  "power.on": { valid: {}, invalid: [[{ force: true }, "params"]] },
  "power.off": { valid: {}, invalid: [[{ now: 1 }, "params"]] },
  "power.cycle": { valid: { off_ms: 500 }, invalid: [[{ off_ms: -1 }, "params.off_ms"], [{ off_ms: "2s" }, "params.off_ms"]] },
  "capture.snapshot": { valid: {}, invalid: [[{ width: 10 }, "params"]] },
  "capture.record": { valid: { duration_s: 2 }, invalid: [[{ duration_s: 0 }, "params.duration_s"], [{ duration_s: 2, format: "avi" }, "params.format"]] },
  wait: { valid: { ms: 10 }, invalid: [[{ ms: -5 }, "params.ms"], [{}, "params.ms"]] },
};

describe("action catalogue", () => {
  it("has an example for every action, and every action a resource kind decision and retry flag", () => {
    expect(Object.keys(examples).sort()).toEqual([...ACTION_NAMES].sort());
    for (const name of ACTION_NAMES) {
      expect(typeof ACTIONS[name].retrySafe).toBe("boolean");
      expect(ACTIONS[name].description.length).toBeGreaterThan(10);
    }
  });

  for (const name of ACTION_NAMES) {
    it(`${name} accepts a valid example and rejects bad params naming the field`, () => {
      const example = examples[name];
      expect(() => parseActionParams(name, example.valid)).not.toThrow();
      for (const [bad, field] of example.invalid) {
        let caught: unknown;
        try {
          parseActionParams(name, bad);
        } catch (err) {
          caught = err;
        }
        expect(caught, `${name} ${JSON.stringify(bad)}`).toBeInstanceOf(LabrigError);
        expect((caught as LabrigError).code).toBe("validation_failed");
        expect((caught as LabrigError).message).toContain(field);
      }
    });
  }

  it("applies defaults: expect is literal and unflushed unless asked, read returns up to 64 KiB from now, tail 4 KiB, pulse drives 1", () => {
    expect(parseActionParams("serial.expect", { pattern: "a", timeout_ms: 1 })).toEqual({ pattern: "a", timeout_ms: 1, regex: false, flush: false });
    expect(parseActionParams("serial.read", {})).toEqual({ max_bytes: 65_536 });
    expect(parseActionParams("serial.tail", {})).toEqual({ max_bytes: 4096 });
    expect(parseActionParams("gpio.pulse", { width_ms: 5 })).toEqual({ width_ms: 5, value: 1 });
  });

  it("refuses an unknown action with unknown_action listing the known ones", () => {
    expect(() => parseActionParams("serial.explode", {})).toThrow(/Unknown action 'serial.explode'.*serial.write/);
    try {
      parseActionParams("nope", {});
    } catch (err) {
      expect((err as LabrigError).code).toBe("unknown_action");
    }
  });

  it("gives waiting actions a timeout longer than their own wait", () => {
    expect(actionTimeoutMs("serial.expect", { timeout_ms: 30_000 }, 10_000)).toBe(40_000);
    expect(actionTimeoutMs("power.cycle", {}, 1000)).toBe(3000);
    expect(actionTimeoutMs("serial.write", { data: "x" }, 1000)).toBe(1000);
  });
});

describe("resources and capabilities", () => {
  const resources = [
    { name: "console", kind: "serial" as const },
    { name: "power", kind: "power" as const },
    { name: "reset", kind: "gpio" as const },
    { name: "boot-sel", kind: "gpio" as const },
  ];

  it("derives capabilities from resource kinds plus extras, sorted and unique", () => {
    expect(deriveCapabilities(resources, ["wifi"])).toEqual(["gpio", "power", "serial", "wifi"]);
  });

  it("resolves the only resource of a kind, and insists on a name when there are several", () => {
    expect(resolveResource("serial.write", resources)).toBe("console");
    expect(resolveResource("wait", resources)).toBeNull();
    expect(() => resolveResource("gpio.pulse", resources)).toThrow(/several gpio resources/);
    expect(resolveResource("gpio.pulse", resources, "reset")).toBe("reset");
    expect(() => resolveResource("gpio.pulse", resources, "console")).toThrow(/needs a gpio resource/);
    expect(() => resolveResource("gpio.pulse", resources, "missing")).toThrow(/no resource 'missing'/);
    expect(() => resolveResource("capture.snapshot", resources)).toThrow(/no video resource/);
  });

  it("offers only the actions whose resource kind the device has", () => {
    const offered = actionsForResources([{ name: "console", kind: "serial" }]);
    expect(offered).toEqual(["serial.write", "serial.expect", "serial.read", "serial.tail", "wait"]);
  });

  it("rejects ids that are not slugs", () => {
    expect(DeviceDescriptionSchema.safeParse({ id: "Dut 1", resources: [] }).success).toBe(false);
    expect(DeviceDescriptionSchema.safeParse({ id: "dut-1", resources: [{ name: "console", kind: "serial" }] }).success).toBe(true);
    expect(DeviceDescriptionSchema.safeParse({ id: "dut-1", resources: [{ name: "cam", kind: "webcam" }] }).success).toBe(false);
  });
});

describe("error envelope", () => {
  it("fills recoverable from the code table and keeps optional fields out when unset", () => {
    expect(makeEnvelope("host_offline", "gone")).toEqual({ error_code: "host_offline", message: "gone", recoverable: true });
    const env = new LabrigError("no_device_available", "busy", { retryAfter: 5 }).toEnvelope("req-1");
    expect(env).toEqual({ error_code: "no_device_available", message: "busy", recoverable: true, retry_after: 5, request_id: "req-1" });
    expect(ErrorEnvelopeSchema.safeParse(env).success).toBe(true);
  });

  it("maps every code to an HTTP error status", () => {
    for (const [code, info] of Object.entries(ERROR_CODES)) {
      expect(info.http, code).toBeGreaterThanOrEqual(400);
      expect(info.http, code).toBeLessThan(600);
    }
  });
});

describe("socket events and JSON Schema export", () => {
  it("validates hello payloads", () => {
    const hello = { host: "sim-1", version: "0.1.0", started_at: new Date().toISOString(), devices: [{ id: "dut1", resources: [] }] };
    expect(HelloSchema.parse(hello).devices[0]?.labels).toEqual({});
    expect(HelloSchema.safeParse({ ...hello, host: "../etc" }).success).toBe(false);
  });

  it("exports JSON Schema for every action, every socket event and the records", () => {
    const schema = protocolJsonSchema() as {
      actions: Record<string, { params: { type: string; properties?: Record<string, unknown> }; result: unknown }>;
      events: Record<string, { payload: { type: string } }>;
      models: Record<string, unknown>;
    };
    expect(Object.keys(schema.actions).sort()).toEqual([...ACTION_NAMES].sort());
    expect(schema.actions["serial.expect"]?.params.properties).toHaveProperty("timeout_ms");
    expect(Object.keys(schema.events).sort()).toEqual(Object.keys(SOCKET_EVENTS).sort());
    for (const ev of Object.values(schema.events)) expect(ev.payload.type).toBe("object");
    expect(schema.models).toHaveProperty("ErrorEnvelope");
    expect(schema.models).toHaveProperty("ActionRecord");
    expect(ActionRecordSchema.safeParse({}).success).toBe(false);
  });
});

describe("image downscaling", () => {
  it("shrinks to the longest edge by area averaging and leaves images that fit untouched", async () => {
    const { downscaleRgba } = await import("@labrig/shared");
    // 4x2: left half black, right half white.
    const data = new Uint8Array(4 * 2 * 4);
    for (let y = 0; y < 2; y++) for (let x = 2; x < 4; x++) data.set([255, 255, 255, 255], (y * 4 + x) * 4);
    const small = downscaleRgba(data, 4, 2, 2);
    expect([small.width, small.height]).toEqual([2, 1]);
    expect([...small.data]).toEqual([0, 0, 0, 255, 255, 255, 255, 255]);
    const same = downscaleRgba(data, 4, 2, 4);
    expect(same.data).toBe(data);
  });
});
