import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { afterEach, describe, expect, it } from "vitest";
import { ByteRing } from "../src/services/byte-ring.js";
import { ConsoleBuffers } from "../src/services/console-buffers.js";
import { addHost, cleanupTempDirs, connectedAgent, getJson, sayHello, startHub, stopAll, waitFor } from "./helpers.js";

// What one host can make the hub hold: console tails bounded by bytes per resource and per host
// (measured as retained memory after a full GC), and devices/resources per hello bounded by settings.

afterEach(async () => {
  await stopAll();
  cleanupTempDirs();
});

setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;

/** Bytes held by ArrayBuffers (every Buffer) after a full collection. */
function retainedBuffers(): number {
  gc();
  gc();
  return process.memoryUsage().arrayBuffers;
}

const MiB = 1024 * 1024;

describe("console tails in memory", () => {
  it("a host streaming the largest chunks to 64 consoles retains at most its host bound (1 MiB by default)", () => {
    const consoles = new ConsoleBuffers();
    const chunk = "x".repeat(262_144); // the largest console.output the protocol allows
    const before = retainedBuffers();
    for (let round = 0; round < 8; round++) for (let r = 0; r < 64; r++) consoles.append("pi-1", "dut", `console-${r}`, chunk);
    const retained = retainedBuffers() - before;
    console.log(`64 consoles × 8 chunks of 256 KiB: ${(retained / MiB).toFixed(2)} MiB retained (bound 1 MiB)`);
    expect(retained).toBeLessThanOrEqual(1 * MiB + 64 * 1024);
    expect(consoles.allocatedFor("pi-1")).toBeLessThanOrEqual(MiB);
    // Each console still shows its newest bytes: an equal share of the host bound.
    expect(consoles.text("pi-1", "dut", "console-0")).toHaveLength(Math.floor(MiB / 64));
  });

  it("a 4 MiB tail holds 4 MiB, not the whole text it was cut from", () => {
    const consoles = new ConsoleBuffers({ resourceBytes: 4 * MiB, hostBytes: 4 * MiB });
    const before = retainedBuffers();
    consoles.append("pi-1", "dut", "console", "a".repeat(48 * MiB));
    const retained = retainedBuffers() - before;
    consoles.append("pi-1", "dut", "console", "tail");
    console.log(`4 MiB tail of 48 MiB of output: ${(retained / MiB).toFixed(2)} MiB retained`);
    expect(retained).toBeLessThanOrEqual(4 * MiB + 256 * 1024);
    const text = consoles.text("pi-1", "dut", "console");
    expect(text).toHaveLength(4 * MiB);
    expect(text.endsWith("atail")).toBe(true);
  });

  it("the ring keeps exactly the newest bytes through growth, wrap-around and resizing", () => {
    let seed = 7;
    const random = (n: number): number => {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
      return seed % n;
    };
    const ring = new ByteRing(5000);
    let model = Buffer.alloc(0);
    for (let i = 0; i < 2000; i++) {
      if (i % 400 === 399) {
        const cap = 500 + random(6000);
        ring.resize(cap);
        model = model.subarray(Math.max(0, model.length - cap));
      }
      const data = Buffer.alloc(1 + random(i % 50 === 0 ? 9000 : 700), i % 251);
      ring.append(data);
      model = Buffer.concat([model, data]);
      model = model.subarray(Math.max(0, model.length - ring.capacity));
      expect(ring.allocated).toBeLessThanOrEqual(ring.capacity);
    }
    expect(ring.bytes().equals(model)).toBe(true);
  });

  it("keeps a multi-byte character whole or drops it, never half of it", () => {
    const consoles = new ConsoleBuffers({ resourceBytes: 1024, hostBytes: 1024 });
    consoles.append("pi-1", "dut", "console", "é".repeat(1000));
    expect(consoles.text("pi-1", "dut", "console")).toBe("é".repeat(512));
  });
});

describe("what a hello may declare", () => {
  const device = (id: string, resources: number) => ({
    id,
    labels: {},
    capabilities: [],
    resources: Array.from({ length: resources }, (_, i) => ({ name: `r${i}`, kind: "gpio" })),
  });

  it("refuses more devices than LABRIG_MAX_DEVICES_PER_HOST (64 by default) in the hello ack, naming the setting", async () => {
    const hub = await startHub();
    const socket = await connectedAgent(hub.url, "pi-1", await addHost(hub.dataDir, "pi-1"));
    // The protocol allows 256 devices × 64 resources; the hub's default does not.
    const ack = await sayHello(socket, "pi-1", Array.from({ length: 65 }, (_, i) => device(`d${i}`, 1)));
    expect(ack).toMatchObject({ ok: false, error: { error_code: "validation_failed" } });
    expect((ack.error as { message: string }).message).toContain("LABRIG_MAX_DEVICES_PER_HOST");
    expect((await getJson(`${hub.url}/api/hosts/pi-1`)).body.state).not.toBe("online");
    expect((await sayHello(socket, "pi-1", Array.from({ length: 64 }, (_, i) => device(`d${i}`, 1)))).ok).toBe(true);
  });

  it("refuses more resources per device or per host than the settings allow", async () => {
    const hub = await startHub({ env: { LABRIG_MAX_RESOURCES_PER_DEVICE: "4", LABRIG_MAX_RESOURCES_PER_HOST: "6" } });
    const socket = await connectedAgent(hub.url, "pi-1", await addHost(hub.dataDir, "pi-1"));
    const perDevice = await sayHello(socket, "pi-1", [device("a", 5)]);
    expect((perDevice.error as { message: string }).message).toMatch(/Device 'a' declares 5 resources.*LABRIG_MAX_RESOURCES_PER_DEVICE/);
    const perHost = await sayHello(socket, "pi-1", [device("a", 4), device("b", 3)]);
    expect((perHost.error as { message: string }).message).toMatch(/7 resources in all.*LABRIG_MAX_RESOURCES_PER_HOST/);
    expect((await sayHello(socket, "pi-1", [device("a", 4), device("b", 2)])).ok).toBe(true);
  });

  it("console output from a real agent socket is kept within LABRIG_CONSOLE_BUFFER_BYTES and the host's share", async () => {
    const hub = await startHub({ env: { LABRIG_CONSOLE_BUFFER_BYTES: "4096", LABRIG_CONSOLE_HOST_BYTES: "8192" } });
    const socket = await connectedAgent(hub.url, "pi-1", await addHost(hub.dataDir, "pi-1"));
    const serial = (n: number) => ({ id: "dut", labels: {}, capabilities: [], resources: Array.from({ length: n }, (_, i) => ({ name: `c${i}`, kind: "serial" })) });
    expect((await sayHello(socket, "pi-1", [serial(4)])).ok).toBe(true);
    const tail = async (resource: string) => (await getJson(`${hub.url}/api/hosts/pi-1/devices/dut/console?resource=${resource}`)).body.text as string;
    socket.emit("console.output", { host: "pi-1", device: "dut", resource: "c0", seq: 0, at: new Date().toISOString(), data: "y".repeat(10_000) });
    await waitFor(async () => (await tail("c0")).length > 0);
    // Alone on the host it gets the per-resource bound …
    expect(await tail("c0")).toHaveLength(4096);
    for (const r of ["c1", "c2", "c3"]) socket.emit("console.output", { host: "pi-1", device: "dut", resource: r, seq: 0, at: new Date().toISOString(), data: "z".repeat(10_000) });
    await waitFor(async () => (await tail("c3")).length > 0);
    // … and four consoles share the host's 8 KiB.
    for (const r of ["c0", "c1", "c2", "c3"]) expect(await tail(r)).toHaveLength(2048);
  });
});
