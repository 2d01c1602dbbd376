import { statSync } from "node:fs";
import { join } from "node:path";
import jpeg from "jpeg-js";
import { pino } from "pino";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { LabrigError, type ActionRecord, type PlannedAction } from "@labrig/shared";
import { HubDatabase } from "../src/db/database.js";
import { MIGRATIONS } from "../src/db/migrations.js";
import { DevicesRepository } from "../src/repositories/devices.js";
import { HostsRepository } from "../src/repositories/hosts.js";
import { PlansRepository } from "../src/repositories/plans.js";
import { ConsoleBuffers } from "../src/services/console-buffers.js";
import { GeminiModel, type GeminiSettings } from "../src/services/planner/gemini-model.js";
import { Planner, type PlannedActionRunner } from "../src/services/planner/planner.js";
import { FakeGemini, imageParts, promptText } from "./fake-gemini.js";
import { cleanupTempDirs, makeTempDir } from "./helpers.js";

// The real @google/genai SDK talks HTTP to a local fake Gemini; the hub's database is a real
// SQLite file. Frames are pushed in (the agent `frame` path); the snapshot path is covered end to end.

const logger = pino({ level: "silent" });

function testJpeg(width: number, height: number, shade = 128): Buffer {
  const data = Buffer.alloc(width * height * 4, shade);
  return jpeg.encode({ width, height, data }, 80).data;
}

function answer(actions: unknown[], extra: Record<string, unknown> = {}): string {
  return JSON.stringify({ observation: "a login prompt", reasoning: "log in", actions, done: false, ...extra });
}

describe("planner with the real Gemini SDK against a local fake server", () => {
  let fake: FakeGemini;
  let database: HubDatabase;
  let plans: PlansRepository;
  let consoles: ConsoleBuffers;
  let devices: DevicesRepository;
  const ran: Array<{ host: string; device: string; action: PlannedAction }> = [];
  /** Called as each planned action "runs" (a test uses it to cancel the goal mid-plan). */
  let onRun: (() => void) | null = null;

  const runner: PlannedActionRunner = {
    // Records what the planner hands over; dispatching is tested with real agents elsewhere.
    async run(host, device, action) {
      ran.push({ host, device, action });
      onRun?.();
      return { id: `a${ran.length}`, status: "succeeded", action: action.action, host, device } as unknown as ActionRecord;
    },
  };

  function planner(overrides: Partial<GeminiSettings> = {}, budget = { requestsPerDay: 100, tokensPerDay: 100_000 }, withModel = true): Planner {
    const settings: GeminiSettings = {
      apiKey: "test-key-123",
      model: "gemini-test-flash",
      baseUrl: fake.url,
      apiVersion: "v1beta",
      timeoutMs: 2000,
      retries: 2,
      retryBaseMs: 10,
      stream: true,
      ...overrides,
    };
    return new Planner({
      model: withModel ? new GeminiModel(settings, logger) : null,
      plans,
      devices,
      consoles,
      frames: {
        grab: async () => {
          throw new LabrigError("device_unavailable", "no camera in this test");
        },
      },
      runner,
      publish: (event, payload) => published.push({ event, payload }),
      settings: { maxEdge: 64, framesDir: join(dir, "plans"), partialIntervalMs: 0, ...budget },
      logger,
    });
  }

  let dir: string;
  let published: Array<{ event: string; payload: Record<string, unknown> }>;

  beforeEach(async () => {
    dir = makeTempDir();
    published = [];
    ran.length = 0;
    onRun = null;
    fake = new FakeGemini();
    await fake.start();
    database = new HubDatabase(join(dir, "labrig.db"), logger, MIGRATIONS);
    database.start();
    const hosts = new HostsRepository(database.db);
    hosts.insert({ id: "sim-1", name: "sim-1", labels: {}, tokenHash: "x", createdAt: new Date().toISOString() });
    devices = new DevicesRepository(database.db);
    devices.replaceForHost(
      "sim-1",
      [
        {
          id: "dut1",
          labels: { board: "sim" },
          capabilities: ["gpio", "power", "serial", "video"],
          resources: [
            { name: "console", kind: "serial" },
            { name: "power", kind: "power" },
            { name: "reset", kind: "gpio" },
            { name: "screen", kind: "video" },
          ],
        },
      ],
      new Date().toISOString(),
    );
    plans = new PlansRepository(database.db);
    consoles = new ConsoleBuffers();
    consoles.append("sim-1", "dut1", "console", "Booting...\r\nlabrig-sim login: ");
  });

  afterEach(async () => {
    await fake.stop();
    database.stop();
    cleanupTempDirs();
  });

  it("sends the scaled frame, the schema and the instruction, and returns validated actions", async () => {
    fake.enqueue({ text: answer([{ action: "serial.write", params: { data: "root\n" } }]), inputTokens: 321, outputTokens: 45 });
    // The loosest umask: the frame the model saw must still be private to the hub's user.
    const umask = process.umask(0);
    const plan = await planner()
      .plan({ instruction: "Log in as root", host: "sim-1", device: "dut1", execute: false, requestedBy: "tester", frame: testJpeg(320, 240) })
      .finally(() => process.umask(umask));
    expect((statSync(join(dir, "plans")).mode & 0o777).toString(8)).toBe("700");
    expect((statSync(join(dir, "plans", `${plan.id}.jpg`)).mode & 0o777).toString(8)).toBe("600");

    expect(plan.status).toBe("planned");
    expect(plan.actions).toEqual([{ action: "serial.write", resource: "console", params: { data: "root\n" } }]);
    expect(plan.usage).toEqual({ input_tokens: 321, output_tokens: 45 });
    expect(plan.frame).toMatchObject({ width: 64, height: 48 });

    const req = fake.requests[0]!;
    expect(req.path).toBe("/v1beta/models/gemini-test-flash:streamGenerateContent");
    expect(req.query.get("alt")).toBe("sse");
    expect(req.headers["x-goog-api-key"]).toBe("test-key-123");
    const images = imageParts(req);
    expect(images).toHaveLength(1);
    expect(images[0]!.mimeType).toBe("image/jpeg");
    const sent = jpeg.decode(Buffer.from(images[0]!.data, "base64"), { useTArray: true });
    expect([sent.width, sent.height]).toEqual([64, 48]);
    const text = promptText(req);
    expect(text).toContain("Goal: Log in as root");
    expect(text).toContain("labrig-sim login:");
    const schema = req.body.generationConfig?.responseJsonSchema as { properties: { actions: { items: { anyOf: Array<{ properties: { action: { enum: string[] } } }> } } } };
    const offered = schema.properties.actions.items.anyOf.map((v) => v.properties.action.enum[0]);
    // Power is left out unless allowed by name.
    expect(offered).toEqual(["serial.write", "serial.expect", "serial.read", "serial.tail", "gpio.write", "gpio.read", "gpio.pulse", "capture.snapshot", "capture.record", "wait"]);
    expect(req.body.generationConfig?.responseMimeType).toBe("application/json");

    expect(published.map((p) => p.event)).toEqual(expect.arrayContaining(["plan.started", "plan.partial", "plan.finished"]));
    expect(plans.get(plan.id)?.answer).toContain("serial.write");
  });

  it("uses generateContent when streaming is off, and executes the actions in order when asked", async () => {
    fake.enqueue({
      text: answer([
        { action: "power.on", params: {} },
        { action: "serial.expect", params: { pattern: "login:", timeout_ms: 5000 } },
      ]),
    });
    const plan = await planner({ stream: false }).plan({
      instruction: "Boot it",
      host: "sim-1",
      device: "dut1",
      execute: true,
      allow: ["power.on", "serial.expect"],
      requestedBy: null,
      frame: testJpeg(32, 32),
    });
    expect(fake.requests[0]!.path).toBe("/v1beta/models/gemini-test-flash:generateContent");
    expect(plan.status).toBe("executed");
    expect(ran.map((r) => r.action.action)).toEqual(["power.on", "serial.expect"]);
    expect(plan.executed).toHaveLength(2);
  });

  it("starts none of the remaining planned actions once its signal is aborted (a canceled or timed-out goal step)", async () => {
    fake.enqueue({
      text: answer([
        { action: "power.on", params: {} },
        { action: "serial.write", params: { data: "root\n" } },
        { action: "serial.write", params: { data: "labrig\n" } },
      ]),
    });
    const control = new AbortController();
    onRun = () => control.abort(new LabrigError("canceled", "run canceled by tester"));
    const err = (await planner()
      .plan({ instruction: "Log in", host: "sim-1", device: "dut1", execute: true, allow: ["power.on", "serial.write"], requestedBy: null, frame: testJpeg(16, 16), signal: control.signal })
      .catch((e: unknown) => e)) as LabrigError;
    expect(err).toBeInstanceOf(LabrigError);
    expect(err.code).toBe("canceled");
    expect(ran.map((r) => r.action.action)).toEqual(["power.on"]);
    const stored = plans.list({ limit: 1 })[0]!;
    expect(stored.status).toBe("failed");
    expect(stored.error?.error_code).toBe("canceled");
    expect(stored.executed).toHaveLength(1);
  });

  it("retries once with the validation error fed back when the answer is malformed JSON", async () => {
    fake.enqueue({ text: "{not json" }, { text: answer([{ action: "wait", params: { ms: 10 } }]) });
    const plan = await planner().plan({ instruction: "x", host: "sim-1", device: "dut1", execute: false, requestedBy: null, frame: testJpeg(16, 16) });
    expect(plan.status).toBe("planned");
    expect(fake.requests).toHaveLength(2);
    expect(promptText(fake.requests[1]!)).toMatch(/previous answer was rejected: the answer is not JSON/);
    expect(plan.attempts).toBe(2);
  });

  it("fails with plan_invalid when the model twice proposes an action the host cannot run, and stores the plan", async () => {
    const bad = answer([{ action: "power.cycle", params: {} }]);
    fake.enqueue({ text: bad }, { text: bad });
    const p = planner();
    const err = await p.plan({ instruction: "x", host: "sim-1", device: "dut1", execute: true, requestedBy: null, frame: testJpeg(16, 16) }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LabrigError);
    expect((err as LabrigError).code).toBe("plan_invalid");
    expect((err as LabrigError).message).toContain("'power.cycle' is not allowed here");
    const stored = plans.list({ limit: 10 })[0]!;
    expect(stored.status).toBe("invalid");
    expect(stored.error?.error_code).toBe("plan_invalid");
    expect(ran).toHaveLength(0);
  });

  it("rejects params out of range, naming the field", async () => {
    const bad = answer([{ action: "serial.expect", params: { pattern: "x", timeout_ms: 99_999_999 } }]);
    fake.enqueue({ text: bad }, { text: bad });
    const err = (await planner().plan({ instruction: "x", host: "sim-1", device: "dut1", execute: false, requestedBy: null, frame: testJpeg(16, 16) }).catch((e: unknown) => e)) as LabrigError;
    expect(err.code).toBe("plan_invalid");
    expect(err.message).toContain("params.timeout_ms");
  });

  it("retries after a 429 and then succeeds", async () => {
    fake.enqueue({ status: 429, error: "quota" }, { text: answer([], { done: true }) });
    const plan = await planner().plan({ instruction: "x", host: "sim-1", device: "dut1", execute: false, requestedBy: null, frame: testJpeg(16, 16) });
    expect(plan.done).toBe(true);
    expect(fake.requests).toHaveLength(2);
    expect(plan.attempts).toBe(2);
  });

  it("fails with planner_timeout when the model never answers", async () => {
    fake.enqueue({ hang: true }, { hang: true });
    const err = (await planner({ timeoutMs: 300, retries: 1 }).plan({ instruction: "x", host: "sim-1", device: "dut1", execute: false, requestedBy: null, frame: testJpeg(16, 16) }).catch((e: unknown) => e)) as LabrigError;
    expect(err.code).toBe("planner_timeout");
    expect(fake.requests).toHaveLength(2);
    expect(plans.list({ limit: 1 })[0]?.status).toBe("failed");
  });

  it("refuses with budget_exhausted and retry_after once the day's requests are spent", async () => {
    fake.setBrain(() => ({ text: answer([]) }));
    const p = planner({}, { requestsPerDay: 2, tokensPerDay: 1_000_000 });
    await p.plan({ instruction: "x", host: "sim-1", device: "dut1", execute: false, requestedBy: null, frame: testJpeg(16, 16) });
    await p.plan({ instruction: "x", host: "sim-1", device: "dut1", execute: false, requestedBy: null, frame: testJpeg(16, 16) });
    const err = (await p.plan({ instruction: "x", host: "sim-1", device: "dut1", execute: false, requestedBy: null, frame: testJpeg(16, 16) }).catch((e: unknown) => e)) as LabrigError;
    expect(err.code).toBe("budget_exhausted");
    expect(err.retryAfter).toBeGreaterThan(0);
    expect(fake.requests).toHaveLength(2);
  });

  it("reserves the budget before each model call, so a burst of plans cannot overshoot it", async () => {
    // Slow answers: every plan of the burst is under way before the first one is stored.
    fake.setBrain(() => ({ text: answer([]), delayMs: 200 }));
    const p = planner({}, { requestsPerDay: 3, tokensPerDay: 1_000_000 });
    const burst = Array.from({ length: 10 }, () =>
      p.plan({ instruction: "x", host: "sim-1", device: "dut1", execute: false, requestedBy: null, frame: testJpeg(16, 16) }).then(
        () => "planned",
        (e: unknown) => (e as LabrigError).code,
      ),
    );
    const outcomes = await Promise.all(burst);
    expect(outcomes.filter((o) => o === "planned")).toHaveLength(3);
    expect(outcomes.filter((o) => o === "budget_exhausted")).toHaveLength(7);
    expect(fake.requests).toHaveLength(3);
    // What was stored is what was spent: the refused plans made no call.
    expect(p.usage().requests).toBe(3);
  });

  it("answers planner_unavailable naming GEMINI_API_KEY when no key is configured", async () => {
    const err = (await planner({}, undefined, false).plan({ instruction: "x", host: "sim-1", device: "dut1", execute: false, requestedBy: null }).catch((e: unknown) => e)) as LabrigError;
    expect(err.code).toBe("planner_unavailable");
    expect(err.httpStatus).toBe(503);
    expect(err.message).toContain("GEMINI_API_KEY");
  });

  it("leaves GOOGLE_GEMINI_BASE_URL working when GEMINI_BASE_URL is not set", async () => {
    fake.enqueue({ text: answer([]) });
    const saved = process.env.GOOGLE_GEMINI_BASE_URL;
    process.env.GOOGLE_GEMINI_BASE_URL = fake.url;
    try {
      await planner({ baseUrl: undefined }).plan({ instruction: "x", host: "sim-1", device: "dut1", execute: false, requestedBy: null, frame: testJpeg(16, 16) });
    } finally {
      if (saved === undefined) delete process.env.GOOGLE_GEMINI_BASE_URL;
      else process.env.GOOGLE_GEMINI_BASE_URL = saved;
    }
    expect(fake.requests).toHaveLength(1);
  });
});

describe("frame scaling", () => {
  it("reads a JPEG's size from its header, and leaves frames within the limit untouched", async () => {
    const { jpegSize, scaleJpeg } = await import("../src/services/planner/frame.js");
    const small = testJpeg(120, 90);
    expect(jpegSize(small)).toEqual({ width: 120, height: 90 });
    expect(scaleJpeg(small, 120)).toEqual({ jpeg: small, width: 120, height: 90, scaled: false });
    const big = scaleJpeg(testJpeg(400, 100, 90), 100);
    expect([big.width, big.height, big.scaled]).toEqual([100, 25, true]);
    const decoded = jpeg.decode(big.jpeg, { useTArray: true });
    expect([decoded.width, decoded.height]).toEqual([100, 25]);
    // Area averaging keeps the shade of a flat image.
    expect(Math.abs((decoded.data[0] ?? 0) - 90)).toBeLessThanOrEqual(3);
    expect(jpegSize(Buffer.from("not a jpeg"))).toBeNull();
    expect(() => scaleJpeg(Buffer.from("not a jpeg at all"), 100)).toThrow(/not a JPEG/);
  });
});

describe("planner shutdown", () => {
  afterEach(() => cleanupTempDirs());

  it("cancels plans under way, stores their outcome, and refuses new ones", async () => {
    const { FakeGemini: Fake } = await import("./fake-gemini.js");
    const fakeModel = new Fake(() => ({ hang: true }));
    await fakeModel.start();
    const dir = makeTempDir();
    const db = new HubDatabase(join(dir, "labrig.db"), logger, MIGRATIONS);
    db.start();
    try {
      new HostsRepository(db.db).insert({ id: "sim-1", name: "sim-1", labels: {}, tokenHash: "x", createdAt: new Date().toISOString() });
      const devs = new DevicesRepository(db.db);
      devs.replaceForHost("sim-1", [{ id: "dut1", labels: {}, capabilities: [], resources: [{ name: "console", kind: "serial" }] }], new Date().toISOString());
      const store = new PlansRepository(db.db);
      const p = new Planner({
        model: new GeminiModel({ apiKey: "k", model: "m", baseUrl: fakeModel.url, apiVersion: "v1beta", timeoutMs: 30_000, retries: 0, retryBaseMs: 1, stream: true }, logger),
        plans: store,
        devices: devs,
        consoles: new ConsoleBuffers(),
        frames: { grab: async () => Buffer.alloc(0) },
        runner: { run: async () => ({ status: "succeeded", error: null }) },
        publish: () => undefined,
        settings: { maxEdge: 64, framesDir: join(dir, "plans"), partialIntervalMs: 0, requestsPerDay: 10, tokensPerDay: 10_000 },
        logger,
      });
      const pending = p.plan({ instruction: "x", host: "sim-1", device: "dut1", execute: false, requestedBy: null });
      await new Promise((r) => setTimeout(r, 200));
      const started = Date.now();
      await p.stop();
      expect(Date.now() - started).toBeLessThan(4000);
      await expect(pending).rejects.toMatchObject({ code: "canceled" });
      expect(store.list({ limit: 5 })[0]?.status).toBe("failed");
      await expect(p.plan({ instruction: "x", host: "sim-1", device: "dut1", execute: false, requestedBy: null })).rejects.toMatchObject({ code: "shutting_down" });
    } finally {
      await fakeModel.stop();
      db.stop();
    }
  });
});
