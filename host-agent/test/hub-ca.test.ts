import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ConfigError, parseConfig } from "../src/config.js";
import { makeTempDir } from "./helpers.js";

// hub.ca_file: the agent pins the hub's CA (or self-signed certificate) instead of the system's CAs.
const PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

function config(hub: Record<string, unknown>, baseDir: string) {
  return parseConfig({ host: "pi-1", hub: { url: "https://hub.lab.example", token: "lrh_t", ...hub }, devices: [] }, { baseDir });
}

describe("hub.ca_file", () => {
  it("reads the PEM file, relative to the config, into the hub link's CA", () => {
    const temp = makeTempDir();
    try {
      writeFileSync(join(temp.dir, "hub.crt"), PEM);
      const c = config({ ca_file: "hub.crt" }, temp.dir);
      expect(c.hub.ca_file).toBe(join(temp.dir, "hub.crt"));
      expect(c.hub.ca).toBe(PEM);
      expect(config({}, temp.dir).hub.ca).toBeUndefined();
    } finally {
      temp.remove();
    }
  });

  it("names the key and the fix when the file is missing or holds no certificate", () => {
    const temp = makeTempDir();
    try {
      expect(() => config({ ca_file: "missing.crt" }, temp.dir)).toThrow(ConfigError);
      expect(() => config({ ca_file: "missing.crt" }, temp.dir)).toThrow(/hub\.ca_file: cannot read .*missing\.crt.*make-cert\.sh/);
      writeFileSync(join(temp.dir, "key.pem"), "-----BEGIN PRIVATE KEY-----\n");
      expect(() => config({ ca_file: "key.pem" }, temp.dir)).toThrow(/hub\.ca_file: .*holds no PEM certificate/);
    } finally {
      temp.remove();
    }
  });
});
