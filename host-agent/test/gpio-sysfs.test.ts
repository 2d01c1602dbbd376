import { spawnSync } from "node:child_process";
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { makeTempDir } from "./helpers.js";

const DIST = new URL("../dist/", import.meta.url).pathname;

/**
 * The agent's GPIO and power drivers through onoff on a fake sysfs tree: a tmpfs on /sys/class
 * inside a private mount namespace (unshare -m, root), as in sysfs-line.test.ts. Three chips with
 * different bases (Pi 4 512, Pi 5 571, an expander at 504); the pins are made up front because
 * no kernel creates gpioN on export. `unexport` is a FIFO drained into a log, so every release
 * is recorded (a plain file would keep only the last number written).
 */
function runProbe(body: string): Record<string, unknown> {
  if (!existsSync(join(DIST, "devices/device.js"))) throw new Error("host-agent is not built; run: cd /work/main && npx tsc -b");
  if (spawnSync("unshare", ["--version"]).error) throw new Error("unshare is missing; install it: apt-get install util-linux");
  const temp = makeTempDir();
  try {
    const script = join(temp.dir, "probe.mjs");
    writeFileSync(
      script,
      `
import { readFileSync, writeFileSync } from "node:fs";
import { performance } from "node:perf_hooks";
const dist = ${JSON.stringify(DIST)};
const { Device } = await import(dist + "devices/device.js");
const { SysfsLineFactory } = await import(dist + "devices/gpio/sysfs-line.js");
const { Executor } = await import(dist + "executor.js");
const { parseConfig } = await import(dist + "config.js");
const { createLogger } = await import(dist + "logger.js");
const G = "/sys/class/gpio";
const read = (p) => readFileSync(G + "/" + p, "utf8").trim();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const out = {};
${body}
console.log(JSON.stringify(out));
`,
    );
    const pins = [588, 539, 506];
    const setup = [
      "set -e",
      "mount -t tmpfs labrig-test-gpio /sys/class",
      "G=/sys/class/gpio",
      "mkdir -p $G/gpiochip512 $G/gpiochip571 $G/gpiochip504",
      "echo pinctrl-bcm2711 > $G/gpiochip512/label; echo 512 > $G/gpiochip512/base; echo 58 > $G/gpiochip512/ngpio",
      "echo pinctrl-rp1 > $G/gpiochip571/label; echo 571 > $G/gpiochip571/base; echo 54 > $G/gpiochip571/ngpio",
      "echo raspberrypi-exp-gpio > $G/gpiochip504/label; echo 504 > $G/gpiochip504/base; echo 8 > $G/gpiochip504/ngpio",
      ...pins.map((n) => `mkdir $G/gpio${n}; echo in > $G/gpio${n}/direction; echo 0 > $G/gpio${n}/active_low; echo 0 > $G/gpio${n}/value; echo none > $G/gpio${n}/edge`),
      ": > $G/export; mkfifo $G/unexport; : > /sys/class/unexported.log",
      "( while :; do cat $G/unexport >> /sys/class/unexported.log; done ) </dev/null >/dev/null 2>&1 &",
      "READER=$!",
      "set +e",
      `${JSON.stringify(process.execPath)} ${JSON.stringify(script)}`,
      "RC=$?",
      "kill $READER",
      "exit $RC",
    ].join("\n");
    const r = spawnSync("unshare", ["-m", "--propagation", "private", "sh", "-c", setup], { encoding: "utf8", timeout: 30_000 });
    if (r.status !== 0) throw new Error(`the namespaced probe failed (needs root for unshare -m): status ${r.status}\n${r.stderr}\n${r.stdout}`);
    return JSON.parse(r.stdout.trim().split("\n").pop() as string) as Record<string, unknown>;
  } finally {
    temp.remove();
  }
}

const DEVICE_SETUP = `
const config = parseConfig({
  host: "pi1", hub: { url: "http://127.0.0.1:9", token: "t" }, gpio: { driver: "sysfs" },
  devices: [{ id: "dut1", resources: [
    { name: "power", kind: "power", chip: "pinctrl-rp1", line: 17, cycle_off_ms: 150 },
    { name: "reset", kind: "gpio", chip: "pinctrl-bcm2711", line: 27, direction: "out", active_low: true, initial: 0 },
    { name: "button", kind: "gpio", chip: "raspberrypi-exp-gpio", line: 2, edge: "both", debounce_ms: 10, poll_ms: 20 },
  ] }],
}, { baseDir: "/tmp" });
const states = [];
const device = new Device(config.devices[0], {
  lineFactory: new SysfsLineFactory(G, createLogger("silent")),
  logger: createLogger("silent"),
  reportState: (s) => states.push({ ...s, t: performance.now(), power_file: read("gpio588/value") }),
  onConsoleData: () => {},
});
await device.start();
const results = [];
const executor = new Executor("pi1", new Map([["dut1", device]]), (r) => results.push(r), createLogger("silent"));
executor.start();
let seq = 0;
const act = async (action, resource, params = {}) => {
  const id = "a" + ++seq;
  executor.submit({ id, device: "dut1", action, resource, params, timeout_ms: 5000 });
  await executor.idle();
  const r = results.find((x) => x.id === id);
  return r.status === "succeeded" ? r.result : { error: r.error.error_code, message: r.error.message };
};
`;

describe("GPIO and power through onoff on a fake sysfs tree", () => {
  it("finds each chip by label and base, drives outputs (active-low raw initial), pulses, refuses unconfigured lines, polls inputs, and unexports every line on stop", () => {
    const out = runProbe(`${DEVICE_SETUP}
out.opened = { power: read("gpio588/direction"), reset: read("gpio539/direction"), reset_active_low: read("gpio539/active_low"), button: read("gpio506/direction") };
out.initial_states = states.map((s) => ({ resource: s.resource, power: s.power, value: s.value, detail: s.detail }));
out.write = await act("gpio.write", "reset", { value: 1 });
out.reset_file_after_write = read("gpio539/value");
out.pulse = await act("gpio.pulse", "reset", { width_ms: 60, value: 1 });
out.reset_file_after_pulse = read("gpio539/value");
out.refused = {
  unknown_line: await act("gpio.write", "gpio12", { value: 1 }),
  power_on_a_gpio: await act("power.on", "reset"),
  gpio_on_the_power_line: await act("gpio.write", "power", { value: 1 }),
  input_line: await act("gpio.write", "button", { value: 1 }),
  serial_unknown: await act("serial.read", "console"),
};
out.power_file_after_refusals = read("gpio588/value");
// The far end of the wire presses the button; edge watching is impossible here (epoll refuses regular files), so polling sees it.
writeFileSync(G + "/gpio506/value", "1");
const deadline = Date.now() + 5000;
while (!states.some((s) => s.resource === "button" && s.value === 1) && Date.now() < deadline) await sleep(10);
out.button_state = states.filter((s) => s.resource === "button").map((s) => ({ value: s.value, detail: s.detail }));
out.read_button = await act("gpio.read", "button");
await executor.stop();
await device.stop();
const until = Date.now() + 3000;
// onoff writes the bare number; writes that follow each other closely reach one cat as one run, so split by the 3-digit width every pin here has.
const unexported = () => readFileSync("/sys/class/unexported.log", "utf8").match(/\\d{3}/g) ?? [];
while (unexported().length < 3 && Date.now() < until) await sleep(10);
out.unexported = unexported().sort();
`);
    // Active-low output starting inactive is electrically high: "high" sets direction and level in one write.
    expect(out.opened).toEqual({ power: "low", reset: "high", reset_active_low: "1", button: "in" });
    expect(out.initial_states).toEqual([
      { resource: "power", power: "off" },
      { resource: "reset", value: 0 },
      { resource: "button", value: 0, detail: "edge interrupts unavailable: polling every 20 ms" },
    ]);
    expect(out.write).toEqual({ value: 1 });
    expect(out.reset_file_after_write).toBe("1");
    expect((out.pulse as { width_ms: number }).width_ms).toBeGreaterThanOrEqual(60);
    expect(out.reset_file_after_pulse).toBe("0");
    const refused = out.refused as Record<string, { error: string; message: string }>;
    expect(refused.unknown_line!.error).toBe("forbidden_line");
    expect(refused.unknown_line!.message).toContain("gpio12");
    expect(refused.power_on_a_gpio!.error).toBe("forbidden_line");
    expect(refused.gpio_on_the_power_line!.error).toBe("forbidden_line");
    expect(refused.input_line!.error).toBe("forbidden_line");
    expect(refused.serial_unknown!.error).toBe("unknown_resource");
    expect(out.power_file_after_refusals).toBe("0");
    expect(out.button_state).toEqual([
      { value: 0, detail: "edge interrupts unavailable: polling every 20 ms" },
      { value: 1, detail: "edge interrupts unavailable: polling every 20 ms" },
    ]);
    expect(out.read_button).toEqual({ value: 1 });
    expect(out.unexported).toEqual(["506", "539", "588"]);
  });

  it("power.cycle is off → cycle_off_ms → on in one action, with each state reported as the pin changes", () => {
    const out = runProbe(`${DEVICE_SETUP}
out.on = await act("power.on", "power");
const from = states.length;
const t0 = performance.now();
out.cycle = await act("power.cycle", "power");
out.took_ms = performance.now() - t0;
out.reports = states.slice(from).filter((s) => s.resource === "power").map((s) => ({ power: s.power, file: s.power_file, t: s.t }));
out.custom = await act("power.cycle", "power", { off_ms: 40 });
await executor.stop();
await device.stop();
`);
    expect(out.on).toEqual({ state: "on" });
    expect(out.cycle).toEqual({ state: "on" });
    const reports = out.reports as { power: string; file: string; t: number }[];
    expect(reports.map((r) => [r.power, r.file])).toEqual([
      ["off", "0"],
      ["on", "1"],
    ]);
    // Lower bounds only: the box is shared, so upper bounds belong to the bench.
    expect(reports[1]!.t - reports[0]!.t).toBeGreaterThanOrEqual(150);
    expect(out.took_ms as number).toBeGreaterThanOrEqual(150);
    expect(out.custom).toEqual({ state: "on" });
  });
});
