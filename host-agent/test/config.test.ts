import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ConfigError, configPathFrom, loadConfig } from "../src/config.js";
import { makeTempDir } from "./helpers.js";

const VALID = `
host: sim-1
hub:
  url: http://127.0.0.1:8080/
  token_file: secrets/token
data_dir: ./agent-data
gpio:
  driver: memory
devices:
  - id: dut1
    labels: { board: sim }
    capabilities: [boots-linux]
    simulated: true
    resources:
      - { name: console, kind: serial, path: ./sim/dut1-console, tx_char_delay_ms: 2 }
      - { name: power, kind: power, line: 17, chip: null, active_low: false, cycle_off_ms: 2000 }
      - { name: reset, kind: gpio, line: 27, direction: out, active_low: true, initial: 0 }
  - id: rpi4-a
    resources:
      - { name: console, kind: serial, path: /dev/serial/by-id/usb-FTDI, baud_rate: 9600, parity: even, stop_bits: 2 }
      - { name: power, kind: power, line: 5, chip: pinctrl-bcm2711 }
`;

function writeConfig(text: string, token = "lrh_file_token\n"): { path: string; dir: string; remove: () => void } {
  const temp = makeTempDir();
  mkdirSync(join(temp.dir, "secrets"));
  writeFileSync(join(temp.dir, "secrets", "token"), token);
  const path = join(temp.dir, "agent.yaml");
  writeFileSync(path, text);
  return { path, dir: temp.dir, remove: temp.remove };
}

function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error("expected a ConfigError");
}

describe("agent config", () => {
  it("loads a valid file: relative paths resolve against its directory, defaults are applied, the token file is read", () => {
    const f = writeConfig(VALID);
    try {
      const c = loadConfig(f.path, {});
      expect(c.host).toBe("sim-1");
      expect(c.hub).toEqual({ url: "http://127.0.0.1:8080", token: "lrh_file_token", token_file: join(f.dir, "secrets/token") });
      expect(c.data_dir).toBe(join(f.dir, "agent-data"));
      expect(c.log_level).toBe("info");
      expect(c.gpio).toEqual({ driver: "memory", dev_dir: "/dev", sysfs_root: "/sys/class/gpio" });
      const [sim, real] = c.devices;
      expect(sim?.resources[0]).toEqual({
        name: "console",
        kind: "serial",
        path: join(f.dir, "sim/dut1-console"),
        baud_rate: 115200,
        data_bits: 8,
        parity: "none",
        stop_bits: 1,
        rts_cts: false,
        tx_char_delay_ms: 2,
        log_max_bytes: 1024 * 1024,
        log_files: 3,
      });
      expect(sim?.resources[1]).toMatchObject({ kind: "power", line: 17, chip: null, initial: 0, cycle_off_ms: 2000 });
      expect(sim?.resources[2]).toMatchObject({ kind: "gpio", direction: "out", active_low: true, initial: 0, edge: "none", debounce_ms: 20, poll_ms: 50, bias: "as-is" });
      expect(real).toMatchObject({ id: "rpi4-a", labels: {}, capabilities: [], simulated: false });
      expect(real?.resources[0]).toMatchObject({ path: "/dev/serial/by-id/usb-FTDI", baud_rate: 9600, parity: "even", stop_bits: 2 });
      expect(real?.resources[1]).toMatchObject({ chip: "pinctrl-bcm2711", cycle_off_ms: null });
      expect(c.config_path).toBe(f.path);
    } finally {
      f.remove();
    }
  });

  it("takes a journal path for a simulated board (relative to the config file) and refuses one on a real device", () => {
    const ok = writeConfig(`
host: h1
hub: { url: http://hub:8080, token: t }
devices:
  - id: dut1
    simulated: true
    sim_journal: ./journal/dut1.jsonl
    resources:
      - { name: console, kind: serial, path: ./dut1-console }
      - { name: power, kind: power, line: 17 }
`);
    const bad = writeConfig(`
host: h1
hub: { url: http://hub:8080, token: t }
devices:
  - id: rpi
    sim_journal: ./journal/rpi.jsonl
    resources: [{ name: console, kind: serial, path: /dev/ttyUSB0 }]
`);
    try {
      expect(loadConfig(ok.path, {}).devices[0]?.sim_journal).toBe(join(ok.dir, "journal/dut1.jsonl"));
      const err = configError(() => loadConfig(bad.path, {}));
      expect(err.issues).toEqual(["devices[0].sim_journal: only a simulated board keeps a journal; remove sim_journal or set simulated: true"]);
    } finally {
      ok.remove();
      bad.remove();
    }
  });

  it("reports every error at once, each naming its key path", () => {
    const f = writeConfig(`
host: Not A Slug
hub:
  url: ftp://hub
  token: abc
  token_file: /etc/labrig/token
gpio: { driver: magic }
devices:
  - id: dut1
    resources:
      - { name: console, kind: serial, path: /dev/ttyUSB0, baud_rate: fast }
      - { name: console, kind: serial, path: /dev/ttyUSB1, baudrate: 9600 }
      - { name: lamp, kind: gpio, line: 4, direction: in, initial: 1 }
      - { name: cam, kind: camera }
  - id: dut1
    simulated: true
    resources:
      - { name: power, kind: power }
`);
    try {
      const err = configError(() => loadConfig(f.path, {}));
      expect(err.code).toBe("validation_failed");
      const text = err.issues.join("\n");
      expect(text).toMatch(/^host: must be 1-63 characters/m);
      expect(text).toMatch(/^hub\.url: must be an http:\/\/ or https:\/\/ URL/m);
      expect(text).toMatch(/^hub\.token_file: set only one of hub\.token and hub\.token_file/m);
      expect(text).toMatch(/^gpio\.driver: must be one of "auto", "chardev", "sysfs", "memory", got the string "magic"/m);
      expect(text).toMatch(/^devices\[0\]\.resources\[0\]\.baud_rate: expected a number, got the string "fast" \(e\.g\. baud_rate: 115200\)/m);
      expect(text).toMatch(/^devices\[0\]\.resources\[1\]: unknown key 'baudrate'/m);
      expect(text).toMatch(/^devices\[0\]\.resources\[1\]\.name: duplicate resource name 'console'/m);
      expect(text).toMatch(/^devices\[0\]\.resources\[2\]\.initial: only outputs have an initial value/m);
      expect(text).toMatch(/^devices\[0\]\.resources\[3\]\.kind: kind must be one of serial, power, gpio/m);
      expect(text).toMatch(/^devices\[1\]\.resources\[0\]\.line: required, expected a number/m);
      expect(err.message).toContain(f.path);
      expect(err.issues.length).toBeGreaterThanOrEqual(10);
    } finally {
      f.remove();
    }
  });

  it("reports cross-field problems: missing token, duplicate ids, one pin used twice", () => {
    const f = writeConfig(`
host: h1
hub: { url: http://hub:8080 }
devices:
  - { id: a, resources: [{ name: power, kind: power, line: 17 }] }
  - { id: a, resources: [{ name: relay, kind: gpio, line: 17, direction: out }] }
`);
    try {
      const text = configError(() => loadConfig(f.path, {})).issues.join("\n");
      expect(text).toMatch(/^hub\.token: missing: set hub\.token, hub\.token_file, or the LABRIG_HUB_TOKEN/m);
      expect(text).toMatch(/^devices\[1\]\.id: duplicate device id 'a'/m);
      expect(text).toMatch(/^devices\[1\]\.resources\[0\]\.line: line 17 is already used by devices\[0\]\.resources\[0\]/m);
    } finally {
      f.remove();
    }
  });

  it("applies LABRIG_HUB_URL, LABRIG_HUB_TOKEN (over token_file) and LOG_LEVEL", () => {
    const f = writeConfig(VALID);
    try {
      const c = loadConfig(f.path, { LABRIG_HUB_URL: "https://hub.example:8443", LABRIG_HUB_TOKEN: "lrh_env", LOG_LEVEL: "debug" });
      expect(c.hub).toEqual({ url: "https://hub.example:8443", token: "lrh_env", token_file: null });
      expect(c.log_level).toBe("debug");
      const err = configError(() => loadConfig(f.path, { LOG_LEVEL: "loud" }));
      expect(err.issues[0]).toMatch(/^log_level \(from LOG_LEVEL\): must be one of/);
    } finally {
      f.remove();
    }
  });

  it("names the file and the fix when it is missing, unreadable YAML, or the token file is empty", () => {
    const temp = makeTempDir();
    try {
      expect(configError(() => loadConfig(join(temp.dir, "nope.yaml"), {})).message).toMatch(/create it or pass --config PATH/);
      writeFileSync(join(temp.dir, "bad.yaml"), "host: [unclosed\n");
      expect(configError(() => loadConfig(join(temp.dir, "bad.yaml"), {})).issues[0]).toMatch(/^YAML syntax/);
      const f = writeConfig(VALID, "  \n");
      try {
        expect(configError(() => loadConfig(f.path, {})).issues[0]).toMatch(/hub\.token_file: .* is empty/);
      } finally {
        f.remove();
      }
    } finally {
      temp.remove();
    }
  });

  it("takes the path from --config, then LABRIG_AGENT_CONFIG, then /etc/labrig/agent.yaml", () => {
    expect(configPathFrom("/a.yaml", { LABRIG_AGENT_CONFIG: "/b.yaml" })).toBe("/a.yaml");
    expect(configPathFrom(undefined, { LABRIG_AGENT_CONFIG: "/b.yaml" })).toBe("/b.yaml");
    expect(configPathFrom(undefined, {})).toBe("/etc/labrig/agent.yaml");
  });
});
