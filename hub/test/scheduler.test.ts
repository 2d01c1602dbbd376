import type { ResourceDescription } from "@labrig/shared";
import { describe, expect, it } from "vitest";
import { Scheduler, deviceKey, type Decision, type Demand, type DeviceFacts } from "../src/services/work/scheduler.js";

// The scheduler alone: no sockets, no SQLite, no timers. Facts in, decisions out.

const GPIO: ResourceDescription[] = [{ name: "io", kind: "gpio" }];

function facts(host: string, device: string, extra: Partial<DeviceFacts> = {}): DeviceFacts {
  return { host, device, labels: { board: "rpi4" }, capabilities: ["gpio"], resources: GPIO, health: "good", healthReason: null, ...extra };
}

/** A scheduler with these hosts online, each with its devices. */
function fleet(hosts: Record<string, DeviceFacts[]>): Scheduler {
  const s = new Scheduler();
  for (const [host, devices] of Object.entries(hosts)) {
    s.setHostDevices(host, devices);
    s.setReachable(host, true);
  }
  return s;
}

const NONE: ReadonlySet<string> = new Set();

function selectorDemand(labels: Record<string, string> = { board: "rpi4" }, extra: Partial<Demand> = {}): Demand {
  return { target: { selector: { labels, capabilities: [] } }, action: { name: "gpio.read", resource: null }, leaseId: null, exclude: NONE, internal: false, ...extra };
}

function exactDemand(host: string, device: string, extra: Partial<Demand> = {}): Demand {
  return { target: { key: deviceKey(host, device) }, action: { name: "gpio.read", resource: null }, leaseId: null, exclude: NONE, internal: false, ...extra };
}

const dispatched = (decisions: Decision[]): [string, string][] =>
  decisions.filter((d): d is Extract<Decision, { kind: "dispatch" }> => d.kind === "dispatch").map((d) => [d.id, d.slot.key]);

describe("scheduler: selector actions", () => {
  it("gives each idle matching device one action, and queues the rest in priority, then age order", () => {
    const s = fleet({ a: [facts("a", "dut")], b: [facts("b", "dut")] });
    s.enqueue({ kind: "action", id: "low", priority: 0, demand: selectorDemand() });
    s.enqueue({ kind: "action", id: "high", priority: 5, demand: selectorDemand() });
    s.enqueue({ kind: "action", id: "low2", priority: 0, demand: selectorDemand() });
    const first = dispatched(s.schedule(false));
    expect(first.map(([id]) => id)).toEqual(["high", "low"]);
    expect(new Set(first.map(([, key]) => key))).toEqual(new Set(["a/dut", "b/dut"]));
    expect(s.queued().map((r) => r.id)).toEqual(["low2"]);
    // Nothing is idle: a plain pass decides nothing.
    expect(s.schedule(false)).toEqual([]);
    s.release("a/dut", "high");
    expect(dispatched(s.schedule(false))).toEqual([["low2", "a/dut"]]);
  });

  it("prefers the device with fewer waiting exact requests, then the least recently used", () => {
    const s = fleet({ a: [facts("a", "dut")], b: [facts("b", "dut")], c: [facts("c", "dut")] });
    s.enqueue({ kind: "action", id: "x1", priority: 0, demand: selectorDemand() });
    const [[, firstKey]] = dispatched(s.schedule(false)) as [[string, string]];
    s.release(firstKey, "x1");
    // a busy exact request waits for b: b is then more loaded than c.
    s.enqueue({ kind: "action", id: "hold-b", priority: 10, demand: exactDemand("b", "dut") });
    expect(dispatched(s.schedule(false))).toEqual([["hold-b", "b/dut"]]);
    s.enqueue({ kind: "action", id: "wait-b", priority: 0, demand: exactDemand("b", "dut") });
    s.release("b/dut", "hold-b");
    s.enqueue({ kind: "action", id: "sel", priority: 1, demand: selectorDemand() });
    const decisions = dispatched(s.schedule(false));
    // The selector request goes ahead (priority 1) to the idle device with no waiting request that was used least recently.
    const unused = ["a/dut", "c/dut"].find((k) => k !== firstKey);
    expect(decisions[0]).toEqual(["sel", unused]);
  });

  it("matches labels and capabilities, skips what cannot run the action, offline, unhealthy and other leases' devices, and exclusions", () => {
    const s = fleet({
      ok: [facts("ok", "dut")],
      label: [facts("label", "dut", { labels: { board: "x" } })],
      nores: [facts("nores", "dut", { resources: [{ name: "console", kind: "serial" }] })],
      sick: [facts("sick", "dut", { health: "maintenance" })],
      gone: [facts("gone", "dut")],
      held: [facts("held", "dut")],
      skip: [facts("skip", "dut")],
    });
    s.setReachable("gone", false);
    s.holdLease("lease-1", ["held/dut"]);
    const demand = selectorDemand({ board: "rpi4" }, { exclude: new Set(["skip/dut"]) });
    const reasons = Object.fromEntries([...s.devices()].map((slot) => [slot.host, s.ineligible(slot, demand, "run")]));
    expect(reasons).toEqual({ ok: null, label: "selector", nores: "unsupported", sick: "health", gone: "offline", held: "leased", skip: "excluded" });
    expect(s.candidates(demand).map((x) => x.host).sort()).toEqual(["gone", "held", "ok", "sick"]);
    expect(s.hasCandidate(demand)).toBe(true);
    // Only static reasons rule a device out for good: a selector nothing matches, or only excluded or unsuitable devices.
    expect(s.hasCandidate(selectorDemand({ board: "none" }))).toBe(false);
    expect(s.hasCandidate(selectorDemand({ board: "x" }, { exclude: new Set(["label/dut"]) }))).toBe(false);
    expect(s.hasCandidate(selectorDemand({ board: "rpi4" }, { action: { name: "serial.read", resource: null } }))).toBe(true);
    expect(s.hasCandidate(selectorDemand({ board: "x" }, { action: { name: "serial.read", resource: null } }))).toBe(false);
    s.enqueue({ kind: "action", id: "one", priority: 0, demand });
    s.enqueue({ kind: "action", id: "two", priority: 0, demand });
    expect(dispatched(s.schedule(true))).toEqual([["one", "ok/dut"]]);
  });

  it("serves a request holding a lease from that lease's devices first", () => {
    const s = fleet({ a: [facts("a", "dut")], b: [facts("b", "dut")] });
    s.holdLease("mine", ["b/dut"]);
    s.enqueue({ kind: "action", id: "x", priority: 0, demand: selectorDemand({ board: "rpi4" }, { leaseId: "mine" }) });
    expect(dispatched(s.schedule(false))).toEqual([["x", "b/dut"]]);
  });
});

describe("scheduler: exact targets", () => {
  it("wait while the device is busy or its host away, and go as soon as it is free", () => {
    const s = fleet({ a: [facts("a", "dut")] });
    s.setReachable("a", false);
    s.enqueue({ kind: "action", id: "e1", priority: 0, demand: exactDemand("a", "dut") });
    expect(s.schedule(true)).toEqual([]);
    expect(s.loadOf("a/dut")).toBe(1);
    s.setReachable("a", true);
    expect(dispatched(s.schedule(true))).toEqual([["e1", "a/dut"]]);
    s.enqueue({ kind: "action", id: "e2", priority: 0, demand: exactDemand("a", "dut") });
    expect(s.schedule(true)).toEqual([]);
    expect(s.loadOf("a/dut")).toBe(2);
    s.release("a/dut", "e1");
    expect(dispatched(s.schedule(false))).toEqual([["e2", "a/dut"]]);
  });

  it("are refused once the device is unhealthy, leased to someone else or gone, on a full pass", () => {
    const s = fleet({ a: [facts("a", "one"), facts("a", "two"), facts("a", "three")] });
    for (const d of ["one", "two", "three"]) s.enqueue({ kind: "action", id: `busy-${d}`, priority: 9, demand: exactDemand("a", d) });
    s.schedule(false);
    for (const d of ["one", "two", "three"]) s.enqueue({ kind: "action", id: d, priority: 0, demand: exactDemand("a", d) });
    const gone = s.setHostDevices("a", [facts("a", "one"), facts("a", "two")]);
    expect(gone).toEqual(["a/three"]);
    s.setHealth("a/one", "bad", "smoke");
    s.holdLease("other", ["a/two"]);
    const refusals = s.schedule(true).filter((d) => d.kind === "refuse");
    expect(refusals).toEqual([
      { kind: "refuse", id: "one", reason: "health", key: "a/one" },
      { kind: "refuse", id: "two", reason: "leased", key: "a/two" },
      { kind: "refuse", id: "three", reason: "gone", key: "a/three" },
    ]);
    expect(s.queueLength).toBe(0);
  });

  it("internal work runs whatever the health and leases", () => {
    const s = fleet({ a: [facts("a", "dut", { health: "unknown" })] });
    s.holdLease("new-holder", ["a/dut"]);
    s.enqueue({ kind: "action", id: "cleanup", priority: Number.MAX_SAFE_INTEGER, demand: exactDemand("a", "dut", { internal: true }) });
    expect(dispatched(s.schedule(true))).toEqual([["cleanup", "a/dut"]]);
  });

  it("keep a device's live load when its host says hello again", () => {
    const s = fleet({ a: [facts("a", "dut")] });
    s.enqueue({ kind: "action", id: "run", priority: 0, demand: exactDemand("a", "dut") });
    s.schedule(false);
    s.setHostDevices("a", [facts("a", "dut", { labels: { board: "rpi5" } })]);
    expect(s.slot("a/dut")).toMatchObject({ running: "run", labels: { board: "rpi5" } });
  });
});

describe("scheduler: leases", () => {
  it("are all or nothing, may take busy devices, take idle ones first, and hold what they took", () => {
    const s = fleet({ a: [facts("a", "dut")], b: [facts("b", "dut")], c: [facts("c", "dut")] });
    s.enqueue({ kind: "action", id: "busy", priority: 0, demand: exactDemand("a", "dut") });
    s.schedule(false);
    s.enqueue({ kind: "lease", id: "four", priority: 0, demand: selectorDemand({ board: "rpi4" }, { action: null }), count: 4 });
    expect(s.schedule(false)).toEqual([]);
    s.dequeue("four");
    s.enqueue({ kind: "lease", id: "two", priority: 0, demand: selectorDemand({ board: "rpi4" }, { action: null }), count: 2 });
    const [grant] = s.schedule(false);
    expect(grant?.kind).toBe("grant");
    expect((grant as Extract<Decision, { kind: "grant" }>).slots.map((x) => x.key).sort()).toEqual(["b/dut", "c/dut"]);
    expect(s.leaseHolding("b/dut")).toBe("two");
    s.enqueue({ kind: "lease", id: "three", priority: 0, demand: selectorDemand({ board: "rpi4" }, { action: null }), count: 1 });
    const [busyGrant] = s.schedule(false);
    expect((busyGrant as Extract<Decision, { kind: "grant" }>).slots.map((x) => x.key)).toEqual(["a/dut"]);
    s.releaseLease("two");
    expect(s.leaseHolding("b/dut")).toBeUndefined();
  });

  it("an exact lease waits for another lease to end, but is refused when its device is unhealthy", () => {
    const s = fleet({ a: [facts("a", "dut")] });
    s.holdLease("first", ["a/dut"]);
    s.enqueue({ kind: "lease", id: "second", priority: 0, demand: exactDemand("a", "dut", { action: null }), count: 1 });
    expect(s.schedule(true)).toEqual([]);
    s.releaseLease("first");
    expect(s.schedule(true).map((d) => d.kind)).toEqual(["grant"]);
    s.releaseLease("second");
    s.setHealth("a/dut", "bad", "burnt");
    s.enqueue({ kind: "lease", id: "third", priority: 0, demand: exactDemand("a", "dut", { action: null }), count: 1 });
    expect(s.schedule(true)).toEqual([{ kind: "refuse", id: "third", reason: "health", key: "a/dut" }]);
  });

  it("skip excluded devices and devices that cannot run the cleanup action", () => {
    const s = fleet({ a: [facts("a", "dut")], b: [facts("b", "dut", { resources: [{ name: "console", kind: "serial" }] })], c: [facts("c", "dut")] });
    s.enqueue({ kind: "lease", id: "retry", priority: 0, demand: selectorDemand({ board: "rpi4" }, { action: { name: "gpio.write", resource: null }, exclude: new Set(["a/dut"]) }), count: 1 });
    const [grant] = s.schedule(false);
    expect((grant as Extract<Decision, { kind: "grant" }>).slots.map((x) => x.key)).toEqual(["c/dut"]);
  });
});
